"""Personalising a TS.48 template: reference path, fast path, and the card it installs to."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rspfed import asn1
from rspfed.errors import UsageError
from rspfed.euicc.uicc import Uicc
from rspfed.euicc.usim import AkaAlgorithmId
from rspfed.saip.identifiers import decode_iccid, decode_imsi
from rspfed.saip.install import install_package
from rspfed.saip.personalise import Personalisation, PreparedTemplate, personalise
from tests.paths import TS48, VECTORS

TEMPLATE = (TS48 / "TS48v5_SAIP2.3_NoBERTLV.der").read_bytes()
SETS = json.loads((VECTORS / "milenage-ts35208.json").read_text())["test_sets"]
FILES = ("ef-hpplmn", "ef-plmnwact", "ef-oplmnwact")
USIM_RID_APP = bytes.fromhex("A0000000871002")


@cache
def prepared() -> PreparedTemplate:
    return PreparedTemplate(TEMPLATE, files=FILES)


def template_values() -> Personalisation:
    """The template's own values, read independently of the module under test."""
    pes = asn1.decode_profile_elements(TEMPLATE)
    kinds = {pe.name: pe.chosen for pe in reversed(pes)}
    iccid = decode_iccid(bytes(kinds["header"]["iccid"].native), swapped=False)
    imsi_fill = [i.native for i in kinds["usim"]["ef-imsi"] if i.name == "fillFileContent"]
    algo = kinds["akaParameter"]["algoConfiguration"].chosen
    pins: dict[int, bytes] = {}
    for pe in pes:
        if pe.name == "pinCodes" and pe.chosen["pinCodes"].name == "pinconfig":
            for cfg in pe.chosen["pinCodes"].chosen:
                pins[int(cfg["keyReference"])] = bytes(cfg["pinValue"].native).rstrip(b"\xff")
    puks = {
        int(c["keyReference"]): bytes(c["pukValue"].native) for c in kinds["pukCodes"]["pukCodes"]
    }
    files = {}
    for kind in ("usim", "opt-usim"):
        for name in FILES:
            if name in {f[0] for f in kinds[kind]._fields} and kinds[kind][name].native:
                files[name] = next(
                    i.native for i in kinds[kind][name] if i.name == "fillFileContent"
                )
    return Personalisation(
        iccid=iccid,
        imsi=decode_imsi(imsi_fill[0]),
        k=bytes(algo["key"].native),
        opc=bytes(algo["opc"].native),
        algorithm=algo["algorithmID"].native,
        pin1=pins[0x01],
        pin2=pins[0x81],
        adm1=pins[0x0A],
        puk1=puks[0x01],
        puk2=puks[0x81],
        files=files,
    )


def milenage_values(s: dict[str, str], **extra: Any) -> Personalisation:
    return Personalisation(
        iccid="8944501234567890123",
        imsi="234150999999999",
        k=bytes.fromhex(s["K"]),
        opc=bytes.fromhex(s["OPc"]),
        algorithm="milenage",
        **extra,
    )


def test_restoring_the_template_values_gives_the_template_back() -> None:
    """Personalise with new values, then with the template's own: the template, byte for byte."""
    values = milenage_values(SETS[0], pin1=b"4321", puk1=b"87654321", adm1=b"12345678")
    out = personalise(TEMPLATE, values)
    assert out != TEMPLATE
    assert len(out) == len(TEMPLATE)
    assert personalise(out, template_values()) == TEMPLATE
    fast = PreparedTemplate(out, files=FILES).personalise(template_values())
    assert fast == TEMPLATE


def test_personalised_fields_decode_as_given() -> None:
    s = SETS[2]
    values = milenage_values(s, pin1=b"1357", pin2=b"2468", files={"ef-hpplmn": b"\x05"})
    profile = install_package(prepared().personalise(values))
    assert profile.iccid == "8944501234567890123"
    usim = profile.adf(USIM_RID_APP)
    assert usim is not None
    assert decode_imsi(next(c for c in usim.children if c.fid == 0x6F07).content) == values.imsi
    assert next(c for c in usim.children if c.fid == 0x6F31).content == b"\x05"
    for aka in profile.aka:
        assert aka.algorithm is AkaAlgorithmId.MILENAGE
        assert (aka.k, aka.opc) == (bytes.fromhex(s["K"]), bytes.fromhex(s["OPc"]))
    pins = {p.key_ref: p.pin for p in profile.pins}
    assert pins[0x01] == b"1357\xff\xff\xff\xff"
    assert pins[0x81] == b"2468\xff\xff\xff\xff"


def test_op_gives_the_published_opc() -> None:
    for s in SETS[:4]:
        values = Personalisation(k=bytes.fromhex(s["K"]), op=bytes.fromhex(s["OP"]))
        assert values.opc_value == bytes.fromhex(s["OPc"])


