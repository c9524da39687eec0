"""Certificate chain validation for the RSP PKI (SGP.22 §4.5.2.2), sans-IO.

:func:`verify_chain` checks a leaf certificate against a set of trusted CI
certificates, the way SGP.22 §4.5.2.2 asks every certificate verifier to:

1. **Path**: starting at the leaf, each certificate's AuthorityKeyIdentifier
   selects its issuer by SubjectKeyIdentifier (an intermediate, e.g. the EUM,
   or a trusted CI, optionally restricted to a list of CI key ids such as
   ``euiccCiPKIdListForVerification``); the issuer name must equal the
   issuer's subject; the role of the issuer must be the one allowed to issue
   the leaf's role (CI issues EUM and SM-DP+/SM-DS certificates, EUM issues
   eUICC certificates).  Every signature, and the CI's self-signature, is
   ECDSA with SHA-256, checked over the ``tbsCertificate`` bytes *as received*.
   Failures raise :class:`~rspfed.errors.UntrustedCertificateError`.
2. **Profile**: each certificate carries the role's ``id-rspRole-*`` policy,
   the role's key usage, ``basicConstraints`` (CA-ness, EUM pathLen 0),
   SubjectKeyIdentifier / AuthorityKeyIdentifier, the TLS roles'
   ``extendedKeyUsage serverAuth`` and ``dNSName``, no unknown critical
   extension, a key on NIST P-256 or brainpoolP256r1.  Failures raise
   :class:`~rspfed.errors.CertificateRoleError`.
3. **EID**: an eUICC certificate's subject ``serialNumber`` is a valid EID
   (SGP.29) that lies inside its EUM's ``NameConstraints`` (same
   ``organizationName``, ``serialNumber`` prefix, SGP.22 §4.5.2.1.0.2); outside
   the range raises :class:`~rspfed.errors.UntrustedCertificateError` (the EUM
   is not entitled to certify that EID).
4. **Validity**: ``notBefore <= now <= notAfter`` for every certificate,
   the CI's included; else :class:`~rspfed.errors.CertificateExpiredError`.
5. **Revocation**: every CRL whose issuer is a CA in the chain must be signed
   by it (and it must hold ``cRLSign``), be current (``thisUpdate <= now <
   nextUpdate``) and carry no unknown critical extension; a listed serial
   raises :class:`~rspfed.errors.CertificateRevokedError`.  CRLs of other
   issuers are ignored.

Malformed DER raises :class:`~rspfed.errors.DecodeError`.  No other exception
type leaves this module (a naive ``now`` is a :class:`~rspfed.errors.UsageError`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection, Iterable
from datetime import datetime
from typing import TypeAlias

import attrs
from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtensionOID, NameOID, SignatureAlgorithmOID

from rspfed.crypto.curves import Curve
from rspfed.errors import (
    CertificateExpiredError,
    CertificateRevokedError,
    CertificateRoleError,
    DecodeError,
    UntrustedCertificateError,
    UsageError,
)
from rspfed.pki.eid import is_valid_eid
from rspfed.pki.roles import CertificateRole, KeyUsageBit, role_for_policy

__all__ = [
    "CertificateInput",
    "CrlInput",
    "RspCertificate",
    "RspCrl",
    "ValidatedChain",
    "dn_string",
    "parse_certificate",
    "parse_crl",
    "verify_chain",
]

_ECDSA_SHA256 = SignatureAlgorithmOID.ECDSA_WITH_SHA256.dotted_string

#: Extensions whose meaning this validator knows (and so may be critical).
_KNOWN_EXTENSIONS = frozenset(
    oid.dotted_string
    for oid in (
        ExtensionOID.BASIC_CONSTRAINTS,
        ExtensionOID.KEY_USAGE,
        ExtensionOID.CERTIFICATE_POLICIES,
        ExtensionOID.NAME_CONSTRAINTS,
        ExtensionOID.EXTENDED_KEY_USAGE,
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME,
        ExtensionOID.SUBJECT_KEY_IDENTIFIER,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
        ExtensionOID.CRL_DISTRIBUTION_POINTS,
    )
)
_KNOWN_CRL_EXTENSIONS = frozenset(
    oid.dotted_string
    for oid in (
        ExtensionOID.CRL_NUMBER,
        ExtensionOID.AUTHORITY_KEY_IDENTIFIER,
    )
)

#: What ``cryptography`` raises on malformed input (lazily, on attribute access);
#: KeyError/IndexError/OverflowError have been seen from its Name and time decoding.
_PARSE_ERRORS = (
    ValueError,
    TypeError,
    KeyError,
    IndexError,
    OverflowError,
    UnsupportedAlgorithm,
    x509.DuplicateExtension,
    x509.UnsupportedGeneralNameType,
    x509.InvalidVersion,
)


# --------------------------------------------------------------------------
# DER framing: the signed part exactly as received


def _tlv(data: bytes, offset: int, type_name: str) -> tuple[int, int]:
    """Return (content start, end) of the DER TLV at ``offset``."""
    if offset + 2 > len(data):
        raise DecodeError("truncated", type_name=type_name, offset=offset)
    first = data[offset + 1]
    start = offset + 2
    if first < 0x80:
        length = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or start + count > len(data):
            raise DecodeError("bad length", type_name=type_name, offset=offset + 1)
        length = int.from_bytes(data[start : start + count], "big")
        start += count
    end = start + length
    if end > len(data):
        raise DecodeError("length runs past the end", type_name=type_name, offset=offset)
    return start, end


def _signed_part(der: bytes, type_name: str) -> bytes:
    """The first element of the outer SEQUENCE (``tbsCertificate`` / ``tbsCertList``)."""
    if not der or der[0] != 0x30:
        raise DecodeError("not a SEQUENCE", type_name=type_name, offset=0)
    start, end = _tlv(der, 0, type_name)
    if end != len(der):
        raise DecodeError("trailing data", type_name=type_name, offset=end)
    if start >= end or der[start] != 0x30:
        raise DecodeError("signed part is not a SEQUENCE", type_name=type_name, offset=start)
    _, tbs_end = _tlv(der, start, type_name)
    return der[start:tbs_end]


def _tbs_names(tbs: bytes) -> tuple[bytes, bytes] | None:
    """The issuer and subject ``Name`` TLVs of a ``tbsCertificate`` as received
    (``None`` if the framing is not the expected one)."""
    try:
        position, end = _tlv(tbs, 0, "TBSCertificate")
        if position < end and tbs[position] == 0xA0:  # [0] version
            position = _tlv(tbs, position, "TBSCertificate")[1]
        names: list[bytes] = []
        for index in range(4):  # serialNumber, signature, issuer, validity, subject
            if position >= end:
                return None
            after = _tlv(tbs, position, "TBSCertificate")[1]
            if index == 2:
                names.append(tbs[position:after])
            position = after
        if position >= end or tbs[position] != 0x30:
            return None
        names.append(tbs[position : _tlv(tbs, position, "TBSCertificate")[1]])
    except DecodeError:
        return None
    if names[0][:1] != b"\x30":
        return None
    return names[0], names[1]


#: Decoded names by their DER (a pure function of the bytes: a name that does
#: not decode raises and is never stored).  The issuer of every certificate and
#: the subject of a renewed one recur; bounded, cleared when full.
_NAMES: dict[bytes, x509.Name] = {}
_NAMES_MAX = 256


def _name(der: bytes | None, decode: Callable[[], x509.Name]) -> x509.Name:
    """The decoded ``Name`` whose DER is ``der``, from the memo or ``decode``."""
    if der is None:
        return decode()
    name = _NAMES.get(der)
    if name is None:
        name = decode()
        if len(_NAMES) >= _NAMES_MAX:
            _NAMES.clear()
        _NAMES[der] = name
    return name


def dn_string(name: x509.Name) -> str:
    """``name`` as an RFC 4514 string, with ``serialNumber`` spelled out."""
    return name.rfc4514_string({NameOID.SERIAL_NUMBER: "serialNumber"})


def _key_id(value: bytes | None) -> str:
    return value.hex().upper() if value else "-"


# --------------------------------------------------------------------------
# Parsed certificates and CRLs


@attrs.frozen(eq=False)
class RspCertificate:
    """An X.509 certificate with the fields the RSP PKI looks at, parsed eagerly.

    Build one with :func:`parse_certificate`; every field access is then
    exception-free.  ``der`` and ``tbs`` are the bytes as received.
    """

    der: bytes
    certificate: x509.Certificate
    tbs: bytes
    signature: bytes
    signature_algorithm: str
    subject: x509.Name
    issuer: x509.Name
    serial_number: int
    not_before: datetime
    not_after: datetime
    public_key: ec.EllipticCurvePublicKey | None
    curve: Curve | None
    subject_key_id: bytes | None
    authority_key_id: bytes | None
    policy_oids: tuple[str, ...]
    key_usage: x509.KeyUsage | None
    basic_constraints: x509.BasicConstraints | None
    extended_key_usage: tuple[str, ...] | None
    dns_names: tuple[str, ...]
    name_constraints: x509.NameConstraints | None
    unknown_critical: tuple[str, ...]
    #: The subject and issuer ``Name`` DER as received (``None`` if not found).
    subject_der: bytes | None = None
    issuer_der: bytes | None = None

    def issued_by(self, issuer: RspCertificate) -> bool:
        """This certificate's issuer name equals ``issuer``'s subject name
        (equal DER first; else the decoded names are compared)."""
        if self.issuer_der is not None and self.issuer_der == issuer.subject_der:
            return True
        return self.issuer == issuer.subject

    @property
    def role(self) -> CertificateRole | None:
        """The first ``id-rspRole-*`` policy found, as a role (``None`` if none)."""
        for oid in self.policy_oids:
            role = role_for_policy(oid)
            if role is not None:
                return role
        return None

    @property
    def serial_number_attribute(self) -> str | None:
        """The subject's ``serialNumber`` attribute (the EID of an eUICC certificate)."""
        values = self.subject.get_attributes_for_oid(NameOID.SERIAL_NUMBER)
        if len(values) != 1 or not isinstance(values[0].value, str):
            return None
        return values[0].value

    @property
    def registered_id(self) -> str | None:
        """The first ``registeredID`` of the subjectAltName: the SM-DP+ (or SM-DS) OID
        that SGP.22 has the eUICC sign in CancelSession and the installation result."""
        try:
            san = self.certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
        except x509.ExtensionNotFound:
            return None
        ids = san.value.get_values_for_type(x509.RegisteredID)
        return ids[0].dotted_string if ids else None

    @property
    def is_self_issued(self) -> bool:
        """Subject equals issuer (a CI certificate)."""
        return self.issued_by(self)

    def describe(self) -> str:
        """A short human-readable name: the subject and key id."""
        return f"'{dn_string(self.subject)}' (key id {_key_id(self.subject_key_id)})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RspCertificate) and other.der == self.der

    def __hash__(self) -> int:
        return hash(self.der)


