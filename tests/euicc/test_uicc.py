"""The UICC front end end to end: ATR, SELECT/FCP, PINs, channels, T=0 vs T=1, applets.

APDUs are written out as hex here (not built with our encoder) and responses
are split by hand, so the tests check the wire format, not our own helpers.
"""

from __future__ import annotations

import json

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from rspfed.errors import DecodeError, IntegrityError, UsageError
from rspfed.euicc.apdu import CommandApdu, ResponseApdu, StatusError
from rspfed.euicc.card import Card
from rspfed.euicc.fs import FileStructure
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

TS_ = FileStructure.TRANSPARENT
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
    assert tx(t0, "00 C0 00 00")[1] == 0x6700  # GET RESPONSE is a case 2 command
    assert tx(t0, "00 C0 00 01 00")[1] == 0x6A86
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

    def __init__(self, aid: bytes, *, faulty: bool = False) -> None:
        self._aid = aid
        self.faulty = faulty
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
        if command.ins == 0xCB:
            raise DecodeError("not DER", type_name="Test", offset=0)
        if command.ins == 0xCC and self.faulty:
            raise IntegrityError("bad MAC")
        return ResponseApdu(command.data)

    def reset(self) -> None:
        self.selected.clear()


def test_store_data_chaining_into_applet() -> None:
    applet = EchoApplet(ISD_R_AID, faulty=True)
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
    rest2, sw = tx(card, "81 C0 00 00 00")  # the proprietary class works too (LPAs use it)
    assert data + rest + rest2 == whole
    assert sw == 0x9000
    assert len(applet.seen) == 1
    channel, command = applet.seen[0]
    assert channel == 1
    assert command.data == whole
    assert command.p1 == 0x91
    # a block out of sequence aborts the chain
    assert tx(card, "81 E2 11 05 01 AA")[1] == 0x6A86
    # an applet's status word comes through; DecodeError is 6A80; other errors 6F00
    assert tx(card, "81 CA 00 5A 00")[1] == 0x6A88
    assert tx(card, "81 CB 00 5A 00")[1] == 0x6A80
    assert tx(card, "81 CC 00 5A 00")[1] == 0x6F00
    # closing the channel deselects the applet
    assert tx(card, "00 70 80 01") == (b"", 0x9000)
    assert applet.selected == set()


# -- robustness: nothing but status words comes out ---------------------------------

VALID_SW1 = set(range(0x61, 0x70)) | set(range(0x90, 0xA0))


def _assert_response(raw: bytes) -> None:
    assert len(raw) >= 2
    assert raw[-2] in VALID_SW1
    # 6F00 is the card's last resort for an internal failure: a bug here
    assert raw[-2:] != b"\x6f\x00"


@given(st.lists(st.binary(max_size=300), max_size=8), st.sampled_from(list(Transmission)))
def test_any_bytes_answer_with_a_status_word(
    apdus: list[bytes], transmission: Transmission
) -> None:
    card = Uicc(demo_state(), transmission=transmission, applets=[EchoApplet(ISD_R_AID)])
    for apdu in apdus:
        _assert_response(card.transmit(apdu))


INS = [
    0xA4,
    0xB0,
    0xD6,
    0xB2,
    0xDC,
    0xA2,
    0x20,
    0x24,
    0x26,
    0x28,
    0x2C,
    0x88,
    0x70,
    0xC0,
    0x04,
    0x44,
    0xF2,
    0x10,
    0xE2,
]


@st.composite
def plausible_apdus(draw: st.DrawFn) -> bytes:
    cla = draw(st.sampled_from([0x00, 0x01, 0x02, 0x03, 0x40, 0x4F, 0x80, 0x81, 0xC1, 0x0C, 0x10]))
    ins = draw(st.sampled_from(INS))
    p1 = draw(
        st.sampled_from([0x00, 0x01, 0x03, 0x04, 0x08, 0x09, 0x11, 0x80, 0x87, 0x91])
        | st.integers(0, 255)
    )
    p2 = draw(
        st.sampled_from([0x00, 0x01, 0x02, 0x03, 0x04, 0x0C, 0x81, 0x0A, 0x3C])
        | st.integers(0, 255)
    )
    data = draw(
        st.sampled_from(
            [
                b"",
                bytes.fromhex("3F00"),
                bytes.fromhex("2FE2"),
                bytes.fromhex("6F07"),
                bytes.fromhex("7FFF6F07"),
                USIM_AID[:7],
                ISD_R_AID,
                bytes.fromhex("31323334ffffffff"),
                bytes.fromhex("31323334ffffffff" * 2),
            ]
        )
        | st.binary(max_size=40)
    )
    le = draw(st.none() | st.integers(0, 255))
    out = bytes([cla, ins, p1, p2])
    if data:
        out += bytes([len(data)]) + data
    if le is not None:
        out += bytes([le])
    return out


