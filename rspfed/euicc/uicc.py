"""The UICC front end: ATR, logical channels, file commands, PINs, applets (sans-IO).

:class:`Uicc` implements :class:`rspfed.euicc.card.Card`.  It parses each
command APDU (:mod:`rspfed.euicc.apdu`), routes it to the logical channel in
CLA, and answers from the file system (:mod:`rspfed.euicc.fs`), the PIN
objects, the USIM (:mod:`rspfed.euicc.usim`) or a registered :class:`Applet`
(the ISD-R).  Nothing escapes :meth:`Uicc.transmit` but a response APDU: a
:class:`~rspfed.euicc.apdu.StatusError` becomes its status word, a
:class:`~rspfed.errors.DecodeError` from an applet ``6A80``, any other
failure ``6F00``.

**T=0 or T=1.**  The transmission protocol changes what an application sees
at the APDU level, so it is a constructor switch (:class:`Transmission`):

- T=1: a response longer than Ne is cut at Ne and ``61xx`` says how much is
  left for GET RESPONSE; without Le (cases 1 and 3) Ne is 0.  A short Le of
  ``00`` (extended ``0000``) means "up to 256 (65536)".
- T=0: extended lengths are refused (``6700``); a case 3 or 4 command that
  produces data answers ``61xx`` only (the data is fetched with GET
  RESPONSE); a case 2 command whose Le differs from the length available
  answers ``6Cxx`` (``xx`` = the exact length), and ``00`` means exactly 256.

Both keep the pending response per logical channel; any other command on the
channel drops it.

**Applets.**  :meth:`Uicc.register_applet` adds an :class:`Applet` (the ISD-R,
AID ``A0000005591010FFFFFFFF8900000100``) to the AID registry searched by
SELECT by DF name after the ADFs.  While an applet is selected on a channel
it receives every command of that channel except MANAGE CHANNEL, GET RESPONSE
and SELECT by DF name.  STORE DATA (INS ``E2``) blocks are reassembled here
per channel: GlobalPlatform Card Specification §11.11 and SGP.22 §5.7.2 code
P1 b8 = 1 as *last block* (``91``) and 0 as *more blocks* (``11``); P2 is the
block number from ``00``.  Intermediate blocks are answered ``9000``; the
applet gets one command with the concatenated data and the last block's P1.
"""

from __future__ import annotations

import enum
import hmac
from collections.abc import Callable, Iterable, Mapping
from typing import Any, ClassVar, Protocol, runtime_checkable

import attrs

from rspfed.asn1.bertlv import encode_tlv
from rspfed.errors import DecodeError, RspfedError, StorageError, UsageError
from rspfed.euicc.apdu import (
    SW_BLOCKED,
    SW_CHAINING_NOT_SUPPORTED,
    SW_CHANNEL_NOT_SUPPORTED,
    SW_CLA_NOT_SUPPORTED,
    SW_CONDITIONS_NOT_SATISFIED,
    SW_END_OF_FILE,
    SW_FILE_INVALIDATED,
    SW_FILE_NOT_FOUND,
    SW_FUNCTION_NOT_SUPPORTED,
    SW_INCOMPATIBLE_FILE_STRUCTURE,
    SW_INCORRECT_DATA,
    SW_INCORRECT_P1P2,
    SW_INS_NOT_SUPPORTED,
    SW_INTERNAL_ERROR,
    SW_NO_CURRENT_EF,
    SW_OK,
    SW_RECORD_NOT_FOUND,
    SW_REFERENCE_NOT_FOUND,
    SW_SECURE_MESSAGING_NOT_SUPPORTED,
    SW_SECURITY_STATUS,
    SW_WRONG_LENGTH,
    SW_WRONG_P1P2,
    CommandApdu,
    ResponseApdu,
    StatusError,
    decode_cla,
    parse_command,
    sw_more_data,
    sw_retries,
    sw_wrong_le,
)
from rspfed.euicc.arr import locate_arr, rule_allows
from rspfed.euicc.fs import (
    AccessCondition,
    AccessRules,
    FileNode,
    FileSpec,
    FileStructure,
    FileSystem,
    FileSystemSpec,
    Lcsi,
    Operation,
    as_bytes,
)
from rspfed.euicc.usim import AkaAlgorithmId, AkaSpec, Usim
from rspfed.saip.identifiers import encode_iccid, encode_imsi

__all__ = [
    "ATR",
    "ATR_T0_ONLY",
    "ISD_R_AID",
    "MAX_CHANNELS",
    "PIN_ADM1",
    "PIN_APPL_1",
    "PIN_APPL_2",
    "PIN_UNIVERSAL",
    "STORE_DATA_LIMIT",
    "TS48_TEST_K",
    "USIM_AID",
    "Applet",
    "PinSpec",
    "Transmission",
    "Uicc",
    "UiccState",
    "demo_state",
]

ISD_R_AID = bytes.fromhex("A0000005591010FFFFFFFF8900000100")
"""The ISD-R (SGP.22 §2.2.3)."""

MAX_CHANNELS = 20
"""Logical channels 0 (basic) to 19 (TS 102 221 §8.4.2 extended channels)."""

STORE_DATA_LIMIT = 65535
"""Largest reassembled STORE DATA payload (bigger sequences are refused with ``6700``)."""

PIN_APPL_1 = 0x01
"""Key reference of the application PIN1 (TS 102 221 §9.5.1)."""
PIN_UNIVERSAL = 0x11
"""Key reference of the universal PIN."""
PIN_APPL_2 = 0x81
"""Key reference of the second application PIN (PIN2)."""
PIN_ADM1 = 0x0A
"""Key reference of ADM1."""


def _with_tck(body: bytes) -> bytes:
    tck = 0
    for b in body[1:]:
        tck ^= b
    return body + bytes((tck,))


# TS=3B direct; T0=97: TA1, TD1, 7 historical bytes; TA1=96 (Fi=512, Di=32);
# TD1=80: TD2 follows, T=0; TD2=91: TA3, TD3 follow, T=1; TA3=FE: IFSC 254;
# TD3=1F: TA4 follows, T=15; TA4=C7: clock stop no preference, classes A, B, C.
# Historical (compact-TLV, category 80): 31 E0 (card service data: selection
# by full/partial DF name, data objects in EF.DIR read by READ RECORD, card
# with MF), 73 FE 21 5F (card
# capabilities: selection methods, data coding 21, extended Lc/Le, logical
# channels assigned by card and terminal, 8 or more channels).
ATR = _with_tck(bytes.fromhex("3B979680 91FE1FC7 8031E073 FE215F"))
"""The card's ATR: T=0 first (the default), T=1 offered, UICC voltage classes (see the doc)."""

