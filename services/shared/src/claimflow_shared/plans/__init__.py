"""Benefit plans as every part of claimflow sees them: the BenefitPlan resource, the rules a
plan must satisfy beyond its schema, CDT categories, and the compacted plans topic."""

from .cdt import CATEGORY_RANGES, Category, category_of
from .checks import PlanRef, conflicts, globs_overlap, plan_set_problems, spec_problems
from .resource import (
    API_VERSION,
    DEFAULT_NAMESPACE,
    GROUP,
    KIND,
    PLURAL,
    VERSION,
    BenefitPlanResource,
    PlanFileError,
    load_plan_documents,
    parse_resource,
    plan_key,
    split_key,
)
from .topic import (
    PLANS_PARTITIONS,
    PLANS_TOPIC_CONFIG,
    PlanWriter,
    ensure_plans_topic,
    plans_topic,
    publish_plan_files,
    published_event,
    resource_event,
)

__all__ = [
    "API_VERSION",
    "CATEGORY_RANGES",
    "DEFAULT_NAMESPACE",
    "GROUP",
    "KIND",
    "PLANS_PARTITIONS",
    "PLANS_TOPIC_CONFIG",
    "PLURAL",
    "VERSION",
    "BenefitPlanResource",
    "Category",
    "PlanFileError",
    "PlanRef",
    "PlanWriter",
    "category_of",
    "conflicts",
    "ensure_plans_topic",
    "globs_overlap",
    "load_plan_documents",
    "parse_resource",
    "plan_key",
    "plan_set_problems",
    "plans_topic",
    "publish_plan_files",
    "published_event",
    "resource_event",
    "spec_problems",
    "split_key",
]
