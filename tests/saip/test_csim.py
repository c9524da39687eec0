"""CSIM in the TS.48 packages: the templates, the installed ADF.CSIM, and the card showing it.

Expected values are read from the packages themselves (file ids, AIDs,
fillFileContent), not from the installer.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest

from rspfed import asn1
from rspfed.asn1 import saip
from rspfed.euicc.fs import FileSpec
from rspfed.euicc.uicc import Uicc
from rspfed.saip.install import install_package
from rspfed.saip.templates import FileKind, template_for
from tests.paths import TS48

PACKAGES = sorted(TS48.glob("*.der"))
CSIM_AID_PREFIX = bytes.fromhex("A0000003431002")  # 3GPP2 RID + CSIM application code


@cache
def elements(name: str) -> list[saip.ProfileElement]:
    return asn1.decode_profile_elements((TS48 / name).read_bytes())


def csim_files(name: str) -> dict[str, dict[str, Any]]:
    """``pe_name -> {"fcp": ..., "fill": first fillFileContent}`` of the csim/opt-csim PEs."""
    out: dict[str, dict[str, Any]] = {}
    for pe in elements(name):
        if pe.name not in ("csim", "opt-csim"):
            continue
        value = pe.chosen
        for field, *_ in value._fields:
            if field == "templateID" or field.endswith("header") or value[field].native is None:
                continue
            entry: dict[str, Any] = {"fcp": {}, "fill": None}
            for item in value[field]:
                if item.name == "fileDescriptor":
                    entry["fcp"] = dict(item.chosen.native)
                elif item.name == "fillFileContent" and entry["fill"] is None:
                    entry["fill"] = bytes(item.chosen.native)
            out[f"{pe.name}.{field}"] = entry
    return out


def test_csim_templates_are_there() -> None:
    csim = template_for("2.23.143.1.2.10")
    opt = template_for("2.23.143.1.2.11")
    assert csim is not None
    assert opt is not None
    assert (csim.pe, csim.base, csim.by_default) == ("csim", "ADF", True)
    assert (opt.pe, opt.base, opt.by_default) == ("opt-csim", "CSIM", False)
    assert csim.files[0].kind is FileKind.ADF
    # every field of the SAIP ASN.1 types has a row, in the same order
    for template, type_ in ((csim, saip.PE_CSIM), (opt, saip.PE_OPT_CSIM)):
        fields = [f for f, *_ in type_._fields if f != "templateID" and not f.endswith("header")]
        assert [row.pe_name for row in template.files] == fields


def _by_fid(adf: FileSpec) -> dict[int, FileSpec]:
    return {c.fid: c for c in adf.children}


@pytest.mark.parametrize("path", PACKAGES, ids=[p.stem for p in PACKAGES])
def test_ts48_csim_is_installed(path: Any) -> None:
    installed = install_package(path.read_bytes())
    assert "csim" not in installed.skipped
    assert "opt-csim" not in installed.skipped
    files = csim_files(path.name)
    aid = files["csim.adf-csim"]["fcp"]["dfName"]
    adf = installed.adf(CSIM_AID_PREFIX)
    assert adf is not None
    assert adf.aid == aid
    children = _by_fid(adf)
    for name, entry in files.items():
        if name == "csim.adf-csim":
            continue
        fid = int.from_bytes(entry["fcp"]["fileID"], "big")
        assert fid in children, name
        spec = children[fid]
        size = entry["fcp"].get("efFileSize")
        if size is not None and entry["fcp"].get("linkPath") is None:
            total = spec.record_length * len(spec.records) if spec.records else len(spec.content)
            assert total == int.from_bytes(size, "big"), name
        if entry["fill"] is not None and not spec.records:
            assert spec.content.startswith(entry["fill"]), name


def test_the_card_shows_adf_csim() -> None:
    name = "TS48v4_SAIP2.3_NoBERTLV.der"
    files = csim_files(name)
    uicc = Uicc(install_package((TS48 / name).read_bytes()).uicc_state())
    uicc.power_on()
    select = bytes([0x00, 0xA4, 0x04, 0x04, len(CSIM_AID_PREFIX)]) + CSIM_AID_PREFIX + b"\x00"
    fcp = uicc.transmit(select)
    assert fcp[-2:] == b"\x90\x00"
    assert files["csim.adf-csim"]["fcp"]["dfName"] in fcp  # tag 84: the full AID
    # EF.IMSI_M (6F22): readable (its EF.ARR rule wants PIN1, which TS.48 leaves disabled)
    assert uicc.transmit(bytes.fromhex("00A4000C026F22")) == b"\x90\x00"
    assert uicc.transmit(bytes.fromhex("00B0000000")) == files["csim.ef-imsi-m"]["fill"] + (
        b"\x90\x00"
    )
    # EF.SPC (6F33): its rule (CSIM EF.ARR record 18) needs ADM
    assert uicc.transmit(bytes.fromhex("00A4000C026F33")) == b"\x90\x00"
    assert uicc.transmit(bytes.fromhex("00B0000000")) == b"\x69\x82"
