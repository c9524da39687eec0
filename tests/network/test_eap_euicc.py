"""EAP-AKA' end to end: a software eUICC's USIM (over APDUs) against the network AuC.

The TS.48 profile is personalised (IMSI, ICCID, TS 35.208 set 1 K/OPc),
downloaded and enabled over APDUs as in :mod:`tests.network.test_attach_euicc`;
the peer reads its identity from the card and answers with the card's USIM,
the server is restored from its snapshot before every message.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from pathlib import Path

import attrs
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st

from rspfed.crypto.curves import Curve
from rspfed.eap import akaprime as ap
from rspfed.eap.machines import EapAkaPrimePeer, EapAkaPrimeServer, PeerState, ServerState
from rspfed.errors import DecodeError, RspfedError
from rspfed.euicc.euicc import Euicc
from rspfed.network import (
    Auc,
    MemorySubscriberStore,
    NetworkEapAuc,
    NetworkRefusedError,
    RefusalReason,
    Subscriber,
    eap_usim,
    permanent_identity,
    read_usim_identity,
)
from rspfed.saip.identifiers import encode_iccid
from rspfed.saip.install import install_package
from rspfed.saip.personalise import Personalisation, personalise
from tests.euicc import test_isdr_download as dl
from tests.euicc.rsp_helpers import ICCID_DIGITS, IMSI, PIN1, SET1, TEMPLATE, milenage_package
from tests.euicc.test_isdr_end_to_end import download_and_enable

K, OPC = bytes.fromhex(SET1["K"]), bytes.fromhex(SET1["OPc"])
NETWORK = b"WLAN"
USIM_AID = bytes.fromhex("A0000000871002")

# A second profile, personalised with a three-digit MNC in EF.AD (TS 31.102 §4.2.18).
IMSI_3 = "310410987654321"
ICCID_3 = "89000123456789012358"


def _package_3(ef_ad: bytes = bytes.fromhex("00000003")) -> bytes:
    values = Personalisation(
        iccid=ICCID_3,
        imsi=IMSI_3,
        k=K,
        opc=OPC,
        algorithm="milenage",
        pin1=PIN1,
        files={"ef-ad": ef_ad},
    )
    return personalise(TEMPLATE, values)


def _profile_identity(package: bytes) -> tuple[str, int]:
    """IMSI and MNC length from the package's EF.IMSI / EF.AD as the SAIP installer loads them.

    The BCD is decoded here on its own (TS 31.102 §4.2.2: length octet, then
    nibbles low first, the first one the parity indicator).
    """
    adf = install_package(package).adf(USIM_AID)
    assert adf is not None
    files = {f.name: f.content for f in adf.children}
    ef_imsi, ef_ad = files["EF.IMSI"], files["EF.AD"]
    nibbles = "".join(f"{b & 0x0F:x}{b >> 4:x}" for b in ef_imsi[1 : 1 + ef_imsi[0]])
    digits = nibbles[1:].rstrip("f")
    return digits, ef_ad[3] & 0x0F


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dl.World:
    return dl.make_world(tmp_path_factory.mktemp("pki") / "pki", Curve.NIST)


@pytest.fixture(scope="module")
def euicc(tmp_path_factory: pytest.TempPathFactory, world: dl.World) -> Iterator[Euicc]:
    e = download_and_enable(
        tmp_path_factory.mktemp("euicc"), world, milenage_package(), encode_iccid(ICCID_DIGITS)
    )
    yield e
    e.close()


def _auc(seed: int, imsi: str = IMSI, k: bytes = K) -> Auc:
    auc = Auc(MemorySubscriberStore(), rand=random.Random(seed).randbytes)
    auc.provision(Subscriber(imsi, k=k, opc=OPC))
    return auc


def _fed_key() -> bytes:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    return key.public_bytes(Encoding.X962, PublicFormat.UncompressedPoint)


def _exchange(
    card: Euicc, auc: Auc, *, federation_key: bytes | None = None
) -> tuple[EapAkaPrimeServer, EapAkaPrimePeer, list[ap.Subtype]]:
    """One EAP-AKA' exchange, the server restored from its snapshot before every message."""
    imsi, mnc_length = read_usim_identity(card.card, pin=PIN1)
    identity = permanent_identity(imsi, mnc_length=mnc_length)
    peer = EapAkaPrimePeer(
        identity=identity,
        usim=eap_usim(card.card, pin=PIN1),
        network_name=NETWORK,
        federation_key=federation_key,
    )
    network = NetworkEapAuc(auc)
    server = EapAkaPrimeServer(
        identity=identity, network_name=NETWORK, auc=network, random=os.urandom
    )
    stored = server.snapshot()
    packet = server.start()
    stored = server.snapshot()
    sent: list[ap.Subtype] = []
    while (answer := peer.receive(packet)) is not None:
        subtype = ap.decode(answer).subtype
        assert subtype is not None
        sent.append(subtype)
        server = EapAkaPrimeServer.restore(stored, auc=network, random=os.urandom)
        packet = server.receive(answer)
        stored = server.snapshot()
    return EapAkaPrimeServer.restore(stored, auc=network, random=os.urandom), peer, sent


def test_identity_is_the_profiles(euicc: Euicc) -> None:
    got = read_usim_identity(euicc.card, pin=PIN1)
    assert got == _profile_identity(milenage_package())
    assert got[0] == IMSI  # the value personalised into the package


