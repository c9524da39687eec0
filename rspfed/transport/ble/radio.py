"""Linked virtual BLE controllers (bumble), in process and in a subprocess.

* :class:`LocalRadio`: a bumble :class:`~bumble.link.LocalLink` and as many
  :class:`~bumble.controller.Controller` objects as asked, each handed out as
  an :class:`~rspfed.transport.ble.hci.HciEndpoint` that the bumble peripheral
  and the bumble-backed bleak central take in place of an HCI spec.  For tests
  in one process (create it inside the running event loop).
* :class:`ControllerProcess`: ``python -m bumble.apps.controllers
  tcp-server:127.0.0.1:P1 tcp-server:127.0.0.1:P2`` (two controllers on one
  virtual link, each an HCI server on a TCP port), for two-process tests, the
  CLI (``--ble-hci tcp-client:127.0.0.1:P1`` on one side, ``...:P2`` on the
  other) and the demo.  It picks two free loopback ports, starts the
  subprocess and waits until both ports are bound (readiness is checked by
  trying to bind them, so no probe connection disturbs bumble's TCP server,
  whose packet sink follows its latest client); :meth:`ControllerProcess.close` stops it
  with SIGTERM, then SIGKILL.  bumble's app takes exactly two
  transports; for more radios use :class:`LocalRadio`.

``python -m rspfed.transport.ble`` starts a :class:`ControllerProcess`,
prints the two ``--ble-hci`` specs and runs until interrupted.
"""

from __future__ import annotations

import contextlib
import errno
import signal
import socket
import subprocess
import sys
import tempfile
import time
from types import TracebackType
from typing import IO, Self

from bumble.controller import Controller
from bumble.link import LocalLink
from bumble.transport.common import AsyncPipeSink

from rspfed.errors import TransportError, UsageError
from rspfed.transport.ble.hci import HciEndpoint

__all__ = ["ControllerProcess", "LocalRadio", "free_port"]


class LocalRadio:
    """Virtual controllers on one in-process LocalLink (create inside an event loop)."""

    def __init__(self) -> None:
        self.controllers: list[Controller] = []
        self._link: LocalLink | None = None

    @property
    def link(self) -> LocalLink | None:
        """The shared link (made by the first controller; None before)."""
        return self._link

    def endpoint(self) -> HciEndpoint:
        """A new controller on the link, as an HCI endpoint for one bumble host."""
        name = f"C{len(self.controllers)}"
        controller = Controller(name, link=self._link)
        if self._link is None:
            # A controller made without a link makes one but does not join it.
            self._link = controller.link
            self._link.add_controller(controller)
        self.controllers.append(controller)
        return HciEndpoint(controller, AsyncPipeSink(controller), name)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port on ``host`` that nothing is bound to right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def _is_bound(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return True
            raise
        return False


class ControllerProcess:
    """Two linked virtual controllers in a subprocess, on two loopback TCP ports.

    ``ControllerProcess.start()`` returns once both HCI servers listen;
    :attr:`specs` are the ``--ble-hci`` values for the two hosts.  Use as a
    context manager or call :meth:`close`.
    """

    def __init__(
        self,
        process: subprocess.Popen[bytes],
        host: str,
        ports: tuple[int, int],
        log: IO[bytes] | None = None,
    ) -> None:
        self.process = process
        self.host = host
        self.ports = ports
        self._log = log

    @property
    def specs(self) -> tuple[str, str]:
        """``tcp-client:HOST:P1`` and ``tcp-client:HOST:P2``."""
        return (
            f"tcp-client:{self.host}:{self.ports[0]}",
            f"tcp-client:{self.host}:{self.ports[1]}",
        )

    @classmethod
    def start(
        cls, *, host: str = "127.0.0.1", timeout: float = 15.0, python: str = sys.executable
    ) -> ControllerProcess:
        """Start the controllers and wait until both ports are bound.

        Raises :class:`~rspfed.errors.TransportError` when the subprocess exits
        or is not ready within ``timeout`` seconds (it is stopped then).
        """
        if timeout <= 0:
            raise UsageError("timeout must be > 0")
        ports = (free_port(host), free_port(host))
        while ports[1] == ports[0]:
            ports = (ports[0], free_port(host))
        command = [
            python,
            "-m",
            "bumble.apps.controllers",
            f"tcp-server:{host}:{ports[0]}",
            f"tcp-server:{host}:{ports[1]}",
        ]
        # A file, not a pipe: bumble's warnings must never block the subprocess.
        log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        process = subprocess.Popen(  # noqa: S603 - fixed argv, our own interpreter
            command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=log
        )
        self = cls(process, host, ports, log)
        deadline = time.monotonic() + timeout
        while not all(_is_bound(host, port) for port in ports):
            if process.poll() is not None:
                log.seek(0)
                err = log.read().decode("utf-8", "replace")[-500:]
                self.close()
                raise TransportError(f"virtual BLE controllers exited early: {err.strip()}")
            if time.monotonic() > deadline:
                self.close()
                raise TransportError(f"virtual BLE controllers not ready within {timeout:g} s")
            time.sleep(0.02)
        return self

    def close(self, timeout: float = 5.0) -> None:
        """Stop the subprocess (SIGTERM, then SIGKILL); idempotent.

        (Not SIGINT: a process started from a non-interactive shell's
        background job inherits SIGINT ignored.)
        """
        process = self.process
        if process.poll() is None:
            for sig in (signal.SIGTERM, signal.SIGKILL):
                with contextlib.suppress(ProcessLookupError):
                    process.send_signal(sig)
                try:
                    process.wait(timeout)
                    break
                except subprocess.TimeoutExpired:
                    continue
        if self._log is not None:
            self._log.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def _terminate(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def main() -> None:
    """Run two linked virtual controllers until interrupted, printing their specs.

    SIGINT or SIGTERM stops the controllers and exits.
    """
    signal.signal(signal.SIGTERM, _terminate)
    radio = ControllerProcess.start()
    try:
        print(f"--ble-hci {radio.specs[0]}", flush=True)
        print(f"--ble-hci {radio.specs[1]}", flush=True)
        radio.process.wait()
    except KeyboardInterrupt:
        pass
    finally:
        radio.close()
