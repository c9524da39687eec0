"""Shared material for the es8p tests: sessions from seeded randomness, a reference unbinder.

``reference_unbind`` is written directly on ``cryptography`` primitives and a TLV walk of
its own (nothing from rspfed's crypto or es8p): ECDH, X9.63 KDF with SharedInfo
``'88' '10' hostID-LV EID-LV``, per segment AES-CMAC over ``MCV || tag || length || body``
truncated to 8 octets, AES-CBC with ICV = AES(S-ENC, counter), ``80 00..`` padding (SGP.22
§2.6.4 / Annex G, GlobalPlatform SCP03).
"""

from __future__ import annotations

import random
from collections.abc import Callable

import attrs
from cryptography.hazmat.primitives import cmac, hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.x963kdf import X963KDF

from rspfed import es8p
from rspfed.crypto import ecka
from rspfed.crypto.curves import Curve
from rspfed.errors import StateError
from tests.paths import TS48

PACKAGES = sorted(TS48.glob("*.der"))
PACKAGE = (TS48 / "TS48v2_SAIP2.3_BERTLV.der").read_bytes()
ICCID = bytes.fromhex("98001032547698103214")


def seeded(seed: int) -> Callable[[int], bytes]:
    return random.Random(seed).randbytes


@attrs.define
class Session:
    curve: Curve
    eid: bytes
    transaction_id: bytes
    host_id: bytes
    dp_pb: ec.EllipticCurvePrivateKey
    euicc_ot: ec.EllipticCurvePrivateKey
    smdp_ot: ec.EllipticCurvePrivateKey
    euicc_key: ec.EllipticCurvePrivateKey

    @classmethod
    def make(cls, curve: Curve, seed: int = 1) -> Session:
        rand = seeded(seed)
        return cls(
            curve=curve,
            eid=bytes.fromhex("89049032123451234512345678901235"),
            transaction_id=rand(16),
            host_id=b"rspfed-host",
            dp_pb=ecka.generate_key_pair(curve, rand),
            euicc_ot=ecka.generate_key_pair(curve, rand),
            smdp_ot=ecka.generate_key_pair(curve, rand),
            euicc_key=ecka.generate_key_pair(curve, rand),
        )

    @property
    def euicc_otpk(self) -> bytes:
        return self.euicc_ot.public_key().public_bytes(
            serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
        )

    def build(
        self,
        package: bytes | es8p.ProtectedProfilePackage = PACKAGE,
        metadata: bytes | None = None,
        **overrides: object,
    ) -> bytes:
        args: dict[str, object] = {
            "transaction_id": self.transaction_id,
            "euicc_otpk": self.euicc_otpk,
            "smdp_ot_key": self.smdp_ot,
            "dp_pb_key": self.dp_pb,
            "eid": self.eid,
            "host_id": self.host_id,
            "metadata": metadata
            or es8p.store_metadata_request(ICCID, "rspfed SP", "TS.48 test", profile_class="test"),
            "profile": package,
        }
        args.update(overrides)
        return es8p.build_bound_profile_package(**args)  # type: ignore[arg-type]

    def unbinder(self, **overrides: object) -> es8p.BppUnbinder:
        args: dict[str, object] = {
            "euicc_ot_key": self.euicc_ot,
            "smdp_public_key": self.dp_pb.public_key(),
            "transaction_id": self.transaction_id,
            "eid": self.eid,
        }
        args.update(overrides)
        return es8p.BppUnbinder(**args)  # type: ignore[arg-type]


@attrs.define
class Outcome:
    events: list[es8p.BppEvent]
    error: es8p.BppError | None
    failed_block: int | None
    later_state_errors: int


