"""One streaming pass over an X12 interchange: pyx12's parse, its implementation-guide
validation, and the 999 acknowledgment, with errors reported without the data they are about.

pyx12's X12ContextReader both walks the map and, given an err_handler, records every
envelope, segment and element error; the caller gets the data as it goes (whole `unit_loop`
trees, e.g. each 2300 claim, and single segments elsewhere), so memory stays bounded by one
unit and the errors, not by the size of the file.
"""

from __future__ import annotations

import bisect
import io
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO

import pyx12.error_999
import pyx12.error_handler
import pyx12.errors
import pyx12.params
from pyx12.map_if._segment import apply_segment_errors
from pyx12.x12context import X12ContextReader

from claimflow_shared.x12.loaded_maps import share_loaded_maps
from claimflow_shared.x12.maps import MAP_PATH
from claimflow_shared.x12.messages import element_message, envelope_message, segment_message

# pyx12 logs each finding with the value it is about (a subscriber id, a date): PHI. The
# findings reach callers as X12Error, worded without the data; pyx12's own log goes nowhere.
log = logging.getLogger(__name__)
_PYX12_LOG = logging.getLogger("pyx12")
_PYX12_LOG.propagate = False
_PYX12_LOG.addHandler(logging.NullHandler())
share_loaded_maps()

ENVELOPE_SEGMENTS = frozenset({"ISA", "IEA", "GS", "GE", "ST", "SE"})
ACK_GUIDE = "005010X231A1"

ACCEPTED = "A"
ACCEPTED_WITH_ERRORS = "E"
PARTIALLY_ACCEPTED = "P"
REJECTED = "R"


@dataclass(frozen=True, slots=True)
class X12Error:
    """One finding. `message` is built from codes and map names only, never from the data.

    level: "interchange" (ISA/IEA, TA1 codes), "group" (GS/GE, AK9 codes), "transaction"
    (ST/SE, IK5 codes), "segment" (IK3 codes) or "element" (IK4 codes).
    segment_position counts from ST = 1 (999 IK302); line counts segments from the start of
    the file (ISA = 1). element_position/component_position are 999 IK401's two parts.
    """

    level: str
    code: str
    message: str
    segment_id: str | None = None
    segment_position: int | None = None
    line: int | None = None
    element_position: int | None = None
    component_position: int | None = None
    data_element: str | None = None
    loop: str | None = None
    transaction: str | None = None


@dataclass(frozen=True, slots=True)
class TransactionAck:
    """One transaction set's IK5: its ST02, IK501 status and IK502-IK506 codes."""

    control_number: str
    status: str
    codes: tuple[str, ...]


@dataclass(slots=True)
class InterchangeResult:
    """What one interchange came to. `status` is R whenever the envelope is broken."""

    status: str = REJECTED
    errors: list[X12Error] = field(default_factory=list)
    ack: str | None = None
    transactions: list[TransactionAck] = field(default_factory=list)
    sender_qualifier: str | None = None
    sender_id: str | None = None
    control_number: str | None = None
    guide: str | None = None

    @property
    def envelope_ok(self) -> bool:
        """False means store nothing from this interchange."""
        return self.status != REJECTED and not any(
            error.level in ("interchange", "group", "transaction") for error in self.errors
        )

    @property
    def sender(self) -> str | None:
        """ISA05:ISA06, e.g. "ZZ:SMILEDENTAL"."""
        if self.sender_id is None:
            return None
        return f"{self.sender_qualifier}:{self.sender_id}"


@dataclass(frozen=True, slots=True)
class Unit:
    """A yielded data node with where it sits: `tree` is pyx12's X12DataNode."""

    tree: Any
    loop: str | None
    transaction: str | None
    first_line: int
    last_line: int


def _params() -> pyx12.params.ParamsBase:
    params = pyx12.params.ParamsBase()
    params.set("map_path", str(MAP_PATH))
    return params


def _lines(node: Any) -> Iterator[int]:
    if node.type == "seg":
        if node.cur_line_number is not None:
            yield node.cur_line_number
        return
    for child in node.children:
        yield from _lines(child)


