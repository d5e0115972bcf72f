"""The 837D map: valid against pyx12's map.xsd, in step with its derivation, and loadable.

No XSD library is a dependency, so `SchemaSubset` interprets the part of XML Schema that
map.xsd uses (sequences, choices, groups, occurrence bounds, attributes, enumerations and
patterns). It reads the schema itself; the stock X222 map passing and broken maps failing
show it checks what the schema says.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from claimflow_shared.x12 import MAP_PATH, read_interchange
from claimflow_shared.x12.maps import derive_837d

XS = "{http://www.w3.org/2001/XMLSchema}"
DENTAL = MAP_PATH / derive_837d.DENTAL_MAP
STOCK = derive_837d.stock_map_dir()


class SchemaSubset:
    def __init__(self, xsd: Path) -> None:
        root = ET.parse(xsd).getroot()
        self.types = {node.get("name"): node for node in root if node.get("name")}
        self.roots = {node.get("name"): node for node in root.iterfind(f"{XS}element")}

    def validate(self, document: ET.Element) -> list[str]:
        declared = self.roots.get(document.tag)
        if declared is None:
            return [f"unexpected root {document.tag}"]
        errors: list[str] = []
        self._element(document, declared, document.tag, errors)
        return errors

    def _type_of(self, declared: ET.Element) -> ET.Element | str | None:
        inline = declared.find(f"{XS}complexType")
        if inline is not None:
            return inline
        name = declared.get("type")
        if name is None:
            return None
        return self.types.get(name, name)

    def _element(self, node: ET.Element, declared: ET.Element, where: str, out: list[str]) -> None:
        kind = self._type_of(declared)
        if isinstance(kind, str) or (kind is not None and kind.tag == f"{XS}simpleType"):
            self._simple(node.text or "", kind, where, out)
            return
        if kind is None:
            return
        allowed = {a.get("name"): a for a in kind.iterfind(f"{XS}attribute")}
        for name, value in node.attrib.items():
            if name not in allowed:
                out.append(f"{where}: attribute {name} not allowed")
            else:
                self._simple(value, self._attr_type(allowed[name]), f"{where}@{name}", out)
        for required, attr in allowed.items():
            if attr.get("use") == "required" and required not in node.attrib:
                out.append(f"{where}: attribute {required} missing")
        children = list(node)
        sequence = kind.find(f"{XS}sequence")
        position = self._particle(sequence, children, 0, where, out) if sequence else 0
        if position < len(children):
            out.append(f"{where}: unexpected <{children[position].tag}> at child {position}")

    def _attr_type(self, attr: ET.Element) -> ET.Element | str:
        name = attr.get("type", "xsd:token")
        return self.types.get(name, name)

    def _particle(
        self, particle: ET.Element, children: list[ET.Element], at: int, where: str, out: list[str]
    ) -> int:
        low = int(particle.get("minOccurs", "1"))
        high_text = particle.get("maxOccurs", "1")
        high = None if high_text == "unbounded" else int(high_text)
        count = 0
        while high is None or count < high:
            advanced = self._once(particle, children, at, where, out)
            if advanced is None:
                break
            count += 1
            if advanced == at:
                break
            at = advanced
        if count < low:
            out.append(f"{where}: {self._describe(particle)} expected at child {at}")
        return at

    def _once(
        self, particle: ET.Element, children: list[ET.Element], at: int, where: str, out: list[str]
    ) -> int | None:
        tag = particle.tag
        if tag == f"{XS}sequence":
            # Its items report their own shortfalls, so a sequence always "occurs".
            for item in particle:
                at = self._particle(item, children, at, where, out)
            return at
        if tag == f"{XS}choice":
            for item in particle:
                if self._starts(item, children, at):
                    return self._once(item, children, at, where, out)
            return None
        if tag == f"{XS}group":
            group = self.types[particle.get("ref")]
            return self._once(next(iter(group)), children, at, where, out)
        if tag == f"{XS}element":
            if at < len(children) and children[at].tag == particle.get("name"):
                child = children[at]
                self._element(child, particle, f"{where}/{child.tag}[{child.get('xid', '')}]", out)
                return at + 1
            return None
        return at

    def _starts(self, particle: ET.Element, children: list[ET.Element], at: int) -> bool:
        return (
            particle.tag == f"{XS}element"
            and at < len(children)
            and children[at].tag == particle.get("name")
        )

    def _describe(self, particle: ET.Element) -> str:
        return particle.get("name") or particle.get("ref") or particle.tag.removeprefix(XS)

    def _simple(self, value: str, kind: ET.Element | str, where: str, out: list[str]) -> None:
        text = " ".join(value.split())
        if isinstance(kind, str):
            if kind == "xsd:nonNegativeInteger" and not text.isdigit():
                out.append(f"{where}: {value!r} is not a non-negative integer")
            if kind == "xsd:NMTOKEN" and not re.fullmatch(r"[\w.:-]+", text):
                out.append(f"{where}: {value!r} is not an NMTOKEN")
            return
        restriction = kind.find(f"{XS}restriction")
        if restriction is None:
            return
        options = [e.get("value") for e in restriction.iterfind(f"{XS}enumeration")]
        if options and text not in options:
            out.append(f"{where}: {value!r} not one of {options}")
        for pattern in restriction.iterfind(f"{XS}pattern"):
            if not re.fullmatch(pattern.get("value", ""), text):
                out.append(f"{where}: {value!r} does not match {pattern.get('value')}")


@pytest.fixture(scope="module")
def schema() -> SchemaSubset:
    return SchemaSubset(STOCK / "map.xsd")


def test_the_dental_map_is_valid_against_map_xsd(schema: SchemaSubset) -> None:
    assert schema.validate(ET.parse(DENTAL).getroot()) == []


def test_the_schema_check_accepts_stock_maps_and_rejects_broken_ones(
    schema: SchemaSubset,
) -> None:
    assert schema.validate(ET.parse(STOCK / derive_837d.SOURCE_MAP).getroot()) == []
    broken = ET.parse(DENTAL).getroot()
    sv3 = broken.find(".//segment[@xid='SV3']")
    assert sv3 is not None
    usage = sv3.find("usage")
    assert usage is not None
    usage.text = "Mandatory"  # not R, S or N
    sv3.remove(sv3.find("pos"))  # type: ignore[arg-type]
    errors = schema.validate(broken)
    assert any("Mandatory" in error for error in errors)
    assert any("pos expected" in error for error in errors)


def test_the_committed_map_is_what_the_derivation_produces(tmp_path: Path) -> None:
    derive_837d.main([str(tmp_path)])
    assert (tmp_path / derive_837d.DENTAL_MAP).read_text() == DENTAL.read_text()
    for name in derive_837d.STOCK_FILES:
        assert (tmp_path / name).read_bytes() == (MAP_PATH / name).read_bytes()


def test_the_dental_map_has_the_dental_segments_and_not_the_professional_ones() -> None:
    root = ET.parse(DENTAL).getroot()
    line = root.find(".//loop[@xid='2000B']/loop[@xid='2300']/loop[@xid='2400']")
    assert line is not None
    ids = [seg.get("xid") for seg in line.iterfind("segment")]
    assert ids[:3] == ["LX", "SV3", "TOO"]
    assert "SV1" not in ids
    claim = root.find(".//loop[@xid='2000C']/loop[@xid='2300']")
    assert claim is not None
    assert {"DN1", "DN2"} <= {seg.get("xid") for seg in claim.iterfind("segment")}
    gs08 = root.find(".//element[@xid='GS08']/valid_codes/code")
    assert gs08 is not None
    assert gs08.text == "005010X224A2"


def test_maps_xml_lists_every_map_in_the_directory() -> None:
    listed = {m.text for m in ET.parse(MAP_PATH / "maps.xml").getroot().iter("map")}
    present = {p.name for p in MAP_PATH.glob("*.xml")} - {"maps.xml", "dataele.xml", "codes.xml"}
    assert listed == present


def test_a_generated_999_is_a_valid_999() -> None:
    claim = (Path(__file__).parents[3] / "examples" / "x12" / "claim_1234.837").read_text()
    ack = read_interchange(claim).ack
    assert ack is not None
    checked = read_interchange(ack)
    assert checked.guide == "005010X231A1"
    assert checked.errors == []
    assert checked.envelope_ok


# An 835 as adjudication's remittance run writes it (claim 1234 paid under grp-1000): its ST,
# like most 835s', has no ST03.
REMITTANCE_835 = (
    (
        "ISA*00*          *00*          *ZZ*CLAIMFLOW      *ZZ*1497775530     "
        "*240402*0930*^*00501*000000042*0*P*:~\n"
    )
    + """\