@pytest.mark.parametrize("s", SETS[::4], ids=[f"set{s['set']}" for s in SETS[::4]])
def test_milenage_card_answers_with_the_published_outputs(s: dict[str, str]) -> None:
    profile = install_package(prepared().personalise(milenage_values(s)))
    state = profile.uicc_state()
    # start the USIM's SQN array just below the test set's SQN (SQN handling is not under test)
    sqn = int(s["SQN"], 16)
    usim_aka = next(a for a in state.aka if a.adf_aid.startswith(USIM_RID_APP))
    array = list(usim_aka.sqn_array)
    array[sqn & 31] = (sqn >> 5) - 1
    akas = tuple(
        attrs.evolve(a, sqn_array=tuple(array), sqn_delta=(1 << 48) - 1) if a is usim_aka else a
        for a in state.aka
    )
    card = Uicc(attrs.evolve(state, aka=akas))
    assert card.transmit(bytes.fromhex("00A4040C07" + USIM_RID_APP.hex()))[-2:] == b"\x90\x00"
    autn = (
        bytes(a ^ b for a, b in zip(bytes.fromhex(s["SQN"]), bytes.fromhex(s["f5"]), strict=True))
        + bytes.fromhex(s["AMF"])
        + bytes.fromhex(s["f1"])
    )
    raw = card.transmit(bytes.fromhex("0088008122 10" + s["RAND"] + "10" + autn.hex() + "00"))
    data, sw = raw[:-2], raw[-2:]
    assert sw == b"\x90\x00"
    assert data[:2] == b"\xdb\x08"
    assert data[2:10] == bytes.fromhex(s["f2"])
    assert data[10] == 0x10
    assert data[11:27] == bytes.fromhex(s["f3"])
    assert data[27] == 0x10
    assert data[28:44] == bytes.fromhex(s["f4"])


_digits = st.text("0123456789", min_size=1, max_size=1)


@st.composite
def personalisations(draw: st.DrawFn) -> Personalisation:
    iccid = "89" + draw(st.text("0123456789", min_size=16, max_size=18))
    imsi = draw(st.text("0123456789", min_size=6, max_size=15))
    algorithm = draw(st.sampled_from(["milenage", "usim-test-algorithm"]))
    pins = {
        "pin1": draw(st.none() | st.text("0123456789", min_size=4, max_size=8)),
        "pin2": draw(st.none() | st.text("0123456789", min_size=4, max_size=8)),
        "puk1": draw(st.none() | st.text("0123456789", min_size=8, max_size=8)),
        "adm1": draw(st.none() | st.text("0123456789", min_size=8, max_size=8)),
    }
    files = {}
    if draw(st.booleans()):
        files["ef-hpplmn"] = draw(st.binary(min_size=1, max_size=1))
    if draw(st.booleans()):
        files["ef-oplmnwact"] = draw(st.binary(min_size=250, max_size=250))
    return Personalisation(
        iccid=iccid,
        imsi=imsi,
        k=draw(st.binary(min_size=16, max_size=16)),
        opc=draw(st.binary(min_size=16, max_size=16)),
        algorithm=algorithm,
        files=files,
        **{k: None if v is None else v.encode() for k, v in pins.items()},
    )


@settings(max_examples=12, deadline=None)
@given(personalisations())
def test_fast_path_equals_reference_path(values: Personalisation) -> None:
    assert prepared().personalise(values) == personalise(TEMPLATE, values)


def test_sizes_are_enforced() -> None:
    with pytest.raises(UsageError, match="octets"):
        prepared().personalise(Personalisation(files={"ef-hpplmn": b"\x01\x02"}))
    with pytest.raises(UsageError, match="octets"):
        personalise(TEMPLATE, Personalisation(files={"ef-hpplmn": b"\x01\x02"}))
    with pytest.raises(UsageError, match="not prepared"):
        prepared().personalise(Personalisation(files={"ef-ust": b"\x00" * 17}))
    with pytest.raises(UsageError, match="fillFileContent"):
        personalise(TEMPLATE, Personalisation(files={"ef-spn": b"\x00" * 17}))


@pytest.mark.parametrize(
    "kwargs",
    [
        {"iccid": "12"},
        {"imsi": "12a"},
        {"k": b"short"},
        {"k": bytes(16), "opc": bytes(16), "op": bytes(16)},
        {"algorithm": "tuak"},
        {"pin1": b"12"},
        {"puk1": b"1234"},
        {"op": bytes(16)},
    ],
)
def test_bad_personalisations(kwargs: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        Personalisation(**kwargs)


def test_secrets_not_in_repr() -> None:
    values = milenage_values(SETS[0], pin1=b"9876")
    text = repr(values)
    assert SETS[0]["K"] not in text
    assert "9876" not in text
