"""An operator world for tests: SM-DP+ core, AuC, operator core and real software eUICCs.

Downloads run in-process (the SM-DP+ core's ES9+ answers fed to the eUICC's
ISD-R by :class:`tests.smdp.helpers.Lpa`); registration and attach run
EAP-AKA' with the eUICC's USIM over APDUs.  Nothing here is a mock: every
part is the real code, wired without sockets.
"""

from __future__ import annotations

import os
from pathlib import Path

import attrs
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from rspfed.crypto.curves import Curve
from rspfed.eap import EapAkaPrimePeer
from rspfed.euicc.euicc import Euicc
from rspfed.federation import DeviceClass, Service, issue_token
from rspfed.federation.operator import Operator
from rspfed.federation.store import SqliteOperatorStore
from rspfed.federation.types import Device, EapPurpose, EapStep, OperatorConfig, Plan
from rspfed.lpa import ActivationCode, InProcessEs10
from rspfed.lpa import Lpa as RealLpa
from rspfed.network import Auc, SqliteSubscriberStore
from rspfed.network.nai import permanent_identity
from rspfed.network.usim import eap_usim, read_usim_identity
from rspfed.smdp import Smdp
from tests.smdp.helpers import Clock, Lpa, World, make_euicc, make_smdp, make_world

GB = 1 << 30


@attrs.define
class Phone:
    """A device: its eUICC and (once registered) its P-256 key."""

    euicc: Euicc
    key: ec.EllipticCurvePrivateKey | None = None
    iccid: str | None = None

    @property
    def eid(self) -> str:
        return self.euicc.eid

    @property
    def point(self) -> bytes:
        assert self.key is not None
        return self.key.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )


@attrs.define
class OperatorWorld:
    """Everything an operator test needs, on one clock."""

    world: World
    clock: Clock
    smdp: Smdp
    auc: Auc
    store: SqliteOperatorStore
    operator: Operator
    tmp: Path
    _count: int = 0

    def euicc(self) -> Phone:
        self._count += 1
        return Phone(make_euicc(self.world, self.tmp / f"euicc{self._count}", Curve.NIST))

    def download(self, device: Phone, code: str) -> str:
        """Download and enable the profile of ``code``; its ICCID."""
        ac = ActivationCode.parse(code)
        Lpa(self.smdp, device.euicc.isdr).download(ac.matching_id or None)
        lpa = RealLpa(InProcessEs10(device.euicc.isdr))
        iccids = [p.iccid for p in lpa.profiles()]
        iccid = next(i for i in iccids if i not in {device.iccid})
        lpa.enable(iccid)
        device.iccid = iccid
        return iccid

    def run_eap(self, device: Phone, first: EapStep, *, key: bytes | None = None) -> EapStep:
        imsi, mnc = read_usim_identity(device.euicc.card)
        peer = EapAkaPrimePeer(
            identity=permanent_identity(imsi, mnc_length=mnc),
            usim=eap_usim(device.euicc.card),
            network_name=self.operator.config.network_name,
            federation_key=key,
        )
        step = first
        while not step.done:
            answer = peer.receive(step.packet)
            assert answer is not None
            step = self.operator.eap_continue(step.session_id, answer)
        peer.receive(step.packet)
        return step

    def identity(self, device: Phone) -> bytes:
        imsi, mnc = read_usim_identity(device.euicc.card)
        return permanent_identity(imsi, mnc_length=mnc)

    def register(self, device: Phone) -> Device:
        """EAP-AKA' registration of a fresh P-256 key for ``device``."""
        device.key = ec.generate_private_key(ec.SECP256R1())
        first = self.operator.eap_start(
            self.identity(device), purpose=EapPurpose.REGISTER, eid=device.eid
        )
        step = self.run_eap(device, first, key=device.point)
        assert step.device is not None
        return step.device

    def attach(self, device: Phone, service: Service | None = None) -> frozenset[Service]:
        first = self.operator.eap_start(
            self.identity(device), purpose=EapPurpose.ATTACH, service=service
        )
        step = self.run_eap(device, first)
        assert step.services is not None
        return step.services

    def token(
        self,
        primary: Phone,
        subscription_id: str,
        eid: str,
        device_class: DeviceClass,
        services: frozenset[Service] = frozenset({Service.DATA}),
        quota: int = GB,
        **kw: object,
    ) -> bytes:
        assert primary.key is not None
        return issue_token(
            primary_key=primary.key,
            subscription_id=subscription_id,
            eid=eid,
            device_class=device_class,
            services=services,
            quota=quota,
            now=self.clock(),
            rand=os.urandom,
            **kw,  # type: ignore[arg-type]
        )

    def close(self) -> None:
        self.store.close()


def make_operator_world(
    tmp: Path, world: World | None = None, config: OperatorConfig | None = None
) -> OperatorWorld:
    world = world or make_world(tmp / "pki")
    clock = Clock()
    smdp = make_smdp(world, tmp / "smdp.sqlite", clock)
    auc = Auc(SqliteSubscriberStore(tmp / "network.sqlite"), rand=os.urandom)
    store = SqliteOperatorStore(tmp / "operator.sqlite")
    operator = Operator(store, smdp, auc, config=config, now=clock, rand=os.urandom)
    return OperatorWorld(world, clock, smdp, auc, store, operator, tmp)


PLAN = Plan(pool_bytes=20 * GB, device_limit=4)
