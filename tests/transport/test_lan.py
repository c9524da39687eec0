"""LAN transport on loopback: zeroconf discovery, the one-attempt rule, TCP failures."""

from __future__ import annotations

import asyncio
import os
import socket
import time

import pytest
from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from rspfed.errors import ProtocolError, StateError, TransportError, UsageError
from rspfed.transport import ByteStream
from rspfed.transport.lan import (
    SERVICE_TYPE,
    LanOffer,
    TcpStream,
    instance_name,
    lan_connect,
    lan_resolve,
    service_name,
    tcp_connect,
)

LO = ["127.0.0.1"]


async def _echo_once(stream: ByteStream) -> None:
    data = await stream.receive()
    await stream.send(data.upper())


def test_names_follow_the_contract() -> None:
    did = bytes(range(16))
    assert instance_name(did) == "rspfed-0001020304050607"
    assert service_name(did) == "rspfed-0001020304050607._rspfed._tcp.local."
    assert SERVICE_TYPE == "_rspfed._tcp.local."
    with pytest.raises(UsageError):
        instance_name(b"short")


def test_bad_arguments() -> None:
    with pytest.raises(UsageError):
        LanOffer(os.urandom(15))
    with pytest.raises(UsageError):
        LanOffer(os.urandom(16), interfaces="127.0.0.1")
    with pytest.raises(UsageError):
        LanOffer(os.urandom(16), addresses=["::1"])
    with pytest.raises(StateError):
        _ = LanOffer(os.urandom(16)).port

    async def main() -> None:
        with pytest.raises(UsageError):
            await lan_connect(os.urandom(16), timeout=0)

    asyncio.run(main())


def test_discover_connect_echo_on_loopback() -> None:
    async def main() -> float:
        did = os.urandom(16)
        async with LanOffer(did, interfaces=LO) as offer:
            assert offer.hint == ("127.0.0.1", offer.port)
            assert offer.instance_name == instance_name(did)
            t0 = time.monotonic()
            connecting = asyncio.create_task(lan_connect(did, timeout=10, interfaces=LO))
            server = await offer.accept(timeout=10)
            client = await connecting
            cold = time.monotonic() - t0
            assert offer.spent
            assert server.peer.startswith("tcp:127.0.0.1:")
            assert client.peer == f"tcp:127.0.0.1:{offer.port}"
            await client.send(b"hello")
            await _echo_once(server)
            assert await client.receive() == b"HELLO"
            await client.aclose()
            assert await server.receive() == b""
            await server.aclose()
            with pytest.raises(StateError):
                await offer.accept(timeout=1)
        return cold

    cold = asyncio.run(main())
    print(f"loopback: offer start to joiner connected {cold * 1000:.0f} ms")


def test_one_attempt_then_refused_and_withdrawn() -> None:
    async def main() -> None:
        did = os.urandom(16)
        async with LanOffer(did, interfaces=LO) as offer:
            await offer.registered()
            t0 = time.monotonic()
            addresses, port = await lan_resolve(did, timeout=5, interfaces=LO)
            warm = time.monotonic() - t0
            assert (addresses, port) == (["127.0.0.1"], offer.port)
            print(f"loopback: resolve after registration {warm * 1000:.1f} ms")
            first = await tcp_connect("127.0.0.1", offer.port, timeout=2)
            server = await offer.accept(timeout=2)
            # The listening socket is closed: a second attempt is refused.
            with pytest.raises(TransportError, match="failed"):
                await tcp_connect("127.0.0.1", offer.port, timeout=2)
            # The registration is withdrawn: a fresh resolver finds nothing.
            t0 = time.monotonic()
            await offer.withdrawn()
            print(f"loopback: withdrawal {(time.monotonic() - t0) * 1000:.0f} ms")
            with pytest.raises(TransportError, match="no offer"):
                await lan_resolve(did, timeout=0.5, interfaces=LO)
            # The accepted connection still works.
            await first.send(b"x")
            assert await server.receive() == b"x"
            await first.aclose()
            await server.aclose()

    asyncio.run(main())


def test_direct_hint_without_zeroconf() -> None:
    async def main() -> None:
        did = os.urandom(16)
        async with LanOffer(did, addresses=LO, advertise=False) as offer:
            await offer.registered()  # nothing to wait for
            t0 = time.monotonic()
            connecting = asyncio.create_task(
                lan_connect(did, timeout=5, direct=offer.hint, interfaces=LO)
            )
            server = await offer.accept(timeout=5)
            client = await connecting
            assert time.monotonic() - t0 < 1.0
            await client.send(b"direct")
            assert await server.receive() == b"direct"
            await client.aclose()
            await server.aclose()

    asyncio.run(main())