@given(st.lists(plausible_apdus(), max_size=25), st.sampled_from(list(Transmission)))
def test_plausible_sequences_answer_with_status_words(
    apdus: list[bytes], transmission: Transmission
) -> None:
    card = Uicc(demo_state(), transmission=transmission, applets=[EchoApplet(ISD_R_AID)])
    for apdu in apdus:
        _assert_response(card.transmit(apdu))
    # the persistent state stays serialisable whatever happened
    state = card.snapshot()
    assert UiccState.from_dict(json.loads(json.dumps(state.to_dict()))) == state


# -- logical channels --------------------------------------------------------------


def cla_for(channel: int) -> str:
    return f"{channel:02X}" if channel < 4 else f"{0x40 | (channel - 4):02X}"


class ChannelMachine(RuleBasedStateMachine):
    """MANAGE CHANNEL against a model: a set of open channels, lowest free assigned."""

    def __init__(self) -> None:
        super().__init__()
        self.card = Uicc(demo_state())
        self.open = {0}

    @rule(origin=st.integers(0, 19))
    def open_any(self, origin: int) -> None:
        data, sw = tx(self.card, cla_for(origin) + "70 00 00 01")
        if origin not in self.open:
            assert sw == 0x6881
            return
        free = [c for c in range(1, 20) if c not in self.open]
        if not free:
            assert sw == 0x6A81
            return
        assert (data, sw) == (bytes([free[0]]), 0x9000)
        self.open.add(free[0])

    @rule(channel=st.integers(1, 21))
    def open_given(self, channel: int) -> None:
        data, sw = tx(self.card, f"00 70 00 {channel:02X}")
        if channel > 19:
            assert sw == 0x6881
        elif channel in self.open:
            assert sw == 0x6985
        else:
            assert (data, sw) == (b"", 0x9000)
            self.open.add(channel)

    @rule(channel=st.integers(0, 19), via=st.integers(0, 19))
    def close(self, channel: int, via: int) -> None:
        _, sw = tx(self.card, cla_for(via) + f"70 80 {channel:02X}")
        if via not in self.open:
            assert sw == 0x6881
        elif channel == 0 and via == 0:
            assert sw == 0x6A86
        elif channel == 0:  # P2 = 00: the channel of CLA
            assert sw == 0x9000
            self.open.discard(via)
        elif channel not in self.open:
            assert sw == 0x6881
        else:
            assert sw == 0x9000
            self.open.discard(channel)

    @rule(channel=st.integers(0, 19))
    def use(self, channel: int) -> None:
        _, sw = tx(self.card, cla_for(channel) + "A4 00 0C 02 2FE2")
        assert sw == (0x9000 if channel in self.open else 0x6881)

    @rule()
    def reset(self) -> None:
        self.card.reset()
        self.open = {0}

    @invariant()
    def agrees(self) -> None:
        assert self.card.open_channels == self.open


TestChannels = ChannelMachine.TestCase