def run(unbinder: es8p.BppUnbinder, blocks: list[bytes]) -> Outcome:
    """Feed every block; after an error keep feeding and count the StateErrors."""
    events: list[es8p.BppEvent] = []
    error = None
    failed_at = None
    state_errors = 0
    for i, block in enumerate(blocks):
        if error is None:
            try:
                events.extend(unbinder.feed(block))
            except es8p.BppError as exc:
                error, failed_at = exc, i
        else:
            try:
                unbinder.feed(block)
            except StateError:
                state_errors += 1
    return Outcome(events, error, failed_at, state_errors)


# ---------------------------------------------------------------------------
# Reference (independent) unbinding


def _tlvs(data: bytes) -> list[tuple[int, bytes, bytes]]:
    """Walk concatenated TLVs: (tag as int, header octets, value)."""
    out = []
    pos = 0
    while pos < len(data):
        start = pos
        tag = data[pos]
        pos += 1
        if tag & 0x1F == 0x1F:
            tag = (tag << 8) | data[pos]
            pos += 1
        first = data[pos]
        pos += 1
        if first & 0x80:
            n = first & 0x7F
            length = int.from_bytes(data[pos : pos + n], "big")
            pos += n
        else:
            length = first
        out.append((tag, data[start:pos], data[pos : pos + length]))
        pos += length
    return out


@attrs.define
class _Chain:
    mcv: bytes
    s_enc: bytes
    s_mac: bytes
    counter: int = 1


def reference_unbind(
    bpp: bytes, euicc_ot: ec.EllipticCurvePrivateKey, eid: bytes
) -> dict[str, bytes]:
    [(outer_tag, _, body)] = _tlvs(bpp)
    assert outer_tag == 0xBF36
    parts = {tag: value for tag, _, value in _tlvs(body)}
    isc = {tag: value for tag, _, value in _tlvs(parts[0xBF23])}
    crt = {tag: value for tag, _, value in _tlvs(isc[0xA6])}
    host_id = crt[0x84]
    peer = ec.EllipticCurvePublicKey.from_encoded_point(euicc_ot.curve, isc[0x5F49])
    shs = euicc_ot.exchange(ec.ECDH(), peer)
    info = b"\x88\x10" + bytes([len(host_id)]) + host_id + bytes([len(eid)]) + eid
    km = X963KDF(hashes.SHA256(), 48, info).derive(shs)
    chain = _Chain(km[:16], km[16:32], km[32:48])

    def segment(tag: int, header: bytes, value: bytes, encrypted: bool) -> bytes:
        body, mac = value[:-8], value[-8:]
        c = cmac.CMAC(algorithms.AES(chain.s_mac))
        c.update(chain.mcv + header + body)
        full = c.finalize()
        assert full[:8] == mac, "reference: C-MAC mismatch"
        chain.mcv = full
        counter = chain.counter
        chain.counter += 1
        if not encrypted:
            return body
        key = algorithms.AES(chain.s_enc)
        icv = Cipher(key, modes.ECB()).encryptor().update(counter.to_bytes(16, "big"))
        dec = Cipher(key, modes.CBC(icv)).decryptor()
        padded = dec.update(body) + dec.finalize()
        stripped = padded.rstrip(b"\x00")
        assert stripped.endswith(b"\x80")
        return stripped[:-1]

    out: dict[str, bytes] = {}
    out["configure"] = b"".join(segment(t, h, v, True) for t, h, v in _tlvs(parts[0xA0]))
    out["metadata"] = b"".join(segment(t, h, v, False) for t, h, v in _tlvs(parts[0xA1]))
    if 0xA2 in parts:
        rsk = b"".join(segment(t, h, v, True) for t, h, v in _tlvs(parts[0xA2]))
        out["rsk"] = rsk
        [(_, _, rsk_body)] = _tlvs(rsk)
        fields = {t: v for t, _, v in _tlvs(rsk_body)}
        chain = _Chain(fields[0x80], fields[0x81], fields[0x82])
    out["profile"] = b"".join(segment(t, h, v, True) for t, h, v in _tlvs(parts[0xA3]))
    return out
