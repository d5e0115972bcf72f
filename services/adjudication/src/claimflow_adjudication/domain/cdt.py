"""CDT procedure codes and their benefit categories: shared with the operator, which checks
plans against the same sections (see claimflow_shared.plans.cdt)."""

from claimflow_shared.plans.cdt import CATEGORY_RANGES, Category, category_of

__all__ = ["CATEGORY_RANGES", "Category", "category_of"]