def test_channels_have_their_own_file_context(card: Uicc) -> None:
    assert tx(card, "00 70 00 00 01") == (b"\x01", 0x9000)
    tx(card, "00 A4 04 0C 10 " + USIM_AID.hex())
    tx(card, "00 20 00 01 08 " + PIN1)
    tx(card, "00 A4 00 0C 02 6F07")
    tx(card, "01 A4 00 0C 02 2FE2")
    assert tx(card, "00 B0 00 00 01")[0] == b"\x08"  # EF.IMSI on channel 0
    assert tx(card, "01 B0 00 00 01")[0] == b"\x98"  # EF.ICCID on channel 1
    # a channel opened from channel 0 starts at the MF; from another channel it inherits
    assert tx(card, "00 70 00 00 01")[0] == b"\x02"
    assert tx(card, "02 B0 00 00 01")[1] == 0x6986
    assert tx(card, "01 70 00 00 01")[0] == b"\x03"
    assert tx(card, "03 B0 00 00 01")[0] == b"\x98"
    # extended channel via CLA 4X
    assert tx(card, "00 70 00 05") == (b"", 0x9000)
    assert tx(card, "41 A4 00 0C 02 2FE2")[1] == 0x9000
    assert tx(card, "41 B0 00 00 01")[0] == b"\x98"
    # warm reset closes everything but the basic channel
    card.reset()
    assert card.open_channels == {0}
    assert tx(card, "41 B0 00 00 01")[1] == 0x6881


# -- PINs ----------------------------------------------------------------------------


def test_pin_retry_counter_block_and_unblock(card: Uicc) -> None:
    wrong = "3939393939393939"
    assert tx(card, "00 20 00 01")[1] == 0x63C3
    assert tx(card, "00 20 00 01 08 " + wrong)[1] == 0x63C2
    assert tx(card, "00 20 00 01 08 " + PIN1)[1] == 0x9000  # a good PIN resets the counter
    assert tx(card, "00 20 00 01")[1] == 0x9000  # verified
    for left in (2, 1, 0):
        assert tx(card, "00 20 00 01 08 " + wrong)[1] == 0x63C0 | left
    assert tx(card, "00 20 00 01 08 " + PIN1)[1] == 0x6983  # blocked, even with the good PIN
    assert tx(card, "00 20 00 01")[1] == 0x6983
    tx(card, "00 A4 04 0C 10 " + USIM_AID.hex())
    tx(card, "00 A4 00 0C 02 6F07")
    assert tx(card, "00 B0 00 00 01")[1] == 0x6982  # the failed attempts cleared the status
    # UNBLOCK: PUK counter, then a good PUK with a new PIN
    assert tx(card, "00 2C 00 01")[1] == 0x63CA
    assert tx(card, "00 2C 00 01 10 " + wrong + "3535353535ffffff")[1] == 0x63C9
    assert tx(card, "00 2C 00 01 10 " + PUK1 + "3535353535ffffff")[1] == 0x9000
    assert tx(card, "00 B0 00 00 01")[0] == b"\x08"  # unblocking verifies
    assert tx(card, "00 20 00 01")[1] == 0x9000
    card.reset()
    assert tx(card, "00 20 00 01")[1] == 0x63C3
    assert tx(card, "00 20 00 01 08 " + PIN1)[1] == 0x63C2  # the old PIN is gone
    assert tx(card, "00 20 00 01 08 3535353535ffffff")[1] == 0x9000
    # the counters are persistent
    state = card.snapshot()
    pin = next(p for p in state.pins if p.key_ref == 0x01)
    assert pin.tries_left == 3
    assert pin.puk_tries_left == 10


def test_puk_exhaustion(card: Uicc) -> None:
    wrong = "3939393939393939"
    for left in range(9, -1, -1):
        assert tx(card, "00 2C 00 01 10 " + wrong + PIN1)[1] == 0x63C0 | left
    assert tx(card, "00 2C 00 01 10 " + PUK1 + PIN1)[1] == 0x6983
    assert tx(card, "00 2C 00 01")[1] == 0x6983


def test_change_disable_enable(card: Uicc) -> None:
    new = "3030303030303030"
    assert tx(card, "00 24 00 01 10 " + PIN1 + new)[1] == 0x9000
    card.reset()
    assert tx(card, "00 20 00 01 08 " + new)[1] == 0x9000
    assert tx(card, "00 26 00 01 08 " + new)[1] == 0x9000  # disable
    card.reset()
    # PIN1 disabled: PIN1-protected files are readable without VERIFY
    tx(card, "00 A4 04 0C 10 " + USIM_AID.hex())
    tx(card, "00 A4 00 0C 02 6F07")
    assert tx(card, "00 B0 00 00 01")[0] == b"\x08"
    data, _ = tx(card, "00 A4 00 04 02 7FFF 00")
    ps_do = tlvs(fcp(data)[0xC6])[0x90]
    assert ps_do == b"\x60"  # PIN1 disabled; PIN2 and ADM1 enabled
    assert tx(card, "00 28 00 01 08 " + new)[1] == 0x9000  # enable
    assert tx(card, "00 26 00 0A 08 3838383838383838")[1] == 0x6985  # ADM cannot be disabled
    assert tx(card, "00 20 00 05 08 " + new)[1] == 0x6A88
    assert tx(card, "00 20 00 01 04 31323334")[1] == 0x6700