class InterchangeReader:
    """Iterate `units()` once, then read `result`.

    unit_loop names the loop handed over whole (e.g. "2300"); segments outside it come one by
    one, as Units whose `loop` is their own loop id. Errors inside a unit are its own
    (`errors_between(first_line, last_line)`); the 999 marks a transaction set whose only
    errors are inside units E (accepted with errors) rather than R, because the other units
    are still taken.
    """

    def __init__(self, source: str | TextIO, *, unit_loop: str | None = None) -> None:
        self._source: TextIO = io.StringIO(source) if isinstance(source, str) else source
        self._unit_loop = unit_loop
        self._errh = _ErrorTree()
        # Units come in file order and do not overlap: the first lines are sorted, so which
        # unit holds a line is a binary search, not a scan of every unit for every finding.
        self._unit_firsts: list[int] = []
        self._unit_lasts: list[int] = []
        self._by_line: tuple[list[X12Error], list[X12Error], list[int]] | None = None
        self.result = InterchangeResult()

    def units(self) -> Iterator[Unit]:
        try:
            yield from self._walk()
            self._finish()
        except (pyx12.errors.X12Error, pyx12.errors.EngineError) as exc:
            self._reject(_engine_message(exc))
        except Exception as exc:
            # pyx12 assumes a well-formed envelope in places: a GS before any ISA, a segment
            # after IEA, and it fails with an IndexError or AttributeError of its own. That
            # input is rejected like any unreadable interchange; a failure in claimflow's
            # own code is not swallowed.
            if not _raised_in_pyx12(exc):
                raise
            log.warning("pyx12 could not read an interchange: %s", type(exc).__name__)
            self._reject(UNREADABLE_STRUCTURE)

    def _reject(self, message: str) -> None:
        self.result = InterchangeResult(
            status=REJECTED, errors=[X12Error("interchange", "parse", message)]
        )

    def _walk(self) -> Iterator[Unit]:
        reader = X12ContextReader(_params(), self._errh, self._source, map_path=str(MAP_PATH))
        transaction: str | None = None
        try:
            for node in reader.iter_segments(self._unit_loop):
                if node.type == "seg":
                    seg = node.seg_data
                    seg_id = seg.get_seg_id()
                    if seg_id in ENVELOPE_SEGMENTS:
                        # The reader leaves envelope element checks to x12n_document; run them
                        # here, at the same point in the error tree it would.
                        apply_segment_errors(node.x12_map_node, seg, self._errh)
                    if seg_id == "ISA":
                        self.result.sender_qualifier = _strip(seg.get_value("ISA05"))
                        self.result.sender_id = _strip(seg.get_value("ISA06"))
                        self.result.control_number = _strip(seg.get_value("ISA13"))
                    elif seg_id == "GS":
                        self.result.guide = _strip(seg.get_value("GS08"))
                    elif seg_id == "ST":
                        transaction = _strip(seg.get_value("ST02"))
                    line = node.cur_line_number or 0
                    loop = node.x12_map_node.parent.id if node.x12_map_node is not None else None
                    yield Unit(node, loop, transaction, line, line)
                    if seg_id == "SE":
                        transaction = None
                else:
                    lines = list(_lines(node))
                    first, last = (min(lines), max(lines)) if lines else (0, 0)
                    self._unit_firsts.append(first)
                    self._unit_lasts.append(last)
                    yield Unit(node, node.x12_map_node.id, transaction, first, last)
        finally:
            reader.close()

    def _in_unit(self, line: int) -> bool:
        at = bisect.bisect_right(self._unit_firsts, line) - 1
        return at >= 0 and line <= self._unit_lasts[at]

    def _finish(self) -> None:
        root = self._errh
        errors: list[X12Error] = []
        transactions: list[TransactionAck] = []
        for isa in root.children:
            errors += [
                X12Error("interchange", code, envelope_message("interchange", code), "ISA")
                for code, _text in isa.errors
            ]
            errors += _element_errors(isa.elements, "interchange", "ISA", None)
            for gs in isa.children:
                for st in gs.children:
                    _convention_errors_to_ik5(st)
                errors += [
                    X12Error("group", code, envelope_message("group", code), "GS")
                    for code, _text in gs.errors
                ]
                errors += _element_errors(gs.elements, "group", "GS", None)
                for st in gs.children:
                    errors += self._transaction_errors(st)
                    transactions.append(
                        TransactionAck(_strip(st.trn_set_control_num) or "", st.ack_code, ())
                    )
                _regrade_group(gs)
        self.result.errors = errors
        self.result.ack = _ack_text(root)
        acks = _read_ack(self.result.ack)
        self.result.transactions = [
            TransactionAck(t.control_number, status, codes)
            for t, (status, codes) in zip(transactions, acks.transactions, strict=False)
        ]
        envelope_broken = any(e.level not in {"segment", "element"} for e in errors)
        self.result.status = REJECTED if envelope_broken else acks.status

    def _transaction_errors(self, st: Any) -> list[X12Error]:
        control = _strip(st.trn_set_control_num)
        errors = [
            X12Error(
                "transaction",
                code,
                envelope_message("transaction", code),
                "ST",
                transaction=control,
            )
            for code, _text in st.errors
        ]
        errors += _element_errors(st.elements, "transaction", "ST", control)
        outside_units = bool(errors)
        for seg in st.children:
            loop = _loop_of(seg)
            for code, _text, _value in seg.errors:
                errors.append(
                    X12Error(
                        "segment",
                        code,
                        segment_message(code, seg.name),
                        seg.seg_id,
                        seg.seg_count,
                        seg.cur_line,
                        loop=loop,
                        transaction=control,
                    )
                )
            for element in seg.elements:
                for code, _text, _value in element.errors:
                    errors.append(
                        X12Error(
                            "element",
                            code,
                            element_message(code, element.name),
                            seg.seg_id,
                            seg.seg_count,
                            seg.cur_line,
                            element.ele_pos,
                            element.subele_pos,
                            element.ele_ref_num,
                            loop,
                            control,
                        )
                    )
                # The 999 may copy the bad value into IK404; it would carry PHI back out.
                element.errors = [(code, text, None) for code, text, _value in element.errors]
            if seg.get_error_count() and not self._in_unit(seg.cur_line):
                outside_units = True
        if st.ack_code == REJECTED and not outside_units and self._unit_loop is not None:
            st.ack_code = ACCEPTED_WITH_ERRORS
        return errors

    def errors_between(self, first_line: int, last_line: int) -> list[X12Error]:
        """The segment and element errors of the lines of one unit (after iteration)."""
        _errors, ordered, lines = self._errors_by_line()
        start = bisect.bisect_left(lines, first_line)
        end = bisect.bisect_right(lines, last_line)
        return ordered[start:end]

    def _errors_by_line(self) -> tuple[list[X12Error], list[X12Error], list[int]]:
        # Asked once per claim: sorted once, so that a file of many bad claims is not read
        # through once per claim.
        if self._by_line is None or self._by_line[0] is not self.result.errors:
            errors = self.result.errors
            ordered = sorted(
                (error for error in errors if error.line is not None),
                key=lambda error: error.line or 0,
            )
            self._by_line = (errors, ordered, [error.line or 0 for error in ordered])
        return self._by_line


