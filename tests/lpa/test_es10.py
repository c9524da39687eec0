"""The ES10 links: in process, APDUs to a real software eUICC card, PC/SC through vpcd."""

from __future__ import annotations

import os

import pytest

from rspfed import asn1
from rspfed.asn1 import rsp
from rspfed.errors import ProtocolError, RspfedError, TransportError, UsageError
from rspfed.euicc.euicc import Euicc
from rspfed.euicc.uicc import Transmission
from rspfed.lpa import ISD_R_AID, ApduEs10, Es10, InProcessEs10, Lpa, PcscEs10


class Recorder:
    """A card wrapper that keeps every APDU exchanged (the card itself is real)."""

    def __init__(self, card: object) -> None:
        self.card = card
        self.log: list[tuple[bytes, bytes]] = []

    def transmit(self, apdu: bytes) -> bytes:
        response: bytes = self.card.transmit(apdu)  # type: ignore[attr-defined]
        self.log.append((apdu, response))
        return response


def test_links_are_es10() -> None:
    assert issubclass(InProcessEs10, Es10)
    assert issubclass(ApduEs10, Es10)
    assert issubclass(PcscEs10, Es10)


def test_apdu_and_in_process_agree(euicc: Euicc) -> None:
    apdu = ApduEs10(euicc.card)
    direct = InProcessEs10(euicc.isdr)
    for request in ("BF2000", "BF2200", "BF2D00", "BF3C00", "BF3E035C015A"):
        assert apdu.transceive(bytes.fromhex(request)) == direct.transceive(bytes.fromhex(request))
    apdu.close()


@pytest.mark.parametrize("transmission", [Transmission.T0, Transmission.T1])
def test_channel_select_chaining_and_get_response(euicc: Euicc, transmission: Transmission) -> None:
    euicc.uicc.transmission = transmission
    card = Recorder(euicc.card)
    link = ApduEs10(card)
    # a long request (> 2 blocks): GetProfilesInfo with a long tagList
    tags = bytes.fromhex("5A4F9F70909192939495B6B7B899") * 40
    request = asn1.encode(rsp.ProfileInfoListRequest({"tagList": tags}))
    assert len(request) > 2 * 255
    answer = link.transceive(request)
    assert asn1.decode(rsp.ProfileInfoListResponse, answer).name == "profileInfoListOk"
    info2 = link.transceive(bytes.fromhex("BF2200"))
    assert info2 == euicc.isdr.handle(bytes.fromhex("BF2200"))
    link.close()

    apdus = [a for a, _ in card.log]
    # MANAGE CHANNEL open, SELECT ISD-R on the new channel
    assert apdus[0] == bytes.fromhex("0070000001")
    channel = card.log[0][1][0]
    assert channel != 0
    assert apdus[1][1:4] == b"\xa4\x04\x00"
    assert ISD_R_AID in apdus[1]
    assert apdus[1][0] & 0x03 == channel
    stores = [a for a in apdus if a[1] == 0xE2]
    blocks = [a for a in stores if a[2] in (0x11, 0x91)]
    assert [a[2] for a in blocks[:4]] == [0x11, 0x11, 0x91, 0x91][: len(blocks[:4])]
    first = [a for a in blocks if a[3] <= 2][:3]
    assert [a[3] for a in first] == [0, 1, 2]
    assert all(a[4] <= 255 for a in stores)
    assert b"".join(a[5 : 5 + a[4]] for a in first) == request
    # over T=0 the card gives every answer through GET RESPONSE (61xx)
    if transmission is Transmission.T0:
        assert any(a[1] == 0xC0 for a in apdus)
    # the channel was closed at the end
    assert apdus[-1] == bytes([0x00, 0x70, 0x80, channel])


def test_basic_channel(euicc: Euicc) -> None:
    card = Recorder(euicc.card)
    link = ApduEs10(card, use_channel=False)
    link.transceive(bytes.fromhex("BF2000"))
    assert all(a[0] & 0x03 == 0 for a, _ in card.log)
    assert not any(a[1] == 0x70 for a, _ in card.log)


def test_malformed_request_is_a_protocol_error(euicc: Euicc) -> None:
    for link in (ApduEs10(euicc.card), InProcessEs10(euicc.isdr)):
        with pytest.raises(ProtocolError):
            link.transceive(bytes.fromhex("BF2D03FFFFFF"))
        with pytest.raises(RspfedError):
            link.transceive(b"\x30\x00")


def test_empty_or_huge_request(euicc: Euicc) -> None:
    link = ApduEs10(euicc.card)
    with pytest.raises(UsageError):
        link.transceive(b"")
    with pytest.raises(UsageError):
        link.transceive(b"\x00" * (255 * 256 + 1))


class WrongLeCard:
    """A minimal stand-in card that insists on Le = 4 (6C04), then answers 4 bytes."""

    def __init__(self) -> None:
        self.seen: list[bytes] = []

    def transmit(self, apdu: bytes) -> bytes:
        self.seen.append(apdu)
        if apdu[1] == 0x70:
            return b"\x6a\x81"  # no free channel: the LPA stays on the basic channel
        if apdu[1] == 0xA4:
            return b"\x90\x00"
        if apdu[1] == 0xE2 and apdu[-1] != 0x04:
            return b"\x6c\x04"
        return b"\xbf\x20\x00\x00" + b"\x61\x02" if apdu[1] == 0xE2 else b"\x01\x02\x90\x00"


def test_6cxx_repeats_with_le_and_61xx_collects() -> None:
    card = WrongLeCard()
    answer = ApduEs10(card).transceive(bytes.fromhex("BF2000"))
    assert answer == b"\xbf\x20\x00\x00\x01\x02"
    store = [a for a in card.seen if a[1] == 0xE2]
    assert store[0][-1] == 0x00
    assert store[1][-1] == 0x04
    assert card.seen[-1] == bytes.fromhex("00C0000002")


class DeadCard:
    def transmit(self, apdu: bytes) -> bytes:
        return b""


def test_dead_card_is_a_transport_error() -> None:
    with pytest.raises(TransportError):
        ApduEs10(DeadCard()).transceive(bytes.fromhex("BF2000"))


def test_lpa_over_apdus(euicc: Euicc) -> None:
    lpa = Lpa(ApduEs10(euicc.card))
    assert lpa.eid() == euicc.eid.upper()
    assert lpa.profiles() == []
    assert lpa.notifications() == []
    assert lpa.default_smdp_address() is None
    with pytest.raises(UsageError):
        lpa.enable("89000000000000000007")
    with pytest.raises(UsageError):
        lpa.enable("123")


# -- PC/SC -----------------------------------------------------------------------


def test_pcsc_unknown_reader() -> None:
    try:
        from tests.euicc.test_vpcd import _pcsc_unavailable
    except ImportError:  # pragma: no cover
        pytest.skip("vpcd test helpers missing")
    if _pcsc_unavailable() is not None and os.environ.get("CI") != "true":
        pytest.skip("PC/SC not available")
    with pytest.raises(TransportError):
        PcscEs10("No Such Reader 99")


@pytest.mark.timeout(60)
def test_pcsc_es10_against_a_served_euicc(euicc: Euicc) -> None:
    from tests.euicc.test_vpcd import serve_card

    with serve_card(euicc.card) as served, PcscEs10(served.reader_name) as link:
        direct = InProcessEs10(euicc.isdr)
        for request in ("BF2000", "BF2200", "BF2D00", "BF3E035C015A"):
            assert link.transceive(bytes.fromhex(request)) == direct.transceive(
                bytes.fromhex(request)
            )
        lpa = Lpa(link)
        assert lpa.eid() == euicc.eid.upper()
