"""Benchmark (issue B item 9): the eUICC side of one profile download, split in one run.

Per download of the TS.48 package ``TS48v2_SAIP2.3_BERTLV.der`` through
:class:`rspfed.euicc.isdr.IsdR` (GetEuiccChallenge, AuthenticateServer,
PrepareDownload, every BPP block; the SM-DP+ messages are made outside the
timed calls), for each curve:

crypto
    time spent inside the crypto calls, measured in the same run by
    wrapping them: ECDSA sign and verify (``rspfed.crypto.signature``), the
    certificate signature checks of the chain validation
    (``rspfed.pki.validate._check_signature``), ECKA key generation, point
    encoding/decoding and DH (``rspfed.crypto.ecka``), the session key
    derivation, and BSP unprotect (``BspDecryptor``).  The caches that skip
    repeated work across downloads (verified certificate signatures, strictly
    checked certificate encodings) are emptied before each download, so every
    download pays for the whole chain, as with a new SM-DP+.
SAIP
    the package installer (``rspfed.saip.install.install_package``: strict DER
    check and installation into a file system), run before the commit.
commit
    the durable install commit (``Store.commit``: SQLite, WAL,
    ``synchronous=FULL``, in the system temporary directory).
rest
    everything else: total minus the three above (DER coding of the ES10b
    messages, certificate parsing and checks, BPP parsing, state table, ...).

Goal: rest <= 25 % of the crypto floor.  Then one asn1tools decode of the same
package (the sequence of ProfileElements, asn1tools compiled from
``rspfed/asn1/modules/PE_Definitions-3.3.1.asn`` as in the differential
tests) and the ratios SAIP / asn1tools and commit / asn1tools.  Then ES10c
(EnableProfile + DisableProfile pair, GetProfilesInfo) and the card state
save after a state-changing APDU (UPDATE BINARY) of the enabled TS.48 profile.

Figures are medians over the runs.  Run:
``python benchmarks/euicc_bench.py [--quick] [--warm]`` (prints; no
assertions); ``--warm`` keeps the certificate caches between downloads (the
same SM-DP+ again: its certificates were checked before).
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from asn1crypto import x509 as ax509
from cryptography.hazmat.primitives.serialization import Encoding

from rspfed import asn1, es8p
from rspfed.asn1 import _strict, rsp
from rspfed.crypto import bsp, ecka, signature
from rspfed.crypto.curves import Curve
from rspfed.es8p import unbind
from rspfed.euicc import _state as st
from rspfed.euicc.apdu import CommandApdu
from rspfed.euicc.euicc import Euicc
from rspfed.euicc.isdr import ISD_R_AID, EuiccCredential, IsdR
from rspfed.euicc.store import Store
from rspfed.pki import CertificateRole, generate_eid, parse_certificate, validate
from rspfed.pki.testpki import TestPki
from rspfed.saip.identifiers import encode_iccid
from rspfed.saip.install import install_package, load_profile

ROOT = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
PACKAGE = (ROOT / "rspfed" / "data" / "ts48" / "TS48v2_SAIP2.3_BERTLV.der").read_bytes()
PE_MODULE = ROOT / "rspfed" / "asn1" / "modules" / "PE_Definitions-3.3.1.asn"

# -- crypto instrumentation ---------------------------------------------------------------

CRYPTO = [0.0]
_depth = [0]
WARM = [False]


def _timed(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap ``fn`` so its time is added to CRYPTO (outermost crypto call only)."""

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if _depth[0]:
            return fn(*args, **kwargs)
        _depth[0] += 1
        t = time.perf_counter()
        try:
            return fn(*args, **kwargs)
        finally:
            CRYPTO[0] += time.perf_counter() - t
            _depth[0] -= 1

    return wrapper


def instrument() -> None:
    """Wrap every crypto call the eUICC side of a download makes (module attributes)."""
    for module, names in (
        (signature, ("sign", "verify")),
        (ecka, ("generate_key_pair", "ecka_dh", "encode_public_key", "decode_public_key")),
        (validate, ("_check_signature",)),
        (unbind, ("derive_session_keys",)),
    ):
        for name in names:
            setattr(module, name, _timed(getattr(module, name)))
    for name in ("__init__", "unprotect", "unprotect_mac_only", "replace_session_keys"):
        setattr(bsp.BspDecryptor, name, _timed(getattr(bsp.BspDecryptor, name)))


