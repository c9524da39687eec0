"""Shared test helpers: an SM-DP+ for an existing test PKI, ES10 over APDUs, a MILENAGE profile.

Used by the end-to-end tests (:mod:`tests.euicc.test_isdr_end_to_end`) and
the PC/SC test of ``rspfed euicc serve`` (:mod:`tests.euicc.test_serve_pcsc`).
The SM-DP+ side is :mod:`rspfed.es8p` plus the request builders of
:mod:`tests.euicc.test_isdr_download`; nothing here mocks the eUICC.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable

from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import Encoding

from rspfed import asn1, es8p
from rspfed.asn1 import rsp
from rspfed.crypto import ecka
from rspfed.crypto.curves import Curve
from rspfed.euicc.apdu import CommandApdu
from rspfed.euicc.isdr import EuiccCredential
from rspfed.pki import CertificateRole
from rspfed.pki.testpki import TestPki
from rspfed.saip.personalise import Personalisation, personalise
from tests.euicc import test_isdr_download as dl
from tests.paths import TS48, VECTORS

__all__ = [
    "ICCID_DIGITS",
    "IMSI",
    "PIN1",
    "SET1",
    "TEMPLATE",
    "download_over_apdus",
    "es10",
    "milenage_package",
    "smdp_world",
]

#: TS 35.208 test set 1 (K, OPc, RAND, AMF, f1..f5).
SET1: dict[str, str] = json.loads((VECTORS / "milenage-ts35208.json").read_text())["test_sets"][0]
#: The TS.48 template the MILENAGE profile is made from.
TEMPLATE = (TS48 / "TS48v4_SAIP2.3_NoBERTLV.der").read_bytes()
ICCID_DIGITS = "89000123456789012341"
IMSI = "001010123456789"
PIN1 = b"1234"

Transmit = Callable[[bytes], bytes]


def milenage_package() -> bytes:
    """The TS.48 template personalised with TS 35.208 set 1 (MILENAGE), ICCID, IMSI, PIN1."""
    values = Personalisation(
        iccid=ICCID_DIGITS,
        imsi=IMSI,
        k=bytes.fromhex(SET1["K"]),
        opc=bytes.fromhex(SET1["OPc"]),
        algorithm="milenage",
        pin1=PIN1,
    )
    return personalise(TEMPLATE, values)


def es10(transmit: Transmit, der: bytes, *, cla: int = 0x80) -> bytes:
    """One ES10 request over STORE DATA (blocks of 200 octets) with GET RESPONSE.

    ``cla`` carries the logical channel (``80`` basic, ``81``.. ``83``).
    """
    chunks = [der[i : i + 200] for i in range(0, len(der), 200)]
    resp = b""
    for n, chunk in enumerate(chunks):
        last = n == len(chunks) - 1
        cmd = CommandApdu(cla, 0xE2, 0x91 if last else 0x11, n, chunk, ne=256 if last else None)
        resp = transmit(cmd.encode())
    out = b""
    while resp[-2] == 0x61:
        out += resp[:-2]
        resp = transmit(bytes([cla & 0x03, 0xC0, 0x00, 0x00, resp[-1]]))
    assert resp[-2:] == b"\x90\x00", resp[-2:].hex()
    return out + resp[:-2]


def smdp_world(
    pki: TestPki, eid: str, credential: EuiccCredential, curve: Curve = Curve.NIST
) -> dl.World:
    """An SM-DP+ (CERT.DPauth, CERT.DPpb issued by ``pki``) for the eUICC ``eid``."""
    auth = ecka.generate_key_pair(curve, os.urandom)
    pb = ecka.generate_key_pair(curve, os.urandom)

    def issue(role: CertificateRole, key: ec.EllipticCurvePrivateKey) -> bytes:
        cert = pki.issue_smdp_certificate(role, key.public_key(), curve, registered_id=dl.SMDP_OID)
        return cert.public_bytes(Encoding.DER)

    return dl.World(
        pki,
        eid,
        credential,
        auth,
        issue(CertificateRole.DPAUTH, auth),
        pb,
        issue(CertificateRole.DPPB, pb),
        pki.material(curve).ci.public_bytes(Encoding.DER),
        curve,
    )


def download_over_apdus(transmit: Transmit, world: dl.World, package: bytes, iccid: bytes) -> bytes:
    """Download ``package`` as the SM-DP+ of ``world`` would, over ES10b STORE DATA commands.

    The ISD-R must be selected on the basic channel.  Returns the
    ProfileInstallationResult (DER), checked to be a success.
    """

    class OverApdus:
        @staticmethod
        def handle(der: bytes) -> bytes:
            return es10(transmit, der)

    tid = os.urandom(16)
    auth = dl.authenticate(OverApdus, world, tid)  # type: ignore[arg-type]
    assert auth.name == "authenticateResponseOk"
    sig1 = bytes(auth.chosen["euiccSignature1"].native)
    prep = dl.prepare(OverApdus, world, tid, sig1)  # type: ignore[arg-type]
    assert prep.name == "downloadResponseOk"
    otpk = bytes(prep.chosen["euiccSigned2"]["euiccOtpk"].native)
    bpp = es8p.build_bound_profile_package(
        transaction_id=tid,
        euicc_otpk=otpk,
        smdp_ot_key=ecka.generate_key_pair(world.curve, os.urandom),
        dp_pb_key=world.dp_pb_key,
        eid=bytes.fromhex(world.eid),
        host_id=b"host",
        metadata=dl.metadata(iccid),
        profile=package,
    )
    answers = [es10(transmit, block) for block in es8p.segment_bpp_for_es10b(bpp)]
    pir = asn1.decode(rsp.ProfileInstallationResult, answers[-1])
    assert pir["profileInstallationResultData"]["finalResult"].name == "successResult"
    return answers[-1]
