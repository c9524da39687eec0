"""Test-side pieces for the SM-DP+ core: a PKI, SM-DP+ credentials, and a minimal LPA loop.

The LPA here is deliberately small (the real one is :mod:`rspfed.lpa`): it
moves the ES9+ answers of :class:`rspfed.smdp.Smdp` into ES10b requests for a
real :class:`rspfed.euicc.Euicc` (``euicc.isdr.handle``, DER in and out) and
back, with hooks to tamper with messages on the way.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
from asn1crypto import x509 as ax509
from cryptography.hazmat.primitives.serialization import Encoding

from rspfed import asn1, es8p
from rspfed.asn1 import rsp
from rspfed.crypto import ecka
from rspfed.crypto.curves import Curve
from rspfed.es9p import messages as m
from rspfed.euicc.euicc import Euicc
from rspfed.euicc.isdr import IsdR
from rspfed.pki import CertificateRole
from rspfed.pki.testpki import TestPki
from rspfed.saip.install import install_package
from rspfed.smdp import (
    InventoryItem,
    ItemState,
    ProfileType,
    Smdp,
    SmdpConfig,
    SmdpCredential,
    SqliteSmdpStore,
)
from tests.paths import TS48

NOW = datetime.now(UTC).replace(microsecond=0)
ADDRESS = "smdp.example.com"
SMDP_OID = "1.3.6.1.4.1.31746.1"
TEMPLATE = (TS48 / "TS48v4_SAIP2.3_NoBERTLV.der").read_bytes()
TYPE_METADATA: dict[str, Any] = {
    "serviceProviderName": "rspfed",
    "profileName": "TS.48 test profile",
    "profileClass": "operational",
    "notificationConfigurationInfo": [
        {"events": ["install", "enable", "disable", "delete"], "address": ADDRESS}
    ],
    "iccidPrefix": "8900000",
    "imsiPrefix": "00101",
    "op": "cdc202d5123e20f62b6d676ac72cb318",
}


class Clock:
    """An injectable ``now`` that tests move forward."""

    def __init__(self, start: datetime = NOW) -> None:
        self.now = start

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


def smdp_credential(pki: TestPki, curve: Curve) -> SmdpCredential:
    """DPauth and DPpb key pairs and certificates on ``curve`` from ``pki``'s CI."""
    auth = ecka.generate_key_pair(curve, os.urandom)
    pb = ecka.generate_key_pair(curve, os.urandom)

    def issue(role: CertificateRole, key: Any) -> bytes:
        cert = pki.issue_smdp_certificate(
            role, key.public_key(), curve, registered_id=SMDP_OID, now=NOW
        )
        return cert.public_bytes(Encoding.DER)

    return SmdpCredential(
        curve, auth, issue(CertificateRole.DPAUTH, auth), pb, issue(CertificateRole.DPPB, pb)
    )


@attrs.frozen
class World:
    """A test PKI on both curves and the SM-DP+ configuration it supports."""

    pki: TestPki
    config: SmdpConfig


def make_world(directory: Path, **config: Any) -> World:
    pki = TestPki.create(directory, now=NOW, curves=[Curve.NIST, Curve.BRAINPOOL])
    creds = tuple(smdp_credential(pki, c) for c in (Curve.NIST, Curve.BRAINPOOL))
    cis = tuple(pki.material(c).ci.public_bytes(Encoding.DER) for c in Curve)
    return World(pki, SmdpConfig(ADDRESS, creds, cis, **config))


def make_smdp(
    world: World, path: Path | str = ":memory:", clock: Clock | None = None, **config: Any
) -> Smdp:
    store = SqliteSmdpStore.create(path)
    smdp = Smdp(
        attrs.evolve(world.config, **config) if config else world.config,
        store,
        now=clock or Clock(),
    )
    smdp.add_profile_type(ProfileType.from_metadata("ts48", TEMPLATE, TYPE_METADATA))
    return smdp


def make_euicc(world: World, directory: Path, curve: Curve = Curve.NIST) -> Euicc:
    directory.mkdir(parents=True, exist_ok=True)
    return Euicc.create(
        directory / "euicc.db",
        world.pki,
        curves=(curve,),
        now=NOW,
        installer=lambda package: install_package(package).iccid,
    )


def hash_cc(code: str, transaction_id: bytes) -> bytes:
    """SGP.22 hashCc: SHA256(SHA256(code) || transactionId)."""
    return hashlib.sha256(hashlib.sha256(code.encode()).digest() + transaction_id).digest()


