"""LAN transport for pairing: TCP plus zeroconf (DNS-SD over mDNS).

Theory of operation
-------------------
The *offerer* (the device that shows the QR or short code) runs a
:class:`LanOffer`: a TCP server on an ephemeral port, bound to chosen
addresses, and a DNS-SD registration::

    service type   _rspfed._tcp.local.
    instance       rspfed-<first 8 octets of the discovery id, hex>
    host (SRV)     rspfed-<same>.local.     (not the device's host name)
    TXT            v=1

The discovery id (16 octets, :mod:`rspfed.transfer.code`) comes from the QR
secret or from the short code's public nameplate, never from the guessable
words, so the advertisement tells an observer nothing that helps guessing.

**One attempt.**  The offer accepts exactly one TCP connection.  The moment it
arrives the listening sockets close (later connections are refused) and the
registration is withdrawn (goodbye packets); a connection that raced in
between is aborted.  Whatever happens on the accepted connection, the offer is
spent: the layer above burns the secret or code on failure.

The *joiner* calls :func:`lan_connect`: when the offer carries a LAN hint
(``direct=(host, port)``) it connects there first; otherwise, or when that
fails, it resolves the instance's SRV, TXT and A records by name through
``zeroconf.asyncio`` (the name is known, so no browse round is needed: the
multicast query is answered by the offerer, and the offerer's own
announcements complete the lookup too), checks ``v=1`` and connects to each
announced address in turn.

Both sides produce a :class:`TcpStream`: a :class:`~rspfed.transport.stream.ByteStream`
with bounded reads (``max_receive`` octets per ``receive``), ``TCP_NODELAY``,
optional receive and send time-outs, and :class:`~rspfed.errors.TransportError`
for resets, refusals and time-outs.  :meth:`TcpStream.abort` resets the
connection (RST), as a failing link would.

Only IPv4 is used (mDNS on IPv4, ``A`` records).  ``interfaces`` pins the
IPv4 addresses zeroconf listens and sends on (the network namespace tests pin
the veth address); ``None`` means every interface.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import socket
import struct
import time
from collections.abc import Sequence
from types import TracebackType
from typing import Any

import ifaddr
from zeroconf import (
    BadTypeInNameException,
    InterfaceChoice,
    IPVersion,
    NonUniqueNameException,
)
from zeroconf import (
    Error as ZeroconfError,
)
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from rspfed.errors import ProtocolError, StateError, TransportError, UsageError
from rspfed.transport.stream import DEFAULT_MAX_RECEIVE

__all__ = [
    "DISCOVERY_ID_SIZE",
    "LAN_VERSION",
    "SERVICE_TYPE",
    "LanOffer",
    "TcpStream",
    "instance_name",
    "lan_connect",
    "lan_resolve",
    "local_ipv4_addresses",
    "service_name",
    "tcp_connect",
]

#: The DNS-SD service type of rspfed pairing offers.
SERVICE_TYPE = "_rspfed._tcp.local."
#: The ``v`` TXT value this version speaks.
LAN_VERSION = "1"
#: Octets in a discovery id.
DISCOVERY_ID_SIZE = 16

_DEFAULT_SEND_TIMEOUT = 30.0
_DIRECT_TIMEOUT = 3.0


def _check_id(discovery_id: bytes) -> bytes:
    if not isinstance(discovery_id, bytes | bytearray) or len(discovery_id) != DISCOVERY_ID_SIZE:
        raise UsageError(f"discovery id must be {DISCOVERY_ID_SIZE} octets")
    return bytes(discovery_id)


def instance_name(discovery_id: bytes) -> str:
    """The DNS-SD instance name of an offer: ``rspfed-`` + the id's first 8 octets in hex."""
    return "rspfed-" + _check_id(discovery_id)[:8].hex()


def service_name(discovery_id: bytes) -> str:
    """The full DNS-SD service name: ``rspfed-<hex>._rspfed._tcp.local.``."""
    return f"{instance_name(discovery_id)}.{SERVICE_TYPE}"


def _host_name(discovery_id: bytes) -> str:
    return f"{instance_name(discovery_id)}.local."