# -- files: access rules, binary and record commands --------------------------------


def test_update_binary_needs_adm(card: Uicc) -> None:
    tx(card, "00 A4 04 0C 10 " + USIM_AID.hex())
    tx(card, "00 20 00 01 08 " + PIN1)
    assert tx(card, "00 D6 87 00 02 0910")[1] == 0x6982  # EF.IMSI by SFI 7: ADM
    assert tx(card, "00 20 00 0A 08 3838383838383838")[1] == 0x9000
    assert tx(card, "00 D6 87 01 02 AABB")[1] == 0x9000
    assert tx(card, "00 B0 87 00 04")[0] == bytes.fromhex("08AABB10")
    assert tx(card, "00 D6 00 08 02 AABB")[1] == 0x6700  # past the end
    assert tx(card, "00 D6 00 09 01 AA")[1] == 0x6B00
    assert tx(card, "00 B0 00 09 01")[1] == 0x6B00
    assert tx(card, "00 B0 00 07 04") == (bytes.fromhex("7698"), 0x6282)  # short read warned
    assert tx(card, "00 B0 00 07 00") == (bytes.fromhex("7698"), 0x9000)  # Le 00: all there is
    # EF.ICCID: update never allowed
    tx(card, "00 A4 00 0C 02 3F00")
    assert tx(card, "00 D6 82 00 01 00")[1] == 0x6982
    # records are not transparent
    assert tx(card, "00 B0 9E 00 00")[1] == 0x6981
    assert tx(card, "00 B0 00 00 00")[1] == 0x6981  # current EF is now EF.DIR
    assert tx(card, "00 B0 9D 00 00")[1] == 0x6A82  # no SFI 29


def _record_card(transmission: Transmission = Transmission.T1) -> Uicc:
    from rspfed.euicc.fs import (
        AccessCondition,
        AccessRules,
        FileSpec,
        FileStructure,
        FileSystemSpec,
    )

    alw = AccessRules(read=AccessCondition.ALW, update=AccessCondition.ALW)
    base = demo_state()
    mf = base.fs.mf
    mf = attrs.evolve(
        mf,
        children=(
            *mf.children,
            FileSpec(
                0x2F10,
                FileStructure.LINEAR_FIXED,
                records=(b"\x01\x01", b"\x02\x02", b"\x03\x03"),
                sfi=16,
                access=alw,
            ),
            FileSpec(
                0x2F11,
                FileStructure.CYCLIC,
                records=(b"\x0a", b"\x0b", b"\x0c"),
                sfi=17,
                access=alw,
            ),
        ),
    )
    return Uicc(attrs.evolve(base, fs=FileSystemSpec(mf, base.fs.adfs)), transmission=transmission)


def test_linear_fixed_records() -> None:
    card = _record_card()
    assert tx(card, "00 B2 02 84 00") == (b"\x02\x02", 0x9000)  # absolute, SFI 16
    assert tx(card, "00 B2 00 04 00")[1] == 0x6A83  # no current record yet
    assert tx(card, "00 B2 00 02 00") == (b"\x01\x01", 0x9000)  # next: first
    assert tx(card, "00 B2 00 02 00") == (b"\x02\x02", 0x9000)
    assert tx(card, "00 B2 00 04 00") == (b"\x02\x02", 0x9000)  # current
    assert tx(card, "00 B2 00 02 00") == (b"\x03\x03", 0x9000)
    assert tx(card, "00 B2 00 02 00")[1] == 0x6A83  # no wrap on linear fixed
    assert tx(card, "00 B2 00 03 00") == (b"\x02\x02", 0x9000)  # previous
    assert tx(card, "00 B2 04 04 00")[1] == 0x6A83
    assert tx(card, "00 B2 01 04 05")[1] == 0x6C02  # wrong Le: exact length
    assert tx(card, "00 B2 01 04 02") == (b"\x01\x01", 0x9000)
    assert tx(card, "00 DC 03 04 02 3333")[1] == 0x9000
    assert tx(card, "00 DC 03 04 01 33")[1] == 0x6700
    assert tx(card, "00 B2 03 04 00") == (b"\x33\x33", 0x9000)
    assert tx(card, "00 DC 00 03 02 2222")[1] == 0x9000  # previous from record 3 (set by update)
    assert tx(card, "00 B2 02 04 00") == (b"\x22\x22", 0x9000)
    assert tx(card, "00 B2 01 05 00")[1] == 0x6A86  # bad mode
    assert tx(card, "00 A2 01 04 01 22 00")[0] == b"\x02"  # SEARCH RECORD forward from 1
    assert tx(card, "00 A2 03 05 01 01 00")[0] == b"\x01"  # backward from 3


