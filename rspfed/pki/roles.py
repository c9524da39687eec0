"""Certificate roles of the SGP.22 RSP PKI (SGP.22 §4.5.2, SGP.14).

Every certificate of the RSP PKI carries exactly one *role* in its
``certificatePolicies`` extension: an object identifier under
``id-rspRole`` (``2.23.146.1.2.1``, SGP.22 ASN.1 module ``RSPDefinitions``).
The role fixes the rest of the certificate profile: the key usage, whether
the certificate is a CA, which role may issue it and which extended key
usage a TLS certificate must carry.

The hierarchy::

    CI (self-signed, id-rspRole-ci)
    ├── EUM (id-rspRole-eum, CA, pathLen 0, NameConstraints = EID range)
    │   └── eUICC (id-rspRole-euicc, subject serialNumber = EID)
    ├── SM-DP+ auth / pb / TLS (id-rspRole-dp-auth / -dp-pb / -dp-tls)
    └── SM-DS auth / TLS (id-rspRole-ds-auth / -ds-tls)
"""

from __future__ import annotations

import enum

import attrs
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

__all__ = [
    "ID_RSP_ROLE",
    "CertificateRole",
    "KeyUsageBit",
    "RoleProfile",
    "role_for_policy",
]

#: ``id-rspRole`` ::= {joint-iso-itu-t(2) international-organizations(23) gsma(146)
#: rsp(1) cert-objects(2) 1}
ID_RSP_ROLE = "2.23.146.1.2.1"


class KeyUsageBit(enum.Enum):
    """The RFC 5280 ``KeyUsage`` bits used by the RSP PKI (value = RFC 5280 name)."""

    DIGITAL_SIGNATURE = "digitalSignature"
    KEY_CERT_SIGN = "keyCertSign"
    CRL_SIGN = "cRLSign"

    def is_set(self, key_usage: x509.KeyUsage) -> bool:
        """Whether this bit is set in a parsed ``KeyUsage`` extension."""
        if self is KeyUsageBit.DIGITAL_SIGNATURE:
            return key_usage.digital_signature
        if self is KeyUsageBit.KEY_CERT_SIGN:
            return key_usage.key_cert_sign
        return key_usage.crl_sign


@attrs.frozen
class RoleProfile:
    """The certificate profile that goes with one role.

    ``key_usage``
        bits that SHALL be set (SGP.22 §4.5.2.1.0.x).  An end-entity
        certificate must not set ``keyCertSign`` or ``cRLSign``.
    ``is_ca``
        ``basicConstraints`` ``cA`` value the certificate must have.
    ``path_length``
        required ``pathLenConstraint`` for a CA (``None``: not constrained).
    ``issuers``
        roles allowed to sign this certificate (empty: self-signed trust anchor).
    ``extended_key_usage``
        ``extendedKeyUsage`` purposes that SHALL be present (TLS roles).
    ``requires_dns_name``
        the ``subjectAltName`` must carry at least one ``dNSName`` (TLS roles).
    """

    policy_oid: str
    spec_name: str
    key_usage: frozenset[KeyUsageBit]
    is_ca: bool
    path_length: int | None
    issuers: tuple[str, ...]
    extended_key_usage: frozenset[str] = frozenset()
    requires_dns_name: bool = False


_DS = frozenset({KeyUsageBit.DIGITAL_SIGNATURE})
_SERVER_AUTH = frozenset({ExtendedKeyUsageOID.SERVER_AUTH.dotted_string})