def local_ipv4_addresses(*, include_loopback: bool = False) -> list[str]:
    """The host's IPv4 addresses (loopback only when asked or when nothing else is up)."""
    found: list[str] = []
    loopback: list[str] = []
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if not ip.is_IPv4 or not isinstance(ip.ip, str):
                continue
            addr = ipaddress.IPv4Address(ip.ip)
            if addr.is_link_local or addr.is_multicast or addr.is_unspecified:
                continue
            (loopback if addr.is_loopback else found).append(str(addr))
    if include_loopback or not found:
        found += loopback
    return list(dict.fromkeys(found))


def _check_ipv4(addresses: Sequence[str], what: str) -> list[str]:
    if isinstance(addresses, str):
        raise UsageError(f"{what} must be a sequence of IPv4 addresses, not a string")
    out: list[str] = []
    for a in addresses:
        try:
            out.append(str(ipaddress.IPv4Address(a)))
        except (ipaddress.AddressValueError, ValueError):
            raise UsageError(f"{what}: not an IPv4 address: {a!r}") from None
    if not out:
        raise UsageError(f"{what} must not be empty")
    return out


def _zeroconf(interfaces: Sequence[str] | None) -> AsyncZeroconf:
    choice: InterfaceChoice | list[str | int] = (
        InterfaceChoice.All if interfaces is None else list(_check_ipv4(interfaces, "interfaces"))
    )
    try:
        return AsyncZeroconf(interfaces=choice, ip_version=IPVersion.V4Only)
    except (OSError, ZeroconfError) as exc:
        raise TransportError(f"cannot start mDNS: {type(exc).__name__}") from exc


class TcpStream:
    """A :class:`~rspfed.transport.stream.ByteStream` over one asyncio TCP connection.

    ``receive_timeout`` bounds each :meth:`receive` (``None``: wait for ever),
    ``send_timeout`` each :meth:`send` (until the kernel took the octets),
    ``max_receive`` the octets one :meth:`receive` returns.  Resets, refusals,
    broken pipes and time-outs raise :class:`~rspfed.errors.TransportError`.
    """

    def __init__(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        *,
        receive_timeout: float | None = None,
        send_timeout: float | None = _DEFAULT_SEND_TIMEOUT,
        max_receive: int = DEFAULT_MAX_RECEIVE,
    ) -> None:
        if max_receive < 1:
            raise UsageError("max_receive must be >= 1")
        self._reader = reader
        self._writer = writer
        self.receive_timeout = receive_timeout
        self.send_timeout = send_timeout
        self._max_receive = max_receive
        self._closed = False
        peer = writer.get_extra_info("peername")
        self._peer = f"tcp:{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else "tcp:?"
        sock = writer.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    @property
    def peer(self) -> str:
        """``tcp:<address>:<port>`` of the other end."""
        return self._peer

    async def send(self, data: bytes) -> None:
        """Write all of ``data``; TransportError on reset, broken pipe or time-out."""
        if self._closed:
            raise TransportError("TCP stream is closed")
        if self._writer.is_closing():
            raise TransportError("TCP connection closed")
        try:
            self._writer.write(bytes(data))
            async with asyncio.timeout(self.send_timeout):
                await self._writer.drain()
        except TimeoutError:
            raise TransportError(f"TCP send timed out after {self.send_timeout} s") from None
        except (OSError, RuntimeError) as exc:
            raise TransportError(f"TCP send failed: {type(exc).__name__}") from exc

    async def receive(self) -> bytes:
        """Up to ``max_receive`` octets; ``b""`` at orderly end; TransportError on failure."""
        if self._closed:
            raise TransportError("TCP stream is closed")
        try:
            async with asyncio.timeout(self.receive_timeout):
                return await self._reader.read(self._max_receive)
        except TimeoutError:
            raise TransportError(f"TCP receive timed out after {self.receive_timeout} s") from None
        except (OSError, RuntimeError) as exc:
            raise TransportError(f"TCP receive failed: {type(exc).__name__}") from exc

    def abort(self) -> None:
        """Reset the connection at once (RST): the peer sees a TransportError."""
        self._closed = True
        sock = self._writer.get_extra_info("socket")
        if sock is not None:
            # SO_LINGER 0 turns the close into a reset even with unread data.
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self._writer.transport.abort()

    async def aclose(self) -> None:
        """Close the connection (FIN after pending data); never raises."""
        if self._closed:
            return
        self._closed = True
        self._writer.close()
        with contextlib.suppress(OSError, RuntimeError, TimeoutError):
            async with asyncio.timeout(2.0):
                await self._writer.wait_closed()


