"""Installing SAIP packages: all GSMA TS.48 packages, then the card built from them over APDUs."""

from __future__ import annotations

import contextlib
from functools import cache
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rspfed import asn1
from rspfed.errors import DecodeError, ProtocolError, RspfedError
from rspfed.euicc.fs import FileSpec, FileStructure
from rspfed.euicc.uicc import PIN_ADM1, PIN_APPL_1, PIN_APPL_2, Uicc
from rspfed.euicc.usim import AkaAlgorithmId
from rspfed.saip.identifiers import decode_imsi, encode_iccid
from rspfed.saip.install import InstalledProfile, install_elements, install_package, load_profile
from tests.paths import TS48

PACKAGES = sorted(TS48.glob("*.der"))
USIM_RID_APP = bytes.fromhex("A0000000871002")
ISIM_RID_APP = bytes.fromhex("A0000000871004")
TS48_K = bytes(range(16))
TS48_IMSI = "001010123456063"
TS48_ICCIDS = {"89000123456789012341", "89000123456789012358"}  # v2 SAIP2.1 NoBERTLV: ...358

# TS 34.108 test algorithm, worked example in tests/data/vectors/ts34108-test-algorithm.md
TA_RAND = bytes.fromhex("23553cbe9637a89d218ae64dae47bf35")
TA_AUTN = bytes.fromhex("bd9232ae9a08800023543ebd92132e9a")
TA_XDOUT = bytes.fromhex("23543ebd9232ae9a2983ec46a24ab13a")
TA_CK = bytes.fromhex("543ebd9232ae9a2983ec46a24ab13a23")
TA_IK = bytes.fromhex("3ebd9232ae9a2983ec46a24ab13a2354")


@cache
def installed(name: str) -> InstalledProfile:
    return install_package((TS48 / name).read_bytes())


def child(spec: FileSpec, fid: int) -> FileSpec:
    for c in spec.children:
        if c.fid == fid:
            return c
    raise AssertionError(f"{fid:04X} missing under {spec.fid:04X}")


def tx(card: Uicc, hexapdu: str) -> tuple[bytes, int]:
    raw = card.transmit(bytes.fromhex(hexapdu.replace(" ", "")))
    return raw[:-2], int.from_bytes(raw[-2:], "big")


@pytest.mark.parametrize("path", PACKAGES, ids=[p.stem for p in PACKAGES])
def test_ts48_installs(path: Path) -> None:
    profile = installed(path.name)
    assert profile.iccid in TS48_ICCIDS
    assert child(profile.fs.mf, 0x2FE2).content == encode_iccid(profile.iccid)
    usim = profile.adf(USIM_RID_APP)
    assert usim is not None
    assert usim.structure is FileStructure.ADF
    assert decode_imsi(child(usim, 0x6F07).content) == TS48_IMSI
    assert profile.adf(ISIM_RID_APP) is not None
    assert {a.adf_aid[:7] for a in profile.aka} == {USIM_RID_APP, ISIM_RID_APP}
    for aka in profile.aka:
        assert aka.algorithm is AkaAlgorithmId.USIM_TEST_ALGORITHM
        assert aka.k == TS48_K
        assert not aka.sqn_check
    pins = {p.key_ref: p for p in profile.pins}
    assert set(pins) >= {PIN_APPL_1, PIN_APPL_2, PIN_ADM1}
    assert pins[PIN_APPL_1].pin == b"0000\xff\xff\xff\xff"
    assert pins[PIN_APPL_1].puk == b"11111111"
    assert (pins[PIN_APPL_1].max_tries, pins[PIN_APPL_1].tries_left) == (3, 3)
    assert pins[PIN_ADM1].pin == b"55555555"
    assert pins[PIN_ADM1].puk is None
    assert pins[PIN_APPL_2].puk == b"22222222"
    assert "csim" not in profile.skipped  # installed as files (CAVE keys are not)
    assert "cdmaParameter" in profile.skipped
    # the state survives the store's JSON form
    state = profile.uicc_state()
    assert type(state).from_dict(state.to_dict()) == state


