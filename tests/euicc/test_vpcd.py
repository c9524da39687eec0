"""The vsmartcard ``vpcd`` bridge: framer, asyncio client, and the real pcscd.

Three layers of tests:

1. :class:`VpcdFraming` with hypothesis: any split of a valid stream gives the
   same events; malformed frames raise ``ProtocolError`` and nothing else.
   The streams are built here with ``struct`` as ``vpcd``'s ``sendToVICC``
   builds them, not with our framer.
2. :func:`serve_vpcd` against a stand-in ``vpcd`` written here (an asyncio
   TCP server speaking the protocol by hand): half frames, malformed frames,
   reconnection, stop.  These always run.
3. The real thing: ``pcscd`` with the ``vpcd`` driver, the card served by
   :func:`serve_vpcd` in a background thread, and pyscard, ``scriptor`` and
   ``pcsc_scan`` as PC/SC clients.  Skipped when pcscd/vpcd/pyscard are
   missing on a developer machine, but *failing* under CI (``CI=true``),
   where ``scripts/start-pcscd.sh`` must have started pcscd.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import itertools
import logging
import os
import shutil
import struct
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rspfed.errors import EncodeError, ProtocolError, TransportError, UsageError
from rspfed.euicc.apdu import CommandApdu, ResponseApdu, StatusError
from rspfed.euicc.card import Card
from rspfed.euicc.uicc import ATR_T0_ONLY, Transmission, Uicc, demo_state
from rspfed.euicc.vpcd import (
    VPCD_DEFAULT_PORT,
    Apdu,
    GetAtr,
    PowerOff,
    PowerOn,
    Reset,
    VpcdEvent,
    VpcdFraming,
    parse_vpcd_address,
    serve_vpcd,
)

try:
    from smartcard.CardConnection import CardConnection
    from smartcard.Exceptions import CardConnectionException, NoCardException
    from smartcard.scard import (
        SCARD_LEAVE_CARD,
        SCARD_RESET_CARD,
        SCARD_S_SUCCESS,
        SCARD_SCOPE_USER,
        SCARD_STATE_EMPTY,
        SCARD_STATE_PRESENT,
        SCARD_STATE_UNAWARE,
        SCARD_UNPOWER_CARD,
        SCardEstablishContext,
        SCardGetStatusChange,
        SCardReleaseContext,
    )
    from smartcard.System import readers as pcsc_readers

    HAVE_PYSCARD = True
except ImportError:  # pragma: no cover - depends on the machine
    HAVE_PYSCARD = False

# --------------------------------------------------------------------------
# Test cards

SELECT_MF = bytes.fromhex("00A40004023F00")
# A UICC-like ATR (T=0, with T=15 global bytes; TCK checked: XOR of T0..TCK is 0).
MINIMAL_ATR = bytes.fromhex("3B9F96801FC78031A073BE21136743200718000001A5")
# Proprietary command of MinimalCard that returns LONG_DATA with T=0 chaining
# (61xx + GET RESPONSE), and one that returns it in a single response.
GET_LONG_CHAINED = bytes.fromhex("80CA00FF00")
GET_LONG_DIRECT = bytes.fromhex("80CB00FF00")
LONG_DATA = bytes((i * 7 + 3) & 0xFF for i in range(700))


class MinimalCard:
    """A card for the bridge tests: SELECT MF -> 9000, anything else 6D00.

    Plus two proprietary commands that return 700 bytes, one through T=0
    response chaining (61xx / GET RESPONSE, ISO/IEC 7816-4 5.1.3 and
    ETSI TS 102 221 7.3.1.1.4) and one in one piece.
    """

    def __init__(self) -> None:
        self._pending = b""

    def power_on(self) -> bytes:
        self._pending = b""
        return MINIMAL_ATR

    def reset(self) -> bytes:
        self._pending = b""
        return MINIMAL_ATR

    def power_off(self) -> None:
        self._pending = b""

    def _chunk(self, le: int) -> bytes:
        size = min(le or 256, len(self._pending))
        data, self._pending = self._pending[:size], self._pending[size:]
        if self._pending:
            return data + bytes([0x61, min(len(self._pending), 256) & 0xFF])
        return data + b"\x90\x00"

    def transmit(self, apdu: bytes) -> bytes:
        if apdu[1:2] == b"\xc0" and len(apdu) == 5 and self._pending:
            return self._chunk(apdu[4])
        self._pending = b""
        if apdu == SELECT_MF:
            return b"\x90\x00"
        if apdu == GET_LONG_CHAINED:
            self._pending = LONG_DATA
            return bytes([0x61, 0x00])  # 256 or more bytes available
        if apdu == GET_LONG_DIRECT:
            return LONG_DATA + b"\x90\x00"
        return b"\x6d\x00"


class RecordingCard:
    """Forwards to another :class:`Card` and records what reached it.

    Entries: ``"power_on"``, ``"reset"``, ``"power_off"``, ``"transmit XX"``
    (XX = INS).  Thread-safe enough for one writer (the bridge thread) and a
    reader (the test).
    """

    def __init__(self, inner: Card) -> None:
        self.inner = inner
        self.calls: list[str] = []
        self.atr: bytes | None = None

    def power_on(self) -> bytes:
        self.calls.append("power_on")
        self.atr = self.inner.power_on()
        return self.atr

    def reset(self) -> bytes:
        self.calls.append("reset")
        self.atr = self.inner.reset()
        return self.atr

    def power_off(self) -> None:
        self.calls.append("power_off")
        self.inner.power_off()

    def transmit(self, apdu: bytes) -> bytes:
        self.calls.append(f"transmit {apdu[1]:02X}" if len(apdu) > 1 else "transmit")
        return self.inner.transmit(apdu)


class RaisingCard(MinimalCard):
    """Breaks the Card contract: raises on INS 0xEE (with a 'secret' message)."""

    def transmit(self, apdu: bytes) -> bytes:
        if apdu[1:2] == b"\xee":
            raise RuntimeError("secret " + apdu.hex())
        return super().transmit(apdu)


def test_test_cards_are_cards() -> None:
    assert isinstance(MinimalCard(), Card)
    assert isinstance(RecordingCard(MinimalCard()), Card)


# --------------------------------------------------------------------------
# 1. The framer

CONTROL_CODES = {PowerOff(): 0x00, PowerOn(): 0x01, Reset(): 0x02, GetAtr(): 0x04}


def vpcd_frame(payload: bytes) -> bytes:
    """Frame a message as vpcd's sendToVICC does: 2-byte big-endian length."""
    return struct.pack("!H", len(payload)) + payload