async def tcp_connect(
    host: str,
    port: int,
    *,
    timeout: float,
    receive_timeout: float | None = None,
    send_timeout: float | None = _DEFAULT_SEND_TIMEOUT,
    max_receive: int = DEFAULT_MAX_RECEIVE,
) -> TcpStream:
    """Open a :class:`TcpStream` to ``host:port`` within ``timeout`` seconds."""
    try:
        async with asyncio.timeout(timeout):
            reader, writer = await asyncio.open_connection(host, port)
    except TimeoutError:
        raise TransportError(f"TCP connect to {host}:{port} timed out") from None
    except OSError as exc:
        raise TransportError(f"TCP connect to {host}:{port} failed: {type(exc).__name__}") from exc
    return TcpStream(
        reader,
        writer,
        receive_timeout=receive_timeout,
        send_timeout=send_timeout,
        max_receive=max_receive,
    )


class LanOffer:
    """The offerer's side: a one-attempt TCP server advertised by zeroconf.

    ``addresses``: the IPv4 addresses to listen on and announce (default: the
    ``interfaces`` if given, else every non-loopback IPv4 address of the host,
    listening on all); ``interfaces``: the IPv4 addresses zeroconf uses
    (``None``: all); ``advertise=False`` skips zeroconf (direct hint only).
    ``receive_timeout``/``send_timeout``/``max_receive`` configure the
    :class:`TcpStream` that :meth:`accept` returns.

    Use as an async context manager::

        async with LanOffer(discovery_id) as offer:
            show_qr(host_port=offer.hint)
            stream = await offer.accept(timeout=300)

    Entering binds the server (so :attr:`port` and :attr:`hint` are known at
    once) and starts the registration in the background (mDNS probing takes
    about a second); :meth:`registered` waits for it.  Leaving closes the
    server and withdraws the registration (the accepted stream stays open
    until its owner closes it).
    """

    def __init__(
        self,
        discovery_id: bytes,
        *,
        addresses: Sequence[str] | None = None,
        interfaces: Sequence[str] | None = None,
        advertise: bool = True,
        receive_timeout: float | None = None,
        send_timeout: float | None = _DEFAULT_SEND_TIMEOUT,
        max_receive: int = DEFAULT_MAX_RECEIVE,
    ) -> None:
        self.discovery_id = _check_id(discovery_id)
        self._interfaces = None if interfaces is None else _check_ipv4(interfaces, "interfaces")
        if addresses is not None:
            self._bind: list[str] | None = _check_ipv4(addresses, "addresses")
        else:
            self._bind = self._interfaces
        self._advertise = advertise
        self._receive_timeout = receive_timeout
        self._send_timeout = send_timeout
        self._max_receive = max_receive
        self._servers: list[asyncio.Server] = []
        self._port = 0
        self._announced: list[str] = []
        self._zc: AsyncZeroconf | None = None
        self._info: AsyncServiceInfo | None = None
        self._register_task: asyncio.Task[None] | None = None
        self._withdraw_task: asyncio.Task[None] | None = None
        self._accepted: asyncio.Future[TcpStream] | None = None
        self._taken = False
        self._returned = False
        self._started = False
        self._closed = False

    # -- properties ----------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port (known once started)."""
        self._require_started()
        return self._port

    @property
    def addresses(self) -> tuple[str, ...]:
        """The IPv4 addresses announced (and listened on, when pinned)."""
        self._require_started()
        return tuple(self._announced)

    @property
    def hint(self) -> tuple[str, int]:
        """``(host, port)`` for the offer's LAN hint (the first announced address)."""
        self._require_started()
        return self._announced[0], self._port

    @property
    def instance_name(self) -> str:
        """``rspfed-<hex>``, the DNS-SD instance name."""
        return instance_name(self.discovery_id)

    @property
    def spent(self) -> bool:
        """True once a connection was accepted (the one attempt is used)."""
        return self._taken

    def _require_started(self) -> None:
        if not self._started:
            raise StateError("LanOffer not started (use 'async with')")

    # -- lifecycle -----------------------------------------------------------

    async def __aenter__(self) -> LanOffer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def start(self) -> None:
        """Bind the server and start advertising (see the class documentation)."""
        if self._started or self._closed:
            raise StateError("LanOffer can be started once")
        loop = asyncio.get_running_loop()
        self._accepted = loop.create_future()
        self._started = True
        try:
            await self._listen()
        except OSError as exc:
            await self.aclose()
            raise TransportError(f"cannot listen: {type(exc).__name__}") from exc
        self._announced = list(self._bind) if self._bind is not None else local_ipv4_addresses()
        if self._advertise:
            try:
                self._zc = _zeroconf(self._interfaces)
            except TransportError:
                await self.aclose()
                raise
            self._info = AsyncServiceInfo(
                SERVICE_TYPE,
                service_name(self.discovery_id),
                port=self._port,
                properties={"v": LAN_VERSION},
                server=_host_name(self.discovery_id),
                parsed_addresses=self._announced,
            )
            self._register_task = asyncio.create_task(self._register())

    async def _listen(self) -> None:
        hosts: list[str | None] = list(self._bind) if self._bind is not None else [None]
        port = 0
        for host in hosts:
            server = await asyncio.start_server(
                self._on_connection, host=host, port=port, family=socket.AF_INET
            )
            self._servers.append(server)
            if not port:
                port = server.sockets[0].getsockname()[1]
        self._port = port

    async def _register(self) -> None:
        assert self._zc is not None
        assert self._info is not None
        try:
            await self._zc.async_register_service(self._info)
        except NonUniqueNameException:
            raise TransportError(
                f"another device on this network advertises {self.instance_name}"
            ) from None
        except (OSError, ZeroconfError, BadTypeInNameException) as exc:
            raise TransportError(f"mDNS registration failed: {type(exc).__name__}") from exc

    async def registered(self) -> None:
        """Wait until the zeroconf registration is on the network (TransportError if it failed)."""
        self._require_started()
        if self._register_task is not None:
            await asyncio.shield(self._register_task)

    async def withdrawn(self) -> None:
        """Wait until the registration is withdrawn (after the one connection or closing)."""
        self._require_started()
        task = self._withdraw_task
        if task is None:
            raise StateError("the offer is still advertised (no connection yet)")
        with contextlib.suppress(BaseException):
            await asyncio.shield(task)

    def _on_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        stream = TcpStream(
            reader,
            writer,
            receive_timeout=self._receive_timeout,
            send_timeout=self._send_timeout,
            max_receive=self._max_receive,
        )
        if self._taken or self._accepted is None or self._accepted.done():
            stream.abort()
            return
        self._taken = True
        self._accepted.set_result(stream)
        self._stop_listening()
        self._withdraw_task = asyncio.ensure_future(self._withdraw())

    def _stop_listening(self) -> None:
        for server in self._servers:
            server.close()

    async def _withdraw(self) -> None:
        zc, self._zc = self._zc, None
        task = self._register_task
        if task is not None and not task.done():
            task.cancel()
        if task is not None:
            with contextlib.suppress(BaseException):
                await task
        if zc is not None:
            with contextlib.suppress(OSError, ZeroconfError, RuntimeError):
                await zc.async_close()

    async def accept(self, timeout: float | None = None) -> TcpStream:
        """Wait for the one pairing connection (TransportError on time-out or failed advertising).

        After it returns the offer is spent: the server no longer listens and
        the registration is withdrawn.
        """
        self._require_started()
        if self._closed:
            raise StateError("LanOffer is closed")
        accepted = self._accepted
        assert accepted is not None
        if self._returned:
            raise StateError("LanOffer accepts one connection")
        try:
            async with asyncio.timeout(timeout):
                reg = self._register_task
                if reg is not None and not reg.done():
                    waiters: set[asyncio.Future[Any]] = {accepted, reg}
                    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
                if reg is not None and reg.done() and not accepted.done() and not reg.cancelled():
                    failure = reg.exception()
                    if failure is not None:
                        raise failure
                stream = await asyncio.shield(accepted)
        except TimeoutError:
            raise TransportError(f"no pairing connection within {timeout} s") from None
        self._returned = True
        return stream

    async def aclose(self) -> None:
        """Stop listening and withdraw the registration (idempotent; never raises)."""
        if self._closed:
            return
        self._closed = True
        self._stop_listening()
        for server in self._servers:
            with contextlib.suppress(OSError, RuntimeError, TimeoutError):
                async with asyncio.timeout(1.0):
                    await server.wait_closed()
        if self._withdraw_task is None:
            self._withdraw_task = asyncio.ensure_future(self._withdraw())
        with contextlib.suppress(BaseException):
            await self._withdraw_task
        if self._accepted is not None and not self._accepted.done():
            self._accepted.set_exception(TransportError("the offer was closed"))
            self._accepted.exception()  # retrieved: no "never retrieved" warning