def _ext(extensions: x509.Extensions, cls: type[x509.ExtensionType]) -> x509.ExtensionType | None:
    try:
        return extensions.get_extension_for_class(cls).value
    except x509.ExtensionNotFound:
        return None


def parse_certificate(data: bytes | x509.Certificate | RspCertificate) -> RspCertificate:
    """Parse a DER certificate (or wrap a ``cryptography`` one).

    Raises :class:`rspfed.errors.DecodeError` if the DER or an extension is malformed.
    """
    if isinstance(data, RspCertificate):
        return data
    if isinstance(data, x509.Certificate):
        der = data.public_bytes(serialization.Encoding.DER)
    elif isinstance(data, bytes | bytearray | memoryview):
        der = bytes(data)
    else:
        raise UsageError("a certificate is DER bytes or a cryptography Certificate")
    tbs = _signed_part(der, "Certificate")
    names = _tbs_names(tbs)
    issuer_der, subject_der = names if names is not None else (None, None)
    try:
        cert = data if isinstance(data, x509.Certificate) else x509.load_der_x509_certificate(der)
        extensions = cert.extensions
        # one pass over the extensions (cryptography refuses duplicates when
        # parsing them), then look-ups by value type
        by_type: dict[type[x509.ExtensionType], x509.ExtensionType] = {
            type(ext.value): ext.value for ext in extensions
        }
        ski = by_type.get(x509.SubjectKeyIdentifier)
        aki = by_type.get(x509.AuthorityKeyIdentifier)
        policies = by_type.get(x509.CertificatePolicies)
        key_usage = by_type.get(x509.KeyUsage)
        basic = by_type.get(x509.BasicConstraints)
        eku = by_type.get(x509.ExtendedKeyUsage)
        san = by_type.get(x509.SubjectAlternativeName)
        constraints = by_type.get(x509.NameConstraints)
        unknown = tuple(
            ext.oid.dotted_string
            for ext in extensions
            if ext.critical and ext.oid.dotted_string not in _KNOWN_EXTENSIONS
        )
        try:
            key = cert.public_key()
        except _PARSE_ERRORS:
            key = None
        public_key = key if isinstance(key, ec.EllipticCurvePublicKey) else None
        parsed = RspCertificate(
            der=der,
            certificate=cert,
            tbs=tbs,
            signature=cert.signature,
            signature_algorithm=cert.signature_algorithm_oid.dotted_string,
            subject=_name(subject_der, lambda: cert.subject),
            issuer=_name(issuer_der, lambda: cert.issuer),
            serial_number=cert.serial_number,
            not_before=cert.not_valid_before_utc,
            not_after=cert.not_valid_after_utc,
            public_key=public_key,
            curve=Curve.find_for_key(public_key) if public_key is not None else None,
            subject_key_id=ski.digest if isinstance(ski, x509.SubjectKeyIdentifier) else None,
            authority_key_id=(
                aki.key_identifier if isinstance(aki, x509.AuthorityKeyIdentifier) else None
            ),
            policy_oids=(
                tuple(p.policy_identifier.dotted_string for p in policies)
                if isinstance(policies, x509.CertificatePolicies)
                else ()
            ),
            key_usage=key_usage if isinstance(key_usage, x509.KeyUsage) else None,
            basic_constraints=basic if isinstance(basic, x509.BasicConstraints) else None,
            extended_key_usage=(
                tuple(oid.dotted_string for oid in eku)
                if isinstance(eku, x509.ExtendedKeyUsage)
                else None
            ),
            dns_names=(
                tuple(san.get_values_for_type(x509.DNSName))
                if isinstance(san, x509.SubjectAlternativeName)
                else ()
            ),
            name_constraints=(
                constraints if isinstance(constraints, x509.NameConstraints) else None
            ),
            unknown_critical=unknown,
            subject_der=subject_der,
            issuer_der=issuer_der,
        )
    except DecodeError:
        raise
    except _PARSE_ERRORS as exc:
        raise DecodeError(f"malformed certificate: {exc}", type_name="Certificate") from None
    return parsed


