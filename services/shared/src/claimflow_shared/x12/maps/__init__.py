"""pyx12 maps claimflow reads X12 with: the 837 Dental it derives, and the stock maps it needs.

pyx12 takes one `map_path` directory in place of its own, so this directory holds copies of
the stock files (envelope map, data elements, codes, 999 and 835 maps) beside the dental map;
derive_837d.py writes all of them.
"""

from pathlib import Path

MAP_PATH = Path(__file__).resolve().parent
DENTAL_CLAIM_GUIDE = "005010X224A2"

__all__ = ["DENTAL_CLAIM_GUIDE", "MAP_PATH"]