ATR_T0_ONLY = _with_tck(bytes.fromhex("3B979680 1FC78031 E073FE21 5F"))
"""The same card offering T=0 only (TD2 = 1F: T=15 global bytes)."""


class Transmission(enum.Enum):
    """The transmission protocol the card behaves as (APDU-level differences only)."""

    T0 = "T=0"
    T1 = "T=1"


@runtime_checkable
class Applet(Protocol):
    """An application on the card reached by SELECT by AID (the ISD-R).

    Methods may raise :class:`~rspfed.euicc.apdu.StatusError`; the front end
    answers with its status word.  Applets keep per-channel state keyed by
    ``channel``.
    """

    @property
    def aid(self) -> bytes:
        """The applet's AID (5 to 16 octets)."""
        ...

    def select(self, channel: int, command: CommandApdu) -> ResponseApdu:
        """SELECT on ``channel``; a success status (``9000``) makes the applet current there."""
        ...

    def deselect(self, channel: int) -> None:
        """The channel was closed or another file/application selected on it."""
        ...

    def process(self, channel: int, command: CommandApdu) -> ResponseApdu:
        """Any other command on a channel where the applet is selected."""
        ...

    def reset(self) -> None:
        """Power-off or reset: drop all volatile state."""
        ...


def _optional_pin(value: bytes | None) -> bytes | None:
    return None if value is None else _pin_format(value)


def _pin_format(value: bytes) -> bytes:
    value = as_bytes(value)
    if not 1 <= len(value) <= 8:
        raise UsageError("a PIN is 1 to 8 octets")
    return value.ljust(8, b"\xff")


