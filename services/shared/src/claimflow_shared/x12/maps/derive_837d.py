"""Derive pyx12's map for the 837 Dental (005010X224A2) from its stock 837 Professional map.

pyx12 ships 5010 maps for the professional (X222A1) and institutional claims but none for
dental. The dental guide shares the envelope, the header, the provider and subscriber loops and
most of the claim loop with the professional one, so the dental map is the professional map
with the professional-only segments and loops removed and the dental ones (SV3 in place of SV1,
TOO, DN1, DN2, the dental dates and reference numbers) added as X224A2 defines them. Generating
it keeps every shared definition byte-for-byte pyx12's, and keeps the difference reviewable
here rather than buried in 20,000 lines of XML.

Run `python -m claimflow_shared.x12.maps.derive_837d` after upgrading pyx12: it rewrites
837.5010.X224.A2.xml and refreshes the copies of the stock files pyx12 needs from a map
directory (a `map_path` replaces pyx12's own directory, so everything it reads must be in it).
"""

from __future__ import annotations

import shutil
import sys
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from importlib.resources import files
from pathlib import Path

MAPS_DIR = Path(__file__).resolve().parent
DENTAL_MAP = "837.5010.X224.A2.xml"
SOURCE_MAP = "837.5010.X222.A1.xml"
# Read by pyx12 from the map directory: the envelope map, the element and code tables, and the
# transaction maps claimflow reads or writes besides the 837D.
STOCK_FILES: tuple[str, ...] = (
    "x12.control.00501.xml",
    "dataele.xml",
    "codes.xml",
    "999.5010X231.A1.xml",
    "835.5010.X221.A1.xml",
)

HEADER = """\
  837 Dental: ASC X12N 005010X224A2 (Health Care Claim: Dental), for pyx12.

  Derived from pyx12's 837.5010.X222.A1.xml (Copyright (c) John Holland, BSD licence, as
  pyx12) by claimflow_shared/x12/maps/derive_837d.py: professional-only segments and loops
  removed, SV1 replaced by SV3, and TOO, DN1, DN2 and the dental DTP/REF segments added as
  the X224A2 implementation guide defines them. Regenerate rather than edit by hand.
"""


# --- building map nodes ----------------------------------------------------------------------


def _text(parent: ET.Element, tag: str, value: str) -> ET.Element:
    child = ET.SubElement(parent, tag)
    child.text = value
    return child


def _element(
    xid: str,
    data_ele: str,
    name: str,
    usage: str,
    seq: int,
    codes: Sequence[str] = (),
) -> ET.Element:
    node = ET.Element("element", xid=xid)
    _text(node, "data_ele", data_ele)
    _text(node, "name", name)
    _text(node, "usage", usage)
    _text(node, "seq", f"{seq:02d}")
    if codes:
        valid = ET.SubElement(node, "valid_codes")
        for code in codes:
            _text(valid, "code", code)
    return node


def _composite(
    xid: str, data_ele: str, name: str, usage: str, seq: int, elements: Iterable[ET.Element]
) -> ET.Element:
    node = ET.Element("composite", xid=xid)
    _text(node, "data_ele", data_ele)
    _text(node, "name", name)
    _text(node, "usage", usage)
    _text(node, "seq", f"{seq:02d}")
    node.extend(elements)
    return node


def _segment(
    xid: str,
    name: str,
    usage: str,
    pos: int,
    max_use: str,
    children: Iterable[ET.Element],
    syntax: Sequence[str] = (),
) -> ET.Element:
    node = ET.Element("segment", xid=xid)
    _text(node, "name", name)
    _text(node, "usage", usage)
    _text(node, "pos", f"{pos:04d}")
    _text(node, "max_use", max_use)
    for rule in syntax:
        _text(node, "syntax", rule)
    node.extend(children)
    return node


def _date(name: str, usage: str, pos: int, qualifier: str, date_name: str) -> ET.Element:
    return _segment(
        "DTP",
        name,
        usage,
        pos,
        "1",
        [
            _element("DTP01", "374", "Date Time Qualifier", "R", 1, [qualifier]),
            _element("DTP02", "1250", "Date Time Period Format Qualifier", "R", 2, ["D8"]),
            _element("DTP03", "1251", date_name, "R", 3),
        ],
    )


def _reference(name: str, pos: int, qualifier: str, value_name: str) -> ET.Element:
    return _segment(
        "REF",
        name,
        "S",
        pos,
        "1",
        [
            _element("REF01", "128", "Reference Identification Qualifier", "R", 1, [qualifier]),
            _element("REF02", "127", value_name, "R", 2),
            _element("REF03", "352", "Description", "N", 3),
            _composite("REF04", "C040", "Reference Identifier", "N", 4, []),
        ],
    )