def test_cyclic_records() -> None:
    card = _record_card()
    assert tx(card, "00 B2 01 8C 00") == (b"\x0a", 0x9000)  # record 1 = newest
    assert tx(card, "00 DC 00 8B 01 0d")[1] == 0x9000  # PREVIOUS: overwrite the oldest
    assert [tx(card, f"00 B2 {n:02X} 04 00")[0] for n in (1, 2, 3)] == [b"\x0d", b"\x0a", b"\x0b"]
    assert tx(card, "00 DC 01 04 01 0e")[1] == 0x6A86  # absolute update not allowed on cyclic
    # next wraps around on a cyclic file
    assert [tx(card, "00 B2 00 02 00")[0] for _ in range(4)] == [b"\x0a", b"\x0b", b"\x0d", b"\x0a"]


def test_t0_wrong_le_is_6c() -> None:
    card = _record_card(Transmission.T0)
    assert tx(card, "00 B2 01 84 00")[1] == 0x6C02  # P3 = 00 means 256 on T=0
    assert tx(card, "00 B2 01 84 02") == (b"\x01\x01", 0x9000)
    tx(card, "00 A4 00 0C 02 2FE2")
    assert tx(card, "00 B0 00 00 00")[1] == 0x6C0A
    assert tx(card, "00 B0 00 00 0A")[0] == bytes.fromhex("98001032547698103214")
    assert tx(card, "00 B0 0000 00 000A")[1] == 0x6700  # no extended length on T=0


def test_select_paths_and_status(card: Uicc) -> None:
    # before any application: 7FFF is unknown
    assert tx(card, "00 A4 08 0C 04 7FFF 6F07")[1] == 0x6A82
    tx(card, "00 A4 04 0C 07 " + USIM_AID[:7].hex())
    tx(card, "00 A4 00 0C 02 3F00")
    data, sw = tx(card, "00 A4 08 04 04 7FFF 6F07 00")  # path from the MF through the current ADF
    assert sw == 0x9000
    assert fcp(data)[0x83] == b"\x6f\x07"
    assert fcp(data)[0x88] == b"\x38"
    assert tx(card, "00 A4 09 0C 02 6FAD")[1] == 0x9000  # path from the current DF (the ADF)
    assert tx(card, "00 A4 08 0C 02 2FE2")[1] == 0x9000
    assert tx(card, "00 A4 08 0C 04 3F00 2FE2")[1] == 0x9000  # a leading 3F00 is tolerated
    assert tx(card, "00 A4 03 0C")[1] == 0x9000  # parent of the current DF
    assert tx(card, "80 F2 00 01 00") == (b"\x84\x10" + USIM_AID, 0x9000)
    data, sw = tx(card, "80 F2 00 00 00")
    assert fcp(data)[0x83] == b"\x3f\x00"
    assert tx(card, "00 F2 00 00 00")[1] == 0x6E00  # STATUS is a proprietary-class command
    assert tx(card, "80 B0 00 00 00")[1] == 0x6E00
    assert tx(card, "00 A4 00 0C 02 6F99")[1] == 0x6A82
    assert tx(card, "00 A4 05 0C 02 6F07")[1] == 0x6A86
    assert tx(card, "0C A4 00 0C 02 2FE2")[1] == 0x6882
    assert tx(card, "10 A4 00 0C 02 2FE2")[1] == 0x6884