def vpcd_message(event: VpcdEvent) -> bytes:
    if isinstance(event, Apdu):
        return vpcd_frame(event.apdu)
    return vpcd_frame(bytes([CONTROL_CODES[event]]))


events_st: st.SearchStrategy[VpcdEvent] = st.one_of(
    st.sampled_from([PowerOff(), PowerOn(), Reset(), GetAtr()]),
    st.builds(Apdu, st.binary(min_size=2, max_size=300)),
)

bad_frames_st = st.one_of(
    st.just(b"\x00\x00"),
    st.integers(0, 255)
    .filter(lambda code: code not in CONTROL_CODES.values())
    .map(lambda code: vpcd_frame(bytes([code]))),
)


def split(data: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({c % (len(data) + 1) for c in cuts})
    bounds = [0, *points, len(data)]
    return [data[a:b] for a, b in itertools.pairwise(bounds)]


def drain(framing: VpcdFraming, out: list[VpcdEvent] | None = None) -> list[VpcdEvent]:
    """Take all complete events; ``out`` keeps those before an exception."""
    if out is None:
        out = []
    while (event := framing.next_event()) is not None:
        out.append(event)
    return out


def feed(framing: VpcdFraming, chunks: list[bytes], out: list[VpcdEvent]) -> None:
    for chunk in chunks:
        framing.receive_data(chunk)
        drain(framing, out)


@given(st.lists(events_st, max_size=20), st.lists(st.integers(min_value=0), max_size=30))
def test_any_split_gives_the_same_events(events: list[VpcdEvent], cuts: list[int]) -> None:
    stream = b"".join(vpcd_message(e) for e in events)
    framing = VpcdFraming()
    got: list[VpcdEvent] = []
    feed(framing, split(stream, cuts), got)
    assert got == events
    assert framing.buffered == 0


@given(st.lists(events_st, min_size=1, max_size=10), st.data())
def test_truncated_stream_gives_a_prefix(events: list[VpcdEvent], data: st.DataObject) -> None:
    stream = b"".join(vpcd_message(e) for e in events)
    cut = data.draw(st.integers(0, len(stream)))
    framing = VpcdFraming()
    framing.receive_data(stream[:cut])
    got = drain(framing)
    assert got == events[: len(got)]
    consumed = sum(len(vpcd_message(e)) for e in got)
    assert framing.buffered == cut - consumed
    # The rest completes the stream.
    framing.receive_data(stream[cut:])
    assert got + drain(framing) == events


@given(
    st.lists(events_st, max_size=5),
    bad_frames_st,
    st.binary(max_size=20),
    st.lists(st.integers(min_value=0), max_size=10),
)
def test_malformed_frame_raises_protocol_error_after_the_good_ones(
    events: list[VpcdEvent], bad: bytes, tail: bytes, cuts: list[int]
) -> None:
    stream = b"".join(vpcd_message(e) for e in events) + bad + tail
    framing = VpcdFraming()
    got: list[VpcdEvent] = []
    with pytest.raises(ProtocolError):
        feed(framing, split(stream, cuts), got)
    assert got == events
    # The framer stays broken: the stream cannot be resynchronised.
    with pytest.raises(ProtocolError):
        framing.next_event()
    framing.receive_data(vpcd_message(GetAtr()))
    with pytest.raises(ProtocolError):
        framing.next_event()


@given(st.binary(max_size=600))
def test_arbitrary_bytes_raise_nothing_but_protocol_error(data: bytes) -> None:
    framing = VpcdFraming()
    framing.receive_data(data)
    with contextlib.suppress(ProtocolError):
        for event in drain(framing):
            assert isinstance(event, PowerOff | PowerOn | Reset | GetAtr | Apdu)


def test_malformed_frames_are_named() -> None:
    framing = VpcdFraming()
    framing.receive_data(vpcd_message(PowerOn()) + b"\x00\x01\x03")
    assert framing.next_event() == PowerOn()
    with pytest.raises(ProtocolError, match=r"control code 0x03 at stream offset 3"):
        framing.next_event()
    framing = VpcdFraming()
    framing.receive_data(b"\x00\x00")
    with pytest.raises(ProtocolError, match="empty"):
        framing.next_event()


def test_largest_frame() -> None:
    apdu = bytes([0x00, 0xD6]) + bytes(0xFFFF - 2)
    framing = VpcdFraming()
    framing.receive_data(vpcd_frame(apdu))
    assert framing.next_event() == Apdu(apdu)


@given(st.binary(max_size=0xFFFF))
def test_frame_response(payload: bytes) -> None:
    framed = VpcdFraming.frame_response(payload)
    assert struct.unpack("!H", framed[:2]) == (len(payload),)
    assert framed[2:] == payload


def test_frame_response_too_long() -> None:
    assert len(VpcdFraming.frame_response(bytes(0xFFFF))) == 0x1_0001
    with pytest.raises(EncodeError):
        VpcdFraming.frame_response(bytes(0x1_0000))


def test_apdu_repr_hides_contents() -> None:
    assert "1234" not in repr(Apdu(bytes.fromhex("0020000104313233340F")))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("35963", ("127.0.0.1", 35963)),
        ("localhost:35964", ("localhost", 35964)),
        ("192.0.2.7:1", ("192.0.2.7", 1)),
        ("[::1]:35963", ("::1", 35963)),
    ],
)
def test_parse_vpcd_address(text: str, expected: tuple[str, int]) -> None:
    assert parse_vpcd_address(text) == expected