_ORAL_CAVITY_CODES = ("00", "01", "02", "09", "10", "20", "30", "40", "L", "R")
_SURFACE_CODES = ("B", "D", "F", "I", "L", "M", "O")


def dental_service() -> ET.Element:
    """SV3, 2400: the CDT procedure, its charge, oral cavity areas and count."""
    procedure = _composite(
        "SV301",
        "C003",
        "Composite Medical Procedure Identifier",
        "R",
        1,
        [
            _element("SV301-01", "235", "Product or Service ID Qualifier", "R", 1, ["AD"]),
            _element("SV301-02", "234", "Procedure Code", "R", 2),
            *(
                _element(f"SV301-0{seq}", "1339", "Procedure Modifier", "S", seq)
                for seq in (3, 4, 5, 6)
            ),
            _element("SV301-07", "352", "Description", "S", 7),
            _element("SV301-08", "234", "Product or Service ID", "N", 8),
        ],
    )
    oral_cavity = _composite(
        "SV304",
        "C006",
        "Oral Cavity Designation",
        "S",
        4,
        [
            _element(
                f"SV304-0{seq}",
                "1361",
                "Oral Cavity Designation Code",
                "R" if seq == 1 else "S",
                seq,
                _ORAL_CAVITY_CODES,
            )
            for seq in range(1, 6)
        ],
    )
    pointer = _composite(
        "SV311",
        "C004",
        "Composite Diagnosis Code Pointer",
        "S",
        11,
        [
            _element(
                f"SV311-0{seq}",
                "1328",
                "Diagnosis Code Pointer",
                "R" if seq == 1 else "S",
                seq,
            )
            for seq in range(1, 5)
        ],
    )
    return _segment(
        "SV3",
        "Dental Service",
        "R",
        3800,
        "1",
        [
            procedure,
            _element("SV302", "782", "Line Item Charge Amount", "R", 2),
            _element("SV303", "1331", "Place of Service Code", "S", 3),
            oral_cavity,
            _element("SV305", "1358", "Prosthesis, Crown, or Inlay Code", "S", 5, ["I", "R"]),
            _element("SV306", "380", "Procedure Count", "R", 6),
            _element("SV307", "352", "Description", "N", 7),
            _element("SV308", "1327", "Copay Status Code", "N", 8),
            _element("SV309", "1360", "Provider Agreement Code", "N", 9),
            _element("SV310", "1073", "Yes/No Condition or Response Code", "N", 10),
            pointer,
        ],
    )


def tooth_information() -> ET.Element:
    """TOO, 2400: one tooth (JP universal national tooth designation) and its surfaces."""
    surfaces = _composite(
        "TOO03",
        "C005",
        "Tooth Surface",
        "S",
        3,
        [
            _element(
                f"TOO03-0{seq}",
                "1369",
                "Tooth Surface Code",
                "R" if seq == 1 else "S",
                seq,
                _SURFACE_CODES,
            )
            for seq in range(1, 6)
        ],
    )
    return _segment(
        "TOO",
        "Tooth Information",
        "S",
        3820,
        "32",
        [
            _element("TOO01", "1270", "Code List Qualifier Code", "R", 1, ["JP"]),
            _element("TOO02", "1271", "Tooth Code", "R", 2),
            surfaces,
        ],
    )


def orthodontic_months() -> ET.Element:
    """DN1, 2300: total and remaining months of orthodontic treatment."""
    return _segment(
        "DN1",
        "Orthodontic Total Months of Treatment",
        "S",
        1450,
        "1",
        [
            _element("DN101", "380", "Orthodontic Treatment Months Count", "S", 1),
            _element("DN102", "380", "Orthodontic Treatment Months Remaining Count", "S", 2),
            _element("DN103", "1073", "Yes/No Condition or Response Code", "N", 3),
            _element("DN104", "352", "Questionnaire Response", "S", 4, ["Y"]),
        ],
    )


def tooth_status() -> ET.Element:
    """DN2, 2300: a missing or to-be-extracted tooth."""
    return _segment(
        "DN2",
        "Tooth Status",
        "S",
        1500,
        "35",
        [
            _element("DN201", "127", "Tooth Number", "R", 1),
            _element("DN202", "1368", "Tooth Status Code", "R", 2, ["E", "M"]),
            _element("DN203", "380", "Quantity", "N", 3),
            _element("DN204", "1270", "Code List Qualifier Code", "R", 4, ["JP"]),
        ],
    )


# --- editing the professional map ------------------------------------------------------------