@attrs.frozen(eq=False)
class RspCrl:
    """A parsed certificate revocation list (RFC 5280 ``CertificateList``)."""

    der: bytes
    crl: x509.CertificateRevocationList
    tbs: bytes
    signature: bytes
    signature_algorithm: str
    issuer: x509.Name
    authority_key_id: bytes | None
    crl_number: int | None
    this_update: datetime
    next_update: datetime | None
    revoked: dict[int, datetime] = attrs.field(repr=False)
    unknown_critical: tuple[str, ...]


def parse_crl(data: bytes | x509.CertificateRevocationList | RspCrl) -> RspCrl:
    """Parse a DER CRL (or wrap a ``cryptography`` one).

    Raises :class:`rspfed.errors.DecodeError` if it is malformed.
    """
    if isinstance(data, RspCrl):
        return data
    if isinstance(data, x509.CertificateRevocationList):
        der = data.public_bytes(serialization.Encoding.DER)
    elif isinstance(data, bytes | bytearray | memoryview):
        der = bytes(data)
    else:
        raise UsageError("a CRL is DER bytes or a cryptography CertificateRevocationList")
    tbs = _signed_part(der, "CertificateList")
    try:
        crl = (
            data
            if isinstance(data, x509.CertificateRevocationList)
            else x509.load_der_x509_crl(der)
        )
        extensions = crl.extensions
        aki = _ext(extensions, x509.AuthorityKeyIdentifier)
        number = _ext(extensions, x509.CRLNumber)
        unknown = [
            ext.oid.dotted_string
            for ext in extensions
            if ext.critical and ext.oid.dotted_string not in _KNOWN_CRL_EXTENSIONS
        ]
        revoked: dict[int, datetime] = {}
        for entry in crl:
            revoked[entry.serial_number] = entry.revocation_date_utc
            unknown.extend(ext.oid.dotted_string for ext in entry.extensions if ext.critical)
        parsed = RspCrl(
            der=der,
            crl=crl,
            tbs=tbs,
            signature=crl.signature,
            signature_algorithm=crl.signature_algorithm_oid.dotted_string,
            issuer=crl.issuer,
            authority_key_id=(
                aki.key_identifier if isinstance(aki, x509.AuthorityKeyIdentifier) else None
            ),
            crl_number=number.crl_number if isinstance(number, x509.CRLNumber) else None,
            this_update=crl.last_update_utc,
            next_update=crl.next_update_utc,
            revoked=revoked,
            unknown_critical=tuple(unknown),
        )
    except _PARSE_ERRORS as exc:
        raise DecodeError(f"malformed CRL: {exc}", type_name="CertificateList") from None
    return parsed


