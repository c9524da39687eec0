"""What the demo's chapters share: output helpers and a device with its own eUICC."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Final

import attrs
import click
from cryptography.hazmat.primitives.asymmetric import ec

from rspfed.euicc.euicc import Euicc
from rspfed.federation import Service
from rspfed.federation.client import OperatorClient
from rspfed.federation.device import DeviceStore
from rspfed.federation.enrol import register_device
from rspfed.federation.types import Device
from rspfed.lpa import (
    ApduEs10,
    DownloadResult,
    DownloadStep,
    Es9Settings,
    Lpa,
    download,
    store_ci_certificates,
)
from rspfed.lpa.lpa import ProfileInfo
from rspfed.network.usim import eap_usim, read_usim_identity

__all__: list[str] = []

GB: Final = 10**9


def say(text: str = "") -> None:
    click.echo(text)


@attrs.define
class Pacing:
    """How the chapters are paced and timed: ``--step`` pauses before each chapter
    after the first (only with a terminal on stdin; at EOF it stops pausing), and
    each chapter's wall-clock time, pauses left out, is kept in :attr:`times`."""

    step: bool = False
    times: list[tuple[int, str, float]] = attrs.field(factory=list)
    _open: tuple[int, str, float] | None = None

    def start(self, *, step: bool) -> None:
        """Begin a run (``step``: pause between chapters)."""
        self.step = step
        self.times.clear()
        self._open = None
        if step and not _terminal_stdin():
            self.step = False
            say("(--step: stdin is not a terminal, so the chapters run without pausing)")

    def close(self) -> None:
        """End the chapter being timed."""
        if self._open is not None:
            number, title, since = self._open
            self.times.append((number, title, time.perf_counter() - since))
            self._open = None

    def begin(self, number: int, title: str) -> None:
        """End the previous chapter, pause if stepping, start timing this one."""
        had_one = self._open is not None or bool(self.times)
        self.close()
        if self.step and had_one:
            click.echo(click.style(f"   [press Enter for chapter {number}]", dim=True), nl=False)
            try:
                line = sys.stdin.readline() if sys.stdin is not None else ""
            except (OSError, ValueError):  # a terminal gone (EIO), a closed file: as at EOF
                line = ""
            if not line:  # EOF: go on without pausing
                self.step = False
                say()
        self._open = (number, title, time.perf_counter())


def _terminal_stdin() -> bool:
    """Whether stdin is an open terminal (it may be closed: ``sys.stdin`` None)."""
    try:
        return sys.stdin is not None and sys.stdin.isatty()
    except (OSError, ValueError):
        return False


PACING = Pacing()
"""The demo's pacing (one run per process)."""


def chapter(number: int, title: str) -> None:
    PACING.begin(number, title)
    say()
    say(click.style(f"{number}. {title}", bold=True))


def ok(text: str) -> None:
    say(f"   {click.style('ok', fg='green')}  {text}")


def refused(text: str) -> None:
    say(f"   {click.style('no', fg='yellow')}  {text}")


@attrs.define
class DemoDevice:
    """One of the demo's devices: its eUICC, its key, its client to the operator."""

    name: str
    euicc: Euicc
    client: OperatorClient
    key: ec.EllipticCurvePrivateKey | None = None
    iccid: str | None = None
    store: DeviceStore | None = None
    """Its device store, when it keeps one (the phone: its record, key, companions)."""

    @property
    def eid(self) -> str:
        return self.euicc.eid

    async def install(
        self, code: str, *, progress: Callable[[DownloadStep], None] | None = None
    ) -> DownloadResult:
        """Download over HTTPS into the eUICC over APDUs, enable, send the notifications."""
        es10 = ApduEs10(self.euicc.card)
        try:
            settings = Es9Settings(trust=store_ci_certificates(self.euicc.store))
            result = await download(es10, code, progress=progress, settings=settings)
            lpa = Lpa(es10, settings=settings)
            if self.iccid is not None:
                lpa.disable(self.iccid)
            lpa.enable(result.iccid)
            await lpa.deliver_notifications()
        finally:
            es10.close()
        self.iccid = result.iccid
        return result

    def _usim(self) -> dict[str, Any]:
        imsi, mnc_length = read_usim_identity(self.euicc.card)
        return {"usim": eap_usim(self.euicc.card), "imsi": imsi, "mnc_length": mnc_length}

    async def attach(self, service: Service | None = None) -> frozenset[Service]:
        """EAP-AKA' with the enabled profile's USIM; the services the network grants."""
        return await self.client.attach(service=service, **self._usim())

    async def bearer(self) -> str:
        """Attach for data (EAP-AKA'); the bearer to carry traffic on."""
        return await self.client.attach_data(**self._usim())

    async def register_in_store(self, path: Path, operator_url: str) -> Device:
        """Register a fresh key by EAP-AKA' as an application does: kept in a new device
        store at ``path`` with the operator's record (:attr:`store`, :attr:`key`)."""
        self.store = DeviceStore.create(path)
        device = await register_device(
            self.client, self.euicc.card, self.store, eid=self.eid, operator_url=operator_url
        )
        self.key = self.store.private_key()
        return device

    async def register(self) -> Device:
        """A fresh P-256 key registered by EAP-AKA' with this device's USIM."""
        self.key = ec.generate_private_key(ec.SECP256R1())
        return await self.client.register(eid=self.eid, key=self.key, **self._usim())

    async def delete_profile(self) -> None:
        es10 = ApduEs10(self.euicc.card)
        try:
            lpa = Lpa(es10, settings=Es9Settings(trust=store_ci_certificates(self.euicc.store)))
            assert self.iccid is not None
            lpa.disable(self.iccid)
            lpa.delete(self.iccid)
            await lpa.deliver_notifications()
        finally:
            es10.close()
        self.iccid = None


def profiles_of(device: DemoDevice) -> list[ProfileInfo]:
    """The profiles on ``device``'s eUICC (ES10c.GetProfilesInfo over APDUs)."""
    es10 = ApduEs10(device.euicc.card)
    try:
        lpa = Lpa(es10, settings=Es9Settings(trust=store_ci_certificates(device.euicc.store)))
        return lpa.profiles()
    finally:
        es10.close()


def amount(octets: int) -> str:
    return f"{octets / GB:.1f} GB" if octets >= GB // 10 else f"{octets / 10**6:.0f} MB"


def service_list(granted: frozenset[Service]) -> str:
    return ", ".join(s.value for s in Service if s in granted)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