def cold_caches() -> None:
    """Forget verified certificate signatures and checked certificate encodings."""
    if WARM[0]:
        return
    validate._VERIFIED.clear()
    _strict._checked.clear()


# -- one download -------------------------------------------------------------------------


class Bench:
    """An eUICC credential and an SM-DP+ (keys, certificates) on one curve."""

    def __init__(self, pki: TestPki, curve: Curve) -> None:
        self.curve = curve
        material = pki.material(curve)
        self.eid = generate_eid(pki.ein, os.urandom)
        key = ecka.generate_key_pair(curve, os.urandom)
        cert = pki.issue_euicc_certificate(self.eid, key.public_key(), curve, now=NOW)
        self.cred = EuiccCredential(
            key, cert.public_bytes(Encoding.DER), material.eum.public_bytes(Encoding.DER)
        )
        self.ci_der = material.ci.public_bytes(Encoding.DER)
        self.ski = parse_certificate(self.ci_der).subject_key_id
        self.auth = ecka.generate_key_pair(curve, os.urandom)
        self.pb = ecka.generate_key_pair(curve, os.urandom)

        def issue(role: CertificateRole, k: Any) -> Any:
            der = pki.issue_smdp_certificate(
                role, k.public_key(), curve, registered_id="1.2.3.4", now=NOW
            ).public_bytes(Encoding.DER)
            return ax509.Certificate.load(der)

        self.auth_cert = issue(CertificateRole.DPAUTH, self.auth)
        self.pb_cert = issue(CertificateRole.DPPB, self.pb)
        self.iccid = encode_iccid(install_package(PACKAGE).iccid)
        self.metadata = es8p.store_metadata_request(self.iccid, "rspfed", "bench")
        self.ctx = rsp.CtxParams1(
            name="ctxParamsForCommonAuthentication",
            value={"deviceInfo": {"tac": bytes(4), "deviceCapabilities": {}}},
        )

    def download(self, path: Path, i: int) -> dict[str, float]:
        """One download into a new store at ``path``; seconds per part."""
        store = Store.create(path, eid=bytes.fromhex(self.eid))
        commit_time = [0.0]
        original = store.commit

        def commit(*a: Any, **k: Any) -> None:
            t = time.perf_counter()
            try:
                original(*a, **k)
            finally:
                commit_time[0] += time.perf_counter() - t

        store.commit = commit  # type: ignore[method-assign]
        saip_time = [0.0]

        def installer(package: bytes) -> str:
            t = time.perf_counter()
            try:
                return install_package(package).iccid
            finally:
                saip_time[0] += time.perf_counter() - t

        isdr = IsdR(
            store=store,
            credentials=[self.cred],
            rand=random.Random(i).randbytes,
            now=lambda: NOW,
            ci_certificates=[self.ci_der],
            installer=installer,
        )
        tid = i.to_bytes(16, "big")
        spent = [0.0]

        def call(der: bytes) -> bytes:
            t = time.perf_counter()
            out = isdr.handle(der)
            spent[0] += time.perf_counter() - t
            return out

        cold_caches()
        CRYPTO[0] = 0.0
        challenge = asn1.decode(rsp.GetEuiccChallengeResponse, call(bytes.fromhex("BF2E00")))
        # the SM-DP+ side below is not timed, and its crypto is not counted
        s1 = asn1.encode(
            rsp.ServerSigned1(
                {
                    "transactionId": tid,
                    "euiccChallenge": bytes(challenge["euiccChallenge"].native),
                    "serverAddress": "smdp.example",
                    "serverChallenge": bytes(16),
                }
            )
        )
        t = CRYPTO[0]
        sig = signature.sign(self.auth, s1)
        CRYPTO[0] = t
        req = rsp.AuthenticateServerRequest(
            {
                "serverSigned1": asn1.decode(rsp.ServerSigned1, s1),
                "serverSignature1": sig,
                "euiccCiPKIdToBeUsed": self.ski,
                "serverCertificate": self.auth_cert,
                "ctxParams1": self.ctx,
            }
        )
        resp = asn1.decode(rsp.AuthenticateServerResponse, call(asn1.encode(req)))
        sig1 = bytes(resp.chosen["euiccSignature1"].native)
        s2 = asn1.encode(rsp.SmdpSigned2({"transactionId": tid, "ccRequiredFlag": False}))
        t = CRYPTO[0]
        sig2 = signature.sign(self.pb, s2 + b"\x5f\x37\x40" + sig1)
        CRYPTO[0] = t
        req2 = rsp.PrepareDownloadRequest(
            {
                "smdpSigned2": asn1.decode(rsp.SmdpSigned2, s2),
                "smdpSignature2": sig2,
                "smdpCertificate": self.pb_cert,
            }
        )
        prep = asn1.decode(rsp.PrepareDownloadResponse, call(asn1.encode(req2)))
        otpk = bytes(prep.chosen["euiccSigned2"]["euiccOtpk"].native)
        t = CRYPTO[0]
        bpp = es8p.build_bound_profile_package(
            transaction_id=tid,
            euicc_otpk=otpk,
            smdp_ot_key=ecka.generate_key_pair(self.curve, os.urandom),
            dp_pb_key=self.pb,
            eid=bytes.fromhex(self.eid),
            host_id=b"host",
            metadata=self.metadata,
            profile=PACKAGE,
        )
        blocks = es8p.segment_bpp_for_es10b(bpp)
        CRYPTO[0] = t
        for block in blocks:
            call(block)
        assert store.state.profiles, "not installed"
        store.close()
        return {
            "total": spent[0],
            "crypto": CRYPTO[0],
            "saip": saip_time[0],
            "commit": commit_time[0],
        }


