"""CDT procedure codes and the benefit category each one falls in.

Plans price care by category, not by code. The ranges follow the sections of the ADA's CDT
code set; where a section mixes routine and complex care (restorative), it is split the way
dental plans conventionally split it:

| category    | CDT ranges                                                         |
| ----------- | ------------------------------------------------------------------ |
| diagnostic  | D0100-D0999 (evaluations, radiographs, tests)                      |
| preventive  | D1000-D1999 (prophylaxis, fluoride, sealants, space maintainers)   |
| basic       | D2000-D2399 (amalgam and resin restorations), D3000-D3999          |
|             | (endodontics), D4000-D4999 (periodontics), D7000-D7999 (oral       |
|             | surgery), D9000-D9999 (adjunctive general services)                |
| major       | D2400-D2999 (inlays, onlays, crowns, other restorative),           |
|             | D5000-D5999 (removable and maxillofacial prosthetics),             |
|             | D6000-D6999 (implants, fixed prosthodontics)                       |
| orthodontic | D8000-D8999                                                        |
"""

from __future__ import annotations

import re
from enum import StrEnum


class Category(StrEnum):
    DIAGNOSTIC = "diagnostic"
    PREVENTIVE = "preventive"
    BASIC = "basic"
    MAJOR = "major"
    ORTHODONTIC = "orthodontic"


# (first, last, category) over the four digits after "D"; ordered, non-overlapping, complete.
CATEGORY_RANGES: tuple[tuple[int, int, Category], ...] = (
    (100, 999, Category.DIAGNOSTIC),
    (1000, 1999, Category.PREVENTIVE),
    (2000, 2399, Category.BASIC),
    (2400, 2999, Category.MAJOR),
    (3000, 4999, Category.BASIC),
    (5000, 6999, Category.MAJOR),
    (7000, 7999, Category.BASIC),
    (8000, 8999, Category.ORTHODONTIC),
    (9000, 9999, Category.BASIC),
)

_CODE = re.compile(r"^D(\d{4})$")


def category_of(code: str) -> Category | None:
    """The category of a CDT code, or None for a code outside every CDT section (D0000-D0099)."""
    match = _CODE.fullmatch(code)
    if match is None:
        return None
    number = int(match.group(1))
    for first, last, category in CATEGORY_RANGES:
        if first <= number <= last:
            return category
    return None