def test_stale_hint_falls_back_to_zeroconf() -> None:
    async def main() -> None:
        with socket.socket() as s:  # a port nobody listens on
            s.bind(("127.0.0.1", 0))
            dead_port = s.getsockname()[1]
        did = os.urandom(16)
        async with LanOffer(did, interfaces=LO) as offer:
            connecting = asyncio.create_task(
                lan_connect(did, timeout=10, direct=("127.0.0.1", dead_port), interfaces=LO)
            )
            server = await offer.accept(timeout=10)
            client = await connecting
            await client.aclose()
            assert await server.receive() == b""
            await server.aclose()

    asyncio.run(main())


def test_nothing_to_find_times_out() -> None:
    async def main() -> float:
        t0 = time.monotonic()
        with pytest.raises(TransportError, match="no offer"):
            await lan_connect(os.urandom(16), timeout=0.5, interfaces=LO)
        return time.monotonic() - t0

    assert asyncio.run(main()) < 2.0


def test_accept_times_out() -> None:
    async def main() -> None:
        async with LanOffer(os.urandom(16), addresses=LO, advertise=False) as offer:
            with pytest.raises(StateError):
                await offer.withdrawn()
            with pytest.raises(TransportError, match="no pairing connection"):
                await offer.accept(timeout=0.05)

    asyncio.run(main())


def test_other_lan_version_is_a_protocol_error() -> None:
    """An offer registered by plain zeroconf with ``v=2`` is refused by the resolver."""

    async def main() -> None:
        did = os.urandom(16)
        azc = AsyncZeroconf(interfaces=LO, ip_version=IPVersion.V4Only)
        info = AsyncServiceInfo(
            SERVICE_TYPE,
            service_name(did),
            port=9,
            properties={"v": "2"},
            server="other.local.",
            parsed_addresses=LO,
        )
        # Not the code under test: skip this registration's probing.
        await azc.async_register_service(info, cooperating_responders=True)
        try:
            with pytest.raises(ProtocolError, match="version"):
                await lan_resolve(did, timeout=5, interfaces=LO)
        finally:
            await azc.async_close()

    asyncio.run(main())


async def _tcp_pair(*, receive_timeout: float | None) -> tuple[TcpStream, TcpStream]:
    accepted: asyncio.Future[TcpStream] = asyncio.get_running_loop().create_future()

    def on_conn(r: asyncio.StreamReader, w: asyncio.StreamWriter) -> None:
        accepted.set_result(TcpStream(r, w, max_receive=4))

    server = await asyncio.start_server(on_conn, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    client = await tcp_connect("127.0.0.1", port, timeout=2, receive_timeout=receive_timeout)
    stream = await accepted
    server.close()
    return client, stream


def test_tcp_bounded_reads_reset_and_timeout() -> None:
    async def main() -> None:
        client, server = await _tcp_pair(receive_timeout=0.05)
        await client.send(b"0123456789")
        got = b""
        while len(got) < 10:
            chunk = await server.receive()
            assert 1 <= len(chunk) <= 4
            got += chunk
        assert got == b"0123456789"
        # Time-out on a silent peer.
        with pytest.raises(TransportError, match="timed out"):
            await client.receive()
        # A reset: the peer's receive and later sends fail.
        server.abort()
        with pytest.raises(TransportError):
            await client.receive()

        async def keep_sending() -> None:
            for _ in range(50):
                await client.send(b"x" * 1000)
                await asyncio.sleep(0.01)

        with pytest.raises(TransportError):
            await keep_sending()
        with pytest.raises(TransportError, match="closed"):
            await server.send(b"x")
        await client.aclose()
        await client.aclose()

    asyncio.run(main())


def test_tcp_connect_refused() -> None:
    async def main() -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        with pytest.raises(TransportError, match="failed"):
            await tcp_connect("127.0.0.1", port, timeout=2)

    asyncio.run(main())


def test_a_second_offer_with_the_same_instance_name_fails_to_register() -> None:
    async def main() -> None:
        did = os.urandom(16)
        async with LanOffer(did, interfaces=LO) as first:
            await first.registered()
            async with LanOffer(did, interfaces=LO) as second:
                with pytest.raises(TransportError, match="another device"):
                    await second.registered()
                with pytest.raises(TransportError, match="another device"):
                    await second.accept(timeout=5)

    asyncio.run(main())


def test_default_addresses_are_the_hosts_and_reachable() -> None:
    async def main() -> None:
        did = os.urandom(16)
        async with LanOffer(did, advertise=False) as offer:
            assert offer.addresses
            assert all(not a.startswith("127.") for a in offer.addresses) or offer.addresses == (
                "127.0.0.1",
            )
            connecting = asyncio.create_task(lan_connect(did, timeout=5, direct=offer.hint))
            server = await offer.accept(timeout=5)
            client = await connecting
            await client.aclose()
            await server.aclose()

    asyncio.run(main())


def test_closing_the_offer_ends_a_pending_accept() -> None:
    async def main() -> None:
        offer = LanOffer(os.urandom(16), addresses=LO, advertise=False)
        await offer.start()
        waiting = asyncio.create_task(offer.accept(timeout=5))
        await asyncio.sleep(0.01)
        await offer.aclose()
        with pytest.raises(TransportError, match="closed"):
            await waiting

    asyncio.run(main())
