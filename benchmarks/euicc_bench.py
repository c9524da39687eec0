"""Benchmark (issue B item 9): the eUICC side of one profile download, split in one run.

Per download of the TS.48 package ``TS48v2_SAIP2.3_BERTLV.der`` through
:class:`rspfed.euicc.isdr.IsdR` (GetEuiccChallenge, AuthenticateServer,
PrepareDownload, every BPP block; the SM-DP+ messages are made outside the
timed calls), for each curve and two scenarios:

steady eUICC, new SM-DP+ (the main figure)
    one running eUICC (one store, one ISD-R, booted before timing: EUICCInfo2
    asked, one download done) downloads again and again; before each
    download the test CI issues new CERT.DPauth and CERT.DPpb (new serial
    numbers), so their strict DER check, parsing, policy checks and chain
    signature checks are paid in every download, as at a first contact with
    an SM-DP+; the eUICC's own certificates and EUICCInfo2 are checked and
    encoded once, as a real eUICC does at boot.  The installed profile is
    deleted and its notifications removed between downloads (not timed).
fully cold (for comparison)
    a new store and ISD-R per download, and every certificate cache emptied
    (verified signatures, strictly checked encodings), so the eUICC also
    re-checks its own certificates and re-encodes EUICCInfo2.

Each download is split into:

crypto
    time spent inside the crypto calls, measured in the same run by
    wrapping them: ECDSA sign and verify (``rspfed.crypto.signature``), the
    certificate signature checks of the chain validation
    (``rspfed.pki.validate._check_signature``), ECKA key generation, point
    encoding/decoding and DH (``rspfed.crypto.ecka``), the session key
    derivation, and BSP unprotect (``BspDecryptor``).
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
``python benchmarks/euicc_bench.py [--quick]`` (prints; no assertions).
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
    """Forget verified certificate signatures, decoded names, passed profile checks
    and checked certificate encodings."""
    validate._VERIFIED.clear()
    validate._NAMES.clear()
    validate._PROFILE_OK.clear()
    _strict._checked.clear()


def forget_smdp_side_checks() -> None:
    """Forget the strict checks the SM-DP+ side's encoding just made in this process.

    ``rspfed.asn1.encode`` of a request strictly checks it and remembers the
    certificate encodings it checked (``_strict._checked``); without this the
    eUICC would find CERT.DPauth/CERT.DPpb already checked.  (The eUICC's own
    certificates are checked once per ISD-R, outside this cache.)
    """
    _strict._checked.clear()


# -- one download -------------------------------------------------------------------------


class Bench:
    """An eUICC credential and an SM-DP+ (keys, certificates) on one curve."""

    def __init__(self, pki: TestPki, curve: Curve) -> None:
        self.pki = pki
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
        self.auth_cert, self.pb_cert = self.smdp_certificates()
        self.iccid = encode_iccid(install_package(PACKAGE).iccid)
        self.metadata = es8p.store_metadata_request(self.iccid, "rspfed", "bench")
        self.ctx = rsp.CtxParams1(
            name="ctxParamsForCommonAuthentication",
            value={"deviceInfo": {"tac": bytes(4), "deviceCapabilities": {}}},
        )
        self.saip_time = [0.0]
        self.commit_time = [0.0]

    def smdp_certificates(self) -> tuple[Any, Any]:
        """CERT.DPauth and CERT.DPpb newly issued by the test CI (new serial numbers)."""

        def issue(role: CertificateRole, k: Any) -> Any:
            der = self.pki.issue_smdp_certificate(
                role, k.public_key(), self.curve, registered_id="1.2.3.4", now=NOW
            ).public_bytes(Encoding.DER)
            return ax509.Certificate.load(der)

        return issue(CertificateRole.DPAUTH, self.auth), issue(CertificateRole.DPPB, self.pb)

    def isdr(self, path: Path, i: int) -> IsdR:
        """A new store at ``path`` and an ISD-R on it, SAIP and commit time measured."""
        store = Store.create(path, eid=bytes.fromhex(self.eid))
        original = store.commit
        commit_time = self.commit_time

        def commit(*a: Any, **k: Any) -> None:
            t = time.perf_counter()
            try:
                original(*a, **k)
            finally:
                commit_time[0] += time.perf_counter() - t

        store.commit = commit  # type: ignore[method-assign]
        saip_time = self.saip_time

        def installer(package: bytes) -> str:
            t = time.perf_counter()
            try:
                return install_package(package).iccid
            finally:
                saip_time[0] += time.perf_counter() - t

        return IsdR(
            store=store,
            credentials=[self.cred],
            rand=random.Random(i).randbytes,
            now=lambda: NOW,
            ci_certificates=[self.ci_der],
            installer=installer,
        )

    def cold(self, path: Path, i: int) -> dict[str, float]:
        """Fully cold: a new eUICC (store, ISD-R) and empty certificate caches."""
        isdr = self.isdr(path, i)
        cold_caches()
        out = self.download(isdr, i, self.auth_cert, self.pb_cert)
        isdr.store.close()
        return out

    def steady(self, isdr: IsdR, i: int) -> dict[str, float]:
        """The running eUICC ``isdr`` downloads from an SM-DP+ it has never seen."""
        auth_cert, pb_cert = self.smdp_certificates()  # not timed
        out = self.download(isdr, i, auth_cert, pb_cert)
        self.delete(isdr)  # not timed
        return out

    def delete(self, isdr: IsdR) -> None:
        """Delete the installed profile and drop every pending notification (not timed)."""
        request = rsp.DeleteProfileRequest(name="iccid", value=self.iccid)
        answer = asn1.decode(rsp.DeleteProfileResponse, isdr.handle(asn1.encode(request)))
        assert answer["deleteResult"].native == "ok", answer.native
        for note in isdr.store.state.notifications:
            sent = rsp.NotificationSentRequest({"seqNumber": note.seq_number})
            isdr.handle(asn1.encode(sent))
        assert not isdr.store.state.profiles
        assert not isdr.store.state.notifications

    def download(self, isdr: IsdR, i: int, auth_cert: Any, pb_cert: Any) -> dict[str, float]:
        """One download through ``isdr``; seconds per part."""
        tid = i.to_bytes(16, "big")
        spent = [0.0]

        def call(der: bytes) -> bytes:
            t = time.perf_counter()
            out = isdr.handle(der)
            spent[0] += time.perf_counter() - t
            return out

        CRYPTO[0] = 0.0
        self.saip_time[0] = self.commit_time[0] = 0.0
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
                "serverCertificate": auth_cert,
                "ctxParams1": self.ctx,
            }
        )
        req_der = asn1.encode(req)
        forget_smdp_side_checks()
        resp = asn1.decode(rsp.AuthenticateServerResponse, call(req_der))
        sig1 = bytes(resp.chosen["euiccSignature1"].native)
        s2 = asn1.encode(rsp.SmdpSigned2({"transactionId": tid, "ccRequiredFlag": False}))
        t = CRYPTO[0]
        sig2 = signature.sign(self.pb, s2 + b"\x5f\x37\x40" + sig1)
        CRYPTO[0] = t
        req2 = rsp.PrepareDownloadRequest(
            {
                "smdpSigned2": asn1.decode(rsp.SmdpSigned2, s2),
                "smdpSignature2": sig2,
                "smdpCertificate": pb_cert,
            }
        )
        req2_der = asn1.encode(req2)
        forget_smdp_side_checks()
        prep = asn1.decode(rsp.PrepareDownloadResponse, call(req2_der))
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
        assert isdr.store.state.profiles, "not installed"
        return {
            "total": spent[0],
            "crypto": CRYPTO[0],
            "saip": self.saip_time[0],
            "commit": self.commit_time[0],
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


ROWS = [
    ("total", "total (eUICC side)"),
    ("crypto", "crypto (measured floor)"),
    ("saip", "SAIP processing"),
    ("commit", "durable commit"),
    ("rest", "everything else"),
]


def table(title: str, results: dict[Curve, dict[str, float]]) -> None:
    """Print one scenario's medians per curve."""
    print(f"\n{title}")
    print(f"{'ms':30}" + "".join(f"{c.spec_name:>18}" for c in Curve))
    for key, label in ROWS:
        print(f"{label:30}" + "".join(f"{results[c][key] * 1e3:18.2f}" for c in Curve))
    print(
        f"{'rest / crypto floor':30}"
        + "".join(f"{results[c]['rest'] / results[c]['crypto']:17.0%} " for c in Curve)
    )
    met = {
        c: "met" if results[c]["rest"] <= 0.25 * results[c]["crypto"] else "not met" for c in Curve
    }
    print(f"{'goal rest <= 25 % of floor':30}" + "".join(f"{met[c]:>18}" for c in Curve))