def _loop_of(seg: Any) -> str | None:
    loop = getattr(seg, "loop_id", None)
    return loop if isinstance(loop, str) else None


class _ErrorTree(pyx12.error_handler.err_handler):  # type: ignore[misc]
    """pyx12's error tree, keeping each segment's loop id (err_seg only keeps its name)."""

    def add_seg(
        self, map_node: Any, seg_data: Any, seg_count: int, cur_line: int, ls_id: str | None
    ) -> None:
        super().add_seg(map_node, seg_data, seg_count, cur_line, ls_id)
        parent = getattr(map_node, "parent", None)
        self.cur_seg_node.loop_id = getattr(parent, "id", None)


def _element_errors(
    elements: list[Any], level: str, seg_id: str, transaction: str | None
) -> list[X12Error]:
    found: list[X12Error] = []
    for element in elements:
        for code, _text, _value in element.errors:
            found.append(
                X12Error(
                    level,
                    code,
                    element_message(code, element.name),
                    seg_id,
                    element_position=element.ele_pos,
                    component_position=element.subele_pos,
                    data_element=element.ele_ref_num,
                    transaction=transaction,
                )
            )
        element.errors = [(code, text, None) for code, text, _value in element.errors]
    return found


def _regrade_group(gs: Any) -> None:
    """AK901 from the transaction sets' IK501s once some of them are E rather than R."""
    if gs.errors:
        gs.ack_code = REJECTED
        return
    statuses = {st.ack_code for st in gs.children}
    if statuses <= {ACCEPTED}:
        gs.ack_code = ACCEPTED
    elif statuses <= {ACCEPTED, ACCEPTED_WITH_ERRORS}:
        gs.ack_code = ACCEPTED_WITH_ERRORS
    elif statuses & {ACCEPTED, ACCEPTED_WITH_ERRORS}:
        gs.ack_code = PARTIALLY_ACCEPTED
    else:
        gs.ack_code = REJECTED