Tamper = Callable[[bytes], bytes]


@attrs.define
class Lpa:
    """The smallest LPA that drives a download between an Smdp and an IsdR."""

    smdp: Smdp
    isdr: IsdR
    address: str = ADDRESS

    def initiate(self) -> m.InitiateAuthenticationResponse:
        info1 = self.isdr.handle(bytes.fromhex("BF2000"))
        challenge = asn1.decode(rsp.GetEuiccChallengeResponse, self.isdr.handle(b"\xbf\x2e\x00"))
        return self.smdp.initiate_authentication(
            m.InitiateAuthenticationRequest(
                bytes(challenge["euiccChallenge"].native), info1, self.address
            )
        )

    def authenticate_server(
        self, init: m.InitiateAuthenticationResponse, matching_id: str | None
    ) -> bytes:
        ctx: dict[str, Any] = {
            "deviceInfo": {"tac": b"\x35\x29\x06\x11", "deviceCapabilities": {}}
        }
        if matching_id is not None:
            ctx["matchingId"] = matching_id
        request = rsp.AuthenticateServerRequest(
            {
                "serverSigned1": asn1.decode(rsp.ServerSigned1, init.server_signed1),
                "serverSignature1": init.server_signature1[3:],
                "euiccCiPKIdToBeUsed": init.euicc_ci_pkid_to_be_used[2:],
                "serverCertificate": ax509.Certificate.load(init.server_certificate),
                "ctxParams1": rsp.CtxParams1(name="ctxParamsForCommonAuthentication", value=ctx),
            }
        )
        return self.isdr.handle(asn1.encode(request))

    def authenticate(
        self,
        init: m.InitiateAuthenticationResponse,
        matching_id: str | None,
        tamper: Tamper | None = None,
    ) -> m.AuthenticateClientResponse:
        answer = self.authenticate_server(init, matching_id)
        if tamper is not None:
            answer = tamper(answer)
        return self.smdp.authenticate_client(
            m.AuthenticateClientRequest(init.transaction_id, answer)
        )

    def prepare_download(
        self, auth: m.AuthenticateClientResponse, code: str | None = None
    ) -> bytes:
        value: dict[str, Any] = {
            "smdpSigned2": asn1.decode(rsp.SmdpSigned2, auth.smdp_signed2),
            "smdpSignature2": auth.smdp_signature2[3:],
            "smdpCertificate": ax509.Certificate.load(auth.smdp_certificate),
        }
        if code is not None:
            value["hashCc"] = hash_cc(code, auth.transaction_id)
        return self.isdr.handle(asn1.encode(rsp.PrepareDownloadRequest(value)))

    def get_bpp(
        self,
        auth: m.AuthenticateClientResponse,
        code: str | None = None,
        tamper: Tamper | None = None,
    ) -> m.GetBoundProfilePackageResponse:
        answer = self.prepare_download(auth, code)
        if tamper is not None:
            answer = tamper(answer)
        return self.smdp.get_bound_profile_package(
            m.GetBoundProfilePackageRequest(auth.transaction_id, answer)
        )

    def load(self, bpp: m.GetBoundProfilePackageResponse) -> bytes:
        """Load the BPP into the eUICC; the ProfileInstallationResult."""
        for block in es8p.segment_bpp_for_es10b(bpp.bound_profile_package):
            answer = self.isdr.handle(block)
            if answer:
                return answer
        raise AssertionError("no ProfileInstallationResult")

    def notify(self, pending: bytes) -> None:
        self.smdp.handle_notification(m.HandleNotificationRequest(pending))

    def download(self, matching_id: str | None, code: str | None = None) -> bytes:
        """The whole download; the PIR (delivered to the SM-DP+ as well)."""
        init = self.initiate()
        auth = self.authenticate(init, matching_id)
        bpp = self.get_bpp(auth, code)
        pir = self.load(bpp)
        self.notify(pir)
        return pir


def pir_ok(pir: bytes) -> bool:
    result = asn1.decode(rsp.ProfileInstallationResult, pir)
    return bool(result["profileInstallationResultData"]["finalResult"].name == "successResult")


def item_of(smdp: Smdp, iccid: str) -> InventoryItem:
    """The inventory item ``iccid`` (which must exist)."""
    found = smdp.item(iccid)
    assert found is not None
    return found


def state_of(smdp: Smdp, iccid: str) -> ItemState:
    """The inventory state of ``iccid``."""
    return item_of(smdp, iccid).state
