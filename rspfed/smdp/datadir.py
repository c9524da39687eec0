"""The SM-DP+ data directory: keys, certificates, trust anchors, configuration, store.

Created once by :func:`init_data_dir` (``rspfed smdp init``) from a test PKI,
read by :func:`load_config`, :func:`open_store` and :func:`tls_paths`
(``rspfed smdp serve``).  Layout::

    config.json                  format, version, address, curves, limits, file names
    smdp.sqlite                  the store (inventory, orders, sessions), mode 0600
    keys/                        mode 0700; every key PKCS#8 PEM, mode 0600,
                                 encrypted when a passphrase is given
      dpauth-nist.key.pem  dppb-nist.key.pem  (and -brainpool)
      dptls.key.pem              the TLS server key (P-256)
      es2-client-ca.key.pem      the CA that issues operators' ES2+ client certificates
    certs/
      dpauth-nist.der  dppb-nist.der  (and -brainpool)   CERT.DPauth / CERT.DPpb (DER)
    trust/
      ci-nist.der  ...            CI certificates trusted for eUICC chains
      crl-*.der                   CRLs of the PKI at init time
    tls/
      server.pem                  CERT.DPtls (P-256, SAN = the address's host)
      server-ca.pem               the CI that issued CERT.DPtls (give it to clients: --ca-file)
      es2-client-ca.pem           trust anchor for ES2+ client certificates
      callback-ca.pem             optional: extra CAs for the operator's callback server
    operator/
      operator.pem  operator.key.pem   the operator's ES2+ client certificate and key

``config.json`` members besides file names: ``address``, ``curves``,
``operator`` (requester name), ``session_ttl_seconds``,
``max_confirmation_code_attempts``, ``max_download_attempts``,
``progress_callback_url`` (where HandleDownloadProgressInfo goes, or null),
``callback_urls`` (ES2+ requester name → its callback URL).
They may be edited by hand; unknown members are ignored.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from rspfed._keyfiles import load_private_key_pem, private_key_pem, write_atomic
from rspfed.crypto.curves import Curve
from rspfed.crypto.ecka import generate_key_pair
from rspfed.errors import StorageError, UsageError
from rspfed.pki.roles import CertificateRole
from rspfed.pki.testpki import TestPki, random_serial
from rspfed.smdp.store import SqliteSmdpStore
from rspfed.smdp.types import SmdpConfig, SmdpCredential

__all__ = [
    "CONFIG_NAME",
    "DEFAULT_SMDP_OID",
    "PASSPHRASE_ENV",
    "STORE_NAME",
    "TlsFiles",
    "init_data_dir",
    "load_config",
    "open_store",
    "read_settings",
    "split_address",
    "tls_paths",
]

#: Name of the configuration file in a data directory.
CONFIG_NAME: Final = "config.json"
#: Name of the SQLite store in a data directory.
STORE_NAME: Final = "smdp.sqlite"
#: Environment variable holding the passphrase of the data directory's keys.
PASSPHRASE_ENV: Final = "RSPFED_SMDP_PASSPHRASE"  # noqa: S105 - a variable name
#: SM-DP+ OID put into the certificates' subjectAltName registeredID (SGP.26 test range).
DEFAULT_SMDP_OID: Final = "2.999.10"
_FORMAT: Final = "rspfed-smdp-data"
_VERSION: Final = 1
_CA_VALIDITY: Final = timedelta(days=365 * 10)
_OPERATOR_VALIDITY: Final = timedelta(days=365 * 2)
_BACKDATE: Final = timedelta(hours=1)

Rand = Callable[[int], bytes]


@attrs.frozen
class TlsFiles:
    """Paths of the TLS material in a data directory."""

    server_chain: Path
    """CERT.DPtls (PEM; the chain up to, not including, the CI)."""
    server_key: Path
    server_ca: Path
    """The CI that issued CERT.DPtls (PEM): a client's ``--ca-file``."""
    client_ca: Path
    """Trust anchor for ES2+ client certificates (PEM)."""
    operator_cert: Path
    operator_key: Path
    callback_ca: Path | None
    """Extra CAs to verify the operator's callback server, if the file exists."""