#: What :func:`verify_chain` accepts as a certificate.
CertificateInput: TypeAlias = bytes | x509.Certificate | RspCertificate
#: What :func:`verify_chain` accepts as a CRL.
CrlInput: TypeAlias = bytes | x509.CertificateRevocationList | RspCrl


# --------------------------------------------------------------------------
# The result


@attrs.frozen
class ValidatedChain:
    """A chain that :func:`verify_chain` accepted.

    ``chain`` is ordered leaf first, the trusted CI last; ``ci_pkid`` is the
    CI's SubjectKeyIdentifier (the value SGP.22 lists in
    ``euiccCiPKIdListForVerification`` / ``euiccCiPKIdListForSigning``).
    """

    role: CertificateRole
    chain: tuple[RspCertificate, ...]
    public_key: ec.EllipticCurvePublicKey
    curve: Curve
    eid: str | None

    @property
    def leaf(self) -> RspCertificate:
        """The certificate that was verified."""
        return self.chain[0]

    @property
    def ci(self) -> RspCertificate:
        """The trusted CI certificate the chain ends at."""
        return self.chain[-1]

    @property
    def ci_pkid(self) -> bytes:
        """SubjectKeyIdentifier of the CI used."""
        ski = self.chain[-1].subject_key_id
        assert ski is not None
        return ski