def asn1tools_decode_time(n: int) -> float:
    """Seconds for one asn1tools decode of PACKAGE (every ProfileElement), median of n."""
    import asn1tools

    spec = asn1tools.compile_files([str(PE_MODULE)], "der")

    def decode() -> list[Any]:
        out, i = [], 0
        while i < len(PACKAGE):
            value, length = spec.decode_with_length("ProfileElement", PACKAGE[i:])
            out.append(value)
            i += length
        return out

    decode()
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        decode()
        samples.append(time.perf_counter() - t)
    return statistics.median(samples)


def es10c(bench: Bench, work: Path, m: int) -> None:
    """EnableProfile + DisableProfile pair and GetProfilesInfo on a store with one profile."""
    enable = asn1.encode(
        rsp.EnableProfileRequest(
            {
                "profileIdentifier": rsp.EnableProfileRequest_profileIdentifier(
                    name="iccid", value=bench.iccid
                ),
                "refreshFlag": False,
            }
        )
    )
    disable = asn1.encode(
        rsp.DisableProfileRequest(
            {
                "profileIdentifier": rsp.DisableProfileRequest_profileIdentifier(
                    name="iccid", value=bench.iccid
                ),
                "refreshFlag": False,
            }
        )
    )
    store = Store.open(work / "nist-0.db")
    isdr = IsdR(store=store, credentials=[bench.cred], rand=os.urandom, now=lambda: NOW)
    t = time.perf_counter()
    for _ in range(m):
        isdr.handle(enable)
        isdr.handle(disable)
    pair = (time.perf_counter() - t) / m
    t = time.perf_counter()
    for _ in range(m * 10):
        isdr.handle(bytes.fromhex("BF2D00"))
    info = (time.perf_counter() - t) / (m * 10)
    store.close()
    print(f"\nES10c: EnableProfile + DisableProfile pair {pair * 1e3:.2f} ms (two commits, two")
    print(f"  signed notifications); GetProfilesInfo (1 profile) {info * 1e3:.3f} ms")


