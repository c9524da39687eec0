"""SAIP file templates against the GSMA TS.48 packages, and default-value expansion."""

from __future__ import annotations

from functools import cache
from typing import Any

import pytest

from rspfed import asn1
from rspfed.asn1 import saip
from rspfed.euicc.fs import FileSpec
from rspfed.saip.install import install_package
from rspfed.saip.templates import (
    TEMPLATES,
    TS48_TEMPLATE_OIDS,
    FileKind,
    expand_default,
    template_for,
)
from tests.paths import TS48

PACKAGES = sorted(TS48.glob("*.der"))
CSIM = {"2.23.143.1.2.10", "2.23.143.1.2.11"}
_KIND_OF_DESCRIPTOR = {0x01: "TR", 0x02: "LF", 0x06: "CY", 0x38: "DF", 0x39: "BT"}


@cache
def elements(name: str) -> list[saip.ProfileElement]:
    return asn1.decode_profile_elements((TS48 / name).read_bytes())


def file_fields(pe: saip.ProfileElement) -> list[tuple[str, Any]]:
    value = pe.chosen
    out = []
    for name, *_ in value._fields:
        if name in ("templateID",) or name.endswith("header"):
            continue
        if value[name].native is not None:
            out.append((name, value[name]))
    return out


def fcp(file: Any) -> dict[str, Any]:
    for item in file:
        if item.name == "fileDescriptor":
            return dict(item.chosen.native)
    return {}


def test_ts48_uses_the_listed_templates() -> None:
    seen = set()
    for path in PACKAGES:
        for pe in elements(path.name):
            if "templateID" in {f[0] for f in pe.chosen._fields}:
                seen.add(pe.chosen["templateID"].native)
    assert seen == TS48_TEMPLATE_OIDS
    assert seen <= set(TEMPLATES)  # CSIM included


@pytest.mark.parametrize("path", PACKAGES, ids=[p.stem for p in PACKAGES])
def test_every_ts48_file_is_in_its_template(path: Any) -> None:
    for pe in elements(path.name):
        if "templateID" not in {f[0] for f in pe.chosen._fields}:
            continue
        oid = pe.chosen["templateID"].native
        template = template_for(oid)
        assert template is not None
        assert template.pe == pe.name
        for name, file in file_fields(pe):
            row = template.file(name)
            assert row is not None, f"{pe.name}.{name} not in template {oid}"
            f = fcp(file)
            if f.get("fileID") is not None and row.fid is not None and row.kind is not FileKind.ADF:
                assert int.from_bytes(f["fileID"], "big") == row.fid, name
            descriptor = f.get("fileDescriptor")
            if descriptor is not None:
                assert _KIND_OF_DESCRIPTOR[descriptor[0] & 0x3F] == (
                    "DF" if row.kind.is_df else row.kind.value
                ), name
            elif not row.kind.is_df:
                assert row.kind.value in ("TR", "LF", "CY", "BT")
            if f.get("efFileSize") is None and f.get("linkPath") is None and not row.kind.is_df:
                # the template must then give the size (the package relies on it)
                assert row.size is not None, f"{pe.name}.{name}: no size anywhere"
                if row.kind.is_record and descriptor is None:
                    assert row.records is not None


def _walk(spec: FileSpec, path: tuple[int, ...] = ()) -> dict[tuple[int, ...], FileSpec]:
    here = (*path, spec.fid)
    out = {here: spec}
    for c in spec.children:
        out.update(_walk(c, here))
    return out


@pytest.mark.parametrize("path", PACKAGES, ids=[p.stem for p in PACKAGES])
def test_installed_sizes_follow_package_then_template(path: Any) -> None:
    """Installed size = the package's efFileSize if given, else the template's; same for SFI."""
    installed = install_package(path.read_bytes())
    files: dict[tuple[int, ...], FileSpec] = {}
    files.update(_walk(installed.fs.mf))
    for adf in installed.fs.adfs:
        files.update(_walk(adf))
    by_fid_name: dict[tuple[int | None, str], list[FileSpec]] = {}
    for spec in files.values():
        by_fid_name.setdefault((spec.fid, spec.name), []).append(spec)
    checked = 0
    for pe in elements(path.name):
        if "templateID" not in {f[0] for f in pe.chosen._fields}:
            continue
        template = template_for(pe.chosen["templateID"].native)
        if template is None:
            continue
        for name, file in file_fields(pe):
            row = template.file(name)
            assert row is not None
            if row.kind.is_df:
                continue
            f = fcp(file)
            if f.get("linkPath") is not None:
                continue  # a link file's size is its target's
            fid = int.from_bytes(f["fileID"], "big") if f.get("fileID") else row.fid
            candidates = by_fid_name.get((fid, row.name), [])
            assert candidates, name
            # several EF.ARR/EF.AD exist (one per DF/ADF): one of them must match
            assert any(_matches(spec, row, f) for spec in candidates), name
            checked += 1
    assert checked > 100


def _matches(spec: FileSpec, row: Any, f: dict[str, Any]) -> bool:
    size = spec.record_length * len(spec.records) if spec.structure.is_record else len(spec.content)
    if f.get("efFileSize") is not None:
        ok = size == int.from_bytes(f["efFileSize"], "big")
    elif spec.structure.is_record:
        descriptor = f.get("fileDescriptor")
        length = int.from_bytes(descriptor[2:4], "big") if descriptor else row.size
        ok = spec.record_length == length and len(spec.records) == row.records
    else:
        ok = size == row.size
    sfi = f.get("shortEFID")
    expected_sfi = row.sfi if sfi is None else ((sfi[0] >> 3) if sfi else None)
    return ok and spec.sfi == expected_sfi


def test_expand_default() -> None:
    assert expand_default("07FF...FF", 33) == b"\x07" + b"\xff" * 32
    assert expand_default("FF...FF07", 9) == b"\xff" * 8 + b"\x07"
    assert expand_default("00FF...FF", 3) == bytes.fromhex("00ffff")
    assert expand_default("FFFFFF0000", 12, repeat=True) == bytes.fromhex(
        "ffffff0000ffffff0000ffff"
    )
    assert expand_default("0A", 1) == b"\x0a"
    assert expand_default("FF...FF00000001", 20) == b"\xff" * 16 + bytes.fromhex("00000001")


def test_template_defaults_fit_their_sizes() -> None:
    for template in TEMPLATES.values():
        for row in template.files:
            fixed = row.default is not None and "..." not in row.default and not row.repeat
            if fixed and row.default is not None and row.size is not None:
                assert len(bytes.fromhex(row.default)) == row.size, row.name
            if row.kind is FileKind.ADF:
                assert row.fid is None
        assert template.files[0].kind.is_df or template.base in ("USIM", "ISIM", "CSIM")


def test_mf_template_facts() -> None:
    mf = template_for("2.23.143.1.2.1")
    assert mf is not None
    iccid = mf.file("ef-iccid")
    assert iccid is not None
    assert (iccid.fid, iccid.size, iccid.sfi) == (0x2FE2, 10, 0x02)
