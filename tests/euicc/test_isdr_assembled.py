"""The assembled eUICC (rspfed.euicc.euicc) and its CLI group (rspfed.cli.euicc)."""

from __future__ import annotations

import json
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner

from rspfed import asn1
from rspfed.asn1 import rsp
from rspfed.cli.euicc import euicc
from rspfed.crypto.curves import Curve
from rspfed.errors import StorageError
from rspfed.euicc.apdu import CommandApdu
from rspfed.euicc.card import Card
from rspfed.euicc.euicc import Euicc
from rspfed.euicc.isdr import ISD_R_AID
from rspfed.euicc.uicc import UiccState
from rspfed.pki import CertificateRole, verify_chain
from rspfed.pki.testpki import TestPki
from tests.paths import SGP26

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki.create(tmp_path_factory.mktemp("pki") / "pki", now=NOW)


def store_data(card: Euicc, der: bytes) -> bytes:
    resp = card.card.transmit(CommandApdu(0x80, 0xE2, 0x91, 0x00, der, ne=256).encode())
    assert resp[-2:] == b"\x90\x00", resp[-2:].hex()
    return resp[:-2]


def test_create_open_and_talk_over_apdus(tmp_path: Path, pki: TestPki) -> None:
    path = tmp_path / "e.db"
    with Euicc.create(
        path, pki, curves=[Curve.NIST, Curve.BRAINPOOL], passphrase=b"pw", now=NOW
    ) as e:
        eid = e.eid
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
    with pytest.raises(StorageError):
        Euicc.open(path)
    with Euicc.open(path, passphrase=b"pw") as e:
        assert e.eid == eid
        for curve in ("nist", "brainpool"):
            cert = e.store.certificate(f"euicc-{curve}")
            eum = e.store.certificate(f"eum-{curve}")
            assert cert is not None
            assert eum is not None
            chain = verify_chain(
                cert,
                role=CertificateRole.EUICC,
                trust_anchors=pki.ci_certificates(),
                intermediates=[eum],
                now=NOW,
                eid=eid,
            )
            assert chain.eid == eid
        card = e.card
        card.power_on()
        # open a logical channel, select the ISD-R there, ask for the EID
        opened = card.transmit(bytes.fromhex("0070000001"))
        assert opened[-2:] == b"\x90\x00"
        channel = opened[0]
        select = bytes([channel, 0xA4, 0x04, 0x00, len(ISD_R_AID)]) + ISD_R_AID
        assert card.transmit(select)[-2:] == b"\x90\x00"
        resp = card.transmit(
            CommandApdu(
                0x80 | channel, 0xE2, 0x91, 0x00, bytes.fromhex("BF3E035C015A"), ne=256
            ).encode()
        )
        assert asn1.decode(rsp.GetEuiccDataResponse, resp[:-2])["eidValue"].native.hex() == eid
        info1 = asn1.decode(rsp.EUICCInfo1, store_data_on(card, channel, bytes.fromhex("BF2000")))
        assert len(info1["euiccCiPKIdListForSigning"]) == 2


def store_data_on(card: Card, channel: int, der: bytes) -> bytes:
    resp = card.transmit(CommandApdu(0x80 | channel, 0xE2, 0x91, 0x00, der, ne=256).encode())
    assert resp[-2:] == b"\x90\x00"
    return resp[:-2]


def test_cli_create_and_info(tmp_path: Path, pki: TestPki) -> None:
    runner = CliRunner()
    store = tmp_path / "cli.db"
    sgp26_ci = sorted(SGP26.rglob("CERT_CI_ECDSA_NIST.der"))
    args = ["create", str(store), "--pki", str(pki.directory), "--curve", "both"]
    for ci in sgp26_ci[:1]:  # the GSMA SGP.26 test CI
        args += ["--ci", str(ci)]
    result = runner.invoke(euicc, args)
    assert result.exit_code == 0, result.output
    result = runner.invoke(euicc, ["info", str(store), "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.output)
    assert len(info["eid"]) == 32
    names = {c["name"] for c in info["certificates"]}
    assert {"euicc-nist", "euicc-brainpool", "eum-nist", "eum-brainpool", "ci-0", "ci-1"} <= names
    if sgp26_ci:
        assert "ci-2" in names
    assert info["profiles"] == []
    text = runner.invoke(euicc, ["info", str(store)])
    assert text.exit_code == 0
    assert info["eid"] in text.output
    # existing store, bad EID, missing store: exit 2, one line
    again = runner.invoke(euicc, ["create", str(store), "--pki", str(pki.directory)])
    assert again.exit_code == 2
    bad = runner.invoke(
        euicc, ["create", str(tmp_path / "x.db"), "--pki", str(pki.directory), "--eid", "123"]
    )
    assert bad.exit_code == 2
    assert not (tmp_path / "x.db").exists()


def test_cli_serve_bad_address(tmp_path: Path, pki: TestPki) -> None:
    store = tmp_path / "s.db"
    Euicc.create(store, pki).close()
    result = CliRunner().invoke(euicc, ["serve", str(store), "--vpcd", "host:notaport"])
    assert result.exit_code == 2
    assert os.path.exists(store)


def test_card_state_is_persistent_per_profile(tmp_path: Path, pki: TestPki) -> None:
    from rspfed.euicc import _state as st
    from rspfed.euicc.uicc import demo_state

    path = tmp_path / "p.db"
    loads: list[bytes] = []

    def loader(profile: st.Profile, content: bytes) -> UiccState:
        loads.append(profile.iccid)
        return demo_state()

    iccid = bytes.fromhex("98001032547698103214")
    with Euicc.create(path, pki, loader=loader) as e:
        s = e.store.state
        p = st.Profile(iccid=iccid, isdp_aid=st.next_isdp_aid(s))
        out = st.install(s, p, address="a", pending=b"PIR")
        e.store.commit(out.state, contents={iccid: b"package"})
        select = bytes([0x00, 0xA4, 0x04, 0x00, 16]) + ISD_R_AID
        assert e.card.transmit(select)[-2:] == b"\x90\x00"
        req = bytes.fromhex("BF3111A00C5A0A") + iccid + bytes.fromhex("810100")
        assert store_data(e, req) == bytes.fromhex("BF3103800100")
        assert loads == [iccid]
        # a wrong PIN1: the retry counter drops and is saved at once
        assert e.card.transmit(
            bytes.fromhex("0020000108") + b"9999\xff\xff\xff\xff"
        ) == bytes.fromhex("63C2")
    with Euicc.open(path, loader=loader) as e:
        assert loads == [iccid]  # the kept state, not the loader
        assert e.card.transmit(bytes.fromhex("0020000100")) == bytes.fromhex("63C2")
        # a state change that cannot be saved is answered 6581 (memory problem)
        e.store.connection.set_progress_handler(lambda: 1, 1)
        wrong = bytes.fromhex("0020000108") + b"8888\xff\xff\xff\xff"
        assert e.card.transmit(wrong) == bytes.fromhex("6581")
        e.store.connection.set_progress_handler(None, 1)
    with Euicc.open(path, loader=loader) as e:
        assert e.card.transmit(bytes.fromhex("0020000100")) == bytes.fromhex("63C2")