async def lan_resolve(
    discovery_id: bytes,
    *,
    timeout: float,
    interfaces: Sequence[str] | None = None,
) -> tuple[list[str], int]:
    """Resolve an offer by zeroconf: its IPv4 addresses and TCP port.

    Raises :class:`~rspfed.errors.TransportError` when nothing answers within
    ``timeout`` seconds and :class:`~rspfed.errors.ProtocolError` when the
    offer announces another ``v`` than :data:`LAN_VERSION`.
    """
    name = service_name(discovery_id)
    if timeout <= 0:
        raise UsageError("timeout must be > 0")
    azc = _zeroconf(interfaces)
    try:
        info = AsyncServiceInfo(SERVICE_TYPE, name)
        try:
            found = await info.async_request(azc.zeroconf, timeout * 1000.0)
        except (OSError, ZeroconfError) as exc:
            raise TransportError(f"mDNS query failed: {type(exc).__name__}") from exc
        if not found or info.port is None:
            raise TransportError(f"no offer {instance_name(discovery_id)} found in {timeout} s")
        version = info.decoded_properties.get("v")
        if version != LAN_VERSION:
            raise ProtocolError(f"offer speaks LAN version {version!r}, not {LAN_VERSION}")
        addresses = info.parsed_addresses(IPVersion.V4Only)
        if not addresses:
            raise TransportError(f"offer {instance_name(discovery_id)} has no IPv4 address")
        return addresses, info.port
    finally:
        with contextlib.suppress(OSError, ZeroconfError, RuntimeError):
            await azc.async_close()