@attrs.frozen
class PinSpec:
    """A PIN (or ADM key) with its PUK and counters (persistent).

    ``pin``/``puk`` are stored padded with ``FF`` to 8 octets (TS 102 221
    §9.5.1); give ASCII digits, e.g. ``b"1234"``.  ``puk`` ``None``: the PIN
    cannot be unblocked.
    """

    key_ref: int
    pin: bytes = attrs.field(converter=_pin_format, repr=False)
    puk: bytes | None = attrs.field(default=None, converter=_optional_pin, repr=False)
    max_tries: int = 3
    tries_left: int = 3
    puk_max_tries: int = 10
    puk_tries_left: int = 10
    enabled: bool = True

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.key_ref <= 0xFF:
            raise UsageError("key reference is one octet")
        if not 0 <= self.tries_left <= self.max_tries <= 15:
            raise UsageError("PIN tries must be 0 <= left <= max <= 15")
        if not 0 <= self.puk_tries_left <= self.puk_max_tries <= 15:
            raise UsageError("PUK tries must be 0 <= left <= max <= 15")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (holds the PIN and PUK: protect the store)."""
        return {
            "key_ref": self.key_ref,
            "pin": self.pin.hex(),
            "puk": None if self.puk is None else self.puk.hex(),
            "max_tries": self.max_tries,
            "tries_left": self.tries_left,
            "puk_max_tries": self.puk_max_tries,
            "puk_tries_left": self.puk_tries_left,
            "enabled": self.enabled,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PinSpec:
        """Inverse of :meth:`to_dict`; :class:`~rspfed.errors.StorageError` on bad input."""
        try:
            puk = data.get("puk")
            return cls(
                key_ref=int(data["key_ref"]),
                pin=bytes.fromhex(data["pin"]),
                puk=None if puk is None else bytes.fromhex(puk),
                max_tries=int(data["max_tries"]),
                tries_left=int(data["tries_left"]),
                puk_max_tries=int(data["puk_max_tries"]),
                puk_tries_left=int(data["puk_tries_left"]),
                enabled=bool(data["enabled"]),
            )
        except (KeyError, ValueError, TypeError, AttributeError, UsageError) as exc:
            raise StorageError("malformed PIN description") from exc


def _pins(values: Iterable[PinSpec]) -> tuple[PinSpec, ...]:
    return tuple(values)


def _akas(values: Iterable[AkaSpec]) -> tuple[AkaSpec, ...]:
    return tuple(values)


@attrs.frozen
class UiccState:
    """Everything persistent on the card: files, PINs, AKA parameters and SQN arrays."""

    fs: FileSystemSpec
    pins: tuple[PinSpec, ...] = attrs.field(default=(), converter=_pins)
    aka: tuple[AkaSpec, ...] = attrs.field(default=(), converter=_akas)

    def __attrs_post_init__(self) -> None:
        refs = [p.key_ref for p in self.pins]
        if len(set(refs)) != len(refs):
            raise UsageError("two PINs with the same key reference")

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form (contains secrets: K, OPc, PINs)."""
        return {
            "fs": self.fs.to_dict(),
            "pins": [p.to_dict() for p in self.pins],
            "aka": [a.to_dict() for a in self.aka],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> UiccState:
        """Inverse of :meth:`to_dict`; :class:`~rspfed.errors.StorageError` on bad input."""
        try:
            return cls(
                FileSystemSpec.from_dict(data["fs"]),
                tuple(PinSpec.from_dict(p) for p in data.get("pins", ())),
                tuple(AkaSpec.from_dict(a) for a in data.get("aka", ())),
            )
        except StorageError:
            raise
        except (KeyError, TypeError, AttributeError, UsageError) as exc:
            raise StorageError("malformed card state") from exc


class _Pin:
    __slots__ = ("spec", "verified")

    def __init__(self, spec: PinSpec) -> None:
        self.spec = spec
        self.verified = False

    @property
    def blocked(self) -> bool:
        return self.spec.tries_left == 0

    def check(self, value: bytes) -> bool:
        """Compare, update the counter; True when correct (constant time)."""
        ok = hmac.compare_digest(value, self.spec.pin)
        if ok:
            self.spec = attrs.evolve(self.spec, tries_left=self.spec.max_tries)
        else:
            self.spec = attrs.evolve(self.spec, tries_left=self.spec.tries_left - 1)
        self.verified = ok
        return ok


class _Channel:
    __slots__ = (
        "app",
        "applet",
        "current_df",
        "current_ef",
        "last_selected",
        "pending",
        "pending_sw",
        "record",
        "store_buffer",
        "store_next",
    )

    def __init__(self, df: FileNode) -> None:
        self.current_df = df
        self.current_ef: FileNode | None = None
        self.record = 0
        self.app: FileNode | None = None
        self.applet: Applet | None = None
        self.last_selected: object = None
        self.pending = b""
        self.pending_sw = SW_OK
        self.store_buffer: bytearray | None = None
        self.store_next = 0

    def clear_pending(self) -> None:
        self.pending = b""
        self.pending_sw = SW_OK


_EF_DESCRIPTOR = {
    FileStructure.TRANSPARENT: 0x01,
    FileStructure.LINEAR_FIXED: 0x02,
    FileStructure.CYCLIC: 0x06,
    FileStructure.BER_TLV: 0x39,
}

_ADM_KEYS = frozenset(range(0x0A, 0x0F))  # ADM1..ADM5: never "disabled"

_CONDITION_PIN = {
    AccessCondition.PIN1: (PIN_APPL_1, PIN_UNIVERSAL),
    AccessCondition.PIN2: (PIN_APPL_2,),
    AccessCondition.ADM1: (PIN_ADM1,),
}

# Instructions and whether they take a proprietary (8X/CX) class.
_ISO_INS = frozenset(
    {0xA2, 0xA4, 0xB0, 0xD6, 0xB2, 0xDC, 0x20, 0x24, 0x26, 0x28, 0x2C, 0x88, 0x70, 0xC0, 0x04, 0x44}
)
_PROPRIETARY_INS = frozenset({0xF2, 0x10})


class Uicc:
    """A software UICC: :class:`~rspfed.euicc.card.Card` over a :class:`UiccState`.

    ``transmission`` selects T=0 or T=1 APDU-level behaviour; ``applets``
    are registered in order.  The card starts powered (as if just inserted
    into a powered reader); a :meth:`transmit` after :meth:`power_off` does
    an implicit cold reset first.
    """

    def __init__(
        self,
        state: UiccState,
        *,
        transmission: Transmission = Transmission.T1,
        applets: Iterable[Applet] = (),
    ) -> None:
        self.transmission = transmission
        self._applets: list[Applet] = []
        for applet in applets:
            self.register_applet(applet)
        self._generation = 0  # counts loaded states
        self._load(state)

    # -- persistent state -------------------------------------------------

    def _load(self, state: UiccState) -> None:
        self._fs = FileSystem(state.fs)
        self._pins = {p.key_ref: _Pin(p) for p in state.pins}
        self._usims = [Usim(a) for a in state.aka]
        self._powered = True
        self._channels: dict[int, _Channel] = {0: _Channel(self._fs.mf)}
        self._generation += 1

    def snapshot(self) -> UiccState:
        """The persistent state now (file contents, PIN counters, SQN arrays)."""
        return UiccState(
            self._fs.snapshot(),
            tuple(p.spec for p in self._pins.values()),
            tuple(u.snapshot() for u in self._usims),
        )

    def replace_state(self, state: UiccState) -> None:
        """Load another persistent state (e.g. another profile enabled); a reset follows.

        All logical channels but the basic one close, file selections and PIN
        verifications are gone.  When a command makes the switch (an ES10c
        EnableProfile), the channel it came on stays open for its answer.
        """
        for applet in self._applets:
            applet.reset()
        self._load(state)

    @property
    def filesystem(self) -> FileSystem:
        """The live file system (for inspection; change it through APDUs or a new state)."""
        return self._fs

    def register_applet(self, applet: Applet) -> None:
        """Add an applet to the AID registry (a taken AID: :class:`~rspfed.errors.UsageError`)."""
        aid = bytes(applet.aid)
        if not 5 <= len(aid) <= 16:
            raise UsageError("an applet AID is 5 to 16 octets")
        if any(bytes(a.aid) == aid for a in self._applets):
            raise UsageError("an applet with this AID is already registered")
        self._applets.append(applet)

    @property
    def open_channels(self) -> frozenset[int]:
        """The logical channels now open (0 always while powered)."""
        return frozenset(self._channels)

    # -- Card -------------------------------------------------------------

    @property
    def atr(self) -> bytes:
        """The ATR for the configured transmission protocol."""
        return ATR_T0_ONLY if self.transmission is Transmission.T0 else ATR

    def power_on(self) -> bytes:
        """Cold reset: volatile state cleared; the ATR."""
        self._volatile_reset()
        return self.atr

    def reset(self) -> bytes:
        """Warm reset: volatile state cleared; the ATR."""
        self._volatile_reset()
        return self.atr

    def power_off(self) -> None:
        """Power off: volatile state is lost."""
        self._volatile_reset()
        self._powered = False

    def _volatile_reset(self) -> None:
        for applet in self._applets:
            applet.reset()
        for pin in self._pins.values():
            pin.verified = False
        self._channels = {0: _Channel(self._fs.mf)}
        self._powered = True

    def transmit(self, apdu: bytes) -> bytes:
        """One command APDU in, one response APDU out (never raises)."""
        try:
            if not self._powered:
                self._volatile_reset()
            return self._transmit(bytes(apdu))
        except StatusError as exc:
            return exc.sw.to_bytes(2, "big")
        except RspfedError:
            return SW_INTERNAL_ERROR.to_bytes(2, "big")
        except Exception:  # the last resort: a card never stops answering
            return SW_INTERNAL_ERROR.to_bytes(2, "big")

    # -- transport layer --------------------------------------------------

    def _transmit(self, apdu: bytes) -> bytes:
        cmd = parse_command(apdu)
        info = decode_cla(cmd.cla)
        if info.secure_messaging:
            raise StatusError(SW_SECURE_MESSAGING_NOT_SUPPORTED)
        if info.chaining:
            raise StatusError(SW_CHAINING_NOT_SUPPORTED)
        t0 = self.transmission is Transmission.T0
        if t0 and cmd.extended:
            raise StatusError(SW_WRONG_LENGTH, "no extended length over T=0")
        ch = self._channels.get(info.channel)
        if ch is None:
            raise StatusError(SW_CHANNEL_NOT_SUPPORTED, "logical channel not open")
        if cmd.ins == 0xC0:  # either class: LPAs send 80 C0 as well as 00 C0
            return self._get_response(ch, cmd)
        ch.clear_pending()
        generation = self._generation
        try:
            resp = self._dispatch(info.channel, ch, cmd, info.proprietary)
        except StatusError as exc:
            resp = ResponseApdu(b"", exc.sw)
        except DecodeError:  # an applet could not decode the data field
            resp = ResponseApdu(b"", SW_INCORRECT_DATA)
        if self._generation != generation:
            # The command replaced the card state (an ES10c enable or disable):
            # the other channels are gone, but this one stays open (at the new
            # MF) so that its answer can still be fetched with GET RESPONSE.
            ch = self._channels.setdefault(info.channel, _Channel(self._fs.mf))
        return self._shape(ch, cmd, resp)

    def _shape(self, ch: _Channel, cmd: CommandApdu, resp: ResponseApdu) -> bytes:
        data = resp.data
        if not data:
            return resp.encode()
        if self.transmission is Transmission.T0:
            if cmd.case != 2:
                return self._hold(ch, data, resp.sw, 0)
            ne = cmd.ne or 0
            if len(data) < ne or (len(data) > ne and len(data) <= 256):
                return sw_wrong_le(len(data)).to_bytes(2, "big")
            return self._hold(ch, data, resp.sw, ne)
        return self._hold(ch, data, resp.sw, cmd.ne or 0)

    def _hold(self, ch: _Channel, data: bytes, sw: int, ne: int) -> bytes:
        if len(data) <= ne:
            return data + sw.to_bytes(2, "big")
        ch.pending, ch.pending_sw = data[ne:], sw
        return data[:ne] + sw_more_data(len(ch.pending)).to_bytes(2, "big")

    def _get_response(self, ch: _Channel, cmd: CommandApdu) -> bytes:
        if cmd.p1p2 != 0:
            raise StatusError(SW_INCORRECT_P1P2)
        if not ch.pending:
            raise StatusError(SW_CONDITIONS_NOT_SATISFIED, "no response pending")
        if cmd.data or cmd.ne is None:
            raise StatusError(SW_WRONG_LENGTH)
        ne = cmd.ne
        remaining = len(ch.pending)
        if self.transmission is Transmission.T0 and ne > remaining:
            return sw_wrong_le(remaining).to_bytes(2, "big")
        if ne >= remaining:
            out = ch.pending + ch.pending_sw.to_bytes(2, "big")
            ch.clear_pending()
            return out
        chunk, ch.pending = ch.pending[:ne], ch.pending[ne:]
        return chunk + sw_more_data(len(ch.pending)).to_bytes(2, "big")

    def _le_is_max(self, cmd: CommandApdu) -> bool:
        """Le = 00 (0000) as "all available" (T=1 only)."""
        if self.transmission is Transmission.T0:
            return False
        return cmd.ne == (65536 if cmd.extended else 256)

    # -- dispatch ---------------------------------------------------------

    def _dispatch(
        self, number: int, ch: _Channel, cmd: CommandApdu, proprietary: bool
    ) -> ResponseApdu:
        ins = cmd.ins
        if ins == 0xA4 and cmd.p1 == 0x04 and not proprietary:
            self._abort_store(ch)
            return self._select_aid(number, ch, cmd)
        if ins == 0x70 and not proprietary:
            self._abort_store(ch)
            return self._manage_channel(number, cmd)
        if ch.applet is not None:
            if ins == 0xE2 and proprietary:
                return self._store_data(number, ch, cmd)
            self._abort_store(ch)
            return ch.applet.process(number, cmd)
        if (ins in _ISO_INS and proprietary) or (ins in _PROPRIETARY_INS and not proprietary):
            raise StatusError(SW_CLA_NOT_SUPPORTED, "class not valid for this instruction")
        handler = self._HANDLERS.get(ins)
        if handler is None:
            raise StatusError(SW_INS_NOT_SUPPORTED)
        return handler(self, ch, cmd)

    # -- STORE DATA reassembly ---------------------------------------------

    @staticmethod
    def _abort_store(ch: _Channel) -> None:
        ch.store_buffer = None
        ch.store_next = 0

    def _store_data(self, number: int, ch: _Channel, cmd: CommandApdu) -> ResponseApdu:
        assert ch.applet is not None
        if ch.store_buffer is None:
            ch.store_buffer = bytearray()
            ch.store_next = 0
        if cmd.p2 != ch.store_next:
            self._abort_store(ch)
            raise StatusError(SW_INCORRECT_P1P2, "STORE DATA block number out of sequence")
        if len(ch.store_buffer) + len(cmd.data) > STORE_DATA_LIMIT:
            self._abort_store(ch)
            raise StatusError(SW_WRONG_LENGTH, "STORE DATA sequence too long")
        ch.store_buffer += cmd.data
        if not cmd.p1 & 0x80:
            ch.store_next = (ch.store_next + 1) & 0xFF
            return ResponseApdu()
        data = bytes(ch.store_buffer)
        self._abort_store(ch)
        extended = len(data) > 255 or cmd.extended
        full = CommandApdu(cmd.cla, cmd.ins, cmd.p1, cmd.p2, data, ne=cmd.ne, extended=extended)
        return ch.applet.process(number, full)

    # -- MANAGE CHANNEL -----------------------------------------------------

    def _manage_channel(self, number: int, cmd: CommandApdu) -> ResponseApdu:
        if cmd.data:
            raise StatusError(SW_WRONG_LENGTH)
        if cmd.p1 == 0x00:
            origin = self._channels[number]
            if cmd.p2 == 0x00:
                if self.transmission is Transmission.T0 and cmd.ne not in (None, 1):
                    raise StatusError(sw_wrong_le(1), "checked before opening a channel")
                free = [c for c in range(1, MAX_CHANNELS) if c not in self._channels]
                if not free:
                    raise StatusError(SW_FUNCTION_NOT_SUPPORTED, "no free logical channel")
                new, answer = free[0], bytes((free[0],))
            elif cmd.p2 < MAX_CHANNELS:
                if cmd.p2 in self._channels:
                    raise StatusError(SW_CONDITIONS_NOT_SATISFIED, "channel already open")
                new, answer = cmd.p2, b""
            else:
                raise StatusError(SW_CHANNEL_NOT_SUPPORTED)
            opened = _Channel(self._fs.mf)
            if number != 0:
                opened.current_df = origin.current_df
                opened.current_ef = origin.current_ef
                opened.app = origin.app
            self._channels[new] = opened
            return ResponseApdu(answer)
        if cmd.p1 == 0x80:
            target = cmd.p2 or number
            if target == 0:
                raise StatusError(SW_INCORRECT_P1P2, "the basic channel cannot be closed")
            if target not in self._channels:
                raise StatusError(SW_CHANNEL_NOT_SUPPORTED, "channel not open")
            closed = self._channels.pop(target)
            if closed.applet is not None:
                closed.applet.deselect(target)
            return ResponseApdu()
        raise StatusError(SW_INCORRECT_P1P2)

    # -- SELECT -------------------------------------------------------------

    def _select_aid(self, number: int, ch: _Channel, cmd: CommandApdu) -> ResponseApdu:
        occurrence = cmd.p2 & 0x03
        if occurrence not in (0x00, 0x02) or cmd.p2 & 0xF0:
            raise StatusError(SW_INCORRECT_P1P2)
        prefix = cmd.data
        if not prefix:
            raise StatusError(SW_FILE_NOT_FOUND, "no default application")
        candidates: list[object] = []
        for adf in self._fs.adfs:
            if adf.spec.aid is not None and adf.spec.aid.startswith(prefix):
                candidates.append(adf)
        for applet in self._applets:
            if bytes(applet.aid).startswith(prefix):
                candidates.append(applet)
        if occurrence == 0x02 and ch.last_selected in candidates:
            candidates = candidates[candidates.index(ch.last_selected) + 1 :]
        if not candidates:
            raise StatusError(SW_FILE_NOT_FOUND)
        target = candidates[0]
        if isinstance(target, FileNode):
            resp = self._select_node(ch, target, cmd.p2)
            self._drop_applet(number, ch)
            ch.last_selected = target
            return resp
        assert isinstance(target, Applet)
        resp = target.select(number, cmd)
        if resp.sw == SW_OK or resp.sw >> 8 == 0x61:
            if ch.applet is not target:
                self._drop_applet(number, ch)
            ch.applet = target
            ch.last_selected = target
        return resp

    @staticmethod
    def _drop_applet(number: int, ch: _Channel) -> None:
        if ch.applet is not None:
            applet, ch.applet = ch.applet, None
            applet.deselect(number)

    def _select_node(self, ch: _Channel, node: FileNode, p2: int) -> ResponseApdu:
        returned = p2 & 0x0C
        if returned == 0x08:
            raise StatusError(SW_INCORRECT_P1P2, "FMD not supported")
        if node.is_df:
            ch.current_df, ch.current_ef = node, None
        else:
            ch.current_df, ch.current_ef = node.df(), node
        ch.record = 0
        if node.adf is not None:
            ch.app = node.adf
        sw = SW_FILE_INVALIDATED if node.lcsi is Lcsi.OPERATIONAL_DEACTIVATED else SW_OK
        return ResponseApdu(b"" if returned == 0x0C else self.fcp(node), sw)

    def _select(self, ch: _Channel, cmd: CommandApdu) -> ResponseApdu:
        p1, data = cmd.p1, cmd.data
        adf = ch.app
        if cmd.p2 & 0xF3:
            raise StatusError(SW_INCORRECT_P1P2)
        node: FileNode | None
        if p1 == 0x00:
            if not data:
                node = self._fs.mf
            elif len(data) != 2:
                raise StatusError(SW_WRONG_LENGTH)
            else:
                node = self._fs.select_fid(ch.current_df, int.from_bytes(data, "big"), adf)
        elif p1 in (0x01, 0x02):
            if len(data) != 2:
                raise StatusError(SW_WRONG_LENGTH)
            node = ch.current_df.by_fid.get(int.from_bytes(data, "big"))
            if node is not None and node.is_df != (p1 == 0x01):
                node = None
        elif p1 == 0x03:
            if data:
                raise StatusError(SW_WRONG_LENGTH)
            node = ch.current_df.parent or ch.current_df
        elif p1 == 0x08:
            if len(data) % 2 or not data:
                raise StatusError(SW_WRONG_LENGTH)
            if data[:2] == b"\x3f\x00":
                data = data[2:]
            node = self._fs.mf if not data else self._fs.select_path(self._fs.mf, data, adf)
        elif p1 == 0x09:
            if len(data) % 2 or not data:
                raise StatusError(SW_WRONG_LENGTH)
            node = self._fs.select_path(ch.current_df, data, adf)
        else:
            raise StatusError(SW_INCORRECT_P1P2)
        if node is None:
            raise StatusError(SW_FILE_NOT_FOUND)
        return self._select_node(ch, node, cmd.p2)

    # -- FCP ------------------------------------------------------------------

    def fcp(self, node: FileNode) -> bytes:
        """The FCP template (tag ``62``) of ``node`` (TS 102 221 §11.1.1.3)."""
        spec = node.spec
        share = 0x40 if spec.shareable else 0x00
        body = bytearray()
        if node.is_df:
            body += encode_tlv(0x82, bytes((share | 0x38, 0x21)))
            body += encode_tlv(0x83, node.fid.to_bytes(2, "big"))
            if spec.aid is not None:
                body += encode_tlv(0x84, spec.aid)
            body += encode_tlv(0x8A, bytes((node.lcsi,)))
            if spec.arr:
                body += encode_tlv(0x8B, spec.arr)
            body += encode_tlv(0xC6, self._pin_status_template(spec.pin_refs))
        else:
            desc = bytes((share | _EF_DESCRIPTOR[spec.structure], 0x21))
            if spec.structure.is_record:
                desc += spec.record_length.to_bytes(2, "big") + bytes((len(node.records),))
            body += encode_tlv(0x82, desc)
            body += encode_tlv(0x83, node.fid.to_bytes(2, "big"))
            body += encode_tlv(0x8A, bytes((node.lcsi,)))
            if spec.arr:
                body += encode_tlv(0x8B, spec.arr)
            body += encode_tlv(0x80, node.size.to_bytes(2, "big"))
            body += encode_tlv(0x88, b"" if spec.sfi is None else bytes((spec.sfi << 3,)))
        return encode_tlv(0x62, bytes(body))

    def _pin_status_template(self, refs: tuple[int, ...]) -> bytes:
        ps = 0
        for i, ref in enumerate(refs[:8]):
            pin = self._pins.get(ref)
            if pin is not None and pin.spec.enabled:
                ps |= 0x80 >> i
        out = encode_tlv(0x90, bytes((ps,)))
        for ref in refs:
            out += encode_tlv(0x83, bytes((ref,)))
        return out

    # -- access control ---------------------------------------------------------

    def _condition_met(self, condition: AccessCondition) -> bool:
        if condition is AccessCondition.ALW:
            return True
        if condition is AccessCondition.NEV:
            return False
        for ref in _CONDITION_PIN[condition]:
            pin = self._pins.get(ref)
            if pin is None:
                continue
            if pin.verified or (not pin.spec.enabled and condition is not AccessCondition.ADM1):
                return True
        return False

    def _key_satisfied(self, key_ref: int) -> bool:
        """A key reference of an EF.ARR rule: verified, or an application PIN that is disabled."""
        pin = self._pins.get(key_ref)
        if pin is not None and pin.verified:
            return True
        if key_ref in _ADM_KEYS:
            return False
        if pin is not None and not pin.spec.enabled:
            return True
        # the universal PIN stands in for the application PIN 1 (TS 102 221 §9.5.1)
        universal = self._pins.get(PIN_UNIVERSAL)
        return key_ref == PIN_APPL_1 and universal is not None and universal.verified

    def _check_access(self, node: FileNode, op: Operation) -> None:
        # The rule in EF.ARR that the file's FCP refers to, evaluated now (TS 102 221
        # §9.2.7); a file system without that EF.ARR has the file's explicit rules.
        record = locate_arr(node, self._fs.mf)
        if record is None:
            allowed = self._condition_met(node.spec.access.condition(op))
        else:
            allowed = rule_allows(record, op, self._key_satisfied)
        if not allowed:
            raise StatusError(SW_SECURITY_STATUS)
        if op in (Operation.READ, Operation.UPDATE) and node.lcsi is not Lcsi.OPERATIONAL_ACTIVATED:
            raise StatusError(SW_FILE_INVALIDATED, "file deactivated")

    # -- transparent EFs ---------------------------------------------------------

    def _binary_target(self, ch: _Channel, cmd: CommandApdu) -> tuple[FileNode, int]:
        if cmd.p1 & 0x80:
            if cmd.p1 & 0x60:
                raise StatusError(SW_INCORRECT_P1P2)
            node = ch.current_df.by_sfi.get(cmd.p1 & 0x1F)
            if node is None:
                raise StatusError(SW_FILE_NOT_FOUND)
            if node is not ch.current_ef:
                ch.current_ef, ch.record = node, 0
            offset = cmd.p2
        else:
            if ch.current_ef is None:
                raise StatusError(SW_NO_CURRENT_EF)
            node, offset = ch.current_ef, cmd.p1p2
        if node.structure is not FileStructure.TRANSPARENT:
            raise StatusError(SW_INCOMPATIBLE_FILE_STRUCTURE)
        return node, offset

    def _read_binary(self, ch: _Channel, cmd: CommandApdu) -> ResponseApdu:
        if cmd.ne is None or cmd.data:
            raise StatusError(SW_WRONG_LENGTH)
        node, offset = self._binary_target(ch, cmd)
        self._check_access(node, Operation.READ)
        if offset >= node.size:
            raise StatusError(SW_WRONG_P1P2, "offset outside the file")
        available = node.size - offset
        if cmd.ne <= available or self._le_is_max(cmd):
            return ResponseApdu(bytes(node.content[offset : offset + cmd.ne]))
        if self.transmission is Transmission.T0:
            return ResponseApdu(bytes(node.content[offset:]))  # shaped into 6Cxx
        return ResponseApdu(bytes(node.content[offset:]), SW_END_OF_FILE)

    def _update_binary(self, ch: _Channel, cmd: CommandApdu) -> ResponseApdu:
        if not cmd.data or cmd.ne is not None:
            raise StatusError(SW_WRONG_LENGTH)
        node, offset = self._binary_target(ch, cmd)
        self._check_access(node, Operation.UPDATE)
        if offset >= node.size:
            raise StatusError(SW_WRONG_P1P2, "offset outside the file")
        if offset + len(cmd.data) > node.size:
            raise StatusError(SW_WRONG_LENGTH, "data beyond the end of the file")
        node.content[offset : offset + len(cmd.data)] = cmd.data
        return ResponseApdu()

    # -- record EFs -----------------------------------------------------------------

    def _record_target(self, ch: _Channel, cmd: CommandApdu) -> tuple[FileNode, int]:
        sfi, mode = cmd.p2 >> 3, cmd.p2 & 0x07
        if sfi == 0x1F:
            raise StatusError(SW_INCORRECT_P1P2)
        if sfi:
            node = ch.current_df.by_sfi.get(sfi)
            if node is None:
                raise StatusError(SW_FILE_NOT_FOUND)
            if node is not ch.current_ef:
                ch.current_ef, ch.record = node, 0
        else:
            if ch.current_ef is None:
                raise StatusError(SW_NO_CURRENT_EF)
            node = ch.current_ef
        if not node.structure.is_record:
            raise StatusError(SW_INCOMPATIBLE_FILE_STRUCTURE)
        return node, mode

    @staticmethod
    def _record_number(ch: _Channel, node: FileNode, cmd: CommandApdu, mode: int) -> int:
        """The record addressed (1-based); the record pointer is not moved here."""
        count = len(node.records)
        cyclic = node.structure is FileStructure.CYCLIC
        if mode == 0x04:
            number = cmd.p1 or ch.record
            if not 1 <= number <= count:
                raise StatusError(SW_RECORD_NOT_FOUND)
            return number
        if cmd.p1 != 0:
            raise StatusError(SW_INCORRECT_P1P2)
        if mode == 0x02:
            number = ch.record + 1
            if number > count:
                if not cyclic:
                    raise StatusError(SW_RECORD_NOT_FOUND)
                number = 1
            return number
        if mode == 0x03:
            number = ch.record - 1 if ch.record else count
            if number < 1:
                if not cyclic:
                    raise StatusError(SW_RECORD_NOT_FOUND)
                number = count
            return number
        raise StatusError(SW_INCORRECT_P1P2)

    def _read_record(self, ch: _Channel, cmd: CommandApdu) -> ResponseApdu:
        if cmd.ne is None or cmd.data:
            raise StatusError(SW_WRONG_LENGTH)
        node, mode = self._record_target(ch, cmd)
        self._check_access(node, Operation.READ)
        number = self._record_number(ch, node, cmd, mode)
        length = node.spec.record_length
        if cmd.ne != length and not self._le_is_max(cmd):
            return ResponseApdu(b"", sw_wrong_le(length))
        if mode != 0x04:
            ch.record = number
        return ResponseApdu(node.records[number - 1])

    def _update_record(self, ch: _Channel, cmd: CommandApdu) -> ResponseApdu:
        if not cmd.data or cmd.ne is not None:
            raise StatusError(SW_WRONG_LENGTH)
        node, mode = self._record_target(ch, cmd)
        self._check_access(node, Operation.UPDATE)
        if len(cmd.data) != node.spec.record_length:
            raise StatusError(SW_WRONG_LENGTH, "data length differs from the record length")
        if node.structure is FileStructure.CYCLIC:
            if mode != 0x03 or cmd.p1 != 0:
                raise StatusError(SW_INCORRECT_P1P2, "cyclic EFs are updated in PREVIOUS mode")
            node.records = [bytes(cmd.data), *node.records[:-1]]
            ch.record = 1
            return ResponseApdu()
        number = self._record_number(ch, node, cmd, mode)
        node.records[number - 1] = bytes(cmd.data)
        ch.record = number
        return ResponseApdu()

    def _search_record(self, ch: _Channel, cmd: CommandApdu) -> ResponseApdu:
        if not cmd.data:
            raise StatusError(SW_WRONG_LENGTH)
        node, mode = self._record_target(ch, cmd)
        self._check_access(node, Operation.READ)
        count = len(node.records)
        start = cmd.p1 or ch.record or 1
        if mode == 0x04:
            order = range(start, count + 1)
        elif mode == 0x05:
            order = range(start, 0, -1)
        else:
            raise StatusError(SW_INCORRECT_P1P2, "only simple search forward/backward from P1")
        if not 1 <= start <= count:
            raise StatusError(SW_RECORD_NOT_FOUND)
        found = [n for n in order if cmd.data in node.records[n - 1]]
        if found:
            ch.record = found[0]
        return ResponseApdu(bytes(found))

    # -- STATUS, (de)activation, TERMINAL PROFILE ------------------------------

    def _status(self, ch: _Channel, cmd: CommandApdu) -> ResponseApdu:
        if cmd.p1 not in (0x00, 0x01, 0x02) or cmd.data:
            raise StatusError(SW_INCORRECT_P1P2 if cmd.p1 > 2 else SW_WRONG_LENGTH)
        if cmd.p2 == 0x00:
            return ResponseApdu(self.fcp(ch.current_df))
        if cmd.p2 == 0x01:
            adf = ch.app
            if adf is None or adf.spec.aid is None:
                raise StatusError(SW_REFERENCE_NOT_FOUND, "no current application")
            return ResponseApdu(encode_tlv(0x84, adf.spec.aid))
        if cmd.p2 == 0x0C:
            return ResponseApdu()
        raise StatusError(SW_INCORRECT_P1P2)

    def _lifecycle(self, ch: _Channel, cmd: CommandApdu, activate: bool) -> ResponseApdu:
        if cmd.p1p2 != 0 or cmd.ne is not None:
            raise StatusError(SW_INCORRECT_P1P2 if cmd.p1p2 else SW_WRONG_LENGTH)
        if cmd.data:
            if len(cmd.data) != 2:
                raise StatusError(SW_WRONG_LENGTH)
            found = self._fs.select_fid(ch.current_df, int.from_bytes(cmd.data, "big"), ch.app)
            if found is None:
                raise StatusError(SW_FILE_NOT_FOUND)
            self._select_node(ch, found, 0x0C)
            node = found
        else:
            node = ch.current_ef or ch.current_df
        self._check_access(node, Operation.ACTIVATE if activate else Operation.DEACTIVATE)
        node.lcsi = Lcsi.OPERATIONAL_ACTIVATED if activate else Lcsi.OPERATIONAL_DEACTIVATED
        return ResponseApdu()

    def _deactivate(self, ch: _Channel, cmd: CommandApdu) -> ResponseApdu:
        return self._lifecycle(ch, cmd, activate=False)

    def _activate(self, ch: _Channel, cmd: CommandApdu) -> ResponseApdu:
        return self._lifecycle(ch, cmd, activate=True)

    def _terminal_profile(self, ch: _Channel, cmd: CommandApdu) -> ResponseApdu:
        if cmd.p1p2 != 0:
            raise StatusError(SW_INCORRECT_P1P2)
        return ResponseApdu()

    # -- PINs ----------------------------------------------------------------------

    def _pin_for(self, cmd: CommandApdu) -> _Pin:
        pin = self._pins.get(cmd.p2)
        if pin is None:
            raise StatusError(SW_REFERENCE_NOT_FOUND, "no such PIN")
        return pin

    @staticmethod
    def _wrong(pin: _Pin) -> StatusError:
        return StatusError(sw_retries(pin.spec.tries_left), "wrong PIN")

    def _verify(self, ch: _Channel, cmd: CommandApdu) -> ResponseApdu:
        if cmd.p1 != 0x00:
            raise StatusError(SW_INCORRECT_P1P2)
        pin = self._pin_for(cmd)
        if not cmd.data:
            if pin.blocked:
                raise StatusError(SW_BLOCKED)
            if pin.verified:
                return ResponseApdu()
            raise self._wrong(pin)
        if len(cmd.data) != 8:
            raise StatusError(SW_WRONG_LENGTH)
        if pin.blocked:
            raise StatusError(SW_BLOCKED)
        if not pin.check(cmd.data):
            raise self._wrong(pin)
        return ResponseApdu()

    def _change_pin(self, ch: _Channel, cmd: CommandApdu) -> ResponseApdu:
        if cmd.p1 != 0x00:
            raise StatusError(SW_INCORRECT_P1P2)
        pin = self._pin_for(cmd)
        if len(cmd.data) != 16:
            raise StatusError(SW_WRONG_LENGTH)
        if pin.blocked:
            raise StatusError(SW_BLOCKED)
        if not pin.spec.enabled:
            raise StatusError(SW_CONDITIONS_NOT_SATISFIED, "PIN disabled")
        if not pin.check(cmd.data[:8]):
            raise self._wrong(pin)
        pin.spec = attrs.evolve(pin.spec, pin=cmd.data[8:])
        return ResponseApdu()

    def _enable_disable(self, cmd: CommandApdu, enable: bool) -> ResponseApdu:
        if cmd.p1 != 0x00:
            raise StatusError(SW_INCORRECT_P1P2)
        pin = self._pin_for(cmd)
        if cmd.p2 == PIN_ADM1:
            raise StatusError(SW_CONDITIONS_NOT_SATISFIED, "ADM cannot be disabled")
        if len(cmd.data) != 8:
            raise StatusError(SW_WRONG_LENGTH)
        if pin.blocked:
            raise StatusError(SW_BLOCKED)
        if pin.spec.enabled == enable:
            raise StatusError(SW_CONDITIONS_NOT_SATISFIED, "already in that state")
        if not pin.check(cmd.data):
            raise self._wrong(pin)
        pin.spec = attrs.evolve(pin.spec, enabled=enable)
        return ResponseApdu()

    def _disable_pin(self, ch: _Channel, cmd: CommandApdu) -> ResponseApdu:
        return self._enable_disable(cmd, enable=False)

    def _enable_pin(self, ch: _Channel, cmd: CommandApdu) -> ResponseApdu:
        return self._enable_disable(cmd, enable=True)

    def _unblock_pin(self, ch: _Channel, cmd: CommandApdu) -> ResponseApdu:
        if cmd.p1 != 0x00:
            raise StatusError(SW_INCORRECT_P1P2)
        pin = self._pin_for(cmd)
        spec = pin.spec
        if spec.puk is None:
            raise StatusError(SW_CONDITIONS_NOT_SATISFIED, "no PUK for this PIN")
        if not cmd.data:
            if spec.puk_tries_left == 0:
                raise StatusError(SW_BLOCKED)
            raise StatusError(sw_retries(spec.puk_tries_left))
        if len(cmd.data) != 16:
            raise StatusError(SW_WRONG_LENGTH)
        if spec.puk_tries_left == 0:
            raise StatusError(SW_BLOCKED)
        if not hmac.compare_digest(cmd.data[:8], spec.puk):
            pin.spec = attrs.evolve(spec, puk_tries_left=spec.puk_tries_left - 1)
            raise StatusError(sw_retries(pin.spec.puk_tries_left), "wrong PUK")
        pin.spec = attrs.evolve(
            spec,
            pin=cmd.data[8:],
            tries_left=spec.max_tries,
            puk_tries_left=spec.puk_max_tries,
        )
        pin.verified = True
        return ResponseApdu()

    # -- AUTHENTICATE ------------------------------------------------------------------

    def _authenticate(self, ch: _Channel, cmd: CommandApdu) -> ResponseApdu:
        adf = ch.app
        usim = None
        if adf is not None:
            usim = next((u for u in self._usims if u.adf_aid == adf.spec.aid), None)
        if usim is None:
            raise StatusError(SW_CONDITIONS_NOT_SATISFIED, "no USIM selected")
        if not self._condition_met(AccessCondition.PIN1):
            raise StatusError(SW_SECURITY_STATUS)
        return ResponseApdu(usim.authenticate(cmd.p1, cmd.p2, cmd.data))

    _HANDLERS: ClassVar[Mapping[int, Callable[[Uicc, _Channel, CommandApdu], ResponseApdu]]] = {
        0xA4: _select,
        0xF2: _status,
        0xB0: _read_binary,
        0xD6: _update_binary,
        0xB2: _read_record,
        0xDC: _update_record,
        0xA2: _search_record,
        0x20: _verify,
        0x24: _change_pin,
        0x26: _disable_pin,
        0x28: _enable_pin,
        0x2C: _unblock_pin,
        0x88: _authenticate,
        0x04: _deactivate,
        0x44: _activate,
        0x10: _terminal_profile,
    }


# -- a small ready-made card -------------------------------------------------------

USIM_AID = bytes.fromhex("A0000000871002FFFFFFFF8907090000")
"""A USIM AID (RID A000000087, 3GPP; application code 1002) as used by many test cards."""

TS48_TEST_K = bytes(range(16))
"""The K of the GSMA TS.48 test profiles (used with the TS 34.108 test algorithm)."""


def demo_state(
    *,
    iccid: str = "89000123456789012341",
    imsi: str = "001010123456789",
    k: bytes = TS48_TEST_K,
    pin1: bytes = b"1234",
    puk1: bytes = b"12345678",
    adm1: bytes = b"88888888",
) -> UiccState:
    """A small but complete USIM card: MF with EF.ICCID/EF.DIR, ADF.USIM with common EFs.

    AKA with the TS 34.108 test algorithm and K (default: the TS.48 key),
    SQN checking on; PIN1 (enabled, with PUK), PIN2, ADM1.
    """
    alw = AccessCondition.ALW
    pin = AccessCondition.PIN1
    adm = AccessCondition.ADM1
    nev = AccessCondition.NEV
    read_alw = AccessRules(read=alw, update=adm)
    read_pin = AccessRules(read=pin, update=adm)
    rw_pin = AccessRules(read=pin, update=pin)
    application = encode_tlv(0x4F, USIM_AID) + encode_tlv(0x50, b"USIM")
    dir_record = encode_tlv(0x61, application).ljust(32, b"\xff")
    ts = FileStructure.TRANSPARENT
    mf = FileSpec(
        0x3F00,
        FileStructure.DF,
        "MF",
        pin_refs=(PIN_UNIVERSAL, PIN_ADM1),
        children=(
            FileSpec(
                0x2FE2,
                ts,
                "EF.ICCID",
                content=encode_iccid(iccid),
                access=AccessRules(read=alw, update=nev),
                sfi=0x02,
            ),
            FileSpec(
                0x2F00,
                FileStructure.LINEAR_FIXED,
                "EF.DIR",
                records=(dir_record,),
                access=read_alw,
                sfi=0x1E,
            ),
            FileSpec(
                0x2F05,
                ts,
                "EF.PL",
                content=b"enfr" + b"\xff" * 6,
                access=AccessRules(read=alw, update=pin),
                sfi=0x05,
            ),
        ),
    )
    usim = FileSpec(
        0x7FF0,
        FileStructure.ADF,
        "ADF.USIM",
        aid=USIM_AID,
        arr=b"\x6f\x06\x01",
        pin_refs=(PIN_APPL_1, PIN_APPL_2, PIN_ADM1),
        children=(
            FileSpec(0x6F07, ts, "EF.IMSI", content=encode_imsi(imsi), access=read_pin, sfi=0x07),
            FileSpec(
                0x6FAD, ts, "EF.AD", content=bytes.fromhex("00000002"), access=read_alw, sfi=0x03
            ),
            FileSpec(
                0x6F38,
                ts,
                "EF.UST",
                content=bytes.fromhex("9e6b1d9c230000000000"),
                access=read_pin,
                sfi=0x04,
            ),
            FileSpec(
                0x6F46, ts, "EF.SPN", content=b"\x01rspfed".ljust(17, b"\xff"), access=read_alw
            ),
            FileSpec(
                0x6F7E,
                ts,
                "EF.LOCI",
                content=bytes.fromhex("ffffffff00f110fffe00ff")[:11],
                access=rw_pin,
                sfi=0x0B,
            ),
            FileSpec(0x6F7B, ts, "EF.FPLMN", content=b"\xff" * 12, access=rw_pin, sfi=0x0D),
            FileSpec(
                0x6F60,
                ts,
                "EF.PLMNwAcT",
                content=b"\xff\xff\xff\x00\x00" * 8,
                access=rw_pin,
                sfi=0x0A,
            ),
            FileSpec(
                0x6F61,
                ts,
                "EF.OPLMNwAcT",
                content=bytes.fromhex("00f110ffff") * 8,
                access=read_pin,
                sfi=0x11,
            ),
            FileSpec(0x6F31, ts, "EF.HPPLMN", content=b"\x05", access=read_pin, sfi=0x12),
            FileSpec(
                0x6F40,
                FileStructure.LINEAR_FIXED,
                "EF.MSISDN",
                records=(b"\xff" * 28,) * 2,
                access=rw_pin,
            ),
        ),
    )
    return UiccState(
        FileSystemSpec(mf, (usim,)),
        pins=(
            PinSpec(PIN_APPL_1, pin1, puk1),
            PinSpec(PIN_APPL_2, b"5678", b"87654321"),
            PinSpec(PIN_ADM1, adm1, None, max_tries=10, tries_left=10),
        ),
        aka=(AkaSpec(USIM_AID, AkaAlgorithmId.USIM_TEST_ALGORITHM, k),),
    )