def split_address(address: str) -> tuple[str, int | None]:
    """``(host, port)`` of an SM-DP+ address ``FQDN[:PORT]`` (:class:`UsageError` if malformed)."""
    host, sep, port_text = address.rpartition(":")
    if not sep:
        host, port_text = address, ""
    port: int | None = None
    if sep:
        if not port_text.isdigit() or not 0 < int(port_text) < 65536:
            raise UsageError(f"bad port in SM-DP+ address {address!r}")
        port = int(port_text)
    labels = host.split(".")
    if (
        not host
        or len(host) > 253
        or any(
            not label
            or len(label) > 63
            or not all(c.isalnum() or c == "-" for c in label)
            or label.startswith("-")
            or label.endswith("-")
            for label in labels
        )
    ):
        raise UsageError(f"SM-DP+ address {address!r} is not FQDN[:PORT]")
    if all(label.isdigit() for label in labels):
        raise UsageError(
            f"SM-DP+ address {address!r}: a DNS name is needed (CERT.DPtls names it), "
            "e.g. localhost"
        )
    return host, port


def _load_key(path: Path, passphrase: bytes | None) -> ec.EllipticCurvePrivateKey:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StorageError(f"cannot read {path.name}: {exc.strerror}") from None
    return load_private_key_pem(
        data, passphrase, path.name, needs_passphrase=f"set {PASSPHRASE_ENV} to the passphrase"
    )


def _name(common_name: str, organisation: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _client_ca(
    key: ec.EllipticCurvePrivateKey, now: datetime, rand: Rand, organisation: str
) -> x509.Certificate:
    name = _name("rspfed SM-DP+ ES2+ client CA", organisation)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(random_serial(rand))
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )


def _operator_cert(
    ca: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    key: ec.EllipticCurvePrivateKey,
    operator: str,
    now: datetime,
    rand: Rand,
) -> x509.Certificate:
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (
        x509.CertificateBuilder()
        .subject_name(_name(operator, operator))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(random_serial(rand))
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _OPERATOR_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier(ca_ski.digest, None, None), critical=False)
        .sign(ca_key, hashes.SHA256())
    )


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.DER)