async def lan_connect(
    discovery_id: bytes,
    *,
    timeout: float,
    interfaces: Sequence[str] | None = None,
    direct: tuple[str, int] | None = None,
    receive_timeout: float | None = None,
    send_timeout: float | None = _DEFAULT_SEND_TIMEOUT,
    max_receive: int = DEFAULT_MAX_RECEIVE,
) -> TcpStream:
    """The joiner's side: find the offer for ``discovery_id`` and connect.

    With ``direct=(host, port)`` (the offer's LAN hint) that address is tried
    first (for at most 3 s); then, or without a hint, the offer is resolved by
    zeroconf (:func:`lan_resolve`) on ``interfaces`` and each announced address
    is tried in turn.  ``timeout`` bounds the whole search.  TransportError
    when nothing connects in time.
    """
    _check_id(discovery_id)
    if timeout <= 0:
        raise UsageError("timeout must be > 0")
    deadline = time.monotonic() + timeout

    async def connect(host: str, port: int, limit: float) -> TcpStream:
        return await tcp_connect(
            host,
            port,
            timeout=limit,
            receive_timeout=receive_timeout,
            send_timeout=send_timeout,
            max_receive=max_receive,
        )

    def remaining() -> float:
        left = deadline - time.monotonic()
        if left <= 0:
            raise TransportError(f"no pairing connection within {timeout} s")
        return left

    errors: list[str] = []
    if direct is not None:
        host, port = direct
        try:
            return await connect(host, port, min(remaining(), _DIRECT_TIMEOUT))
        except TransportError as exc:
            errors.append(str(exc))
    addresses, port = await lan_resolve(discovery_id, timeout=remaining(), interfaces=interfaces)
    for host in addresses:
        try:
            return await connect(host, port, remaining())
        except TransportError as exc:
            errors.append(str(exc))
    raise TransportError("; ".join(errors) or "no address to connect to")
