"""The file system description: validation, JSON-safe round trips, live tree, selection rules."""

from __future__ import annotations

import contextlib
import json
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rspfed.errors import DecodeError, StorageError, UsageError
from rspfed.euicc.fs import (
    STANDARD_FILES,
    AccessCondition,
    AccessRules,
    FileSpec,
    FileStructure,
    FileSystem,
    FileSystemSpec,
    Lcsi,
    access_rules_from_arr,
)

TS = FileStructure.TRANSPARENT
LF = FileStructure.LINEAR_FIXED
CY = FileStructure.CYCLIC
AID = bytes.fromhex("A0000000871002FFFFFFFF8907090000")

conditions = st.sampled_from(list(AccessCondition))
rules = st.builds(AccessRules, conditions, conditions, conditions, conditions)
fids = st.integers(0x0001, 0xFFFE).filter(lambda f: f not in (0x3F00, 0x3FFF, 0x7FFF))


@st.composite
def efs(draw: st.DrawFn, fid: int) -> FileSpec:
    structure = draw(st.sampled_from([TS, LF, CY, FileStructure.BER_TLV]))
    common: dict[str, Any] = {
        "name": draw(st.text(max_size=8)),
        "lcsi": draw(st.sampled_from([Lcsi.OPERATIONAL_ACTIVATED, Lcsi.OPERATIONAL_DEACTIVATED])),
        "access": draw(rules),
        "arr": draw(st.binary(max_size=3)),
        "shareable": draw(st.booleans()),
    }
    if structure.is_record:
        length = draw(st.integers(1, 40))
        records = draw(
            st.lists(st.binary(min_size=length, max_size=length), min_size=1, max_size=5)
        )
        return FileSpec(fid, structure, records=tuple(records), **common)
    return FileSpec(fid, structure, content=draw(st.binary(max_size=64)), **common)


@st.composite
def dfs(draw: st.DrawFn, fid: int, depth: int, adf: bool = False) -> FileSpec:
    child_fids = draw(st.lists(fids, max_size=4, unique=True))
    children = []
    sfis = iter(draw(st.permutations(range(1, 31))))
    for cfid in child_fids:
        if depth > 0 and draw(st.booleans()):
            children.append(draw(dfs(cfid, depth - 1)))
        else:
            ef = draw(efs(cfid))
            if draw(st.booleans()):
                ef = attrs.evolve(ef, sfi=next(sfis))
            children.append(ef)
    return FileSpec(
        fid,
        FileStructure.ADF if adf else FileStructure.DF,
        children=tuple(children),
        aid=AID if adf else None,
        pin_refs=tuple(draw(st.lists(st.integers(0, 255), max_size=3))),
    )


file_systems = st.builds(
    FileSystemSpec,
    st.integers(0, 1).flatmap(lambda _: dfs(0x3F00, 2)),
    st.lists(dfs(0x7FF0, 1, adf=True), max_size=1).map(tuple),
)


@given(file_systems)
def test_round_trip_json(spec: FileSystemSpec) -> None:
    text = json.dumps(spec.to_dict())
    assert FileSystemSpec.from_dict(json.loads(text)) == spec
    assert FileSystem(spec).snapshot() == spec


@given(file_systems, st.data())
def test_snapshot_is_a_copy(spec: FileSystemSpec, data: st.DataObject) -> None:
    fs = FileSystem(spec)
    nodes = [n for n in fs.mf.walk() if n.structure is TS and n.size]
    if not nodes:
        return
    node = data.draw(st.sampled_from(nodes))
    before = fs.snapshot()
    node.content[0] ^= 0xFF
    after = fs.snapshot()
    assert after != before
    assert before == spec  # the earlier snapshot did not change
    assert FileSystem(after).snapshot() == after


def _mutations(d: Any) -> list[Any]:
    """Copies of a to_dict() tree with one value broken."""
    out: list[Any] = []
    if isinstance(d, dict):
        for k in d:
            bads: tuple[Any, ...] = (None, "zz", -1, [], {})
            out.extend({**d, k: bad} for bad in bads)
            for sub in _mutations(d[k]):
                out.append({**d, k: sub})
            out.append({kk: v for kk, v in d.items() if kk != k})
    elif isinstance(d, list):
        for i, v in enumerate(d):
            for sub in _mutations(v):
                out.append([*d[:i], sub, *d[i + 1 :]])
    return out


def small_spec() -> FileSystemSpec:
    return FileSystemSpec(
        FileSpec(
            0x3F00,
            FileStructure.DF,
            children=(
                FileSpec(0x2FE2, TS, content=b"\x01\x02"),
                FileSpec(0x2F00, LF, records=(b"\xff" * 4,), sfi=30),
            ),
        ),
        (
            FileSpec(
                0x7FF0,
                FileStructure.ADF,
                aid=AID,
                children=(FileSpec(0x6F07, TS, content=b"\x08"),),
            ),
        ),
    )