def init_data_dir(
    data: str | os.PathLike[str],
    pki: TestPki,
    *,
    address: str,
    passphrase: bytes | None = None,
    curves: Iterable[Curve] = (Curve.NIST, Curve.BRAINPOOL),
    operator: str = "rspfed test operator",
    smdp_oid: str = DEFAULT_SMDP_OID,
    progress_callback_url: str | None = None,
    now: datetime | None = None,
    rand: Rand = os.urandom,
) -> None:
    """Create the SM-DP+ data directory ``data`` (new or empty) from the test PKI ``pki``.

    Issues CERT.DPauth and CERT.DPpb on every curve of ``curves`` the PKI has,
    a P-256 CERT.DPtls whose subjectAltName is the address's host, an ES2+
    client CA and the ``operator``'s client certificate; copies the PKI's CI
    certificates and CRLs as trust anchors; writes ``config.json`` and creates
    the store.  Raises :class:`UsageError` for a bad address, a non-empty
    directory or a PKI without the P-256 curve (needed for TLS).
    """
    root = Path(data)
    host, _port = split_address(address)
    when = now or datetime.now(UTC)
    wanted = [c for c in curves if c in pki.curves]
    if not wanted:
        raise UsageError("the test PKI has none of the requested curves")
    if Curve.NIST not in pki.curves:
        raise UsageError("the test PKI has no NIST P-256 CI, needed for CERT.DPtls")
    if root.exists() and any(root.iterdir()):
        raise UsageError(f"{root} exists and is not empty")
    if not operator or len(operator) > 64:
        raise UsageError("the operator name must have 1 to 64 characters")
    try:
        for sub, mode in (
            ("", 0o755),
            ("keys", 0o700),
            ("certs", 0o755),
            ("trust", 0o755),
            ("tls", 0o755),
            ("operator", 0o700),
        ):
            (root / sub).mkdir(mode=mode, parents=True, exist_ok=True)
            os.chmod(root / sub, mode)
        credentials: dict[str, dict[str, str]] = {}
        for curve in wanted:
            c = curve.value
            entry: dict[str, str] = {}
            for role, tag in ((CertificateRole.DPAUTH, "dpauth"), (CertificateRole.DPPB, "dppb")):
                key = generate_key_pair(curve, rand)
                cert = pki.issue_smdp_certificate(
                    role,
                    key.public_key(),
                    curve,
                    common_name=f"rspfed SM-DP+ {tag} {c}",
                    registered_id=smdp_oid,
                    now=when,
                    rand=rand,
                )
                write_atomic(
                    root / "keys" / f"{tag}-{c}.key.pem", private_key_pem(key, passphrase), 0o600
                )
                write_atomic(root / "certs" / f"{tag}-{c}.der", _der(cert))
                entry[f"{tag}_key"] = f"keys/{tag}-{c}.key.pem"
                entry[f"{tag}_certificate"] = f"certs/{tag}-{c}.der"
            credentials[c] = entry
        trusted = []
        for curve, material in pki.curves.items():
            name = f"trust/ci-{curve.value}.der"
            write_atomic(root / name, _der(material.ci))
            trusted.append(name)
        crls = []
        for i, crl in enumerate(pki.crls()):
            name = f"trust/crl-{i}.der"
            write_atomic(root / name, crl.public_bytes(serialization.Encoding.DER))
            crls.append(name)
        # TLS server
        tls_key = generate_key_pair(Curve.NIST, rand)
        tls_cert = pki.issue_smdp_certificate(
            CertificateRole.DPTLS,
            tls_key.public_key(),
            Curve.NIST,
            common_name=host,
            dns_names=[host],
            registered_id=smdp_oid,
            now=when,
            rand=rand,
        )
        write_atomic(root / "keys" / "dptls.key.pem", private_key_pem(tls_key, passphrase), 0o600)
        write_atomic(root / "tls" / "server.pem", _pem(tls_cert))
        write_atomic(root / "tls" / "server-ca.pem", _pem(pki.material(Curve.NIST).ci))
        # ES2+ client CA and the operator's client certificate
        ca_key = generate_key_pair(Curve.NIST, rand)
        ca = _client_ca(ca_key, when, rand, "rspfed test")
        write_atomic(
            root / "keys" / "es2-client-ca.key.pem", private_key_pem(ca_key, passphrase), 0o600
        )
        write_atomic(root / "tls" / "es2-client-ca.pem", _pem(ca))
        op_key = generate_key_pair(Curve.NIST, rand)
        op_cert = _operator_cert(ca, ca_key, op_key, operator, when, rand)
        write_atomic(root / "operator" / "operator.pem", _pem(op_cert))
        write_atomic(
            root / "operator" / "operator.key.pem", private_key_pem(op_key, passphrase), 0o600
        )
        config: dict[str, Any] = {
            "format": _FORMAT,
            "version": _VERSION,
            "address": address,
            "curves": [c.value for c in wanted],
            "operator": operator,
            "encrypted_keys": bool(passphrase),
            "credentials": credentials,
            "trusted_cis": trusted,
            "crls": crls,
            "session_ttl_seconds": 600,
            "max_confirmation_code_attempts": 3,
            "max_download_attempts": 3,
            "progress_callback_url": progress_callback_url,
            "callback_urls": {},
            "store": STORE_NAME,
            "store_synchronous": "NORMAL",
        }
        write_atomic(root / CONFIG_NAME, json.dumps(config, indent=2).encode() + b"\n")
        store = SqliteSmdpStore.create(root / STORE_NAME)
        store.close()
        os.chmod(root / STORE_NAME, 0o600)
    except OSError as exc:
        raise StorageError(f"cannot write the data directory: {exc.strerror or exc}") from None


def read_settings(data: str | os.PathLike[str]) -> dict[str, Any]:
    """The parsed ``config.json`` of a data directory (:class:`StorageError` if unreadable)."""
    path = Path(data) / CONFIG_NAME
    try:
        raw = json.loads(path.read_bytes())
    except OSError as exc:
        raise StorageError(f"{path}: {exc.strerror or exc} (run rspfed smdp init)") from None
    except ValueError:
        raise StorageError(f"{path} is not JSON") from None
    if not isinstance(raw, dict) or raw.get("format") != _FORMAT:
        raise StorageError(f"{path} is not an rspfed SM-DP+ configuration")
    if raw.get("version") != _VERSION:
        raise StorageError(f"{path}: unknown configuration version {raw.get('version')!r}")
    return raw


def _read(root: Path, name: object) -> bytes:
    if not isinstance(name, str) or os.path.isabs(name) or ".." in Path(name).parts:
        raise StorageError(f"bad file name in {CONFIG_NAME}: {name!r}")
    try:
        return (root / name).read_bytes()
    except OSError as exc:
        raise StorageError(f"cannot read {name}: {exc.strerror}") from None


