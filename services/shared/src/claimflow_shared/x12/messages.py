"""Error text for X12 findings, from the code and the map's names alone.

pyx12's own messages quote the offending value ("(3730189502) is not a valid code..."), and
values in a claim are PHI; these messages say what is wrong and where, never with what.
"""

from __future__ import annotations

# 999 IK304 (X231A1): implementation segment syntax errors.
SEGMENT_CODES: dict[str, str] = {
    "1": "segment not recognised here",
    "2": "unexpected segment",
    "3": "required segment missing",
    "4": "loop occurs more often than allowed",
    "5": "segment exceeds its maximum use",
    "6": "segment not defined in the transaction set",
    "7": "segment not in proper sequence",
    "8": "segment has data element errors",
    "I4": "segment not used by the implementation guide is present",
    "I6": "implementation-dependent segment missing",
    "I7": "implementation loop occurs fewer times than required",
    "I8": "implementation segment below minimum use",
    "I9": "implementation-dependent segment is not used",
}

# 999 IK403 (X231A1): implementation data element errors.
ELEMENT_CODES: dict[str, str] = {
    "1": "required data element missing",
    "2": "conditional required data element missing",
    "3": "too many data elements",
    "4": "data element too short",
    "5": "data element too long",
    "6": "invalid character in data element",
    "7": "invalid code value",
    "8": "invalid date",
    "9": "invalid time",
    "10": "exclusion condition violated",
    "12": "too many repetitions",
    "13": "too many components",
    "I10": "implementation 'not used' data element present",
    "I11": "implementation too few repetitions",
    "I12": "implementation pattern match failure",
    "I13": "implementation-dependent 'not used' data element present",
    "I6": "code value not used in implementation",
    "I9": "implementation-dependent data element missing",
}

# TA1 (interchange), AK9 (functional group) and IK5 (transaction set) codes pyx12 raises.
ENVELOPE_CODES: dict[str, dict[str, str]] = {
    "interchange": {
        "001": "interchange control numbers in ISA13 and IEA02 do not match",
        "021": "IEA01 does not match the number of functional groups",
        "022": "invalid control structure",
        "023": "improper end of file",
        "024": "invalid interchange content",
        "025": "duplicate interchange control number",
        "026": "invalid data element separator",
        "027": "invalid component element separator",
    },
    "group": {
        "1": "functional group not supported",
        "2": "functional group version not supported",
        "3": "functional group trailer missing",
        "4": "group control numbers in GS06 and GE02 do not match",
        "5": "GE01 does not match the number of transaction sets",
        "6": "group control number violates syntax",
        "19": "functional group trailer missing or out of place",
    },
    "transaction": {
        "1": "transaction set not supported",
        "2": "transaction set trailer missing",
        "3": "transaction set control numbers in ST02 and SE02 do not match",
        "4": "SE01 does not match the number of included segments",
        "5": "one or more segments in error",
        "6": "missing or invalid transaction set identifier",
        "7": "missing or invalid transaction set control number",
        "23": "transaction set control number not unique within the functional group",
        "I6": "ST03 does not name a supported implementation convention",
    },
}


def segment_message(code: str, segment_name: str | None) -> str:
    what = SEGMENT_CODES.get(code, f"segment error {code}")
    return f"{segment_name}: {what}" if segment_name else what


def element_message(code: str, element_name: str | None) -> str:
    what = ELEMENT_CODES.get(code, f"data element error {code}")
    return f"{element_name}: {what}" if element_name else what


def envelope_message(level: str, code: str) -> str:
    return ENVELOPE_CODES.get(level, {}).get(code, f"{level} envelope error {code}")