# --------------------------------------------------------------------------
# Checks


#: Signatures already found valid, keyed by (signed bytes, signature, issuer DER).
#: A memo of a pure function of its key (the CI self-signature and the EUM
#: signature recur on every eUICC chain); bounded, cleared when full.
_VERIFIED: dict[tuple[bytes, bytes, bytes], None] = {}
_VERIFIED_MAX = 1024


def _named(prefix: str, cert: RspCertificate) -> Callable[[], str]:
    """``prefix`` and the certificate's description, built when called (on failure only)."""
    return lambda: f"{prefix} {cert.describe()}"


def _check_signature(
    cert: RspCertificate | RspCrl, issuer: RspCertificate, what: Callable[[], str]
) -> None:
    """``what`` names ``cert`` for an error message (called only on failure)."""
    if cert.signature_algorithm != _ECDSA_SHA256:
        raise UntrustedCertificateError(
            f"{what()} is signed with {cert.signature_algorithm}, not ecdsa-with-SHA256"
        )
    if issuer.public_key is None:
        raise UntrustedCertificateError(f"issuer {issuer.describe()} has no EC public key")
    memo = (cert.tbs, cert.signature, issuer.der)
    if memo in _VERIFIED:
        return
    try:
        issuer.public_key.verify(cert.signature, cert.tbs, ec.ECDSA(hashes.SHA256()))
    except InvalidSignature:
        raise UntrustedCertificateError(
            f"signature of {what()} does not verify with the key of {issuer.describe()}"
        ) from None
    if len(_VERIFIED) >= _VERIFIED_MAX:
        _VERIFIED.clear()
    _VERIFIED[memo] = None