def test_malformed_dicts_raise_storage_error() -> None:
    good = small_spec().to_dict()
    checked = 0
    for bad in _mutations(good):
        try:
            FileSystemSpec.from_dict(bad)
        except StorageError:
            checked += 1
    assert checked > 50


@pytest.mark.parametrize(
    "make",
    [
        lambda: FileSpec(0x6F07, TS, sfi=0),
        lambda: FileSpec(0x6F07, TS, sfi=31),
        lambda: FileSpec(0x6F07, LF),
        lambda: FileSpec(0x6F07, LF, records=(b"a", b"bb")),
        lambda: FileSpec(0x6F07, LF, records=(b"",)),
        lambda: FileSpec(0x6F07, TS, records=(b"a",)),
        lambda: FileSpec(0x6F07, TS, aid=AID),
        lambda: FileSpec(0x7FF0, FileStructure.ADF),
        lambda: FileSpec(0x7F10, FileStructure.DF, content=b"x"),
        lambda: FileSpec(0x7F10, FileStructure.DF, sfi=1),
        lambda: FileSpec(0x10000, TS),
        lambda: FileSpec(0x7F10, FileStructure.DF, children=(FileSpec(1, TS), FileSpec(1, TS))),
        lambda: FileSpec(0x7F10, FileStructure.DF, children=(FileSpec(0x7FFF, TS),)),
        lambda: FileSpec(
            0x7F10, FileStructure.DF, children=(FileSpec(1, TS, sfi=2), FileSpec(2, TS, sfi=2))
        ),
        lambda: FileSystemSpec(FileSpec(0x3F01, FileStructure.DF)),
        lambda: FileSystemSpec(
            FileSpec(0x3F00, FileStructure.DF), (FileSpec(0x7F10, FileStructure.DF),)
        ),
    ],
)
def test_invalid_descriptions(make: Any) -> None:
    with pytest.raises(UsageError):
        make()


def test_selection_rules() -> None:
    spec = FileSystemSpec(
        FileSpec(
            0x3F00,
            FileStructure.DF,
            children=(
                FileSpec(0x2FE2, TS, content=b"\x00"),
                FileSpec(
                    0x7F10,
                    FileStructure.DF,
                    children=(
                        FileSpec(0x6F3A, TS, content=b"\x00"),
                        FileSpec(
                            0x5F3A,
                            FileStructure.DF,
                            children=(FileSpec(0x4F30, TS, content=b"\x00"),),
                        ),
                    ),
                ),
                FileSpec(0x7F20, FileStructure.DF),
            ),
        ),
        (
            FileSpec(
                0x7FF0,
                FileStructure.ADF,
                aid=AID,
                children=(FileSpec(0x6F07, TS, content=b"\x08"),),
            ),
        ),
    )
    fs = FileSystem(spec)
    telecom = fs.mf.by_fid[0x7F10]
    phonebook = telecom.by_fid[0x5F3A]
    adf = fs.adfs[0]
    # from DF.TELECOM: children, itself, parent (MF), siblings that are DFs
    assert fs.select_fid(telecom, 0x6F3A) is telecom.by_fid[0x6F3A]
    assert fs.select_fid(telecom, 0x7F10) is telecom
    assert fs.select_fid(telecom, 0x3F00) is fs.mf
    assert fs.select_fid(telecom, 0x7F20) is fs.mf.by_fid[0x7F20]
    assert fs.select_fid(telecom, 0x2FE2) is None  # an EF of the parent is not reachable
    assert fs.select_fid(phonebook, 0x6F3A) is None  # an EF of the parent is not reachable
    assert fs.select_fid(phonebook, 0x7F10) is telecom
    assert fs.select_fid(telecom, 0x4F30) is None  # grandchild
    assert fs.select_fid(telecom, 0x7FFF) is None
    assert fs.select_fid(telecom, 0x7FFF, adf) is adf
    assert fs.select_fid(adf, 0x6F07) is adf.by_fid[0x6F07]
    assert fs.select_fid(adf, 0x7FFF) is adf
    # paths
    assert fs.select_path(fs.mf, bytes.fromhex("7F105F3A4F30")) is phonebook.by_fid[0x4F30]
    assert fs.select_path(fs.mf, bytes.fromhex("7FFF6F07"), adf) is adf.by_fid[0x6F07]
    assert fs.select_path(fs.mf, bytes.fromhex("7FFF6F07")) is None
    assert fs.select_path(fs.mf, bytes.fromhex("2FE26F07")) is None
    assert fs.select_path(fs.mf, bytes.fromhex("7F")) is None
    assert fs.select_path(telecom, bytes.fromhex("5F3A")) is phonebook
    # partial AID
    assert fs.find_adf(AID[:7]) is adf
    assert fs.find_adf(AID[:7], after=adf) is None
    assert fs.find_adf(b"\xa0\x00\x00\x00\x88") is None
    assert phonebook.path() == (0x3F00, 0x7F10, 0x5F3A)
    assert adf.by_fid[0x6F07].adf is adf
    assert telecom.adf is None