@pytest.mark.parametrize(
    "text", ["", ":35963", "host:", "host:0", "host:65536", "::1:35963", "a:b", "1e3", "[]:1"]
)
def test_parse_vpcd_address_rejects(text: str) -> None:
    with pytest.raises(UsageError):
        parse_vpcd_address(text)


@given(
    st.from_regex(r"[a-z0-9][a-z0-9.-]{0,30}", fullmatch=True),
    st.integers(1, 65535),
)
def test_parse_vpcd_address_round_trip(host: str, port: int) -> None:
    assert parse_vpcd_address(f"{host}:{port}") == (host, port)
    assert parse_vpcd_address(str(port), default_host=host) == (host, port)


@given(st.text(max_size=40))
def test_parse_vpcd_address_raises_only_usage_error(text: str) -> None:
    with contextlib.suppress(UsageError):
        host, port = parse_vpcd_address(text)
        assert host
        assert 0 < port < 65536


# --------------------------------------------------------------------------
# 2. serve_vpcd against a stand-in vpcd (always runs)


@attrs.define
class FakeVpcd:
    """The reader side of the protocol, by hand: accepts the card's connections."""

    connections: asyncio.Queue[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = attrs.field(
        factory=asyncio.Queue
    )
    server: asyncio.Server | None = None
    port: int = 0

    async def start(self, port: int = 0) -> None:
        async def accept(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
            await self.connections.put((r, w))

        self.server = await asyncio.start_server(accept, "127.0.0.1", port)
        self.port = self.server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    async def accept(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.wait_for(self.connections.get(), 5)


async def send(writer: asyncio.StreamWriter, data: bytes, *, bytewise: bool = False) -> None:
    if bytewise:  # force TCP to deliver half frames
        for i in range(len(data)):
            writer.write(data[i : i + 1])
            await writer.drain()
            await asyncio.sleep(0)
    else:
        writer.write(data)
        await writer.drain()


async def answer(reader: asyncio.StreamReader) -> bytes:
    (length,) = struct.unpack("!H", await asyncio.wait_for(reader.readexactly(2), 5))
    return await asyncio.wait_for(reader.readexactly(length), 5)


async def eof(reader: asyncio.StreamReader) -> bool:
    return await asyncio.wait_for(reader.read(1), 5) == b""


def run(coro: Callable[[], Any]) -> Any:
    return asyncio.run(asyncio.wait_for(coro(), 20))


def test_serves_a_session_over_half_frames() -> None:
    card = RecordingCard(MinimalCard())

    async def main() -> None:
        vpcd = FakeVpcd()
        await vpcd.start()
        stop = asyncio.Event()
        task = asyncio.create_task(serve_vpcd(card, "127.0.0.1", vpcd.port, stop=stop))
        r, w = await vpcd.accept()
        # Presence poll before any power-on: the ATR, and the card is left unpowered.
        await send(w, vpcd_message(GetAtr()), bytewise=True)
        assert await answer(r) == MINIMAL_ATR
        assert card.calls == ["power_on", "power_off"]
        await send(w, vpcd_message(PowerOn()) + vpcd_message(GetAtr()), bytewise=True)
        assert await answer(r) == MINIMAL_ATR
        await send(w, vpcd_message(Apdu(SELECT_MF)), bytewise=True)
        assert await answer(r) == b"\x90\x00"
        # Two commands in one segment: answered in order.
        await send(w, vpcd_message(Apdu(b"\x00\x00\x00\x00")) + vpcd_message(Apdu(SELECT_MF)))
        assert await answer(r) == b"\x6d\x00"
        assert await answer(r) == b"\x90\x00"
        await send(w, vpcd_message(Reset()) + vpcd_message(GetAtr()))
        assert await answer(r) == MINIMAL_ATR
        await send(w, vpcd_message(Apdu(GET_LONG_DIRECT)))
        assert await answer(r) == LONG_DATA + b"\x90\x00"
        await send(w, vpcd_message(PowerOff()) + vpcd_message(GetAtr()))
        assert await answer(r) == MINIMAL_ATR  # still inserted while unpowered
        stop.set()
        await asyncio.wait_for(task, 5)
        assert await eof(r)
        await vpcd.close()

    run(main)
    assert card.calls == [
        "power_on",
        "power_off",
        "power_on",
        "transmit A4",
        "transmit 00",
        "transmit A4",
        "reset",
        "transmit CB",
        "power_off",
    ]


def test_malformed_frame_closes_cleanly_and_logs_no_contents(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret_apdu = bytes.fromhex("0020000108") + b"\x31\x32\x33\x34\xff\xff\xff\xff"
    card = RecordingCard(MinimalCard())

    async def main() -> None:
        vpcd = FakeVpcd()
        await vpcd.start()
        task = asyncio.create_task(serve_vpcd(card, "127.0.0.1", vpcd.port, reconnect=False))
        r, w = await vpcd.accept()
        await send(w, vpcd_message(PowerOn()) + vpcd_message(Apdu(secret_apdu)))
        assert await answer(r) == b"\x6d\x00"
        await send(w, vpcd_frame(b"\x07"))  # unknown control code
        assert await eof(r)
        with pytest.raises(ProtocolError, match="0x07"):
            await asyncio.wait_for(task, 5)
        await vpcd.close()

    with caplog.at_level(logging.DEBUG, logger="rspfed.euicc.vpcd"):
        run(main)
    # Powered by vpcd, so removal powers it off.
    assert card.calls == ["power_on", "transmit 20", "power_off"]
    text = caplog.text.lower()
    assert "0x07" in text
    assert "INS 20".lower() in text
    for leak in (secret_apdu.hex(), "31323334", "31 32 33 34", "1234"):
        assert leak not in text


def test_card_that_raises_gets_6f00_and_no_message_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def main() -> None:
        vpcd = FakeVpcd()
        await vpcd.start()
        stop = asyncio.Event()
        task = asyncio.create_task(serve_vpcd(RaisingCard(), "127.0.0.1", vpcd.port, stop=stop))
        r, w = await vpcd.accept()
        await send(w, vpcd_message(PowerOn()) + vpcd_message(Apdu(b"\x80\xee\x00\x00\x02\xab\xcd")))
        assert await answer(r) == b"\x6f\x00"
        await send(w, vpcd_message(Apdu(SELECT_MF)))  # still serving
        assert await answer(r) == b"\x90\x00"
        stop.set()
        await task
        await vpcd.close()

    with caplog.at_level(logging.DEBUG, logger="rspfed.euicc.vpcd"):
        run(main)
    assert "RuntimeError" in caplog.text
    assert "secret" not in caplog.text
    assert "abcd" not in caplog.text.lower()


def test_reconnects_when_pcscd_restarts() -> None:
    card = RecordingCard(MinimalCard())

    async def main() -> None:
        # pcscd not started yet: port refused, the card keeps trying.
        vpcd = FakeVpcd()
        await vpcd.start()
        port = vpcd.port
        await vpcd.close()
        stop = asyncio.Event()
        task = asyncio.create_task(serve_vpcd(card, "127.0.0.1", port, stop=stop))
        await asyncio.sleep(0.35)  # a few refused attempts
        await vpcd.start(port)
        r, w = await vpcd.accept()
        await send(w, vpcd_message(PowerOn()) + vpcd_message(Apdu(SELECT_MF)))
        assert await answer(r) == b"\x90\x00"
        # pcscd restarts: connection dropped, listener gone for a while.
        w.close()
        await vpcd.close()
        await asyncio.sleep(0.3)
        await vpcd.start(port)
        r, w = await vpcd.accept()
        await send(w, vpcd_message(GetAtr()))
        assert await answer(r) == MINIMAL_ATR
        # A malformed frame also leads to a reconnect, not an exit.
        await send(w, b"\x00\x00")
        assert await eof(r)
        r, w = await vpcd.accept()
        await send(w, vpcd_message(GetAtr()))
        assert await answer(r) == MINIMAL_ATR
        stop.set()
        await asyncio.wait_for(task, 5)
        await vpcd.close()

    run(main)
    # Removal powered the card off: the second session starts unpowered.
    assert card.calls[:4] == ["power_on", "transmit A4", "power_off", "power_on"]


def test_no_reconnect_raises_transport_error_when_refused() -> None:
    async def main() -> None:
        vpcd = FakeVpcd()
        await vpcd.start()
        port = vpcd.port
        await vpcd.close()
        with pytest.raises(TransportError, match=str(port)):
            await serve_vpcd(MinimalCard(), "127.0.0.1", port, reconnect=False)

    run(main)


def test_no_reconnect_returns_when_vpcd_closes() -> None:
    async def main() -> None:
        vpcd = FakeVpcd()
        await vpcd.start()
        task = asyncio.create_task(
            serve_vpcd(MinimalCard(), "127.0.0.1", vpcd.port, reconnect=False)
        )
        _, w = await vpcd.accept()
        w.write(b"\x00")  # half a length: closing now is mid-frame
        w.close()
        await asyncio.wait_for(task, 5)  # returns, does not raise
        assert task.exception() is None
        await vpcd.close()

    run(main)


def test_stop_while_waiting_for_pcscd() -> None:
    async def main() -> None:
        vpcd = FakeVpcd()
        await vpcd.start()
        port = vpcd.port
        await vpcd.close()
        stop = asyncio.Event()
        task = asyncio.create_task(serve_vpcd(MinimalCard(), "127.0.0.1", port, stop=stop))
        await asyncio.sleep(0.2)
        stop.set()
        await asyncio.wait_for(task, 1)

    run(main)


def test_bad_port_is_a_usage_error() -> None:
    with pytest.raises(UsageError):
        asyncio.run(serve_vpcd(MinimalCard(), port=70000, reconnect=False))


# --------------------------------------------------------------------------
# 3. The real pcscd + vpcd


def _pcsc_unavailable() -> str | None:
    """Why the real PC/SC tests cannot run here, or None if they can."""
    if not HAVE_PYSCARD:
        return "pyscard is not installed (pip install -e '.[test]')"
    if shutil.which("pcscd") is None or not Path("/etc/reader.conf.d/vpcd").exists():
        return "pcscd / vsmartcard-vpcd are not installed (scripts/bootstrap.sh)"
    try:
        names = [str(r) for r in pcsc_readers()]
    except Exception as exc:  # pyscard raises its own exception types
        return f"pcscd is not reachable ({type(exc).__name__}); run scripts/start-pcscd.sh"
    if not any(name.startswith("Virtual PCD") for name in names):
        return f"pcscd has no vpcd reader (readers: {names}); run scripts/start-pcscd.sh"
    return None


def require_pcsc() -> None:
    """Skip when PC/SC is missing on a developer machine; fail loudly under CI."""
    reason = _pcsc_unavailable()
    if reason is None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"real PC/SC tests must run in CI: {reason}")
    pytest.skip(reason)


def require_tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        message = f"{name} is not installed (apt-get install pcsc-tools)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path


@contextlib.contextmanager
def vpcd_slot() -> Iterator[int]:
    """Hold one of vpcd's two slots (0 or 1) for this test process.

    pytest-xdist workers run in parallel and each slot takes one card, so a
    slot is locked with flock: a free one if there is one, else wait.
    """
    lockdir = Path(tempfile.gettempdir())
    files = [open(lockdir / f"rspfed-vpcd-slot{slot}.lock", "w") for slot in (0, 1)]  # noqa: SIM115
    try:
        for slot, f in enumerate(files):
            try:
                fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue
            yield slot
            return
        worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
        slot = int(worker.removeprefix("gw") or 0) % 2
        fcntl.flock(files[slot], fcntl.LOCK_EX)
        yield slot
    finally:
        for f in files:
            f.close()  # releases the lock


class BridgeThread:
    """Runs :func:`serve_vpcd` for one card on its own event loop thread."""

    def __init__(self, card: Card, port: int) -> None:
        self.loop = asyncio.new_event_loop()
        self.stop: asyncio.Event | None = None
        self.error: BaseException | None = None
        ready = threading.Event()

        def main() -> None:
            asyncio.set_event_loop(self.loop)

            async def serve() -> None:
                self.stop = asyncio.Event()
                ready.set()
                await serve_vpcd(card, "127.0.0.1", port, stop=self.stop)

            try:
                self.loop.run_until_complete(serve())
            except BaseException as exc:
                self.error = exc
                ready.set()
            finally:
                self.loop.close()

        self.thread = threading.Thread(target=main, name=f"vpcd-{port}", daemon=True)
        self.thread.start()
        ready.wait(5)

    def close(self) -> None:
        if self.stop is not None and not self.loop.is_closed():
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self.stop.set)
        self.thread.join(5)
        assert not self.thread.is_alive()
        if self.error is not None:
            raise self.error


@attrs.frozen
class Served:
    card: RecordingCard
    reader_name: str
    reader: Any  # smartcard.reader.Reader


# An applet in the real UICC front end whose STORE DATA answer is longer than
# 256 bytes (as ES10 GetEUICCInfo2 or a profile list can be).
LONG_APPLET_AID = bytes.fromhex("F07273706665640001")  # F0 = unregistered proprietary RID


class LongAnswerApplet:
    """Answers STORE DATA with LONG_DATA; other commands 6D00."""

    @property
    def aid(self) -> bytes:
        return LONG_APPLET_AID

    def select(self, channel: int, command: CommandApdu) -> ResponseApdu:
        return ResponseApdu(b"", 0x9000)

    def deselect(self, channel: int) -> None:
        pass

    def process(self, channel: int, command: CommandApdu) -> ResponseApdu:
        if command.ins == 0xE2:
            return ResponseApdu(LONG_DATA, 0x9000)
        raise StatusError(0x6D00)

    def reset(self) -> None:
        pass


def make_uicc() -> Card:
    """The card under test: rspfed's UICC front end, behaving as T=0."""
    return Uicc(demo_state(), transmission=Transmission.T0, applets=[LongAnswerApplet()])


def find_reader(slot: int) -> Any:
    name = f"Virtual PCD 00 {slot:02d}"
    reader = next((r for r in pcsc_readers() if str(r) == name), None)
    if reader is None:
        pytest.fail(f"pcscd has no reader {name!r} (vpcd slot {slot})")
    return reader


def wait_until_usable(reader: Any, card: RecordingCard, port: int) -> None:
    """Wait until pcscd talks to ``card`` and a PC/SC connection succeeds."""
    # pcscd polls every 400 ms; a previous card on this slot may not have been
    # noticed gone yet, so first wait until this card is polled.
    deadline = time.monotonic() + 10
    while card.atr is None:
        if time.monotonic() > deadline:
            pytest.fail(
                f"pcscd never polled the card on port {port}: "
                "is another virtual card connected to that vpcd slot?"
            )
        time.sleep(0.02)
    while True:
        connection = reader.createConnection()
        try:
            connection.connect()
            connection.disconnect()
            return
        except (NoCardException, CardConnectionException):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextlib.contextmanager
def serve_card(inner: Card) -> Iterator[Served]:
    """Insert ``inner`` into a free vpcd slot of the real pcscd; yield once usable."""
    require_pcsc()
    with vpcd_slot() as slot:
        card = RecordingCard(inner)
        port = VPCD_DEFAULT_PORT + slot
        bridge = BridgeThread(card, port)
        try:
            reader = find_reader(slot)
            wait_until_usable(reader, card, port)
            yield Served(card, str(reader), reader)
        finally:
            bridge.close()
            # Leave the slot only once pcscd has seen it empty, so that the
            # next card is not taken for this one.
            with contextlib.suppress(AssertionError):
                wait_for_reader_state(f"Virtual PCD 00 {slot:02d}", SCARD_STATE_EMPTY)


@pytest.fixture
def served() -> Iterator[Served]:
    """The real UICC front end (T=0) in the vpcd reader."""
    with serve_card(make_uicc()) as s:
        yield s


@pytest.fixture
def served_minimal() -> Iterator[Served]:
    """MinimalCard in the vpcd reader (long answers in one piece)."""
    with serve_card(MinimalCard()) as s:
        yield s


@contextlib.contextmanager
def pcsc_connection(served: Served) -> Iterator[Any]:
    connection = served.reader.createConnection()
    connection.connect()
    try:
        yield connection
    finally:
        connection.disconnect()


def transmit(connection: Any, apdu: bytes) -> bytes:
    data, sw1, sw2 = connection.transmit(list(apdu))
    return bytes(data) + bytes([sw1, sw2])


def transmit_t0(connection: Any, apdu: bytes) -> bytes:
    """Send a command and collect its answer as a T=0 application must.

    PC/SC passes ``61xx`` and ``6Cxx`` through: on ``61xx`` send GET RESPONSE
    (ISO/IEC 7816-4) for ``xx`` bytes (``00``: 256) and append; on ``6Cxx``
    repeat the last command with Le = ``xx``.
    """
    channel_cla = apdu[0] & 0x03
    data = b""
    rapdu = transmit(connection, apdu)
    while True:
        sw1, sw2 = rapdu[-2], rapdu[-1]
        if sw1 == 0x6C:
            apdu = apdu[:4] + bytes([sw2])
            rapdu = transmit(connection, apdu)
            continue
        data += rapdu[:-2]
        if sw1 != 0x61:
            return data + rapdu[-2:]
        apdu = bytes([channel_cla, 0xC0, 0x00, 0x00, sw2])
        rapdu = transmit(connection, apdu)


def open_channel(connection: Any) -> int:
    rapdu = transmit(connection, bytes.fromhex("0070000001"))  # MANAGE CHANNEL open
    assert rapdu[-2:] == b"\x90\x00"
    assert len(rapdu) == 3
    return rapdu[0]


SW_CHANNEL_NOT_SUPPORTED = b"\x68\x81"  # ISO/IEC 7816-4: logical channel not supported


def select_mf_on(connection: Any, channel: int) -> bytes:
    return transmit(connection, bytes([channel]) + SELECT_MF[1:])[-2:]


@pytest.mark.root
@pytest.mark.timeout(60)  # a wedged pcscd must not eat the CI budget
def test_pcsc_atr_and_apdus(served: Served) -> None:
    with pcsc_connection(served) as connection:
        assert bytes(connection.getATR()) == served.card.atr == ATR_T0_ONLY
        assert connection.getProtocol() == CardConnection.T0_protocol
        # SELECT MF is case 3: over T=0 the FCP waits for GET RESPONSE.
        first = transmit(connection, SELECT_MF)
        assert first[0] == 0x61
        fcp = transmit_t0(connection, SELECT_MF)
        assert fcp[-2:] == b"\x90\x00"
        assert fcp[0] == 0x62  # FCP template (TS 102 221 11.1.1.3)
        assert fcp[1] == len(fcp) - 4
        assert transmit(connection, bytes.fromhex("00EE000000")) == b"\x6d\x00"
    assert "transmit EE" in served.card.calls


@pytest.mark.root
@pytest.mark.timeout(60)  # a wedged pcscd must not eat the CI budget
def test_pcsc_warm_and_cold_reset_reach_the_card(served: Served) -> None:
    calls = served.card.calls
    with pcsc_connection(served) as connection:
        channel = open_channel(connection)
        assert select_mf_on(connection, channel)[0] == 0x61

        before = len(calls)
        connection.reconnect(disposition=SCARD_RESET_CARD)
        assert "reset" in calls[before:]
        assert "power_off" not in calls[before:]
        # The warm reset cleared the card's volatile state: the channel is gone.
        assert select_mf_on(connection, channel) == SW_CHANNEL_NOT_SUPPORTED

        channel = open_channel(connection)
        before = len(calls)
        connection.reconnect(disposition=SCARD_UNPOWER_CARD)
        after = calls[before:]
        assert "power_off" in after
        assert "power_on" in after[after.index("power_off") :]
        assert bytes(connection.getATR()) == served.card.atr
        assert select_mf_on(connection, channel) == SW_CHANNEL_NOT_SUPPORTED
        assert transmit_t0(connection, SELECT_MF)[-2:] == b"\x90\x00"


@pytest.mark.root
@pytest.mark.timeout(60)  # a wedged pcscd must not eat the CI budget
def test_pcsc_long_answer_over_t0_with_get_response(served: Served) -> None:
    with pcsc_connection(served) as connection:
        channel = open_channel(connection)
        select = bytes([channel, 0xA4, 0x04, 0x00, len(LONG_APPLET_AID)]) + LONG_APPLET_AID
        assert transmit_t0(connection, select)[-2:] == b"\x90\x00"
        store_data = bytes([0x80 | channel, 0xE2, 0x91, 0x00, 0x03]) + bytes.fromhex("BF2200")
        first = transmit(connection, store_data)
        assert first == b"\x61\x00"  # 256 or more bytes wait for GET RESPONSE
        rapdu = transmit_t0(connection, store_data)
        assert rapdu[-2:] == b"\x90\x00"
        assert rapdu[:-2] == LONG_DATA
    gets = [c for c in served.card.calls if c == "transmit C0"]
    assert len(gets) >= 3  # 700 bytes need three GET RESPONSEs


@pytest.mark.root
@pytest.mark.timeout(60)  # a wedged pcscd must not eat the CI budget
def test_pcsc_long_answer_in_one_piece(served_minimal: Served) -> None:
    with pcsc_connection(served_minimal) as connection:
        # vpcd carries up to 65535 bytes and pcscd passes them on unchanged.
        assert transmit(connection, GET_LONG_DIRECT) == LONG_DATA + b"\x90\x00"
        # MinimalCard's own chaining, collected the same way.
        assert transmit_t0(connection, GET_LONG_CHAINED) == LONG_DATA + b"\x90\x00"


@pytest.mark.root
@pytest.mark.timeout(60)  # a wedged pcscd must not eat the CI budget
def test_scriptor_sends_apdus(served: Served) -> None:
    scriptor = require_tool("scriptor")
    script = "00 A4 00 04 02 3F 00\n00 EE 00 00 00\n"
    out = subprocess.run(
        [scriptor, "-r", served.reader_name],
        input=script,
        capture_output=True,
        text=True,
        timeout=20,
        check=True,
    ).stdout
    lines = [line.strip() for line in out.splitlines()]
    assert "> 00 A4 00 04 02 3F 00" in lines, out
    assert any(line.startswith("< 61 ") for line in lines), out  # FCP waiting (T=0)
    assert any(line.startswith("< 6D 00") for line in lines), out
    assert served.card.calls.count("transmit A4") >= 1


@pytest.mark.root
@pytest.mark.timeout(60)  # a wedged pcscd must not eat the CI budget
def test_pcsc_scan_shows_the_card(served: Served) -> None:
    pcsc_scan = require_tool("pcsc_scan")
    atr = served.card.atr
    assert atr is not None
    out = subprocess.run(
        [pcsc_scan, "-n", "-t", "1"],
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
        stdin=subprocess.DEVNULL,
    ).stdout
    assert served.reader_name in out
    assert " ".join(f"{b:02X}" for b in atr) in out, out


def wait_for_reader_state(name: str, flag: int, *, after_event: int = -1) -> int:
    """Wait until pcscd reports ``flag`` for reader ``name`` with an event
    counter above ``after_event``; return the counter.

    SCardGetStatusChange's dwEventState carries the reader's card event
    counter (insertions and removals) in its upper 16 bits (pcsc-lite).
    """
    hresult, context = SCardEstablishContext(SCARD_SCOPE_USER)
    assert hresult == SCARD_S_SUCCESS
    try:
        deadline = time.monotonic() + 5
        while True:
            hresult, states = SCardGetStatusChange(context, 0, [(name, SCARD_STATE_UNAWARE)])
            assert hresult == SCARD_S_SUCCESS
            event_state = states[0][1]
            counter = int(event_state >> 16)
            if event_state & flag and counter > after_event:
                return counter
            assert time.monotonic() < deadline, f"reader state {event_state:#x}"
            time.sleep(0.05)
    finally:
        SCardReleaseContext(context)


@pytest.mark.root
@pytest.mark.timeout(60)  # a wedged pcscd must not eat the CI budget
def test_pcsc_sees_removal_and_reinsertion() -> None:
    require_pcsc()
    with vpcd_slot() as slot:
        reader = find_reader(slot)
        port = VPCD_DEFAULT_PORT + slot
        first = RecordingCard(make_uicc())
        bridge = BridgeThread(first, port)
        try:
            wait_until_usable(reader, first, port)
            counter = wait_for_reader_state(str(reader), SCARD_STATE_PRESENT)
            connection = reader.createConnection()
            connection.connect(disposition=SCARD_LEAVE_CARD)
            assert transmit_t0(connection, SELECT_MF)[-2:] == b"\x90\x00"
        finally:
            bridge.close()
        # Removal: the card had been powered by pcscd, so it was powered off.
        assert first.calls[-1] == "power_off"
        # The open handle is dead at once.
        with pytest.raises(CardConnectionException):
            transmit(connection, SELECT_MF)
        with contextlib.suppress(CardConnectionException):
            connection.disconnect()
        # pcscd's presence poll (every 400 ms) registers the removal: the
        # reader's event counter moves and its state is empty.  (Inserting
        # the next card before that would hide the removal from pcscd.)
        wait_for_reader_state(str(reader), SCARD_STATE_EMPTY, after_event=counter)
        with pytest.raises(NoCardException):
            reader.createConnection().connect()
        # Re-insertion: a new card is found and works.
        second = RecordingCard(make_uicc())
        bridge = BridgeThread(second, port)
        try:
            wait_until_usable(reader, second, port)
            connection = reader.createConnection()
            connection.connect()
            try:
                assert transmit_t0(connection, SELECT_MF)[-2:] == b"\x90\x00"
            finally:
                connection.disconnect()
        finally:
            bridge.close()
        assert "transmit A4" in second.calls