def test_deactivate_and_activate(card: Uicc) -> None:
    tx(card, "00 A4 04 0C 10 " + USIM_AID.hex())
    tx(card, "00 20 00 01 08 " + PIN1)
    tx(card, "00 A4 00 0C 02 6FAD")
    assert tx(card, "00 04 00 00")[1] == 0x6982  # needs ADM1
    tx(card, "00 20 00 0A 08 3838383838383838")
    assert tx(card, "00 04 00 00")[1] == 0x9000
    data, sw = tx(card, "00 A4 00 04 02 6FAD 00")
    assert sw == 0x6283
    assert fcp(data)[0x8A] == b"\x04"
    assert tx(card, "00 B0 00 00 00")[1] == 0x6283
    assert tx(card, "00 44 00 00 02 6FAD")[1] == 0x9000
    assert tx(card, "00 B0 00 00 00")[1] == 0x9000


def test_select_next_occurrence_and_applets() -> None:
    a1 = EchoApplet(bytes.fromhex("A000000559101001"))
    a2 = EchoApplet(bytes.fromhex("A000000559101002"))
    card = Uicc(demo_state(), applets=[a1, a2])
    with pytest.raises(UsageError):
        card.register_applet(EchoApplet(a1.aid))
    assert tx(card, "00 A4 04 00 07 A0000005591010 00")[1] == 0x9000
    assert a1.selected == {0}
    assert tx(card, "00 A4 04 02 07 A0000005591010 00")[1] == 0x9000
    assert (a1.selected, a2.selected) == (set(), {0})
    assert tx(card, "00 A4 04 02 07 A0000005591010 00")[1] == 0x6A82
    # while an applet is selected it gets the commands of its channel
    assert tx(card, "80 CA 00 5A 00")[1] == 0x6A88
    assert tx(card, "00 B0 00 00 00 ")[1] == 0x9000  # the echo applet answers
    # selecting a file through SELECT by AID of an ADF deselects the applet
    assert tx(card, "00 A4 04 0C 07 A0000000871002")[1] == 0x9000
    assert a2.selected == set()
    assert tx(card, "00 A4 04 00 00")[1] == 0x6A82


@given(st.integers(0, 1500), st.sampled_from([0x00, 0x01, 0x10, 0xFF]))
def test_long_responses_t0_equals_t1(size: int, le: int) -> None:
    payload = bytes(i & 0xFF for i in range(size))
    answers = []
    for transmission in Transmission:
        card = Uicc(demo_state(), transmission=transmission, applets=[EchoApplet(ISD_R_AID)])
        tx(card, "00 A4 04 0C 10 " + ISD_R_AID.hex())
        # the payload goes in as a STORE DATA sequence and comes back as one answer
        chunks = [payload[i : i + 255] for i in range(0, len(payload), 255)] or [b""]
        got = b""
        for n, chunk in enumerate(chunks):
            last = n == len(chunks) - 1
            apdu = bytes([0x80, 0xE2, 0x91 if last else 0x11, n]) + (
                bytes([len(chunk)]) + chunk if chunk else b""
            )
            if transmission is Transmission.T1:
                apdu += bytes([le])
            raw = card.transmit(apdu)
            if not last:
                assert raw == b"\x90\x00"
        got, sw = raw[:-2], int.from_bytes(raw[-2:], "big")
        while sw >> 8 in (0x61, 0x6C):
            if sw >> 8 == 0x6C:
                raw = card.transmit(bytes([0x00, 0xC0, 0, 0, sw & 0xFF]))
            else:
                raw = card.transmit(bytes([0x00, 0xC0, 0, 0, le if le else 0]))
            got, sw = got + raw[:-2], int.from_bytes(raw[-2:], "big")
        assert sw == 0x9000
        answers.append(got)
    assert answers[0] == answers[1] == payload


# -- model-based: binary and record commands against plain Python models -----------

binary_ops = st.lists(
    st.tuples(
        st.booleans(), st.integers(0, 70), st.binary(min_size=1, max_size=40), st.integers(0, 255)
    ),
    max_size=30,
)


