"""Chains built with the pure test-PKI builders: eUICC/EUM/CI, SM-DP+, CRLs, profile rules."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from rspfed.crypto.ecka import generate_key_pair
from rspfed.errors import (
    CertificateExpiredError,
    CertificateRevokedError,
    CertificateRoleError,
    UntrustedCertificateError,
    UsageError,
)
from rspfed.pki import CertificateRole, ValidatedChain, verify_chain
from rspfed.pki.eid import generate_eid
from rspfed.pki.testpki import (
    UNLIMITED_VALIDITY,
    build_crl,
    build_euicc_certificate,
    build_smdp_certificate,
)
from tests.pki.conftest import NOW, MemoryPki, counter_rand, make_memory_pki

EID1 = "89049032123451234512345678901235"


def euicc_cert(pki: MemoryPki, eid: str = EID1, serial: int = 77) -> x509.Certificate:
    key = generate_key_pair(pki.curve, counter_rand(f"euicc-{eid}"))
    return build_euicc_certificate(
        pki.eum,
        pki.eum_key,
        key.public_key(),
        eid=eid,
        serial=serial,
        not_before=NOW - timedelta(days=1),
    )


def smdp_cert(
    pki: MemoryPki, role: CertificateRole, *, serial: int = 99, days: int = 365
) -> x509.Certificate:
    key = generate_key_pair(pki.curve, counter_rand(f"smdp-{role.value}"))
    return build_smdp_certificate(
        pki.ci,
        pki.ci_key,
        key.public_key(),
        role=role,
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smdp.example")]),
        serial=serial,
        not_before=NOW - timedelta(days=1),
        not_after=NOW + timedelta(days=days),
        dns_names=["smdp.example"] if role.is_tls else (),
        registered_id="2.999.10",
    )


def verify_euicc(pki: MemoryPki, cert: x509.Certificate, **kwargs: Any) -> ValidatedChain:
    args: dict[str, Any] = {
        "role": CertificateRole.EUICC,
        "trust_anchors": [pki.ci],
        "intermediates": [pki.eum],
        "now": NOW,
    }
    args.update(kwargs)
    return verify_chain(cert, **args)


def test_euicc_chain_is_valid(mem_pki: MemoryPki) -> None:
    cert = euicc_cert(mem_pki)
    assert cert.not_valid_after_utc == UNLIMITED_VALIDITY
    result = verify_chain(
        cert,
        role=CertificateRole.EUICC,
        trust_anchors=[mem_pki.ci],
        intermediates=[mem_pki.eum],
        crls=[mem_pki.crl("ci"), mem_pki.crl("eum")],
        now=NOW,
        eid=EID1,
    )
    assert result.eid == EID1
    assert result.curve is mem_pki.curve
    assert [c.role for c in result.chain] == [
        CertificateRole.EUICC,
        CertificateRole.EUM,
        CertificateRole.CI,
    ]
    # "Unlimited" validity: still valid far in the future (while EUM and CI are).
    verify_euicc(mem_pki, cert, now=NOW + timedelta(days=2000))


@pytest.mark.parametrize(
    "role",
    [
        CertificateRole.DPAUTH,
        CertificateRole.DPPB,
        CertificateRole.DPTLS,
        CertificateRole.DSAUTH,
        CertificateRole.DSTLS,
    ],
)
def test_server_chains_are_valid(mem_pki: MemoryPki, role: CertificateRole) -> None:
    result = verify_chain(smdp_cert(mem_pki, role), role=role, trust_anchors=[mem_pki.ci], now=NOW)
    assert result.role is role
    assert result.chain[-1].certificate == mem_pki.ci


def test_eid_outside_the_eum_range_is_untrusted(mem_pki: MemoryPki) -> None:
    outside = generate_eid("89049033", counter_rand("outside"))
    with pytest.raises(UntrustedCertificateError, match="outside the EUM's permitted range"):
        verify_euicc(mem_pki, euicc_cert(mem_pki, outside))


def test_eid_must_match_the_expected_one(mem_pki: MemoryPki) -> None:
    other = generate_eid("89049032", counter_rand("other"))
    with pytest.raises(CertificateRoleError, match="expected"):
        verify_euicc(mem_pki, euicc_cert(mem_pki), eid=other)


def test_eid_with_bad_check_digits_is_rejected(mem_pki: MemoryPki) -> None:
    key = generate_key_pair(mem_pki.curve, counter_rand("bad-eid"))
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, mem_pki.organisation),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, EID1[:-1] + "6"),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(mem_pki.eum.subject)
        .public_key(key.public_key())
        .serial_number(5)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(UNLIMITED_VALIDITY)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(mem_pki.eum_key.public_key()),
            False,
        )
        .add_extension(
            x509.CertificatePolicies(
                [x509.PolicyInformation(x509.ObjectIdentifier("2.23.146.1.2.1.1"), None)]
            ),
            True,
        )
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False), True
        )
        .sign(mem_pki.eum_key, hashes.SHA256())
    )
    with pytest.raises(CertificateRoleError, match="not a valid EID"):
        verify_euicc(mem_pki, cert)


def test_euicc_without_its_eum_is_untrusted(mem_pki: MemoryPki) -> None:
    with pytest.raises(UntrustedCertificateError, match="not supplied"):
        verify_euicc(mem_pki, euicc_cert(mem_pki), intermediates=[])


def test_eum_of_another_ci_is_untrusted(mem_pki: MemoryPki) -> None:
    other = make_memory_pki(mem_pki.curve, f"other-{mem_pki.curve.value}")
    cert = euicc_cert(other)
    with pytest.raises(UntrustedCertificateError, match="unknown CI key id"):
        verify_euicc(mem_pki, cert, intermediates=[other.eum])


def test_eum_presented_as_dp_auth_is_a_role_error(mem_pki: MemoryPki) -> None:
    with pytest.raises(CertificateRoleError, match="has role id-rspRole-eum"):
        verify_chain(mem_pki.eum, role=CertificateRole.DPAUTH, trust_anchors=[mem_pki.ci], now=NOW)


def test_eum_validates_as_eum(mem_pki: MemoryPki) -> None:
    result = verify_chain(
        mem_pki.eum, role=CertificateRole.EUM, trust_anchors=[mem_pki.ci], now=NOW
    )
    assert result.role is CertificateRole.EUM


# ---- revocation


def test_revoked_smdp_certificate(mem_pki: MemoryPki) -> None:
    cert = smdp_cert(mem_pki, CertificateRole.DPAUTH, serial=1234)
    crl = mem_pki.crl("ci", ((1234, NOW - timedelta(hours=1)),))
    with pytest.raises(CertificateRevokedError, match="0x4d2 was revoked"):
        verify_chain(
            cert, role=CertificateRole.DPAUTH, trust_anchors=[mem_pki.ci], crls=[crl], now=NOW
        )
    # Other serials on the CRL do not matter.
    verify_chain(
        smdp_cert(mem_pki, CertificateRole.DPAUTH, serial=1235),
        role=CertificateRole.DPAUTH,
        trust_anchors=[mem_pki.ci],
        crls=[crl],
        now=NOW,
    )


def test_revoked_eum_revokes_its_euiccs(mem_pki: MemoryPki) -> None:
    crl = mem_pki.crl("ci", ((mem_pki.eum.serial_number, NOW - timedelta(days=1)),))
    with pytest.raises(CertificateRevokedError):
        verify_euicc(mem_pki, euicc_cert(mem_pki), crls=[crl])


def test_revoked_euicc_on_the_eum_crl(mem_pki: MemoryPki) -> None:
    crl = mem_pki.crl("eum", ((77, NOW - timedelta(days=1)),))
    with pytest.raises(CertificateRevokedError):
        verify_euicc(mem_pki, euicc_cert(mem_pki, serial=77), crls=[crl])


def test_stale_crl_is_rejected(mem_pki: MemoryPki) -> None:
    crl = mem_pki.crl("ci", at=NOW - timedelta(days=800))
    with pytest.raises(CertificateExpiredError, match="out of date"):
        verify_chain(
            smdp_cert(mem_pki, CertificateRole.DPPB),
            role=CertificateRole.DPPB,
            trust_anchors=[mem_pki.ci],
            crls=[crl],
            now=NOW,
        )


def test_future_crl_is_rejected(mem_pki: MemoryPki) -> None:
    crl = mem_pki.crl("ci", at=NOW + timedelta(days=30))
    with pytest.raises(CertificateExpiredError, match="not valid before"):
        verify_chain(
            smdp_cert(mem_pki, CertificateRole.DPPB),
            role=CertificateRole.DPPB,
            trust_anchors=[mem_pki.ci],
            crls=[crl],
            now=NOW,
        )


def test_forged_crl_is_untrusted(mem_pki: MemoryPki) -> None:
    forger = make_memory_pki(mem_pki.curve, f"forger-{mem_pki.curve.value}")
    crl = build_crl(
        mem_pki.ci,  # names the real CI and carries its key id ...
        forger.ci_key,  # ... but is signed by another key
        revoked=(),
        crl_number=9,
        this_update=NOW - timedelta(days=1),
        next_update=NOW + timedelta(days=1),
    )
    with pytest.raises(UntrustedCertificateError, match=r"CRL .* does not verify"):
        verify_chain(
            smdp_cert(mem_pki, CertificateRole.DPAUTH),
            role=CertificateRole.DPAUTH,
            trust_anchors=[mem_pki.ci],
            crls=[crl],
            now=NOW,
        )


def test_crl_of_an_unrelated_issuer_is_ignored(mem_pki: MemoryPki) -> None:
    other = make_memory_pki(mem_pki.curve, f"unrelated-{mem_pki.curve.value}")
    crl = other.crl("ci", ((99, NOW - timedelta(days=1)),))
    verify_chain(
        smdp_cert(mem_pki, CertificateRole.DPAUTH, serial=99),
        role=CertificateRole.DPAUTH,
        trust_anchors=[mem_pki.ci],
        crls=[crl],
        now=NOW,
    )


# ---- profile rules


def _signed(
    pki: MemoryPki,
    *,
    policy: str | None = "2.23.146.1.2.1.4",
    key_usage: x509.KeyUsage | None = None,
    basic: x509.BasicConstraints | None = None,
    extra: x509.ExtensionType | None = None,
    extra_critical: bool = False,
    aki: bool = True,
) -> x509.Certificate:
    key = generate_key_pair(pki.curve, counter_rand("profile"))
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "odd")]))
        .issuer_name(pki.ci.subject)
        .public_key(key.public_key())
        .serial_number(3)
        .not_valid_before(NOW - timedelta(days=1))
        .not_valid_after(NOW + timedelta(days=1))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
    )
    if aki:
        builder = builder.add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(pki.ci_key.public_key()), False
        )
    if policy is not None:
        builder = builder.add_extension(
            x509.CertificatePolicies([x509.PolicyInformation(x509.ObjectIdentifier(policy), None)]),
            True,
        )
    if key_usage is not None:
        builder = builder.add_extension(key_usage, True)
    if basic is not None:
        builder = builder.add_extension(basic, True)
    if extra is not None:
        builder = builder.add_extension(extra, extra_critical)
    return builder.sign(pki.ci_key, hashes.SHA256())


DS = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
DS_CERT_SIGN = x509.KeyUsage(True, False, False, False, False, True, True, False, False)
KEY_AGREEMENT = x509.KeyUsage(False, False, False, False, True, False, False, False, False)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"key_usage": DS}, None, None),
        ({"policy": None, "key_usage": DS}, CertificateRoleError, "lacks the certificate policy"),
        ({"policy": "1.2.3.4", "key_usage": DS}, CertificateRoleError, "lacks the certificate"),
        ({}, CertificateRoleError, "no KeyUsage"),
        ({"key_usage": KEY_AGREEMENT}, CertificateRoleError, "lacks digitalSignature"),
        ({"key_usage": DS_CERT_SIGN}, CertificateRoleError, "end-entity key usage"),
        (
            {"key_usage": DS, "basic": x509.BasicConstraints(ca=True, path_length=None)},
            CertificateRoleError,
            "is a CA",
        ),
        (
            {
                "key_usage": DS,
                "extra": x509.OCSPNoCheck(),
                "extra_critical": True,
            },
            CertificateRoleError,
            "unknown critical extension",
        ),
        (
            {"key_usage": DS, "extra": x509.OCSPNoCheck(), "extra_critical": False},
            None,
            None,
        ),
        ({"key_usage": DS, "aki": False}, UntrustedCertificateError, "no AuthorityKeyIdentifier"),
    ],
)
def test_dp_auth_profile_rules(
    mem_pki: MemoryPki,
    kwargs: dict[str, Any],
    error: type[Exception] | None,
    match: str | None,
) -> None:
    cert = _signed(mem_pki, **kwargs)
    if error is None:
        verify_chain(cert, role=CertificateRole.DPAUTH, trust_anchors=[mem_pki.ci], now=NOW)
        return
    with pytest.raises(error, match=match):
        verify_chain(cert, role=CertificateRole.DPAUTH, trust_anchors=[mem_pki.ci], now=NOW)


def test_tls_needs_server_auth_and_a_dns_name(mem_pki: MemoryPki) -> None:
    no_eku = _signed(mem_pki, policy="2.23.146.1.2.1.3", key_usage=DS)
    with pytest.raises(CertificateRoleError, match="extendedKeyUsage lacks serverAuth"):
        verify_chain(no_eku, role=CertificateRole.DPTLS, trust_anchors=[mem_pki.ci], now=NOW)
    no_dns = _signed(
        mem_pki,
        policy="2.23.146.1.2.1.3",
        key_usage=DS,
        extra=x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]),
    )
    with pytest.raises(CertificateRoleError, match="no dNSName"):
        verify_chain(no_dns, role=CertificateRole.DPTLS, trust_anchors=[mem_pki.ci], now=NOW)


def test_builders_refuse_bad_arguments(mem_pki: MemoryPki) -> None:
    key = generate_key_pair(mem_pki.curve, counter_rand("x")).public_key()
    with pytest.raises(UsageError):
        build_euicc_certificate(
            mem_pki.eum, mem_pki.eum_key, key, eid="1234", serial=1, not_before=NOW
        )
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])
    with pytest.raises(UsageError, match="DNS name"):
        build_smdp_certificate(
            mem_pki.ci,
            mem_pki.ci_key,
            key,
            role=CertificateRole.DPTLS,
            subject=name,
            serial=1,
            not_before=NOW,
            not_after=NOW,
        )
    with pytest.raises(UsageError, match="not an SM-DP"):
        build_smdp_certificate(
            mem_pki.ci,
            mem_pki.ci_key,
            key,
            role=CertificateRole.EUM,
            subject=name,
            serial=1,
            not_before=NOW,
            not_after=NOW,
        )


def _eum_variant(pki: MemoryPki, constraints: x509.NameConstraints | None) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(pki.eum.subject)
        .issuer_name(pki.ci.subject)
        .public_key(pki.eum_key.public_key())
        .serial_number(4242)
        .not_valid_before(pki.eum.not_valid_before_utc)
        .not_valid_after(pki.eum.not_valid_after_utc)
    )
    for ext in pki.eum.extensions:
        if not isinstance(ext.value, x509.NameConstraints):
            builder = builder.add_extension(ext.value, ext.critical)
    if constraints is not None:
        builder = builder.add_extension(constraints, True)
    return builder.sign(pki.ci_key, hashes.SHA256())


def test_eum_without_name_constraints_is_a_role_error(mem_pki: MemoryPki) -> None:
    eum = _eum_variant(mem_pki, None)
    with pytest.raises(CertificateRoleError, match="has no NameConstraints"):
        verify_euicc(mem_pki, euicc_cert(mem_pki), intermediates=[eum])


def test_excluded_subtree_is_honoured(mem_pki: MemoryPki) -> None:
    def dn(serial: str) -> x509.DirectoryName:
        return x509.DirectoryName(
            x509.Name(
                [
                    x509.NameAttribute(NameOID.ORGANIZATION_NAME, mem_pki.organisation),
                    x509.NameAttribute(NameOID.SERIAL_NUMBER, serial),
                ]
            )
        )

    eum = _eum_variant(
        mem_pki,
        x509.NameConstraints(permitted_subtrees=[dn("8904")], excluded_subtrees=[dn("890490321")]),
    )
    with pytest.raises(UntrustedCertificateError, match="excluded subtree"):
        verify_euicc(mem_pki, euicc_cert(mem_pki), intermediates=[eum])
    inside = generate_eid("890490329", counter_rand("inside"))
    verify_euicc(mem_pki, euicc_cert(mem_pki, inside), intermediates=[eum])


def test_organisation_must_match_the_constraint(mem_pki: MemoryPki) -> None:
    other_org = x509.DirectoryName(
        x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Another EUM"),
                x509.NameAttribute(NameOID.SERIAL_NUMBER, mem_pki.ein),
            ]
        )
    )
    eum = _eum_variant(
        mem_pki, x509.NameConstraints(permitted_subtrees=[other_org], excluded_subtrees=None)
    )
    with pytest.raises(UntrustedCertificateError, match="outside the EUM's permitted range"):
        verify_euicc(mem_pki, euicc_cert(mem_pki), intermediates=[eum])


def test_eid_argument_only_for_euicc(mem_pki: MemoryPki) -> None:
    with pytest.raises(UsageError, match="eUICC"):
        verify_chain(
            smdp_cert(mem_pki, CertificateRole.DPAUTH),
            role=CertificateRole.DPAUTH,
            trust_anchors=[mem_pki.ci],
            now=NOW,
            eid=EID1,
        )
