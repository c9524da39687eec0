"""The UICC front end end to end: ATR, SELECT/FCP, PINs, channels, T=0 vs T=1, applets.

APDUs are written out as hex here (not built with our encoder) and responses
are split by hand, so the tests check the wire format, not our own helpers.
"""

from __future__ import annotations

import json

import pytest

from rspfed.euicc.apdu import CommandApdu, ResponseApdu, StatusError
from rspfed.euicc.card import Card
from rspfed.euicc.uicc import (
    ATR,
    ATR_T0_ONLY,
    ISD_R_AID,
    USIM_AID,
    Transmission,
    Uicc,
    UiccState,
    demo_state,
)

PIN1 = "31323334ffffffff"
PUK1 = "3132333435363738"


def tx(card: Uicc, hexapdu: str) -> tuple[bytes, int]:
    raw = card.transmit(bytes.fromhex(hexapdu.replace(" ", "")))
    assert len(raw) >= 2
    return raw[:-2], int.from_bytes(raw[-2:], "big")


def tlvs(data: bytes) -> dict[int, bytes]:
    """A minimal one-byte-tag BER-TLV splitter written for the tests."""
    out: dict[int, bytes] = {}
    i = 0
    while i < len(data):
        tag, n = data[i], data[i + 1]
        i += 2
        if n == 0x81:
            n, i = data[i], i + 1
        out[tag] = data[i : i + n]
        i += n
    assert i == len(data)
    return out


def fcp(data: bytes) -> dict[int, bytes]:
    assert data[0] == 0x62
    assert data[1] == len(data) - 2
    return tlvs(data[2:])


@pytest.fixture
def card() -> Uicc:
    return Uicc(demo_state())


def test_is_a_card(card: Uicc) -> None:
    assert isinstance(card, Card)
    assert card.power_on() == ATR
    assert card.reset() == ATR
    assert Uicc(demo_state(), transmission=Transmission.T0).power_on() == ATR_T0_ONLY


def _parse_atr(atr: bytes) -> tuple[set[int], int]:
    """Independent ISO/IEC 7816-3 §8.2 walk: offered protocols and historical byte count."""
    assert atr[0] == 0x3B
    y, k = atr[1] >> 4, atr[1] & 0x0F
    i, protocols = 2, set()
    while True:
        i += bin(y & 0x7).count("1")  # TA, TB, TC
        if not y & 0x8:
            break
        td = atr[i]
        i += 1
        protocols.add(td & 0x0F)
        y = td >> 4
    assert len(atr) == i + k + (1 if protocols - {0} else 0)
    if protocols - {0}:
        x = 0
        for b in atr[1:]:
            x ^= b
        assert x == 0, "TCK"
    return protocols, k


def test_atr_structure() -> None:
    assert _parse_atr(ATR) == ({0, 1, 15}, 7)
    assert _parse_atr(ATR_T0_ONLY) == ({0, 15}, 7)
    assert ATR[3] & 0x0F == 0  # T=0 is the first offered protocol (the default)


def test_select_mf_fcp(card: Uicc) -> None:
    data, sw = tx(card, "00 A4 00 04 02 3F00 00")
    assert sw == 0x9000
    f = fcp(data)
    assert f[0x82] == bytes.fromhex("7821")
    assert f[0x83] == bytes.fromhex("3F00")
    assert f[0x8A] == b"\x05"
    assert 0xC6 in f
    assert f[0xC6][0] == 0x90  # PS_DO first


def test_select_ef_fcp_and_read_iccid(card: Uicc) -> None:
    data, sw = tx(card, "00 A4 00 04 02 2FE2 00")
    assert sw == 0x9000
    f = fcp(data)
    assert f[0x82] == bytes.fromhex("4121")  # shareable working transparent EF
    assert f[0x80] == b"\x00\x0a"
    assert f[0x88] == bytes((0x02 << 3,))
    data, sw = tx(card, "00 B0 0000 0A")
    assert sw == 0x9000
    assert data == bytes.fromhex("98001032547698103214")


def test_usim_by_partial_aid_and_pin(card: Uicc) -> None:
    data, sw = tx(card, "00 A4 04 04 07 A0000000871002 00")
    assert sw == 0x9000
    assert fcp(data)[0x84] == USIM_AID
    _, sw = tx(card, "00 A4 00 0C 02 6F07")
    assert sw == 0x9000
    assert tx(card, "00 B0 0000 00")[1] == 0x6982
    assert tx(card, "00 20 00 01 08 " + PIN1) == (b"", 0x9000)
    data, sw = tx(card, "00 B0 0000 00")
    assert (data, sw) == (bytes.fromhex("080910101032547698"), 0x9000)


