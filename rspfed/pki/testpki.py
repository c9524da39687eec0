"""A test PKI for the RSP ecosystem: CI, EUM, CRLs, and issuing of leaf certificates.

Two layers:

* **Pure builders** (no disk, no clock, no global randomness): keys come from
  :func:`rspfed.crypto.ecka.generate_key_pair`; :func:`random_serial`,
  :func:`build_ci_certificate`, :func:`build_eum_certificate`,
  :func:`build_euicc_certificate`, :func:`build_smdp_certificate`, :func:`build_crl`.
  Randomness (``rand``, like ``os.urandom``) and times are arguments.
* :class:`TestPki`, the only part that touches files: :meth:`TestPki.create`
  writes a directory, :meth:`TestPki.open` loads it, and
  :meth:`~TestPki.issue_euicc_certificate`, :meth:`~TestPki.issue_smdp_certificate`
  and :meth:`~TestPki.revoke` use the stored CA keys.

Directory layout (one sub-directory per curve, ``nist`` and/or ``brainpool``)::

    manifest.json            format, version, EIN, EUM organisation, file names
    nist/ci.der  ci.pem      CI certificate (self-signed, id-rspRole-ci)
    nist/ci.key.pem          CI private key, PKCS#8 PEM, mode 0600
    nist/ci.crl              CRL signed by the CI (DER)
    nist/eum.der eum.pem     EUM certificate (NameConstraints: O + EIN prefix)
    nist/eum.key.pem         EUM private key, PKCS#8 PEM, mode 0600
    nist/eum.crl             CRL signed by the EUM (DER)

Every file is written atomically (temporary file in the same directory,
``chmod`` before any data, ``fsync``, ``os.replace``).  Keys are encrypted
with the passphrase if one is given (PKCS#8 ``BestAvailableEncryption``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from rspfed._keyfiles import load_private_key_pem, private_key_pem, write_atomic
from rspfed.crypto.curves import Curve
from rspfed.crypto.ecka import generate_key_pair
from rspfed.errors import DecodeError, StorageError, UsageError
from rspfed.pki.eid import is_valid_eid
from rspfed.pki.roles import CertificateRole
from rspfed.pki.validate import parse_certificate, parse_crl

__all__ = [
    "CRL_VALIDITY",
    "DEFAULT_EIN",
    "MANIFEST_NAME",
    "UNLIMITED_VALIDITY",
    "CurvePki",
    "TestPki",
    "TrustMaterial",
    "build_ci_certificate",
    "build_crl",
    "build_euicc_certificate",
    "build_eum_certificate",
    "build_smdp_certificate",
    "load_trust_directory",
    "random_serial",
]

Rand = Callable[[int], bytes]

#: SGP.22 §4.5.2.1.0.3: an eUICC certificate may have no expiry (``99991231235959Z``).
UNLIMITED_VALIDITY = datetime(9999, 12, 31, 23, 59, 59, tzinfo=UTC)
#: EIN of the test EUM (SGP.26 test eUICCs use EIDs starting with these digits).
DEFAULT_EIN = "89049032"
#: How long a test-PKI CRL stays current (``nextUpdate - thisUpdate``).
CRL_VALIDITY = timedelta(days=365)
#: Name of the manifest file in a test-PKI directory.
MANIFEST_NAME = "manifest.json"
_FORMAT = "rspfed-test-pki"
_VERSION = 1
_CI_VALIDITY = timedelta(days=365 * 35)
_EUM_VALIDITY = timedelta(days=365 * 30)
_SMDP_VALIDITY = timedelta(days=365 * 10)
_TLS_VALIDITY = timedelta(days=398)
_BACKDATE = timedelta(hours=1)


# --------------------------------------------------------------------------
# Pure builders


def random_serial(rand: Rand) -> int:
    """A positive certificate serial number of at most 16 octets (RFC 5280 §4.1.2.2)."""
    return (int.from_bytes(rand(16), "big") >> 1) or 1


def _ski(key: ec.EllipticCurvePublicKey) -> x509.SubjectKeyIdentifier:
    return x509.SubjectKeyIdentifier.from_public_key(key)


def _aki(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return x509.AuthorityKeyIdentifier(ski.digest, None, None)


def _policy(role: CertificateRole) -> x509.CertificatePolicies:
    return x509.CertificatePolicies(
        [x509.PolicyInformation(x509.ObjectIdentifier(role.policy_oid), None)]
    )


def _key_usage(*, digital_signature: bool = False, cert_sign: bool = False) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _builder(
    subject: x509.Name,
    issuer: x509.Name,
    public_key: ec.EllipticCurvePublicKey,
    serial: int,
    not_before: datetime,
    not_after: datetime,
) -> x509.CertificateBuilder:
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(_ski(public_key), critical=False)
    )


def build_ci_certificate(
    key: ec.EllipticCurvePrivateKey,
    *,
    subject: x509.Name,
    serial: int,
    not_before: datetime,
    not_after: datetime,
) -> x509.Certificate:
    """A self-signed CI certificate (SGP.22 §4.5.2.1.0.1: CA, keyCertSign + cRLSign,
    critical ``id-rspRole-ci`` policy, SubjectKeyIdentifier only)."""
    return (
        _builder(subject, subject, key.public_key(), serial, not_before, not_after)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(_policy(CertificateRole.CI), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .sign(key, hashes.SHA256())
    )


def build_eum_certificate(
    ci_certificate: x509.Certificate,
    ci_key: ec.EllipticCurvePrivateKey,
    public_key: ec.EllipticCurvePublicKey,
    *,
    subject: x509.Name,
    permitted: x509.Name,
    serial: int,
    not_before: datetime,
    not_after: datetime,
) -> x509.Certificate:
    """An EUM certificate issued by the CI (SGP.22 §4.5.2.1.0.2).

    CA with pathLen 0, keyCertSign (and cRLSign, so the test EUM can sign its
    CRL), critical ``id-rspRole-eum`` policy and critical ``NameConstraints``
    whose permitted subtree is the directoryName ``permitted`` (the EUM's
    ``organizationName`` and the EID prefix as ``serialNumber``).
    """
    return (
        _builder(subject, ci_certificate.subject, public_key, serial, not_before, not_after)
        .add_extension(_aki(ci_certificate), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_policy(CertificateRole.EUM), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(
            x509.NameConstraints(
                permitted_subtrees=[x509.DirectoryName(permitted)], excluded_subtrees=None
            ),
            critical=True,
        )
        .sign(ci_key, hashes.SHA256())
    )


def _organisation(name: x509.Name) -> str:
    values = name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)
    value = values[0].value if values else ""
    return value if isinstance(value, str) else ""


def build_euicc_certificate(
    eum_certificate: x509.Certificate,
    eum_key: ec.EllipticCurvePrivateKey,
    public_key: ec.EllipticCurvePublicKey,
    *,
    eid: str,
    serial: int,
    not_before: datetime,
    not_after: datetime = UNLIMITED_VALIDITY,
    common_name: str = "Test eUICC",
) -> x509.Certificate:
    """An eUICC certificate issued by the EUM (SGP.22 §4.5.2.1.0.3).

    Subject ``O`` = the EUM's organisation, ``serialNumber`` = ``eid``, ``CN``;
    digitalSignature, critical ``id-rspRole-euicc`` policy; by default no expiry.
    """
    if not is_valid_eid(eid):
        raise UsageError("not a valid EID (32 digits, ISO 7064 MOD 97-10 check digits)")
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, _organisation(eum_certificate.subject)),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, eid),
        ]
    )
    return (
        _builder(subject, eum_certificate.subject, public_key, serial, not_before, not_after)
        .add_extension(_aki(eum_certificate), critical=False)
        .add_extension(_policy(CertificateRole.EUICC), critical=True)
        .add_extension(_key_usage(digital_signature=True), critical=True)
        .sign(eum_key, hashes.SHA256())
    )


_SERVER_ROLES = (
    CertificateRole.DPAUTH,
    CertificateRole.DPPB,
    CertificateRole.DPTLS,
    CertificateRole.DSAUTH,
    CertificateRole.DSTLS,
)


def build_smdp_certificate(
    ci_certificate: x509.Certificate,
    ci_key: ec.EllipticCurvePrivateKey,
    public_key: ec.EllipticCurvePublicKey,
    *,
    role: CertificateRole,
    subject: x509.Name,
    serial: int,
    not_before: datetime,
    not_after: datetime,
    dns_names: Sequence[str] = (),
    registered_id: str | None = None,
) -> x509.Certificate:
    """An SM-DP+ (or SM-DS) certificate issued by the CI (SGP.22 §4.5.2.1.0.4 to .0.7).

    digitalSignature and the role's policy (critical except for TLS, as in
    SGP.26).  TLS roles also get ``extendedKeyUsage serverAuth, clientAuth``
    and need at least one ``dns_names`` entry.  ``registered_id`` (the
    server's OID) goes into ``subjectAltName`` as a registeredID.
    """
    if role not in _SERVER_ROLES:
        raise UsageError(f"{role.value} is not an SM-DP+ or SM-DS role")
    if role.is_tls and not dns_names:
        raise UsageError("a TLS certificate needs at least one DNS name")
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in dns_names]
    if registered_id is not None:
        names.append(x509.RegisteredID(x509.ObjectIdentifier(registered_id)))
    builder = (
        _builder(subject, ci_certificate.subject, public_key, serial, not_before, not_after)
        .add_extension(_aki(ci_certificate), critical=False)
        .add_extension(_policy(role), critical=not role.is_tls)
        .add_extension(_key_usage(digital_signature=True), critical=True)
    )
    if role.is_tls:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(
                [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
            ),
            critical=True,
        )
    if names:
        builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
    return builder.sign(ci_key, hashes.SHA256())


def build_crl(
    issuer_certificate: x509.Certificate,
    issuer_key: ec.EllipticCurvePrivateKey,
    *,
    revoked: Iterable[tuple[int, datetime]],
    crl_number: int,
    this_update: datetime,
    next_update: datetime,
) -> x509.CertificateRevocationList:
    """A CRL listing ``revoked`` (serial, revocation date) pairs, with CRLNumber and AKI."""
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer_certificate.subject)
        .last_update(this_update)
        .next_update(next_update)
        .add_extension(x509.CRLNumber(crl_number), critical=False)
        .add_extension(_aki(issuer_certificate), critical=False)
    )
    for serial, when in revoked:
        builder = builder.add_revoked_certificate(
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build()
        )
    return builder.sign(issuer_key, hashes.SHA256())


# --------------------------------------------------------------------------
# Files


@attrs.frozen
class CurvePki:
    """The CA material of a test PKI on one curve."""

    curve: Curve
    ci: x509.Certificate
    ci_key: ec.EllipticCurvePrivateKey = attrs.field(repr=False)
    eum: x509.Certificate
    eum_key: ec.EllipticCurvePrivateKey = attrs.field(repr=False)
    ci_crl: x509.CertificateRevocationList
    eum_crl: x509.CertificateRevocationList

    @property
    def ci_pkid(self) -> bytes:
        """The CI's SubjectKeyIdentifier."""
        return self.ci.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest


def _files(curve: Curve) -> dict[str, str]:
    c = curve.value
    return {
        "ci": f"{c}/ci.der",
        "ci_pem": f"{c}/ci.pem",
        "ci_key": f"{c}/ci.key.pem",
        "ci_crl": f"{c}/ci.crl",
        "eum": f"{c}/eum.der",
        "eum_pem": f"{c}/eum.pem",
        "eum_key": f"{c}/eum.key.pem",
        "eum_crl": f"{c}/eum.crl",
    }


def _name(common_name: str, organisation: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COUNTRY_NAME, "XX"),
        ]
    )


