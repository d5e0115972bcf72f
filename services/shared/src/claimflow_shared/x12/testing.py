"""Synthetic 837 Dental interchanges for tests and benchmarks: N valid claims, streamed.

Every claim carries the same four lines as examples/claim_1234.csv (D0180, D0210, D4346 with
an allowed amount and coinsurance, D4211 in the upper right quadrant), so totals are easy to
check; the subscriber number changes per claim. No real person's data.
"""

from __future__ import annotations

from collections.abc import Iterator

SENDER = "SMILEDENTAL"
RECEIVER = "CLAIMFLOW"
BILLING_NPI = "1497775530"

_CLAIM_LINES: tuple[tuple[str, ...], ...] = (
    ("LX*1", "SV3*AD:D0180*100****1"),
    ("LX*2", "SV3*AD:D0210*108****1"),
    (
        "LX*3",
        "SV3*AD:D4346*130****1",
        "HCP*03*65",
        "SVD*REPRICER*48.75*AD:D4346**1",
        "CAS*PR*2*16.25",
        "DTP*573*D8*20180401",
    ),
    (
        "LX*4",
        "SV3*AD:D4211*178**10**1",
        "SVD*REPRICER*142.40*AD:D4211**1",
        "CAS*PR*2*35.60",
        "DTP*573*D8*20180401",
    ),
)
CLAIM_TOTAL = "516"


def claim_segments(
    claim_id: str, subscriber: str, hl_id: int, *, rendering_npi: str = BILLING_NPI
) -> list[str]:
    """A 2000B subscriber loop holding one 2300 claim, as segments without terminators."""
    segments = [
        f"HL*{hl_id}*1*22*0",
        "SBR*P*18*GRP-1000******CI",
        f"NM1*IL*1*DOE*JANE****MI*{subscriber}",
        "N3*200 ELM STREET",
        "N4*SPRINGFIELD*IL*627040002",
        "DMG*D8*19800101*F",
        "NM1*PR*2*CLAIMFLOW DENTAL PLAN*****PI*CLAIMFLOW",
        f"CLM*{claim_id}*{CLAIM_TOTAL}***11:B:1*Y*A*Y*Y",
        "DTP*472*D8*20180328",
        f"NM1*82*1*SMITH*JOHN****XX*{rendering_npi}",
        "PRV*PE*PXC*1223G0001X",
        "SBR*S*18*GRP-1000******CI",
        "OI***Y*P**Y",
        f"NM1*IL*1*DOE*JANE****MI*{subscriber}",
        "NM1*PR*2*REPRICING NETWORK*****PI*REPRICER",
    ]
    for line in _CLAIM_LINES:
        segments.extend(line)
    return segments


def transaction_segments(claims: Iterator[list[str]], control: str = "0001") -> Iterator[str]:
    """ST..SE around a billing provider and the given 2000B loops, with a correct SE01."""
    head = [
        f"ST*837*{control}*005010X224A2",
        "BHT*0019*00*BATCH*20180329*1200*CH",
        f"NM1*41*2*SMILE DENTAL GROUP*****46*{SENDER}",
        "PER*IC*BILLING OFFICE*TE*5555550100",
        f"NM1*40*2*CLAIMFLOW DENTAL PLAN*****46*{RECEIVER}",
        "HL*1**20*1",
        f"NM1*85*2*SMILE DENTAL GROUP*****XX*{BILLING_NPI}",
        "N3*100 MAIN STREET",
        "N4*SPRINGFIELD*IL*627040001",
        "REF*EI*123456789",
    ]
    count = len(head)
    yield from head
    for segments in claims:
        count += len(segments)
        yield from segments
    yield f"SE*{count + 1}*{control}"


def dental_interchange_segments(claims: int, *, control: int = 1) -> Iterator[str]:
    """An interchange of `claims` valid claims (one ST), segment by segment."""
    isa = f"{control:09d}"
    yield (
        f"ISA*00*          *00*          *ZZ*{SENDER:<15}*ZZ*{RECEIVER:<15}"
        f"*180329*1200*^*00501*{isa}*0*T*:"
    )
    yield f"GS*HC*{SENDER}*{RECEIVER}*20180329*1200*{control}*X*005010X224A2"
    subscribers = (
        claim_segments(f"C{index:06d}", f"S{index:09d}", index + 2) for index in range(claims)
    )
    yield from transaction_segments(subscribers)
    yield f"GE*1*{control}"
    yield f"IEA*1*{isa}"


def dental_interchange(claims: int, *, control: int = 1) -> str:
    return "".join(f"{seg}~\n" for seg in dental_interchange_segments(claims, control=control))


class InterchangeStream:
    """A read-only text stream over a generated interchange, for memory measurements."""

    closed = False

    def __init__(self, claims: int) -> None:
        self._segments = dental_interchange_segments(claims)
        self._buffer = ""

    def read(self, size: int = -1) -> str:
        while size < 0 or len(self._buffer) < size:
            segment = next(self._segments, None)
            if segment is None:
                break
            self._buffer += f"{segment}~\n"
        if size < 0:
            size = len(self._buffer)
        chunk, self._buffer = self._buffer[:size], self._buffer[size:]
        return chunk

    def close(self) -> None:
        self.closed = True