def card_save(pki: TestPki, work: Path, n: int) -> None:
    """UPDATE BINARY on the enabled TS.48 profile: the card alone, and saved to the store."""
    e = Euicc.create(work / "card.db", pki, loader=load_profile)
    iccid = encode_iccid(install_package(PACKAGE).iccid)
    s = e.store.state
    out = st.install(s, st.Profile(iccid=iccid, isdp_aid=st.next_isdp_aid(s)), address="a",
                     pending=b"PIR")  # fmt: skip
    e.store.commit(out.state, contents={iccid: PACKAGE})
    card = e.card
    card.transmit(bytes([0, 0xA4, 4, 0, 16]) + ISD_R_AID)
    req = bytes.fromhex("BF3111A00C5A0A") + iccid + bytes.fromhex("810100")
    card.transmit(CommandApdu(0x80, 0xE2, 0x91, 0x00, req, ne=256).encode())
    card.transmit(bytes.fromhex("00A40004022F05"))  # EF.PL (update: PIN1, disabled)

    def update(i: int) -> bytes:
        return bytes.fromhex("00D6000002") + (i & 0xFFFF).to_bytes(2, "big")

    def per_apdu(send: Callable[[bytes], bytes], base: int) -> float:
        samples = []
        for i in range(n):
            t = time.perf_counter()
            assert send(update(base + i))[-2:] == b"\x90\x00"
            samples.append(time.perf_counter() - t)
        return statistics.median(samples)

    alone = per_apdu(e.uicc.transmit, 0)
    saved = per_apdu(card.transmit, 1000)
    e.close()
    print(
        f"\nCard state save after a state-changing APDU (UPDATE BINARY, TS.48 profile, "
        f"median of {n}):"
    )
    print(f"  APDU alone {alone * 1e3:.3f} ms, APDU + save {saved * 1e3:.3f} ms, "
          f"save {(saved - alone) * 1e3:.3f} ms")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    parser.add_argument("--warm", action="store_true", help="keep certificate caches")
    args = parser.parse_args()
    n = 7 if args.quick else 31
    WARM[0] = args.warm
    work = Path(tempfile.mkdtemp())
    print(f"Python {platform.python_version()}, {platform.machine()}; package "
          f"{len(PACKAGE)} octets; medians of {n} downloads; store in {work.parent}; "
        f"certificate caches {'kept' if WARM[0] else 'emptied'} between downloads")  # fmt: skip
    pki = TestPki.create(work / "pki", now=NOW)
    benches = {curve: Bench(pki, curve) for curve in Curve}
    instrument()
    a1t = asn1tools_decode_time(max(n, 11))
    print(f"\n{'ms':30}" + "".join(f"{c.spec_name:>18}" for c in Curve))
    results: dict[Curve, dict[str, float]] = {}
    for curve, bench in benches.items():
        bench.download(work / f"warm-{curve.value}.db", 10_000)  # imports, plans
        runs = [bench.download(work / f"{curve.value}-{i}.db", i) for i in range(n)]
        for r in runs:
            r["rest"] = r["total"] - r["crypto"] - r["saip"] - r["commit"]
        results[curve] = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    rows = [
        ("total", "total (eUICC side)"),
        ("crypto", "crypto (measured floor)"),
        ("saip", "SAIP processing"),
        ("commit", "durable commit"),
        ("rest", "everything else"),
    ]
    for key, label in rows:
        print(f"{label:30}" + "".join(f"{results[c][key] * 1e3:18.2f}" for c in Curve))
    print(
        f"{'rest / crypto floor':30}"
        + "".join(f"{results[c]['rest'] / results[c]['crypto']:17.0%} " for c in Curve)
    )
    met = {
        c: "met" if results[c]["rest"] <= 0.25 * results[c]["crypto"] else "not met" for c in Curve
    }
    print(f"{'goal rest <= 25 % of floor':30}" + "".join(f"{met[c]:>18}" for c in Curve))
    print(f"\nasn1tools decode of the package (every ProfileElement): {a1t * 1e3:.2f} ms")
    for curve in Curve:
        r = results[curve]
        print(f"  {curve.spec_name}: SAIP / asn1tools {r['saip'] / a1t:.2f}, "
              f"commit / asn1tools {r['commit'] / a1t:.2f}")  # fmt: skip
    es10c(benches[Curve.NIST], work, 10 if n < 10 else 50)
    card_save(pki, work, 50 if n < 10 else 200)


if __name__ == "__main__":
    main()