def test_three_digit_mnc(world: dl.World, tmp_path: Path) -> None:
    package = _package_3()
    e = download_and_enable(tmp_path, world, package, encode_iccid(ICCID_3))
    try:
        got = read_usim_identity(e.card, pin=PIN1)
        assert got == _profile_identity(package) == (IMSI_3, 3)
        assert permanent_identity(got[0], mnc_length=got[1]) == (
            b"6310410987654321@nai.epc.mnc410.mcc310.3gppnetwork.org"
        )
    finally:
        e.close()


def test_registration_succeeds_with_federation_key(euicc: Euicc) -> None:
    key = _fed_key()
    server, peer, sent = _exchange(euicc, _auc(1), federation_key=key)
    assert sent[-1] is ap.Subtype.AKA_CHALLENGE
    assert peer.state is PeerState.SUCCESS
    assert server.state is ServerState.SUCCESS
    assert server.msk == peer.msk
    assert server.emsk == peer.emsk
    assert server.federation_key == key


def test_resynchronisation_when_the_auc_falls_behind(euicc: Euicc) -> None:
    auc = _auc(2)
    for _ in range(4):
        server, peer, _ = _exchange(euicc, auc)
        assert server.state is ServerState.SUCCESS
    before = auc.subscriber(IMSI)
    # the record as an HSS restored from an old backup would have it: SEQ_HE and IND back to 0
    auc._store.put(attrs.evolve(before, seq_he=0, ind=0))
    server, peer, sent = _exchange(euicc, auc)
    assert sent == [ap.Subtype.SYNCHRONIZATION_FAILURE, ap.Subtype.AKA_CHALLENGE]
    assert server.state is ServerState.SUCCESS
    assert server.msk == peer.msk
    assert auc.subscriber(IMSI).seq_he > before.seq_he  # SEQ_MS from AUTS, plus one


@pytest.mark.parametrize(
    ("action", "reason"),
    [
        ("bar", RefusalReason.BARRED),
        ("remove", RefusalReason.REMOVED),
        (None, RefusalReason.UNKNOWN_SUBSCRIBER),
    ],
)
def test_refused_before_any_challenge(
    euicc: Euicc, action: str | None, reason: RefusalReason
) -> None:
    auc = _auc(3) if action else _auc(3, imsi="001019999999999")
    if action:
        getattr(auc, action)(IMSI)
    with pytest.raises(NetworkRefusedError) as info:
        _exchange(euicc, auc)
    assert info.value.reason is reason


def test_barred_during_resynchronisation(euicc: Euicc) -> None:
    auc = _auc(4)
    _exchange(euicc, auc)
    auc._store.put(attrs.evolve(auc.subscriber(IMSI), seq_he=0, ind=0))
    imsi, mnc_length = read_usim_identity(euicc.card, pin=PIN1)
    identity = permanent_identity(imsi, mnc_length=mnc_length)
    peer = EapAkaPrimePeer(identity=identity, usim=eap_usim(euicc.card, pin=PIN1))
    server = EapAkaPrimeServer(
        identity=identity, network_name=NETWORK, auc=NetworkEapAuc(auc), random=os.urandom
    )
    sync_failure = peer.receive(server.start())
    assert sync_failure is not None
    assert ap.decode(sync_failure).subtype is ap.Subtype.SYNCHRONIZATION_FAILURE
    auc.bar(IMSI)
    with pytest.raises(NetworkRefusedError) as info:
        server.receive(sync_failure)
    assert info.value.reason is RefusalReason.BARRED
    assert server.state is ServerState.FAILURE
    assert peer.receive(server.failure_packet()) is None
    assert peer.state is PeerState.FAILURE


def test_reserved_mnc_length_refused(world: dl.World, tmp_path: Path) -> None:
    package = _package_3(bytes.fromhex("00000005"))
    e = download_and_enable(tmp_path, world, package, encode_iccid(ICCID_3))
    try:
        with pytest.raises(DecodeError):
            read_usim_identity(e.card, pin=PIN1)
    finally:
        e.close()


def test_wrong_key_rejected_by_the_usim(euicc: Euicc) -> None:
    auc = _auc(5, k=bytes(16))
    server, peer, sent = _exchange(euicc, auc)
    assert sent == [ap.Subtype.AUTHENTICATION_REJECT]
    assert server.state is ServerState.FAILURE
    assert peer.state is PeerState.FAILURE


def test_identity_not_a_permanent_nai_fails_the_server() -> None:
    server = EapAkaPrimeServer(
        identity=b"7pseudonym@nai.epc.mnc001.mcc001.3gppnetwork.org",
        network_name=NETWORK,
        auc=NetworkEapAuc(_auc(6)),
        random=os.urandom,
    )
    with pytest.raises(DecodeError):
        server.start()
    assert server.state is ServerState.FAILURE


class _ScriptedCard:
    """A card (not rspfed's) answering each APDU with the next scripted response."""

    def __init__(self, responses: list[bytes]) -> None:
        self.responses = responses

    def power_on(self) -> bytes:
        return b""

    def reset(self) -> bytes:
        return b""

    def power_off(self) -> None:
        return None

    def transmit(self, apdu: bytes) -> bytes:
        return self.responses.pop(0) if self.responses else b"\x6a\x82"


@given(
    st.lists(
        st.one_of(
            st.binary(max_size=24),
            st.sampled_from([b"\x90\x00", b"\x61\x04", b"\x6c\x09", b"\x69\x82"]),
            st.binary(max_size=20).map(lambda b: b + b"\x90\x00"),
        ),
        max_size=12,
    )
)
def test_card_answers_raise_only_rspfed_errors(responses: list[bytes]) -> None:
    try:
        imsi, mnc_length = read_usim_identity(_ScriptedCard(responses), pin=PIN1)
    except RspfedError:
        return
    assert imsi.isdigit()
    assert mnc_length in (2, 3)
