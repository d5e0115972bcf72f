"""Adjudication's pure domain: CDT categories, plans, benefit history and the rules."""

from claimflow_adjudication.domain.adjudicate import (
    DENIAL_RULES,
    ClaimResult,
    ClaimToAdjudicate,
    ClaimTotals,
    LineAmounts,
    LineResult,
    ServiceLine,
    UsageDelta,
    adjudicate,
    history_key,
    history_keys,
)
from claimflow_adjudication.domain.cdt import CATEGORY_RANGES, Category, category_of
from claimflow_adjudication.domain.history import (
    EMPTY_HISTORY,
    BenefitHistory,
    HistoryKey,
    PriorService,
)
from claimflow_adjudication.domain.plan import FrequencyLimit, Plan, PlanBook

__all__ = [
    "CATEGORY_RANGES",
    "DENIAL_RULES",
    "EMPTY_HISTORY",
    "BenefitHistory",
    "Category",
    "ClaimResult",
    "ClaimToAdjudicate",
    "ClaimTotals",
    "FrequencyLimit",
    "HistoryKey",
    "LineAmounts",
    "LineResult",
    "Plan",
    "PlanBook",
    "PriorService",
    "ServiceLine",
    "UsageDelta",
    "adjudicate",
    "category_of",
    "history_key",
    "history_keys",
]