class CertificateRole(enum.Enum):
    """A role of the RSP PKI; ``value`` is a short name usable on the command line."""

    CI = "ci"
    EUICC = "euicc"
    EUM = "eum"
    DPTLS = "dp-tls"
    DPAUTH = "dp-auth"
    DPPB = "dp-pb"
    DSTLS = "ds-tls"
    DSAUTH = "ds-auth"

    @property
    def profile(self) -> RoleProfile:
        """The full certificate profile of this role."""
        return _PROFILES[self]

    @property
    def policy_oid(self) -> str:
        """The role's ``id-rspRole-*`` policy OID (dotted string)."""
        return _PROFILES[self].policy_oid

    @property
    def spec_name(self) -> str:
        """The ASN.1 name SGP.22 gives the role's OID, e.g. ``id-rspRole-dp-auth``."""
        return _PROFILES[self].spec_name

    @property
    def key_usage(self) -> frozenset[KeyUsageBit]:
        """Key usage bits a certificate of this role SHALL have."""
        return _PROFILES[self].key_usage

    @property
    def is_ca(self) -> bool:
        """Whether certificates of this role are CAs (``basicConstraints cA=TRUE``)."""
        return _PROFILES[self].is_ca

    @property
    def issuers(self) -> tuple[CertificateRole, ...]:
        """The roles allowed to issue a certificate of this role (empty for the CI)."""
        return tuple(CertificateRole(name) for name in _PROFILES[self].issuers)

    @property
    def is_tls(self) -> bool:
        """Whether this is a TLS server role (``extendedKeyUsage serverAuth``)."""
        return bool(_PROFILES[self].extended_key_usage)


_PROFILES: dict[CertificateRole, RoleProfile] = {
    CertificateRole.CI: RoleProfile(
        policy_oid=f"{ID_RSP_ROLE}.0",
        spec_name="id-rspRole-ci",
        key_usage=frozenset({KeyUsageBit.KEY_CERT_SIGN, KeyUsageBit.CRL_SIGN}),
        is_ca=True,
        path_length=None,
        issuers=(),
    ),
    CertificateRole.EUICC: RoleProfile(
        policy_oid=f"{ID_RSP_ROLE}.1",
        spec_name="id-rspRole-euicc",
        key_usage=_DS,
        is_ca=False,
        path_length=None,
        issuers=("eum",),
    ),
    CertificateRole.EUM: RoleProfile(
        policy_oid=f"{ID_RSP_ROLE}.2",
        spec_name="id-rspRole-eum",
        key_usage=frozenset({KeyUsageBit.KEY_CERT_SIGN}),
        is_ca=True,
        path_length=0,
        issuers=("ci",),
    ),
    CertificateRole.DPTLS: RoleProfile(
        policy_oid=f"{ID_RSP_ROLE}.3",
        spec_name="id-rspRole-dp-tls",
        key_usage=_DS,
        is_ca=False,
        path_length=None,
        issuers=("ci",),
        extended_key_usage=_SERVER_AUTH,
        requires_dns_name=True,
    ),
    CertificateRole.DPAUTH: RoleProfile(
        policy_oid=f"{ID_RSP_ROLE}.4",
        spec_name="id-rspRole-dp-auth",
        key_usage=_DS,
        is_ca=False,
        path_length=None,
        issuers=("ci",),
    ),
    CertificateRole.DPPB: RoleProfile(
        policy_oid=f"{ID_RSP_ROLE}.5",
        spec_name="id-rspRole-dp-pb",
        key_usage=_DS,
        is_ca=False,
        path_length=None,
        issuers=("ci",),
    ),
    CertificateRole.DSTLS: RoleProfile(
        policy_oid=f"{ID_RSP_ROLE}.6",
        spec_name="id-rspRole-ds-tls",
        key_usage=_DS,
        is_ca=False,
        path_length=None,
        issuers=("ci",),
        extended_key_usage=_SERVER_AUTH,
        requires_dns_name=True,
    ),
    CertificateRole.DSAUTH: RoleProfile(
        policy_oid=f"{ID_RSP_ROLE}.7",
        spec_name="id-rspRole-ds-auth",
        key_usage=_DS,
        is_ca=False,
        path_length=None,
        issuers=("ci",),
    ),
}

_BY_OID = {profile.policy_oid: role for role, profile in _PROFILES.items()}


def role_for_policy(policy_oid: str) -> CertificateRole | None:
    """The role whose ``id-rspRole-*`` OID is ``policy_oid`` (``None`` if not a role OID)."""
    return _BY_OID.get(policy_oid)