@pytest.mark.parametrize("path", PACKAGES[::5], ids=[p.stem for p in PACKAGES[::5]])
def test_ts48_card_over_apdus(path: Path) -> None:
    card = Uicc(load_profile(None, path.read_bytes()))
    _, sw = tx(card, "00 A4 00 04 02 2FE2 00")
    assert sw == 0x9000
    data, sw = tx(card, "00 B0 0000 0A")
    assert sw == 0x9000
    assert data == encode_iccid(installed(path.name).iccid)
    _, sw = tx(card, "00 A4 04 04 07" + USIM_RID_APP.hex() + "00")
    assert sw == 0x9000
    assert tx(card, "00 A4 00 0C 02 6F07")[1] == 0x9000
    data, sw = tx(card, "00 B0 0000 09")
    assert sw == 0x9000
    assert decode_imsi(data) == TS48_IMSI
    data, sw = tx(card, "00 88 00 81 22 10" + TA_RAND.hex() + "10" + TA_AUTN.hex() + "00")
    assert sw == 0x9000
    assert data[0] == 0xDB
    n = data[1]
    res, rest = data[2 : 2 + n], data[2 + n :]
    assert TA_XDOUT.startswith(res)
    assert rest[0] == 0x10
    assert rest[1:17] == TA_CK
    assert rest[17] == 0x10
    assert rest[18:34] == TA_IK


def _ts48() -> bytes:
    return (TS48 / "TS48v5_SAIP2.3_NoBERTLV.der").read_bytes()


def test_tuak_is_refused_naming_the_element() -> None:
    pes = asn1.decode_profile_elements(_ts48())
    aka = next(pe for pe in pes if pe.name == "akaParameter")
    aka.chosen["algoConfiguration"].chosen["algorithmID"] = "tuak"
    ident = aka.chosen["aka-header"]["identification"].native
    with pytest.raises(ProtocolError, match=f"profile element {ident} \\(akaParameter\\).*TUAK"):
        install_elements(pes)


def test_bad_file_content_is_a_decode_error() -> None:
    pes = asn1.decode_profile_elements(_ts48())
    usim = next(pe for pe in pes if pe.name == "usim")
    imsi = usim.chosen["ef-imsi"]
    for i, item in enumerate(imsi):
        if item.name == "fillFileContent":
            imsi[i] = ("fillFileContent", bytes(10))  # longer than the 9-octet file
    ident = usim.chosen["usim-header"]["identification"].native
    with pytest.raises(DecodeError, match=f"profile element {ident} \\(usim\\)"):
        install_elements(pes)


def test_missing_end_and_header() -> None:
    pes = asn1.decode_profile_elements(_ts48())
    with pytest.raises(DecodeError, match="end"):
        install_elements(pes[:-1])
    with pytest.raises(DecodeError, match="header"):
        install_elements(pes[1:])


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_mutated_packages_give_rspfed_errors_only(data: st.DataObject) -> None:
    package = bytearray(_ts48())
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(package) - 1))
        package[at] = data.draw(st.integers(0, 255))
    with contextlib.suppress(RspfedError):
        install_package(bytes(package))


def test_access_rules_and_generic_file_management() -> None:
    """Access rules come from the package's EF.ARR (TS 31.102 / TS 102 221 conditions)."""
    profile = installed("TS48v5_SAIP2.3_NoBERTLV.der")
    iccid = child(profile.fs.mf, 0x2FE2)
    assert (iccid.access.read.value, iccid.access.update.value) == ("ALW", "NEV")
    assert iccid.arr == bytes.fromhex("2F0603")
    usim = profile.adf(USIM_RID_APP)
    assert usim is not None
    imsi = child(usim, 0x6F07)
    assert (imsi.access.read.value, imsi.access.update.value) == ("PIN1", "ADM1")
    assert imsi.sfi == 0x07
    # genericFileManagement created DF.TELECOM's EF.ADN as a link to DF.PHONEBOOK's 4F3A
    telecom = child(profile.fs.mf, 0x7F10)
    adn = child(telecom, 0x6F3A)
    target = child(child(telecom, 0x5F3A), 0x4F3A)
    assert adn.structure is FileStructure.LINEAR_FIXED
    assert adn.records == target.records
    assert usim.pin_refs == (0x81, 0x01, 0x0A, 0x0B)


def test_unknown_access_rule_names_the_element_that_created_the_file() -> None:
    pes = asn1.decode_profile_elements(_ts48())
    usim = next(pe for pe in pes if pe.name == "usim")
    fcp = next(i for i in usim.chosen["ef-imsi"] if i.name == "fileDescriptor").chosen
    fcp["securityAttributesReferenced"] = bytes.fromhex("6F067F")
    ident = usim.chosen["usim-header"]["identification"].native
    with pytest.raises(DecodeError, match=f"profile element {ident} \\(usim\\).*6F067F"):
        install_elements(pes)