#: (certificate DER, role) pairs whose profile check passed: a memo of a pure
#: function of its key (the CI and EUM recur on every chain); bounded.
_PROFILE_OK: dict[tuple[bytes, CertificateRole], None] = {}
_PROFILE_OK_MAX = 1024


def _check_profile(cert: RspCertificate, role: CertificateRole) -> None:
    memo = (cert.der, role)
    if memo in _PROFILE_OK:
        return
    _check_profile_uncached(cert, role)
    if len(_PROFILE_OK) >= _PROFILE_OK_MAX:
        _PROFILE_OK.clear()
    _PROFILE_OK[memo] = None


def _check_profile_uncached(cert: RspCertificate, role: CertificateRole) -> None:
    profile = role.profile

    def what() -> str:  # error strings are built only on failure
        return f"{role.spec_name.removeprefix('id-rspRole-')} certificate {cert.describe()}"

    if role.policy_oid not in cert.policy_oids:
        found = cert.role
        if found is not None:
            raise CertificateRoleError(
                f"{what()} has role {found.spec_name}, expected {role.spec_name}"
            )
        raise CertificateRoleError(f"{what()} lacks the certificate policy {role.spec_name}")
    if cert.unknown_critical:
        raise CertificateRoleError(
            f"{what()} has unknown critical extension(s) {', '.join(cert.unknown_critical)}"
        )
    if cert.public_key is None or cert.curve is None:
        raise CertificateRoleError(f"{what()} key is not on NIST P-256 or brainpoolP256r1")
    if cert.subject_key_id is None:
        raise CertificateRoleError(f"{what()} has no SubjectKeyIdentifier")
    if role is not CertificateRole.CI and cert.authority_key_id is None:
        raise CertificateRoleError(f"{what()} has no AuthorityKeyIdentifier")
    usage = cert.key_usage
    if usage is None:
        raise CertificateRoleError(f"{what()} has no KeyUsage extension")
    missing = [bit.value for bit in profile.key_usage if not bit.is_set(usage)]
    if missing:
        raise CertificateRoleError(f"{what()} key usage lacks {', '.join(sorted(missing))}")
    basic = cert.basic_constraints
    if profile.is_ca:
        if basic is None or not basic.ca:
            raise CertificateRoleError(f"{what()} is not a CA (basicConstraints cA=TRUE needed)")
        if profile.path_length is not None and basic.path_length != profile.path_length:
            raise CertificateRoleError(
                f"{what()} has pathLenConstraint {basic.path_length}, "
                f"expected {profile.path_length}"
            )
    else:
        if basic is not None and basic.ca:
            raise CertificateRoleError(f"{what()} is a CA but its role is an end entity")
        signing = [
            bit.value
            for bit in (KeyUsageBit.KEY_CERT_SIGN, KeyUsageBit.CRL_SIGN)
            if bit.is_set(usage)
        ]
        if signing:
            raise CertificateRoleError(f"{what()} end-entity key usage has {', '.join(signing)}")
    if profile.extended_key_usage:
        present = set(cert.extended_key_usage or ())
        if not profile.extended_key_usage <= present:
            raise CertificateRoleError(f"{what()} extendedKeyUsage lacks serverAuth")
    if profile.requires_dns_name and not cert.dns_names:
        raise CertificateRoleError(f"{what()} subjectAltName has no dNSName")


def _check_validity(cert: RspCertificate, now: datetime) -> None:
    if now < cert.not_before:
        raise CertificateExpiredError(
            f"certificate {cert.describe()} is not valid before "
            f"{cert.not_before.isoformat()} (now {now.isoformat()})"
        )
    if now > cert.not_after:
        raise CertificateExpiredError(
            f"certificate {cert.describe()} expired at "
            f"{cert.not_after.isoformat()} (now {now.isoformat()})"
        )


