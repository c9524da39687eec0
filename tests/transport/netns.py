"""Two network namespaces joined by a veth pair, for LAN tests between processes.

Usage (root only; :func:`netns_unavailable_reason` says why not)::

    with NetnsPair() as net:
        offerer = net.spawn(net.a, ["-m", "tests.transport.lan_peer", "offer", ...])
        line = offerer.read_json(timeout=10)
        ...

:class:`NetnsPair` creates ``rspfed-a-<pid>-<tag>`` and ``rspfed-b-<pid>-<tag>``
(``tag`` random per pair, so parallel runs never collide; ``pid`` the test
process, so :func:`sweep_stale` can remove what a killed run left), a veth pair
``rfa<tag>`` /
``rfb<tag>`` with ``10.<x>.<y>.1/24`` and ``.2/24``, both links up with
multicast on, a route for ``224.0.0.0/4`` on the veth (mDNS goes there) and
``lo`` up.  :meth:`NetnsPair.spawn` runs this Python in one namespace through
``ip netns exec`` (working directory: the repository, so ``-m tests...``
works).  Leaving the ``with`` block kills any child still running and deletes
both namespaces (which deletes the veth pair), also when setup failed half
way.  Children talk to the test through JSON lines on stdout
(:meth:`Child.read_json`, bounded by a time-out).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import secrets
import select
import shutil
import subprocess
import sys
import time
from types import TracebackType
from typing import Any

import attrs

from tests.paths import REPO

__all__ = ["Child", "Namespace", "NetnsPair", "netns_unavailable_reason", "sweep_stale"]

_IP_TIMEOUT = 10.0


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["ip", *args], capture_output=True, text=True, timeout=_IP_TIMEOUT, check=check
    )


def netns_unavailable_reason() -> str | None:
    """Why the netns tests cannot run here (``None`` when they can)."""
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        return "needs root to create network namespaces (ip netns)"
    if shutil.which("ip") is None:
        return "iproute2 'ip' is not installed"
    probe = f"rspfed-probe-{secrets.token_hex(3)}"
    try:
        made = _ip("netns", "add", probe, check=False)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"ip netns unavailable: {exc}"
    if made.returncode != 0:
        return f"ip netns unavailable: {made.stderr.strip()}"
    _ip("netns", "del", probe, check=False)
    return None


@attrs.frozen
class Namespace:
    """One side: namespace name, veth interface name and its IPv4 address."""

    name: str
    ifname: str
    address: str


class Child:
    """A Python child process in a namespace, speaking JSON lines on stdout."""

    def __init__(self, proc: subprocess.Popen[bytes], label: str) -> None:
        self.proc = proc
        self.label = label
        self._buffer = b""
        self.lines: list[dict[str, Any]] = []

    def read_json(self, timeout: float) -> dict[str, Any]:
        """The next JSON line (AssertionError on time-out or exit, with stderr)."""
        assert self.proc.stdout is not None
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while b"\n" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise AssertionError(f"{self.label}: no output within {timeout} s{self._err()}")
            ready, _, _ = select.select([fd], [], [], left)
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    self.proc.wait(timeout=5)
                    raise AssertionError(
                        f"{self.label}: exited ({self.proc.returncode}) early{self._err()}"
                    )
                self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        value: dict[str, Any] = json.loads(line)
        self.lines.append(value)
        return value

    def read_until(self, event: str, timeout: float) -> dict[str, Any]:
        """Read lines until one has ``"event": event`` (within ``timeout`` in all)."""
        deadline = time.monotonic() + timeout
        while True:
            line = self.read_json(max(deadline - time.monotonic(), 0.001))
            if line.get("event") == event:
                return line

    def wait(self, timeout: float) -> int:
        """Wait for the exit status (AssertionError and a kill on time-out)."""
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"{self.label}: still running after {timeout} s") from None

    def kill(self) -> None:
        """Kill the child if it still runs (its own process only)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=5)

    def _err(self) -> str:
        if self.proc.poll() is None or self.proc.stderr is None:
            return ""
        text = self.proc.stderr.read().decode(errors="replace").strip()
        return f"\n--- stderr of {self.label} ---\n{text[-4000:]}" if text else ""