def _utcnow() -> datetime:
    return datetime.now(UTC)


@attrs.define
class TestPki:
    """A test PKI stored in a directory (see the module doc for the layout)."""

    __test__ = False  # not a pytest test class

    directory: Path
    ein: str
    eum_organisation: str
    curves: dict[Curve, CurvePki]
    passphrase: bytes | None = attrs.field(default=None, repr=False)

    # ---- creation and loading

    @classmethod
    def create(
        cls,
        directory: str | os.PathLike[str],
        *,
        now: datetime,
        curves: Sequence[Curve] = (Curve.NIST, Curve.BRAINPOOL),
        rand: Rand = os.urandom,
        passphrase: bytes | None = None,
        ein: str = DEFAULT_EIN,
        eum_organisation: str = "RSP Test EUM",
    ) -> TestPki:
        """Generate a CI, an EUM and empty CRLs per curve and write them to ``directory``.

        ``directory`` must not exist or be empty.  Raises :class:`UsageError`
        on bad arguments and :class:`StorageError` if writing fails.
        """
        if now.tzinfo is None:
            raise UsageError("now must be a timezone-aware datetime")
        if not curves:
            raise UsageError("at least one curve is needed")
        if not (ein.isascii() and ein.isdigit() and 1 <= len(ein) <= 30):
            raise UsageError("the EIN must be 1 to 30 decimal digits")
        path = Path(directory)
        try:
            if path.exists() and (not path.is_dir() or any(path.iterdir())):
                raise UsageError(f"{path} exists and is not an empty directory")
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create {path}: {exc.strerror}") from None
        start = now - _BACKDATE
        material: dict[Curve, CurvePki] = {}
        for curve in dict.fromkeys(curves):
            ci_key = generate_key_pair(curve, rand)
            ci = build_ci_certificate(
                ci_key,
                subject=_name(f"rspfed Test CI {curve.value}", "rspfed test"),
                serial=random_serial(rand),
                not_before=start,
                not_after=start + _CI_VALIDITY,
            )
            eum_key = generate_key_pair(curve, rand)
            permitted = x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, eum_organisation),
                    x509.NameAttribute(NameOID.SERIAL_NUMBER, ein),
                ]
            )
            eum = build_eum_certificate(
                ci,
                ci_key,
                eum_key.public_key(),
                subject=_name(f"{eum_organisation} {curve.value}", eum_organisation),
                permitted=permitted,
                serial=random_serial(rand),
                not_before=start,
                not_after=start + _EUM_VALIDITY,
            )
            crls = [
                build_crl(
                    cert,
                    key,
                    revoked=(),
                    crl_number=1,
                    this_update=start,
                    next_update=now + CRL_VALIDITY,
                )
                for cert, key in ((ci, ci_key), (eum, eum_key))
            ]
            material[curve] = CurvePki(curve, ci, ci_key, eum, eum_key, crls[0], crls[1])
        pki = cls(path, ein, eum_organisation, material, passphrase)
        pki._save_all()
        return pki

    @classmethod
    def open(cls, directory: str | os.PathLike[str], passphrase: bytes | None = None) -> TestPki:
        """Load a test PKI written by :meth:`create`.

        Raises :class:`StorageError` if the directory is not a test PKI or a
        file is missing or corrupt, :class:`UsageError` on a wrong or missing
        passphrase.
        """
        path = Path(directory)
        try:
            manifest: Any = json.loads((path / MANIFEST_NAME).read_text("utf-8"))
        except (OSError, ValueError) as exc:
            raise StorageError(f"{path} is not a test PKI directory: {exc}") from None
        if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
            raise StorageError(f"{path / MANIFEST_NAME} is not a test-PKI manifest")
        if manifest.get("version") != _VERSION:
            raise StorageError(f"unknown test-PKI manifest version {manifest.get('version')!r}")
        material: dict[Curve, CurvePki] = {}
        try:
            for name in manifest["curves"]:
                curve = Curve(name)
                files = _files(curve)

                def read(key: str, files: dict[str, str] = files) -> bytes:
                    return (path / files[key]).read_bytes()

                material[curve] = CurvePki(
                    curve=curve,
                    ci=parse_certificate(read("ci")).certificate,
                    ci_key=load_private_key_pem(read("ci_key"), passphrase, files["ci_key"]),
                    eum=parse_certificate(read("eum")).certificate,
                    eum_key=load_private_key_pem(read("eum_key"), passphrase, files["eum_key"]),
                    ci_crl=parse_crl(read("ci_crl")).crl,
                    eum_crl=parse_crl(read("eum_crl")).crl,
                )
            return cls(
                path, str(manifest["ein"]), str(manifest["eum_organisation"]), material, passphrase
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StorageError(f"{path / MANIFEST_NAME} is incomplete: {exc}") from None
        except DecodeError as exc:
            raise StorageError(f"{path}: corrupt file: {exc}") from None
        except OSError as exc:
            raise StorageError(f"{path}: cannot read {exc.filename}: {exc.strerror}") from None

    def _save_all(self) -> None:
        try:
            for material in self.curves.values():
                (self.directory / material.curve.value).mkdir(mode=0o700, exist_ok=True)
                files = _files(material.curve)
                der = serialization.Encoding.DER
                pem = serialization.Encoding.PEM
                for key, data, mode in (
                    ("ci", material.ci.public_bytes(der), 0o644),
                    ("ci_pem", material.ci.public_bytes(pem), 0o644),
                    ("ci_key", private_key_pem(material.ci_key, self.passphrase), 0o600),
                    ("ci_crl", material.ci_crl.public_bytes(der), 0o644),
                    ("eum", material.eum.public_bytes(der), 0o644),
                    ("eum_pem", material.eum.public_bytes(pem), 0o644),
                    ("eum_key", private_key_pem(material.eum_key, self.passphrase), 0o600),
                    ("eum_crl", material.eum_crl.public_bytes(der), 0o644),
                ):
                    write_atomic(self.directory / files[key], data, mode)
            manifest = {
                "format": _FORMAT,
                "version": _VERSION,
                "ein": self.ein,
                "eum_organisation": self.eum_organisation,
                "encrypted_keys": bool(self.passphrase),
                "curves": {
                    m.curve.value: {**_files(m.curve), "ci_pkid": m.ci_pkid.hex()}
                    for m in self.curves.values()
                },
            }
            write_atomic(
                self.directory / MANIFEST_NAME,
                (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode(),
            )
        except OSError as exc:
            raise StorageError(f"cannot write the test PKI in {self.directory}: {exc}") from None

    # ---- accessors

    def material(self, curve: Curve) -> CurvePki:
        """The CA material for ``curve`` (:class:`UsageError` if the PKI has no such curve)."""
        try:
            return self.curves[curve]
        except KeyError:
            raise UsageError(f"this test PKI has no {curve.value} curve") from None

    def ci_certificates(self) -> list[x509.Certificate]:
        """The CI certificates of every curve (the trust anchors)."""
        return [m.ci for m in self.curves.values()]

    def eum_certificates(self) -> list[x509.Certificate]:
        """The EUM certificates of every curve (intermediates for eUICC chains)."""
        return [m.eum for m in self.curves.values()]

    def crls(self) -> list[x509.CertificateRevocationList]:
        """The current CRLs (CI and EUM of every curve)."""
        return [crl for m in self.curves.values() for crl in (m.ci_crl, m.eum_crl)]

    # ---- issuing

    def issue_euicc_certificate(
        self,
        eid: str,
        public_key: ec.EllipticCurvePublicKey,
        curve: Curve,
        *,
        now: datetime | None = None,
        rand: Rand = os.urandom,
        not_after: datetime = UNLIMITED_VALIDITY,
    ) -> x509.Certificate:
        """An eUICC certificate for ``eid`` signed by the EUM of ``curve``.

        The EID must be valid and start with the EUM's EIN (else :class:`UsageError`).
        """
        material = self.material(curve)
        if not eid.startswith(self.ein):
            raise UsageError(f"EID {eid} is outside this EUM's range {self.ein}")
        _check_key(public_key, curve)
        return build_euicc_certificate(
            material.eum,
            material.eum_key,
            public_key,
            eid=eid,
            serial=random_serial(rand),
            not_before=(now or _utcnow()) - _BACKDATE,
            not_after=not_after,
        )

    def issue_smdp_certificate(
        self,
        role: CertificateRole,
        public_key: ec.EllipticCurvePublicKey,
        curve: Curve,
        *,
        common_name: str = "rspfed test SM-DP+",
        organisation: str = "rspfed test",
        dns_names: Sequence[str] = (),
        registered_id: str | None = None,
        now: datetime | None = None,
        rand: Rand = os.urandom,
        validity: timedelta | None = None,
    ) -> x509.Certificate:
        """An SM-DP+ / SM-DS certificate (``role`` DPAUTH, DPPB, DPTLS, DSAUTH or DSTLS)
        signed by the CI of ``curve``; TLS roles need ``dns_names``."""
        material = self.material(curve)
        _check_key(public_key, curve)
        start = (now or _utcnow()) - _BACKDATE
        lifetime = validity or (_TLS_VALIDITY if role.is_tls else _SMDP_VALIDITY)
        subject = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
                x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            ]
        )
        return build_smdp_certificate(
            material.ci,
            material.ci_key,
            public_key,
            role=role,
            subject=subject,
            serial=random_serial(rand),
            not_before=start,
            not_after=start + lifetime,
            dns_names=dns_names,
            registered_id=registered_id,
        )

    def revoke(
        self, certificate: x509.Certificate | bytes, *, now: datetime | None = None
    ) -> x509.CertificateRevocationList:
        """Add ``certificate`` to its issuer's CRL (CI or EUM), re-sign and store the CRL.

        Returns the new CRL.  Revoking an already revoked certificate changes
        nothing.  :class:`UsageError` if this PKI did not issue the certificate.
        """
        cert = parse_certificate(certificate)
        when = now or _utcnow()
        for material in self.curves.values():
            for issuer, key, attr in (
                (material.ci, material.ci_key, "ci_crl"),
                (material.eum, material.eum_key, "eum_crl"),
            ):
                issuer_parsed = parse_certificate(issuer)
                if (
                    cert.authority_key_id != issuer_parsed.subject_key_id
                    or cert.issuer != issuer.subject
                ):
                    continue
                old: x509.CertificateRevocationList = getattr(material, attr)
                parsed_old = parse_crl(old)
                if cert.serial_number in parsed_old.revoked:
                    return old
                entries = [*parsed_old.revoked.items(), (cert.serial_number, when)]
                new = build_crl(
                    issuer,
                    key,
                    revoked=entries,
                    crl_number=(parsed_old.crl_number or 0) + 1,
                    this_update=when,
                    next_update=when + CRL_VALIDITY,
                )
                self.curves[material.curve] = (
                    attrs.evolve(material, ci_crl=new)
                    if attr == "ci_crl"
                    else attrs.evolve(material, eum_crl=new)
                )
                try:
                    write_atomic(
                        self.directory / _files(material.curve)[attr],
                        new.public_bytes(serialization.Encoding.DER),
                    )
                except OSError as exc:
                    raise StorageError(f"cannot write the CRL: {exc}") from None
                return new
        raise UsageError("the certificate was not issued by this test PKI's CI or EUM")