def _name_within(subject: x509.Name, base: x509.Name) -> bool:
    """SGP.22 directoryName constraint: every base attribute is in the subject,
    ``serialNumber`` as a prefix (the EID range), the others equal."""
    for attribute in base:
        wanted = attribute.value
        values = [a.value for a in subject.get_attributes_for_oid(attribute.oid)]
        if attribute.oid == NameOID.SERIAL_NUMBER:
            if not any(
                isinstance(v, str) and isinstance(wanted, str) and wanted and v.startswith(wanted)
                for v in values
            ):
                return False
        elif wanted not in values:
            return False
    return True


def _check_eid(euicc: RspCertificate, eum: RspCertificate, eid: str | None) -> str:
    found = euicc.serial_number_attribute
    if found is None:
        raise CertificateRoleError(
            f"euicc certificate {euicc.describe()} has no subject serialNumber (EID)"
        )
    if not is_valid_eid(found):
        raise CertificateRoleError(
            f"euicc certificate subject serialNumber {found!r} is not a valid EID"
        )
    if eid is not None and eid != found:
        raise CertificateRoleError(f"euicc certificate is for EID {found}, expected {eid}")
    constraints = eum.name_constraints
    if constraints is None:
        raise CertificateRoleError(f"eum certificate {eum.describe()} has no NameConstraints")
    for subtree in constraints.excluded_subtrees or ():
        if isinstance(subtree, x509.DirectoryName) and _name_within(euicc.subject, subtree.value):
            raise UntrustedCertificateError(
                f"EID {found} is in an excluded subtree of the EUM's NameConstraints"
            )
    permitted = [
        s.value for s in constraints.permitted_subtrees or () if isinstance(s, x509.DirectoryName)
    ]
    if not permitted:
        raise CertificateRoleError(
            f"eum certificate {eum.describe()} NameConstraints permit no directoryName"
        )
    if not any(_name_within(euicc.subject, base) for base in permitted):
        ranges = ", ".join(dn_string(base) for base in permitted)
        raise UntrustedCertificateError(
            f"EID {found} (subject {dn_string(euicc.subject)}) is outside the "
            f"EUM's permitted range ({ranges})"
        )
    return found


def _check_crls(chain: tuple[RspCertificate, ...], crls: Iterable[RspCrl], now: datetime) -> None:
    crl_list = list(crls)
    for cert, issuer in itertools.pairwise(chain):
        for crl in crl_list:
            if crl.issuer != issuer.subject:
                continue
            if crl.authority_key_id is not None and crl.authority_key_id != issuer.subject_key_id:
                continue

            def what(issuer: RspCertificate = issuer) -> str:  # built only on failure
                return f"CRL of {issuer.describe()}"

            _check_signature(crl, issuer, what)
            if issuer.key_usage is None or not issuer.key_usage.crl_sign:
                raise UntrustedCertificateError(f"{what()}: the issuer key lacks cRLSign")
            if crl.unknown_critical:
                raise UntrustedCertificateError(
                    f"{what()} has unknown critical extension(s) {', '.join(crl.unknown_critical)}"
                )
            if now < crl.this_update:
                raise CertificateExpiredError(
                    f"{what()} is not valid before {crl.this_update.isoformat()}"
                )
            if crl.next_update is not None and now >= crl.next_update:
                raise CertificateExpiredError(
                    f"{what()} is out of date (nextUpdate {crl.next_update.isoformat()})"
                )
            when = crl.revoked.get(cert.serial_number)
            if when is not None and when <= now:
                raise CertificateRevokedError(
                    f"certificate {cert.describe()} serial {cert.serial_number:#x} "
                    f"was revoked at {when.isoformat()}"
                )


# --------------------------------------------------------------------------
# Entry point