GS*HP*CLAIMFLOW*1497775530*20240402*0930*42*X*005010X221A1~
ST*835*0001~
BPR*I*363*C*NON************20240402~
TRN*1*000000042*1999999999~
DTM*405*20240402~
N1*PR*CLAIMFLOW DENTAL PLAN~
N3*1 CLAIMS WAY~
N4*SPRINGFIELD*IL*62701~
PER*BL**TE*8005550100~
N1*PE*NPI 1497775530*XX*1497775530~
LX*1~
CLP*CLAIM-1234*1*516*363*65*12*CLAIM-1234~
NM1*QC*1******MI*3730189502~
SVC*AD:D0180*100*95~
DTM*472*20180328~
CAS*CO*45*5~
REF*6R*1~
SVC*AD:D0210*108*108~
DTM*472*20180328~
REF*6R*2~
SVC*AD:D4346*130*32~
DTM*472*20180328~
CAS*CO*45*65~
CAS*PR*1*25**2*8~
REF*6R*3~
SVC*AD:D4211*178*128~
DTM*472*20180328~
CAS*CO*45*18~
CAS*PR*2*32~
REF*6R*4~
SE*30*0001~
GE*1*42~
IEA*1*000000042~
"""
)


def test_an_835_without_st03_is_read_against_the_groups_guide() -> None:
    checked = read_interchange(REMITTANCE_835)
    assert checked.guide == "005010X221A1"
    assert (checked.status, checked.errors) == ("A", [])
    assert checked.ack is not None
    assert "AK2*835*0001*005010X221A1~" in checked.ack

    broken = read_interchange(REMITTANCE_835.replace("CLP*CLAIM-1234*1*", "CLP*CLAIM-1234*99*"))
    assert [(e.segment_id, e.code) for e in broken.errors] == [("CLP", "7")]
