"""Reading ASC X12 interchanges with pyx12: validation against implementation-guide maps
(claimflow's own 837 Dental map among them), PHI-free findings and the 999 acknowledgment.

Pure: nothing here opens sockets or databases; the caller hands over the text or a stream.
"""

from claimflow_shared.x12.maps import DENTAL_CLAIM_GUIDE, MAP_PATH
from claimflow_shared.x12.reading import (
    ACCEPTED,
    ACCEPTED_WITH_ERRORS,
    PARTIALLY_ACCEPTED,
    REJECTED,
    InterchangeReader,
    InterchangeResult,
    TransactionAck,
    Unit,
    X12Error,
    read_interchange,
)

__all__ = [
    "ACCEPTED",
    "ACCEPTED_WITH_ERRORS",
    "DENTAL_CLAIM_GUIDE",
    "MAP_PATH",
    "PARTIALLY_ACCEPTED",
    "REJECTED",
    "InterchangeReader",
    "InterchangeResult",
    "TransactionAck",
    "Unit",
    "X12Error",
    "read_interchange",
]