def verify_chain(
    leaf: CertificateInput,
    *,
    role: CertificateRole,
    trust_anchors: Iterable[CertificateInput],
    now: datetime,
    intermediates: Iterable[CertificateInput] = (),
    crls: Iterable[CrlInput] = (),
    ci_pkids: Collection[bytes] | None = None,
    eid: str | None = None,
) -> ValidatedChain:
    """Validate ``leaf`` for ``role`` at time ``now`` (see the module doc for the rules).

    ``trust_anchors`` are CI certificates, selected by SubjectKeyIdentifier;
    ``ci_pkids``, if given, further restricts them to these key ids (e.g. the
    eUICC's ``euiccCiPKIdListForVerification``).  ``intermediates`` supply the
    EUM certificate for an eUICC leaf.  ``eid``, if given, must equal the
    eUICC certificate's EID.  Returns a :class:`ValidatedChain`.
    """
    if now.tzinfo is None or now.utcoffset() is None:
        raise UsageError("now must be a timezone-aware datetime")
    if eid is not None and role is not CertificateRole.EUICC:
        raise UsageError("eid is only meaningful for an eUICC certificate")
    leaf_cert = parse_certificate(leaf)
    anchors: dict[bytes, RspCertificate] = {}
    for item in trust_anchors:
        anchor = parse_certificate(item)
        ski = anchor.subject_key_id
        if ski is not None and (ci_pkids is None or ski in ci_pkids):
            anchors.setdefault(ski, anchor)
    pool: dict[bytes, list[RspCertificate]] = {}
    for item in intermediates:
        inter = parse_certificate(item)
        if inter.subject_key_id is not None:
            pool.setdefault(inter.subject_key_id, []).append(inter)
    parsed_crls = [parse_crl(item) for item in crls]

    # 1. Path and signatures.
    chain: list[RspCertificate] = [leaf_cert]
    roles: list[CertificateRole] = [role]
    if role is CertificateRole.CI:
        known = anchors.get(leaf_cert.subject_key_id or b"")
        if known is None or known.der != leaf_cert.der:
            raise UntrustedCertificateError(
                f"CI certificate {leaf_cert.describe()} is not a trusted CI"
            )
    else:
        current: RspCertificate = leaf_cert
        current_role: CertificateRole = role
        while True:
            (issuer_role,) = current_role.issuers
            aki = current.authority_key_id
            if aki is None:
                raise UntrustedCertificateError(
                    f"certificate {current.describe()} has no AuthorityKeyIdentifier"
                )
            if issuer_role is CertificateRole.CI:
                candidates = [anchors[aki]] if aki in anchors else []
                if not candidates:
                    listed = ", ".join(_key_id(k) for k in anchors) or "none"
                    raise UntrustedCertificateError(
                        f"certificate {current.describe()} is issued by unknown CI key id "
                        f"{_key_id(aki)} (trusted: {listed})"
                    )
            else:
                candidates = [c for c in pool.get(aki, []) if c not in chain]
                if not candidates:
                    raise UntrustedCertificateError(
                        f"certificate {current.describe()}: issuing {issuer_role.value} "
                        f"certificate with key id {_key_id(aki)} not supplied"
                    )
            named = [c for c in candidates if current.issued_by(c)]
            if not named:
                raise UntrustedCertificateError(
                    f"certificate {current.describe()}: issuer name "
                    f"'{dn_string(current.issuer)}' does not match the "
                    f"{issuer_role.value} certificate with key id {_key_id(aki)}"
                )
            parent = named[0]
            _check_signature(current, parent, _named("certificate", current))
            chain.append(parent)
            roles.append(issuer_role)
            current, current_role = parent, issuer_role
            if issuer_role is CertificateRole.CI:
                break
    ci = chain[-1]
    if not ci.is_self_issued:
        raise UntrustedCertificateError(f"CI certificate {ci.describe()} is not self-issued")
    _check_signature(ci, ci, _named("CI certificate", ci))

    # 2. Profiles, 3. EID.
    for cert, cert_role in zip(chain, roles, strict=True):
        _check_profile(cert, cert_role)
    found_eid: str | None = None
    if role is CertificateRole.EUICC:
        found_eid = _check_eid(chain[0], chain[1], eid)

    # 4. Validity.
    for cert in chain:
        _check_validity(cert, now)

    # 5. Revocation.
    chain_tuple = tuple(chain)
    _check_crls(chain_tuple, parsed_crls, now)

    key, curve = leaf_cert.public_key, leaf_cert.curve
    assert key is not None  # checked by _check_profile
    assert curve is not None
    return ValidatedChain(role=role, chain=chain_tuple, public_key=key, curve=curve, eid=found_eid)