def _first_codes(segment: ET.Element) -> tuple[str, ...]:
    first = segment.find("element")
    if first is None:
        return ()
    return tuple(code.text or "" for code in first.iterfind("valid_codes/code"))


def _segments(loop: ET.Element, xid: str, code: str | None = None) -> list[ET.Element]:
    return [
        seg
        for seg in loop.findall(f"segment[@xid='{xid}']")
        if code is None or code in _first_codes(seg)
    ]


def _one_segment(loop: ET.Element, xid: str, code: str | None = None) -> ET.Element:
    found = _segments(loop, xid, code)
    if len(found) != 1:
        raise SystemExit(f"{loop.get('xid')}: expected one {xid} {code or ''}, found {len(found)}")
    return found[0]


def _loop(parent: ET.Element, xid: str) -> ET.Element:
    found = parent.find(f"loop[@xid='{xid}']")
    if found is None:
        raise SystemExit(f"{parent.get('xid')}: no loop {xid}")
    return found


def _remove_segments(loop: ET.Element, xid: str, codes: Iterable[str | None]) -> None:
    for code in codes:
        loop.remove(_one_segment(loop, xid, code))


def _insert_after(loop: ET.Element, anchor: ET.Element, new: Sequence[ET.Element]) -> None:
    index = list(loop).index(anchor) + 1
    for offset, node in enumerate(new):
        loop.insert(index + offset, node)


def _rename_provider(loop: ET.Element, xid: str, name: str, entity: str) -> None:
    """Reuse a provider loop's NM1/PRV/REF definitions for another provider role."""
    loop.set("xid", xid)
    loop_name = loop.find("name")
    assert loop_name is not None
    loop_name.text = name
    nm1 = _one_segment(loop, "NM1")
    nm1_name = nm1.find("name")
    assert nm1_name is not None
    nm1_name.text = name
    codes = nm1.find("element/valid_codes")
    assert codes is not None
    for code in list(codes):
        codes.remove(code)
    _text(codes, "code", entity)


# Professional-only 2300 content: the dates of an illness, ambulance, spinal manipulation,
# vision and EPSDT conditions, anesthesia and Medicare crossover.
_CLAIM_DATES_DROPPED = (
    "431",
    "454",
    "304",
    "453",
    "484",
    "455",
    "471",
    "314",
    "297",
    "296",
    "435",
    "096",
    "090",
    "444",
)
_CLAIM_REFS_DROPPED = ("F5", "EW", "X4", "LX", "P4", "1J")
_LINE_DATES_DROPPED = ("471", "607", "463", "461", "304", "738", "011", "455", "454")
_LINE_REFS_DROPPED = ("EW", "X4", "F4", "BT")


def _edit_claim(claim: ET.Element) -> None:
    _remove_segments(claim, "DTP", _CLAIM_DATES_DROPPED)
    accident = _one_segment(claim, "DTP", "439")
    _insert_after(
        claim,
        accident,
        [
            _date("Date - Appliance Placement", "S", 1350, "452", "Orthodontic Banding Date"),
            _date("Date - Service Date", "S", 1350, "472", "Service Date"),
        ],
    )
    repricer = _one_segment(claim, "DTP", "050")
    _insert_after(claim, repricer, [orthodontic_months(), tooth_status()])
    _remove_segments(claim, "REF", _CLAIM_REFS_DROPPED)
    prior_auth = _one_segment(claim, "REF", "G1")
    _insert_after(
        claim,
        prior_auth,
        [
            _reference(
                "Predetermination Identification",
                1800,
                "G3",
                "Predetermination of Benefits Identifier",
            )
        ],
    )
    for segment in (
        *_segments(claim, "CR1"),
        *_segments(claim, "CR2"),
        *_segments(claim, "CRC"),
    ):
        claim.remove(segment)
    diagnoses, anesthesia, conditions = _segments(claim, "HI")
    usage = diagnoses.find("usage")
    assert usage is not None
    usage.text = "S"  # the dental guide asks for diagnoses only when they matter to the claim
    claim.remove(anesthesia)
    claim.remove(conditions)
    # X224A2 2310 loops: referring, rendering, service facility, assistant surgeon.
    _rename_provider(_loop(claim, "2310D"), "2310D", "Assistant Surgeon Name", "DD")
    for xid in ("2310E", "2310F"):
        claim.remove(_loop(claim, xid))
    _edit_line(_loop(claim, "2400"))


