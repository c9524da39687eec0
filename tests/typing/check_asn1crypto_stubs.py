"""Exercise the asn1crypto API the way rspfed uses it, for the local stubs.

``tests/test_stub_typing.py`` type-checks this module with ``mypy --strict``
(the ``assert_type`` calls pin what the stubs in ``stubs/asn1crypto`` declare)
and also runs :func:`exercise` so the declared types are checked against the
real runtime behaviour of asn1crypto.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any, assert_type

from asn1crypto import algos, core, crl, keys, parser, pem, util, x509

__all__ = ["exercise"]

CI_CERT = (
    Path(__file__).resolve().parent.parent
    / "data"
    / "sgp26-certs"
    / "CertificateIssuer"
    / "CERT_CI_ECDSA_NIST.der"
)
DP_KEY = (
    Path(__file__).resolve().parent.parent
    / "data"
    / "sgp26-certs"
    / "DPauth"
    / "SK_S_SM_DPauth_ECDSA_NIST.pem"
)


# --- schema classes as the generated code writes them -----------------------


class Status(core.Enumerated):
    _map: dict[int, str] = {0: "ok", 1: "error"}  # noqa: RUF012


class Flags(core.BitString):
    _map = {0: "a", 1: "b", 2: "c"}  # noqa: RUF012


class Oid(core.ObjectIdentifier):
    _map = {"2.999.1": "example"}  # noqa: RUF012


class Item(core.Sequence):
    _fields: list[tuple[str, type[core.Asn1Value], dict[str, Any]]] = [  # noqa: RUF012
        ("id", core.Integer, {"implicit": 0}),
        ("label", core.UTF8String, {"explicit": 1, "optional": True}),
        ("status", Status, {"implicit": ("context", 2), "default": "ok"}),
        ("data", core.OctetString, {}),
    ]


class Items(core.SequenceOf):
    _child_spec = Item


class ItemSet(core.SetOf):
    _child_spec: type[core.Asn1Value] = core.Integer


class Either(core.Choice):
    _alternatives = [  # noqa: RUF012
        ("number", core.Integer, {"implicit": 0}),
        ("text", core.UTF8String, {"implicit": 1}),
        ("items", Items, {"explicit": 2}),
    ]


class Tagged(core.OctetString):
    class_ = 1
    tag = 5


class Wrapped(core.Sequence):
    explicit = ((1, 7),)
    _fields = [("n", core.Integer, {})]  # noqa: RUF012


class Typed(core.Sequence):
    _fields = [  # noqa: RUF012
        ("kind", core.ObjectIdentifier, {}),
        ("value", core.Any, {"optional": True}),
    ]
    _oid_pair = ("kind", "value")
    _oid_specs = {"2.999.2": core.Integer}  # noqa: RUF012


def _value_spec(self: Typed2) -> type[core.Asn1Value]:
    return core.Integer if self["kind"].native == "1.2.3" else core.OctetString


class Typed2(core.Sequence):
    _fields = [  # noqa: RUF012
        ("kind", core.ObjectIdentifier, {}),
        ("value", core.Any, {}),
    ]
    _spec_callbacks = {"value": _value_spec}  # noqa: RUF012


class Typed3(core.Sequence):
    """Spec callback defined in the class body, as asn1crypto itself does it."""

    _fields = [  # noqa: RUF012
        ("kind", core.ObjectIdentifier, {}),
        ("value", core.Any, {}),
    ]

    def _value_spec(self) -> type[core.Asn1Value]:
        return core.Integer if self["kind"].native == "1.2.3" else core.OctetString

    _spec_callbacks = {"value": _value_spec}  # noqa: RUF012


class Pair(core.Concat):
    _child_specs = [core.Integer, core.OctetString]  # noqa: RUF012


# --- the exercise -----------------------------------------------------------


def _core() -> None:
    item = Item({"id": 5, "data": b"\x01\x02"})
    item["label"] = "hello"
    der = item.dump()
    assert_type(der, bytes)
    again = Item.load(der, strict=True)
    assert_type(again, Item)
    assert again.native["label"] == "hello"
    assert again["status"].native == "ok"
    assert int(again["id"]) == 5
    assert list(again) == ["id", "label", "status", "data"]
    assert len(again) == 4
    assert again.spec("data") is core.OctetString
    assert again.dump(force=True) == der
    assert_type(again.contents, bytes | None)
    assert again.contents is not None
    assert_type(again.children, list[Any] | None)
    assert again.children is not None
    again._parse_children(recurse=True)
    again._set_contents(force=True)
    assert again._lazy_child(0).native == 5
    assert again.copy().dump() == der
    assert again.untag().dump() == der
    retagged = again.retag({"implicit": 3})
    assert_type(retagged, Item)
    assert retagged.dump()[0] == 0xA3
    assert_type(again.class_, int)
    assert_type(again.tag, int)
    assert_type(again.method, int)
    assert again.explicit is None
    assert not again.implicit
    header = again._header
    assert_type(header, bytes | None)
    assert_type(again._trailer, bytes)
    fields = Item._fields
    assert fields[2][2]["default"] == "ok"
    made = again._make_value("data", core.OctetString, core.OctetString, {}, b"x")
    assert_type(made, core.Asn1Value)

    items = Items([item, {"id": 6, "data": b""}])
    items.append(Item({"id": 7, "data": b"z"}))
    assert len(items) == 3
    assert [child["id"].native for child in items] == [5, 6, 7]
    assert items.spec() is Item
    assert items[1]["id"].native == 6
    assert Items.load(items.dump()).native[2]["data"] == b"z"
    assert ItemSet([3, 1, 2]).dump() == ItemSet.load(ItemSet([1, 2, 3]).dump()).dump()

    choice = Either(name="text", value="hi")
    assert_type(choice.name, str)
    loaded = Either.load(choice.dump())
    assert loaded.name == "text"
    assert loaded.chosen.native == "hi"
    assert_type(loaded.parse(), Any)
    either_items = Either("items", Items([item]))
    assert Either.load(either_items.dump()).chosen[0]["id"].native == 5
    alternatives = Either._alternatives
    assert alternatives is not None
    assert alternatives[0][0] == "number"
    loaded.validate(2, 1, b"\x81\x02hi")

    tagged = Tagged(b"abc")
    assert tagged.dump() == b"\x45\x03abc"
    wrapped = Wrapped({"n": 1})
    assert wrapped.dump()[0] == 0x67
    assert Wrapped.load(wrapped.dump()).native == {"n": 1}
    integer = core.Integer(1, explicit=3)
    assert integer.dump() == b"\xa3\x03\x02\x01\x01"
    assert core.Integer(1, implicit=("application", 1)).dump() == b"\x41\x01\x01"

    typed = Typed.load(Typed({"kind": "2.999.2", "value": core.Integer(9)}).dump())
    assert typed["value"].native == 9
    typed2 = Typed2.load(Typed2({"kind": "1.2.3", "value": core.Integer(9)}).dump())
    assert isinstance(typed2["value"], core.Integer)
    typed3 = Typed3.load(Typed3({"kind": "1.2.4", "value": core.OctetString(b"o")}).dump())
    assert isinstance(typed3["value"], core.OctetString)

    flags = Flags({"a", "c"})
    assert flags["c"]
    assert_type(flags["b"], bool)
    assert Flags.load(flags.dump()).native == {"a", "c"}
    assert_type(flags.unused_bits, tuple[int, ...])
    assert Oid("example").dotted == "2.999.1"
    assert_type(Oid.map("2.999.1"), str)
    assert Oid.unmap("example") == "2.999.1"
    assert Status("error").native == "error"

    octets = core.OctetString(b"\x00\x01")
    assert bytes(octets) == b"\x00\x01"
    assert octets.cast(core.ParsableOctetString).native == b"\x00\x01"
    parsable = core.ParsableOctetString(core.Integer(4).dump())
    assert_type(parsable.parse(core.Integer), core.Integer)
    assert parsable.parsed.native == 4
    any_value = core.Any(core.Integer(3))
    assert_type(any_value.parse(core.Integer), core.Integer)
    assert any_value.parsed.native == 3
    assert core.load(b"\x02\x01\x05").native == 5
    assert_type(core.load(b"\x05\x00"), core.Asn1Value)
    assert core.Null().dump() == b"\x05\x00"
    assert core.Boolean(True).dump() == b"\x01\x01\xff"
    assert bool(core.Boolean(False)) is False
    assert str(core.IA5String("x")) == "x"
    assert core.BMPString("é").contents == b"\x00\xe9"
    assert core.IntegerOctetString(1).native == 1
    assert core.OctetBitString(b"\xff").native == b"\xff"
    assert core.IntegerBitString(5).native == 5
    assert isinstance(core.VOID, core.Void)
    when = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert core.GeneralizedTime(when).native == when
    assert core.UTCTime(when).native == when
    assert core.CLASS_NUM_TO_NAME_MAP[2] == "context"
    assert core.METHOD_NUM_TO_NAME_MAP[1] == "constructed"
    assert core.CLASS_NAME_TO_NUM_MAP["private"] == 3

    pair = Pair.load(b"\x02\x01\x05\x04\x00")
    assert_type(pair, Pair)
    assert len(pair) == 2
    assert pair[0].native == 5
    assert pair.dump() == b"\x02\x01\x05\x04\x00"


def _parser_util_pem() -> None:
    parts = parser.parse(b"\x02\x01\x05")
    assert_type(parts, tuple[int, int, int, bytes, bytes, bytes])
    assert parts[4] == b"\x05"
    assert parser.peek(b"\x02\x01\x05\x00") == 3
    assert parser.emit(0, 0, 2, b"\x05") == b"\x02\x01\x05"
    assert util.int_to_bytes(256) == b"\x01\x00"
    assert util.int_to_bytes(1, width=4) == b"\x00\x00\x00\x01"
    assert util.int_from_bytes(b"\xff", signed=True) == -1
    assert util.timezone.utc.utcoffset(None) is not None
    armored = pem.armor("CERTIFICATE", b"\x30\x00")
    assert pem.detect(armored)
    name, headers, der = pem.unarmor(armored)
    assert (name, headers, der) == ("CERTIFICATE", {}, b"\x30\x00")
    assert [d for _, _, d in pem.unarmor(armored + armored, multiple=True)] == [der, der]


def _x509() -> None:
    cert = x509.Certificate.load(CI_CERT.read_bytes())
    assert_type(cert, x509.Certificate)
    assert_type(cert.subject, x509.Name)
    assert_type(cert.issuer.human_friendly, str)
    assert cert.self_issued
    assert cert.self_signed == "maybe"
    assert_type(cert.serial_number, int)
    assert_type(cert.not_valid_before, datetime)
    assert cert.not_valid_after > cert.not_valid_before
    assert_type(cert.key_identifier, bytes | None)
    assert cert.key_identifier is not None
    assert cert.authority_key_identifier in (None, cert.key_identifier)
    key_usage = cert.key_usage_value
    assert key_usage is not None
    assert_type(key_usage, x509.KeyUsage)
    assert "key_cert_sign" in key_usage.native
    basic = cert.basic_constraints_value
    assert basic is not None
    assert basic["ca"].native is True
    assert cert.ca
    policies = cert.certificate_policies_value
    assert policies is not None
    assert_type(policies, x509.CertificatePolicies)
    for info in policies:
        assert isinstance(info, x509.PolicyInformation)
    assert_type(cert.name_constraints_value, x509.NameConstraints | None)
    assert_type(cert.subject_alt_name_value, x509.GeneralNames | None)
    assert_type(cert.crl_distribution_points, list[x509.DistributionPoint])
    assert_type(cert.public_key, keys.PublicKeyInfo)
    assert cert.public_key.algorithm == "ec"
    assert cert.public_key.curve == ("named", "secp256r1")
    assert cert.signature_algo == "ecdsa"
    assert cert.hash_algo == "sha256"
    assert_type(cert.signature, bytes)
    assert len(cert.sha256) == 32
    assert len(cert.sha1) == 20
    tbs = cert["tbs_certificate"]
    assert isinstance(tbs, x509.TbsCertificate)
    assert tbs["subject"] == cert.subject
    assert isinstance(tbs["validity"], x509.Validity)
    assert isinstance(tbs["validity"]["not_after"], x509.Time)
    extensions = tbs["extensions"]
    assert isinstance(extensions, x509.Extensions)
    assert {ext["extn_id"].native for ext in extensions} >= {"key_usage", "basic_constraints"}
    assert_type(cert["signature_algorithm"], Any)
    assert isinstance(cert["signature_algorithm"], algos.SignedDigestAlgorithm)
    assert "basic_constraints" in cert.critical_extensions

    name = x509.Name.build({"common_name": "Test CI", "organization_name": "rspfed"})
    assert_type(name, x509.Name)
    assert name.native["common_name"] == "Test CI"
    assert isinstance(name.chosen, x509.RDNSequence)
    assert_type(name.sha256, bytes)
    subtree = x509.GeneralSubtree({"base": x509.GeneralName("directory_name", name)})
    constraints = x509.NameConstraints({"permitted_subtrees": x509.GeneralSubtrees([subtree])})
    reloaded = x509.NameConstraints.load(constraints.dump())
    assert reloaded["permitted_subtrees"][0]["minimum"].native == 0
    aki = x509.AuthorityKeyIdentifier({"key_identifier": b"\x01" * 20})
    assert aki.native["key_identifier"] == b"\x01" * 20
    policy = x509.PolicyInformation({"policy_identifier": "2.23.146.1.2.1.0"})
    assert x509.CertificatePolicies([policy]).native[0]["policy_identifier"] == "2.23.146.1.2.1.0"
    usage = x509.KeyUsage({"digital_signature"})
    extension = x509.Extension({"extn_id": "key_usage", "critical": True, "extn_value": usage})
    assert_type(extension["extn_value"].parsed, Any)
    reparsed = x509.Extension.load(extension.dump())["extn_value"].parsed
    assert reparsed.native == {"digital_signature"}
    assert x509.BasicConstraints({"ca": True, "path_len_constraint": 0}).native["ca"] is True
    assert x509.Time(name="utc_time", value=datetime(2030, 1, 1, tzinfo=UTC)).native.year == 2030


def _keys() -> None:
    blocks = {kind: der for kind, _, der in pem.unarmor(DP_KEY.read_bytes(), multiple=True)}
    curve = keys.NamedCurve.load(blocks["EC PARAMETERS"])
    assert curve.native == "secp256r1"
    private = keys.ECPrivateKey.load(blocks["EC PRIVATE KEY"])
    assert_type(private, keys.ECPrivateKey)
    info = keys.PrivateKeyInfo.wrap(private, "ec")
    assert info.algorithm == "ec"
    assert info.curve == ("named", "secp256r1")
    assert isinstance(info["private_key"].parsed, keys.ECPrivateKey)
    assert_type(private["private_key"].native, Any)
    point = private["public_key"]
    assert isinstance(point, keys.ECPointBitString)
    x, y = point.to_coords()
    assert_type(x, int)
    assert keys.ECPointBitString.from_coords(x, y).to_coords() == (x, y)
    params = keys.ECDomainParameters(name="named", value="secp256r1")
    assert_type(params.key_size, int)
    assert params.key_size == 32
    assert keys.NamedCurve("secp256r1").dotted == "1.2.840.10045.3.1.7"
    spki = keys.PublicKeyInfo(
        {
            "algorithm": keys.PublicKeyAlgorithm({"algorithm": "ec", "parameters": params}),
            "public_key": point,
        }
    )
    assert keys.PublicKeyInfo.load(spki.dump()).curve == ("named", "secp256r1")
    assert_type(spki.bit_size, int)
    assert_type(spki.sha256, bytes)
    wrapped = keys.PrivateKeyInfo.wrap(
        keys.ECPrivateKey({"version": 1, "private_key": 1, "parameters": params}), "ec"
    )
    assert_type(wrapped, keys.PrivateKeyInfo)
    assert wrapped.curve == ("named", "secp256r1")
    signature = algos.DSASignature({"r": 1, "s": 2})
    assert algos.DSASignature.from_p1363(signature.to_p1363()).native == {"r": 1, "s": 2}
    digest = algos.DigestAlgorithm({"algorithm": "sha256"})
    assert digest["parameters"].native is None
    sda = algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"})
    assert_type(sda.hash_algo, str)
    assert sda.signature_algo == "ecdsa"


def _crl() -> None:
    cert = x509.Certificate.load(CI_CERT.read_bytes())
    when = datetime(2024, 1, 1, tzinfo=UTC)
    revoked = crl.RevokedCertificate(
        {
            "user_certificate": 42,
            "revocation_date": x509.Time(name="utc_time", value=when),
            "crl_entry_extensions": crl.CRLEntryExtensions(
                [crl.CRLEntryExtension({"extn_id": "crl_reason", "extn_value": "key_compromise"})]
            ),
        }
    )
    tbs = crl.TbsCertList(
        {
            "version": "v2",
            "signature": algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}),
            "issuer": cert.subject,
            "this_update": x509.Time(name="utc_time", value=when),
            "next_update": x509.Time(name="utc_time", value=when),
            "revoked_certificates": crl.RevokedCertificates([revoked]),
            "crl_extensions": crl.TBSCertListExtensions(
                [crl.TBSCertListExtension({"extn_id": "crl_number", "extn_value": 7})]
            ),
        }
    )
    cert_list = crl.CertificateList(
        {
            "tbs_cert_list": tbs,
            "signature_algorithm": algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}),
            "signature": b"\x30\x00",
        }
    )
    loaded = crl.CertificateList.load(cert_list.dump())
    assert_type(loaded.issuer, x509.Name)
    assert loaded.issuer == cert.subject
    number = loaded.crl_number_value
    assert_type(number, core.Integer | None)
    assert number is not None
    assert int(number) == 7
    assert_type(loaded.signature, bytes)
    assert_type(loaded.critical_extensions, set[str])
    entries = loaded["tbs_cert_list"]["revoked_certificates"]
    assert isinstance(entries, crl.RevokedCertificates)
    entry = entries[0]
    assert isinstance(entry, crl.RevokedCertificate)
    reason = entry.crl_reason_value
    assert_type(reason, crl.CRLReason | None)
    assert reason is not None
    assert reason.native == "key_compromise"
    assert_type(reason.human_friendly, str)
    assert entry["user_certificate"].native == 42
    assert entry.issuer_name is None


def exercise() -> None:
    """Run every sample; raises AssertionError on a runtime/stub mismatch."""
    _core()
    _parser_util_pem()
    _x509()
    _keys()
    _crl()


if __name__ == "__main__":
    exercise()