def _ack_text(errh: Any) -> str | None:
    if not errh.children or errh.cur_gs_node is None:
        return None  # no functional group to acknowledge
    # ST03 is optional (an 835's ST has none) and then GS08 names the guide; pyx12 refuses to
    # write an AK2 without it, so AK203 takes the group's.
    for isa in errh.children:
        for gs in isa.children:
            for st in gs.children:
                if not st.vriic:
                    st.vriic = gs.vriic
    out = io.StringIO()
    visitor = pyx12.error_999.error_999_visitor(out, ("~", "*", ":", "\n", "^"))
    visitor.vriic = ACK_GUIDE
    errh.accept(visitor)
    text = out.getvalue()
    # The visitor follows the 999 with pyx12's own error lines, which quote the bad values.
    end = text.find("IEA*")
    return text[: text.index("~", end) + 1] + "\n" if end >= 0 else text


@dataclass(frozen=True, slots=True)
class _AckSummary:
    status: str
    transactions: list[tuple[str, tuple[str, ...]]]


def _read_ack(text: str | None) -> _AckSummary:
    if not text:
        return _AckSummary(REJECTED, [])
    status = REJECTED
    transactions: list[tuple[str, tuple[str, ...]]] = []
    for raw in text.split("~"):
        elements = raw.strip().split("*")
        if elements[0] == "IK5":
            transactions.append((elements[1], tuple(elements[2:])))
        elif elements[0] == "AK9":
            status = elements[1]
    return _AckSummary(status, transactions)


def _strip(value: str | None) -> str | None:
    return value.strip() if value is not None else None


UNREADABLE_STRUCTURE = (
    "the interchange's envelope structure could not be read (ISA, GS, ST and their "
    "trailers missing or out of order)"
)
_PYX12_DIR = os.path.dirname(pyx12.__file__) + os.sep


def _raised_in_pyx12(exc: BaseException) -> bool:
    frame = exc.__traceback__
    while frame is not None and frame.tb_next is not None:
        frame = frame.tb_next
    return frame is not None and frame.tb_frame.f_code.co_filename.startswith(_PYX12_DIR)


def _engine_message(exc: Exception) -> str:
    # pyx12's engine errors name the file or the unreadable envelope, never claim data.
    text = str(exc)
    if "Map not found" in text:
        return "no map for this interchange's version, functional group or guide (GS08)"
    return "the input is not an X12 interchange claimflow can read"


def read_interchange(source: str | TextIO) -> InterchangeResult:
    """Validate a whole interchange and build its 999, without looking at the data."""
    reader = InterchangeReader(source)
    for _unit in reader.units():
        pass
    return reader.result


# pyx12's 999 writer turns errors of ST01 and ST02 into IK5 codes and fails (KeyError) on any
# other ST element. An error in ST03 means the set does not name the convention it follows,
# which the 999 answers with IK5 code I6 (implementation convention not supported).
_ACK_MAPPED_ELEMENTS = frozenset({1, 2})
CONVENTION_NOT_SUPPORTED = "I6"


def _convention_errors_to_ik5(st: Any) -> None:
    unmapped = [e for e in st.elements if e.ele_pos not in _ACK_MAPPED_ELEMENTS and e.errors]
    if not unmapped:
        return
    st.elements = [e for e in st.elements if e not in unmapped]
    st.add_error(CONVENTION_NOT_SUPPORTED, "ST03 missing or not supported")
    st.ack_code = REJECTED