def test_malformed_gives_status_words(card: Uicc) -> None:
    assert tx(card, "")[1] == 0x6700
    assert tx(card, "00A4")[1] == 0x6700
    assert tx(card, "00 A4 00 00 05 3F00")[1] == 0x6700
    assert tx(card, "00 FE 00 00")[1] == 0x6D00
    assert tx(card, "A0 A4 00 00 02 3F00")[1] == 0x6E00
    assert tx(card, "01 A4 00 00 02 3F00")[1] == 0x6881


def test_t0_get_response_reassembles_t1_answer() -> None:
    t1 = Uicc(demo_state())
    t0 = Uicc(demo_state(), transmission=Transmission.T0)
    full, sw = tx(t1, "00 A4 04 04 10 " + USIM_AID.hex() + " 00")
    assert sw == 0x9000
    data, sw = tx(t0, "00 A4 04 04 10 " + USIM_AID.hex())
    assert data == b""
    assert sw >> 8 == 0x61
    assert sw & 0xFF == len(full)
    assert tx(t0, f"00 C0 00 00 {len(full) + 1:02X}")[1] == 0x6C00 | len(full)
    data, sw = tx(t0, f"00 C0 00 00 {len(full):02X}")
    assert (data, sw) == (full, 0x9000)


def test_state_round_trips_through_json(card: Uicc) -> None:
    tx(card, "00 A4 04 04 10 " + USIM_AID.hex())
    tx(card, "00 20 00 01 08 3030303030303030")
    state = card.snapshot()
    again = UiccState.from_dict(json.loads(json.dumps(state.to_dict())))
    assert again == state
    assert Uicc(again).snapshot() == state


class EchoApplet:
    """A test applet: echoes the data it gets and records what it saw."""

    def __init__(self, aid: bytes) -> None:
        self._aid = aid
        self.seen: list[tuple[int, CommandApdu]] = []
        self.selected: set[int] = set()

    @property
    def aid(self) -> bytes:
        return self._aid

    def select(self, channel: int, command: CommandApdu) -> ResponseApdu:
        self.selected.add(channel)
        return ResponseApdu(bytes.fromhex("6F03840100"))

    def deselect(self, channel: int) -> None:
        self.selected.discard(channel)

    def process(self, channel: int, command: CommandApdu) -> ResponseApdu:
        self.seen.append((channel, command))
        if command.ins == 0xCA:
            raise StatusError(0x6A88)
        return ResponseApdu(command.data)

    def reset(self) -> None:
        self.selected.clear()


def test_store_data_chaining_into_applet() -> None:
    applet = EchoApplet(ISD_R_AID)
    card = Uicc(demo_state(), applets=[applet])
    assert tx(card, "00 70 00 00 01") == (b"\x01", 0x9000)
    _, sw = tx(card, "01 A4 04 00 10 " + ISD_R_AID.hex() + " 00")
    assert sw == 0x9000
    assert applet.selected == {1}
    blocks = [bytes([i]) * 200 for i in range(3)]
    assert tx(card, "81 E2 11 00 C8 " + blocks[0].hex()) == (b"", 0x9000)
    assert tx(card, "81 E2 11 01 C8 " + blocks[1].hex()) == (b"", 0x9000)
    data, sw = tx(card, "81 E2 91 02 C8 " + blocks[2].hex() + " 00")
    whole = b"".join(blocks)
    assert data == whole[:256]
    assert sw == 0x6100
    rest, sw = tx(card, "01 C0 00 00 00")
    assert data + rest == whole[:512]
    assert sw == 0x6100 | (600 - 512)
    rest2, sw = tx(card, "01 C0 00 00 00")
    assert data + rest + rest2 == whole
    assert sw == 0x9000
    assert len(applet.seen) == 1
    channel, command = applet.seen[0]
    assert channel == 1
    assert command.data == whole
    assert command.p1 == 0x91
    # a block out of sequence aborts the chain
    assert tx(card, "81 E2 11 05 01 AA")[1] == 0x6A86
    # an applet's status word comes through
    assert tx(card, "81 CA 00 5A 00")[1] == 0x6A88
    # closing the channel deselects the applet
    assert tx(card, "00 70 80 01") == (b"", 0x9000)
    assert applet.selected == set()