_NAME = re.compile(r"^rspfed-[ab]-(\d+)-[0-9a-f]+$")


def sweep_stale() -> list[str]:
    """Delete namespaces this harness made in processes that no longer run.

    A test run killed hard (SIGKILL, a CI time-out) cannot clean up; the next
    run removes what it left.  Returns the names deleted.
    """
    listed = _ip("netns", "list", check=False).stdout
    gone: list[str] = []
    for line in listed.splitlines():
        name = line.split(" ", 1)[0]
        match = _NAME.match(name)
        if match is None:
            continue
        pid = int(match.group(1))
        try:
            os.kill(pid, 0)
            continue  # its creator still runs
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        _ip("netns", "del", name, check=False)
        gone.append(name)
    return gone


class NetnsPair:
    """Two namespaces ``a`` and ``b`` joined by a veth pair (context manager)."""

    def __init__(self) -> None:
        tag = secrets.token_hex(3)
        pid = os.getpid()
        x, y = 64 + secrets.randbelow(128), secrets.randbelow(256)
        self.a = Namespace(f"rspfed-a-{pid}-{tag}", f"rfa{tag}", f"10.{x}.{y}.1")
        self.b = Namespace(f"rspfed-b-{pid}-{tag}", f"rfb{tag}", f"10.{x}.{y}.2")
        self._children: list[Child] = []
        self._created: list[str] = []

    def __enter__(self) -> NetnsPair:
        try:
            self._setup()
        except BaseException:
            self.cleanup()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.cleanup()

    def _setup(self) -> None:
        a, b = self.a, self.b
        for ns in (a, b):
            _ip("netns", "add", ns.name)
            self._created.append(ns.name)
        _ip("link", "add", a.ifname, "type", "veth", "peer", "name", b.ifname)
        for ns in (a, b):
            _ip("link", "set", ns.ifname, "netns", ns.name)
            _ip("-n", ns.name, "addr", "add", f"{ns.address}/24", "dev", ns.ifname)
            _ip("-n", ns.name, "link", "set", ns.ifname, "multicast", "on", "up")
            _ip("-n", ns.name, "link", "set", "lo", "up")
            _ip("-n", ns.name, "route", "add", "224.0.0.0/4", "dev", ns.ifname)

    def ip(self, ns: Namespace, *args: str) -> None:
        """Run ``ip -n <ns> args...`` (e.g. ``link set <if> down`` to cut the link)."""
        _ip("-n", ns.name, *args)

    def spawn(self, ns: Namespace, args: list[str], *, label: str | None = None) -> Child:
        """Start ``python args...`` inside ``ns`` (stdout/stderr piped, cwd = repository)."""
        env = dict(os.environ)
        env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
        env["PYTHONUNBUFFERED"] = "1"
        proc = subprocess.Popen(
            ["ip", "netns", "exec", ns.name, sys.executable, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            cwd=REPO,
            env=env,
        )
        child = Child(proc, label or f"{ns.name}: {' '.join(args)}")
        self._children.append(child)
        return child

    def cleanup(self) -> None:
        """Kill the children still running and delete the namespaces (never raises)."""
        for child in self._children:
            with contextlib.suppress(OSError, subprocess.SubprocessError):
                child.kill()
            for pipe in (child.proc.stdout, child.proc.stderr):
                if pipe is not None:
                    pipe.close()
        self._children.clear()
        for name in self._created:
            _ip("netns", "del", name, check=False)
        self._created.clear()
        # A veth left in the root namespace (setup failed before the move).
        _ip("link", "del", self.a.ifname, check=False)