def _check_key(public_key: ec.EllipticCurvePublicKey, curve: Curve) -> None:
    if Curve.of_key(public_key) is not curve:
        raise UsageError(f"the public key is not on the {curve.spec_name} curve")


# --------------------------------------------------------------------------
# Trust material from a directory (for verifiers)


@attrs.frozen
class TrustMaterial:
    """Certificates and CRLs read from a directory by :func:`load_trust_directory`.

    ``anchors`` are the self-issued (CI) certificates, ``intermediates`` the
    others (e.g. EUM certificates), ``crls`` every CRL found.
    """

    anchors: tuple[x509.Certificate, ...]
    intermediates: tuple[x509.Certificate, ...]
    crls: tuple[x509.CertificateRevocationList, ...]


_CERT_SUFFIXES = (".der", ".pem", ".crt", ".cer")


def _certificates_in(data: bytes) -> list[x509.Certificate]:
    if b"-----BEGIN CERTIFICATE-----" in data:
        try:
            return x509.load_pem_x509_certificates(data)
        except ValueError:
            return []
    if data[:1] != b"\x30":
        return []
    try:
        return [parse_certificate(data).certificate]
    except DecodeError:
        return []


def _crls_in(data: bytes) -> list[x509.CertificateRevocationList]:
    try:
        if b"-----BEGIN X509 CRL-----" in data:
            return [x509.load_pem_x509_crl(data)]
        return [parse_crl(data).crl]
    except (ValueError, DecodeError):
        return []