def medians(runs: list[dict[str, float]]) -> dict[str, float]:
    """Median of every part over ``runs``, with rest = total - crypto - SAIP - commit."""
    for r in runs:
        r["rest"] = r["total"] - r["crypto"] - r["saip"] - r["commit"]
    return {k: statistics.median(r[k] for r in runs) for k in runs[0]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    args = parser.parse_args()
    n = 7 if args.quick else 31
    work = Path(tempfile.mkdtemp())
    print(f"Python {platform.python_version()}, {platform.machine()}; package "
          f"{len(PACKAGE)} octets; medians of {n} downloads; store in {work.parent}")  # fmt: skip
    pki = TestPki.create(work / "pki", now=NOW)
    benches = {curve: Bench(pki, curve) for curve in Curve}
    instrument()
    a1t = asn1tools_decode_time(max(n, 11))
    steady: dict[Curve, dict[str, float]] = {}
    cold: dict[Curve, dict[str, float]] = {}
    for curve, bench in benches.items():
        bench.cold(work / f"warm-{curve.value}.db", 10_000)  # imports, plans
        # one running eUICC, booted (EUICCInfo2 asked, one download done) before timing
        isdr = bench.isdr(work / f"steady-{curve.value}.db", 20_000)
        isdr.handle(bytes.fromhex("BF2200"))
        bench.steady(isdr, 20_001)
        # the two scenarios interleaved, so that load from elsewhere hits both alike
        steady_runs, cold_runs = [], []
        for i in range(n):
            steady_runs.append(bench.steady(isdr, i))
            cold_runs.append(bench.cold(work / f"{curve.value}-{i}.db", i))
        isdr.store.close()
        steady[curve] = medians(steady_runs)
        cold[curve] = medians(cold_runs)
    table(
        "Steady eUICC, new SM-DP+ (one running eUICC downloads again and again; each "
        "download\nbrings newly issued CERT.DPauth/CERT.DPpb; the profile is deleted "
        "between downloads, untimed):",
        steady,
    )
    table(
        "Fully cold (a new store and ISD-R per download, every certificate cache emptied: "
        "the eUICC\nalso re-checks its own certificates and re-encodes EUICCInfo2):",
        cold,
    )
    print(f"\nasn1tools decode of the package (every ProfileElement): {a1t * 1e3:.2f} ms")
    for curve in Curve:
        r = steady[curve]
        print(f"  {curve.spec_name}: SAIP / asn1tools {r['saip'] / a1t:.2f}, "
              f"commit / asn1tools {r['commit'] / a1t:.2f}")  # fmt: skip
    es10c(benches[Curve.NIST], work, 10 if n < 10 else 50)
    card_save(pki, work, 50 if n < 10 else 200)


if __name__ == "__main__":
    main()