@given(st.binary(min_size=1, max_size=64), binary_ops, st.booleans())
def test_binary_commands_follow_a_bytearray(
    initial: bytes, ops: list[tuple[bool, int, bytes, int]], sfi: bool
) -> None:
    from rspfed.euicc.fs import AccessCondition, AccessRules, FileSpec, FileSystemSpec

    alw = AccessRules(read=AccessCondition.ALW, update=AccessCondition.ALW)
    base = demo_state()
    mf = attrs.evolve(
        base.fs.mf,
        children=(*base.fs.mf.children, FileSpec(0x2F20, TS_, content=initial, sfi=20, access=alw)),
    )
    card = Uicc(attrs.evolve(base, fs=FileSystemSpec(mf, base.fs.adfs)))
    if not sfi:
        assert tx(card, "00 A4 00 0C 02 2F20")[1] == 0x9000
    model = bytearray(initial)
    for write, offset, data, le in ops:
        p1p2 = bytes([0x80 | 20, offset]) if sfi else offset.to_bytes(2, "big")
        if write:
            _, sw = tx(card, "00 D6" + p1p2.hex() + f"{len(data):02X}" + data.hex())
            if offset >= len(model):
                assert sw == 0x6B00
            elif offset + len(data) > len(model):
                assert sw == 0x6700
            else:
                assert sw == 0x9000
                model[offset : offset + len(data)] = data
        else:
            got, sw = tx(card, "00 B0" + p1p2.hex() + f"{le:02X}")
            ne = le or 256
            if offset >= len(model):
                assert sw == 0x6B00
            elif le == 0:
                assert (got, sw) == (bytes(model[offset:]), 0x9000)
            elif offset + ne > len(model):
                assert (got, sw) == (bytes(model[offset:]), 0x6282)
            else:
                assert (got, sw) == (bytes(model[offset : offset + ne]), 0x9000)
    assert next(c for c in card.snapshot().fs.mf.children if c.fid == 0x2F20).content == bytes(
        model
    )


record_ops = st.lists(
    st.tuples(
        st.sampled_from(["abs", "next", "prev", "cur", "upd"]),
        st.integers(0, 6),
        st.binary(min_size=3, max_size=3),
    ),
    max_size=30,
)


@given(st.integers(1, 5), record_ops, st.sampled_from(["linear", "cyclic"]))
def test_record_commands_follow_a_list(
    count: int, ops: list[tuple[str, int, bytes]], kind: str
) -> None:
    from rspfed.euicc.fs import (
        AccessCondition,
        AccessRules,
        FileSpec,
        FileStructure,
        FileSystemSpec,
    )

    alw = AccessRules(read=AccessCondition.ALW, update=AccessCondition.ALW)
    cyclic = kind == "cyclic"
    records = [bytes([i, i, i]) for i in range(1, count + 1)]
    structure = FileStructure.CYCLIC if cyclic else FileStructure.LINEAR_FIXED
    base = demo_state()
    mf = attrs.evolve(
        base.fs.mf,
        children=(
            *base.fs.mf.children,
            FileSpec(0x2F21, structure, records=tuple(records), sfi=21, access=alw),
        ),
    )
    card = Uicc(attrs.evolve(base, fs=FileSystemSpec(mf, base.fs.adfs)))
    assert tx(card, "00 A4 00 0C 02 2F21")[1] == 0x9000
    model, pointer = list(records), 0
    for op, n, data in ops:
        if op == "upd":
            if cyclic:
                assert tx(card, "00 DC 00 03 03" + data.hex())[1] == 0x9000
                model, pointer = [data, *model[:-1]], 1
            else:
                _, sw = tx(card, f"00 DC {n:02X} 04 03" + data.hex())
                target = n or pointer
                if 1 <= target <= count:
                    assert sw == 0x9000
                    model[target - 1], pointer = data, target
                else:
                    assert sw == 0x6A83
            continue
        if op in ("abs", "cur"):
            number = n if op == "abs" else 0
            got, sw = tx(card, f"00 B2 {number:02X} 04 03")
            target = number or pointer
            if 1 <= target <= count:
                assert (got, sw) == (model[target - 1], 0x9000)
            else:
                assert sw == 0x6A83
            continue
        got, sw = tx(card, "00 B2 00 " + ("02" if op == "next" else "03") + " 03")
        target = (pointer + 1) if op == "next" else (pointer - 1 if pointer else count)
        if not 1 <= target <= count:
            if not cyclic:
                assert sw == 0x6A83
                continue
            target = 1 if op == "next" else count
        assert (got, sw) == (model[target - 1], 0x9000)
        pointer = target