def load_trust_directory(directory: str | os.PathLike[str]) -> TrustMaterial:
    """Read trust material from a test-PKI directory or a plain directory of files.

    A test-PKI directory (with ``manifest.json``) yields its CI certificates,
    EUM certificates and CRLs; no private key is read.  Otherwise every
    ``*.der``, ``*.pem``, ``*.crt`` and ``*.cer`` file that holds certificates
    and every ``*.crl`` file is used; other files are ignored.  Raises
    :class:`StorageError` if the directory cannot be read or holds no CI.
    """
    path = Path(directory)
    anchors: list[x509.Certificate] = []
    intermediates: list[x509.Certificate] = []
    crls: list[x509.CertificateRevocationList] = []
    try:
        if (path / MANIFEST_NAME).is_file():
            pki = _read_public(path)
            anchors.extend(pki[0])
            intermediates.extend(pki[1])
            crls.extend(pki[2])
        else:
            for entry in sorted(path.iterdir()):
                if not entry.is_file():
                    continue
                suffix = entry.suffix.lower()
                if suffix in _CERT_SUFFIXES:
                    for cert in _certificates_in(entry.read_bytes()):
                        (anchors if cert.subject == cert.issuer else intermediates).append(cert)
                elif suffix == ".crl":
                    crls.extend(_crls_in(entry.read_bytes()))
    except OSError as exc:
        raise StorageError(f"cannot read {exc.filename or path}: {exc.strerror}") from None
    if not anchors:
        raise StorageError(f"{path} holds no CI certificate")
    return TrustMaterial(tuple(anchors), tuple(intermediates), tuple(crls))


def _read_public(
    path: Path,
) -> tuple[list[x509.Certificate], list[x509.Certificate], list[x509.CertificateRevocationList]]:
    try:
        manifest: Any = json.loads((path / MANIFEST_NAME).read_text("utf-8"))
        if not isinstance(manifest, dict) or manifest.get("format") != _FORMAT:
            raise StorageError(f"{path / MANIFEST_NAME} is not a test-PKI manifest")
        cis, eums, crls = [], [], []
        for name in manifest["curves"]:
            files = _files(Curve(name))
            cis.append(parse_certificate((path / files["ci"]).read_bytes()).certificate)
            eums.append(parse_certificate((path / files["eum"]).read_bytes()).certificate)
            for key in ("ci_crl", "eum_crl"):
                crls.append(parse_crl((path / files[key]).read_bytes()).crl)
    except (KeyError, TypeError, ValueError) as exc:
        raise StorageError(f"{path / MANIFEST_NAME} is incomplete: {exc}") from None
    except DecodeError as exc:
        raise StorageError(f"{path}: corrupt file: {exc}") from None
    return cis, eums, crls