def _edit_line(line: ET.Element) -> None:
    professional = _one_segment(line, "SV1")
    index = list(line).index(professional)
    line.remove(professional)
    line.insert(index, dental_service())
    line.insert(index + 1, tooth_information())
    for xid in ("SV5", "CR1", "CR3", "CRC", "QTY", "MEA", "PS1"):
        for segment in _segments(line, xid):
            line.remove(segment)
    for segment in _segments(line, "PWK"):
        if "Durable Medical Equipment" in (segment.findtext("name") or ""):
            line.remove(segment)
    _remove_segments(line, "DTP", _LINE_DATES_DROPPED)
    service_date = _one_segment(line, "DTP", "472")
    usage = service_date.find("usage")
    assert usage is not None
    usage.text = "S"  # required only when the claim-level 2300 DTP*472 is absent
    _insert_after(
        line,
        service_date,
        [
            _date("Date - Prior Placement", "S", 4550, "441", "Prior Placement Date"),
            _date("Date - Appliance Placement", "S", 4550, "452", "Orthodontic Banding Date"),
            _date("Date - Replacement", "S", 4550, "446", "Replacement Date"),
            _date("Date - Treatment Start", "S", 4550, "196", "Treatment Start Date"),
            _date("Date - Treatment Completion", "S", 4550, "198", "Treatment Completion Date"),
        ],
    )
    _remove_segments(line, "REF", _LINE_REFS_DROPPED)
    prior_auth = _one_segment(line, "REF", "G1")
    _insert_after(
        line,
        prior_auth,
        [
            _reference(
                "Predetermination Identification",
                4700,
                "G3",
                "Predetermination of Benefits Identifier",
            )
        ],
    )
    _remove_segments(line, "AMT", ["F4"])
    _remove_segments(line, "NTE", ["TPO"])
    line.remove(_loop(line, "2410"))
    # The prior payer adjudicated a CDT procedure (AD), not a HCPCS/HIPPS/NDC one.
    qualifiers = _loop(line, "2430").find(
        "segment[@xid='SVD']/composite/element[@xid='SVD03-01']/valid_codes"
    )
    assert qualifiers is not None
    for code in list(qualifiers):
        qualifiers.remove(code)
    _text(qualifiers, "code", "AD")
    # X224A2 2420 loops: rendering, assistant surgeon, supervising, service facility.
    assistant = _loop(line, "2420B")
    _rename_provider(assistant, "2420B", "Assistant Surgeon Name", "DD")
    facility = _loop(line, "2420C")
    supervising = _loop(line, "2420D")
    supervising.set("xid", "2420C")
    facility.set("xid", "2420D")
    line.remove(supervising)
    line.insert(list(line).index(facility), supervising)
    for xid in ("2420E", "2420F", "2420G", "2420H", "2440"):
        line.remove(_loop(line, xid))


def derive(professional: ET.Element) -> ET.Element:
    """The dental map, from the parsed professional map (which is changed in place)."""
    name = professional.find("name")
    assert name is not None
    name.text = "HIPAA Health Care Claim: Dental X224A2-837"
    gs08 = professional.find(".//segment[@xid='GS']/element[@xid='GS08']/valid_codes/code")
    assert gs08 is not None
    gs08.text = "005010X224A2"
    # ST03 names the implementation guide; X224A2 requires it (X222A1 leaves it unchecked).
    st03 = professional.find(".//segment[@xid='ST']/element[@xid='ST03']")
    assert st03 is not None
    assert st03.find("valid_codes") is None
    usage = st03.find("usage")
    assert usage is not None
    usage.text = "R"
    _text(ET.SubElement(st03, "valid_codes"), "code", "005010X224A2")
    subscriber = professional.find(".//loop[@xid='2000B']")
    assert subscriber is not None
    _edit_claim(_loop(subscriber, "2300"))
    _edit_claim(_loop(_loop(subscriber, "2000C"), "2300"))
    return professional


def _parse(source: Path) -> ET.Element:
    # Comments are dropped: pyx12's "End of ... segment" markers go stale once segments move.
    # The input is pyx12's own installed map, not data from outside.
    return ET.parse(source).getroot()  # noqa: S314


def render(root: ET.Element) -> str:
    ET.indent(root, space="  ")
    body = ET.tostring(root, encoding="unicode")
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<!--\n{HEADER}-->\n{body}\n'


def stock_map_dir() -> Path:
    return Path(str(files("pyx12").joinpath("map")))


def main(argv: Sequence[str] = ()) -> int:
    target = Path(argv[0]) if argv else MAPS_DIR
    stock = stock_map_dir()
    (target / DENTAL_MAP).write_text(render(derive(_parse(stock / SOURCE_MAP))), encoding="utf-8")
    for name in STOCK_FILES:
        shutil.copyfile(stock / name, target / name)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