def test_standard_files_table() -> None:
    by_fid = {(f.location, f.fid): f for f in STANDARD_FILES}
    assert len(by_fid) == len(STANDARD_FILES)
    expected = {
        0x2FE2: "EF.ICCID",
        0x2F00: "EF.DIR",
        0x6F07: "EF.IMSI",
        0x6FAD: "EF.AD",
        0x6F60: "EF.PLMNwAcT",
        0x6F61: "EF.OPLMNwAcT",
        0x6F31: "EF.HPPLMN",
        0x6F7B: "EF.FPLMN",
        0x6F46: "EF.SPN",
        0x6F7E: "EF.LOCI",
    }
    names = {f.fid: f.name for f in STANDARD_FILES}
    for fid, name in expected.items():
        assert names[fid] == name
    for location in {f.location for f in STANDARD_FILES}:
        sfis = [f.sfi for f in STANDARD_FILES if f.location == location and f.sfi is not None]
        assert len(sfis) == len(set(sfis)), location


# EF.ARR records of the MF in the GSMA TS.48 v5 test profile (TS48v5_SAIP2.3_NoBERTLV.der),
# read by hand: 80 = access mode byte, 90 00 always, A4 06 83 01 <key> 95 01 08 a PIN/ADM.
ADM = "A40683010A950108"
PIN1_ = "A406830101950108"
PIN2_ = "A406830181950108"
ARR_RECORDS = [
    ("80015E" + ADM + "8401D4" + ADM, ("NEV", "ADM1", "ADM1", "ADM1")),
    ("8001019000" + "80015A" + ADM + "8401D4" + ADM, ("ALW", "ADM1", "ADM1", "ADM1")),
    ("8001019000" + "800118" + ADM, ("ALW", "NEV", "ADM1", "ADM1")),
    (
        "8001019000" + "800102" + PIN1_ + "8401D4" + ADM + "800158" + ADM,
        ("ALW", "PIN1", "ADM1", "ADM1"),
    ),
    (
        "800103" + PIN1_ + "800118" + PIN2_ + "800140" + ADM + "8401D4" + ADM,
        ("PIN1", "PIN1", "PIN2", "PIN2"),
    ),
    ("800101" + PIN1_ + "800102" + PIN2_ + "800158" + ADM, ("PIN1", "PIN2", "ADM1", "ADM1")),
    ("8001039000" + "800158" + ADM + "8401D4" + ADM + "FFFFFF", ("ALW", "ALW", "ADM1", "ADM1")),
]


@pytest.mark.parametrize(("record", "expected"), ARR_RECORDS)
def test_access_rules_from_ts48_arr_records(
    record: str, expected: tuple[str, str, str, str]
) -> None:
    rules = access_rules_from_arr(bytes.fromhex(record))
    read, update, activate, deactivate = (AccessCondition(e) for e in expected)
    assert rules == AccessRules(read=read, update=update, activate=activate, deactivate=deactivate)


def test_access_rules_templates_and_errors() -> None:
    # OR template: the weakest; AND template: the strongest; 97 never
    assert access_rules_from_arr(bytes.fromhex("800101 A00A" + PIN1_ + "9000")).read is (
        AccessCondition.ALW
    )
    assert (
        access_rules_from_arr(bytes.fromhex("800101 AF12" + PIN1_ + ADM + "9000")).read
        is AccessCondition.ADM1
    )
    assert access_rules_from_arr(bytes.fromhex("8001039700")).update is AccessCondition.NEV
    for bad in (
        "8001",
        "800101",
        "80020101 9000",
        "800101 A4028301",
        "8001019000 01",
        "800101 A000",
    ):
        with pytest.raises(DecodeError):
            access_rules_from_arr(bytes.fromhex(bad.replace(" ", "")))


@given(st.binary(max_size=40))
def test_access_rules_any_bytes(record: bytes) -> None:
    with contextlib.suppress(DecodeError):
        access_rules_from_arr(record)


def test_bytes_fields_are_copied_and_checked() -> None:
    buf = bytearray(b"\x01\x02")
    spec = FileSpec(0x6F07, TS, content=buf)
    buf[0] = 0xFF
    assert spec.content == b"\x01\x02"
    assert type(spec.content) is bytes
    assert FileSpec(0x6F07, LF, records=[bytearray(b"ab")]).records == (b"ab",)
    not_bytes: Any = 5
    with pytest.raises(UsageError):
        FileSpec(0x6F07, TS, content=not_bytes)
    with pytest.raises(UsageError):
        FileSpec(0x7FF0, FileStructure.ADF, aid=not_bytes)