def test_held_responses_are_per_channel() -> None:
    card = Uicc(demo_state(), transmission=Transmission.T0)
    assert tx(card, "00 70 00 00 01") == (b"\x01", 0x9000)
    _, sw0 = tx(card, "00 A4 00 04 02 2FE2")
    _, sw1 = tx(card, "01 A4 00 04 02 3F00")
    assert sw0 >> 8 == sw1 >> 8 == 0x61
    d1, _ = tx(card, f"01 C0 00 00 {sw1 & 0xFF:02X}")
    d0, _ = tx(card, f"00 C0 00 00 {sw0 & 0xFF:02X}")  # still held after channel 1's commands
    assert fcp(d0)[0x83] == b"\x2f\xe2"
    assert fcp(d1)[0x83] == b"\x3f\x00"
    # any other command on the channel drops what was held
    tx(card, "00 A4 00 04 02 2FE2")
    tx(card, "00 A4 00 0C 02 3F00")
    assert tx(card, "00 C0 00 00 10")[1] == 0x6985


def _exchange(card: Uicc, header: bytes, data: bytes, case4: bool) -> tuple[bytes, int]:
    """What an application does on each protocol to get a complete answer."""
    t0 = card.transmission is Transmission.T0
    body = bytes([len(data)]) + data if data else b""
    if t0:
        apdu = header + body if data else header + b"\x00"
    else:
        apdu = header + body + (b"\x00" if case4 or not data else b"")
    raw = card.transmit(apdu)
    if t0 and raw[-2] == 0x6C and not data:
        raw = card.transmit(header + raw[-1:])
    out, sw = raw[:-2], int.from_bytes(raw[-2:], "big")
    channel = (
        header[0] & 0x03 if header[0] < 0x40 or 0x80 <= header[0] < 0xC0 else 4 + (header[0] & 0x0F)
    )
    gr_cla = bytes([channel if channel < 4 else 0x40 | (channel - 4)])
    while sw >> 8 == 0x61 or (sw >> 8 == 0x6C and out):
        le = sw & 0xFF
        raw = card.transmit(gr_cla + b"\xc0\x00\x00" + bytes([le]))
        if raw[-2] == 0x6C:
            raw = card.transmit(gr_cla + b"\xc0\x00\x00" + raw[-1:])
        out, sw = out + raw[:-2], int.from_bytes(raw[-2:], "big")
    return out, sw


lockstep_commands = st.tuples(
    st.sampled_from([0x00, 0x01, 0x80, 0x81]),
    st.sampled_from(INS),
    st.sampled_from([0x00, 0x01, 0x03, 0x04, 0x08, 0x09, 0x80, 0x87, 0x91]) | st.integers(0, 255),
    st.sampled_from([0x00, 0x02, 0x03, 0x04, 0x0C, 0x81, 0xA4]) | st.integers(0, 255),
    st.sampled_from(
        [
            b"",
            bytes.fromhex("3F00"),
            bytes.fromhex("2FE2"),
            bytes.fromhex("2F00"),
            bytes.fromhex("6F07"),
            bytes.fromhex("7FFF6F07"),
            USIM_AID[:7],
            ISD_R_AID,
            bytes.fromhex("31323334ffffffff"),
            bytes(300),
        ]
    ),
)


@given(st.lists(lockstep_commands, max_size=20))
def test_t0_and_t1_give_the_same_answers(commands: list[tuple[int, int, int, int, bytes]]) -> None:
    cards = [
        Uicc(demo_state(), transmission=t, applets=[EchoApplet(ISD_R_AID)])
        for t in (Transmission.T1, Transmission.T0)
    ]
    for cla, ins, p1, p2, data in commands:
        data = data[:255]
        header = bytes([cla, ins, p1, p2])
        case4 = ins not in (0xD6, 0xDC, 0x20, 0x24, 0x26, 0x28, 0x2C, 0x04, 0x44, 0x10)
        answers = [_exchange(card, header, data, case4) for card in cards]
        assert answers[0] == answers[1], header.hex()
    assert cards[0].snapshot() == cards[1].snapshot()