def _int(settings: dict[str, Any], key: str, default: int) -> int:
    value = settings.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise StorageError(f"{CONFIG_NAME}: {key} must be a positive integer")
    return value


def load_config(data: str | os.PathLike[str], *, passphrase: bytes | None = None) -> SmdpConfig:
    """The :class:`~rspfed.smdp.SmdpConfig` of a data directory.

    Keys are decrypted with ``passphrase`` (:class:`UsageError` when it is
    needed and missing or wrong).
    """
    root = Path(data)
    settings = read_settings(root)
    credentials = []
    creds = settings.get("credentials")
    if not isinstance(creds, dict) or not creds:
        raise StorageError(f"{CONFIG_NAME}: no credentials")
    for curve_name, entry in creds.items():
        try:
            curve = Curve(curve_name)
        except ValueError:
            raise StorageError(f"{CONFIG_NAME}: unknown curve {curve_name!r}") from None
        if not isinstance(entry, dict):
            raise StorageError(f"{CONFIG_NAME}: bad credential entry for {curve_name}")
        credentials.append(
            SmdpCredential(
                curve=curve,
                dp_auth_key=_load_key(root / str(entry.get("dpauth_key")), passphrase),
                dp_auth_certificate=_read(root, entry.get("dpauth_certificate")),
                dp_pb_key=_load_key(root / str(entry.get("dppb_key")), passphrase),
                dp_pb_certificate=_read(root, entry.get("dppb_certificate")),
            )
        )
    trusted = tuple(_read(root, n) for n in settings.get("trusted_cis", []))
    crls = tuple(_read(root, n) for n in settings.get("crls", []))
    address = settings.get("address")
    if not isinstance(address, str):
        raise StorageError(f"{CONFIG_NAME}: address missing")
    callback = settings.get("progress_callback_url")
    per_requester = settings.get("callback_urls", {})
    if callback is not None and not isinstance(callback, str):
        raise StorageError(f"{CONFIG_NAME}: progress_callback_url must be a string or null")
    if not isinstance(per_requester, dict) or not all(
        isinstance(v, str) for v in per_requester.values()
    ):
        raise StorageError(f"{CONFIG_NAME}: callback_urls must map requesters to URLs")
    return SmdpConfig(
        address=address,
        credentials=tuple(credentials),
        trusted_cis=trusted,
        crls=crls,
        session_ttl=timedelta(seconds=_int(settings, "session_ttl_seconds", 600)),
        max_confirmation_code_attempts=_int(settings, "max_confirmation_code_attempts", 3),
        max_download_attempts=_int(settings, "max_download_attempts", 3),
        callback_url=callback or None,
        callback_urls=tuple(sorted((str(k), v) for k, v in per_requester.items())),
    )


def open_store(data: str | os.PathLike[str]) -> SqliteSmdpStore:
    """Open the data directory's SQLite store.

    ``config.json``'s ``store_synchronous`` (``"NORMAL"`` when absent, or
    ``"FULL"``) is SQLite's ``synchronous`` setting: with WAL, NORMAL
    commits survive a crash of the process but the last ones may be lost on
    power loss or an OS crash; FULL also fsyncs every commit (see
    ``docs/smdp.md``, Durability)."""
    root = Path(data)
    settings = read_settings(root)
    name = settings.get("store", STORE_NAME)
    if not isinstance(name, str) or "/" in name:
        raise StorageError(f"{CONFIG_NAME}: bad store name")
    synchronous = settings.get("store_synchronous", "NORMAL")
    if synchronous not in ("NORMAL", "FULL"):
        raise StorageError(f'{CONFIG_NAME}: store_synchronous must be "NORMAL" or "FULL"')
    return SqliteSmdpStore.open(root / name, synchronous=synchronous)


def tls_paths(data: str | os.PathLike[str]) -> TlsFiles:
    """The TLS files of a data directory."""
    root = Path(data)
    callback = root / "tls" / "callback-ca.pem"
    return TlsFiles(
        server_chain=root / "tls" / "server.pem",
        server_key=root / "keys" / "dptls.key.pem",
        server_ca=root / "tls" / "server-ca.pem",
        client_ca=root / "tls" / "es2-client-ca.pem",
        operator_cert=root / "operator" / "operator.pem",
        operator_key=root / "operator" / "operator.key.pem",
        callback_ca=callback if callback.exists() else None,
    )
