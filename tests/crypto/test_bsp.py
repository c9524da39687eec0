"""BSP (SCP03t) segment protection.

Published data: the pySim ``BSP_Test_mode51`` vectors (``data/bsp-pysim-mode51.json``, from a
third-party SM-DP+ trace): ConfigureISDP (87, encrypted), StoreMetadata (88, MAC only),
ReplaceSessionKeys (87), then two maximal 1020-octet profile element segments (86) under the
PPKs.  Everything else is checked against a direct composition of ``cryptography``
primitives written out in this file, and by properties (round trip, tampering, reordering).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from cryptography.hazmat.primitives import cmac
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from rspfed.crypto import (
    MAX_ENCRYPTED_DATA_SIZE,
    MAX_MAC_ONLY_DATA_SIZE,
    MAX_SEGMENT_SIZE,
    BspDecryptor,
    BspEncryptor,
    SessionKeys,
)
from rspfed.errors import (
    DecodeError,
    IntegrityError,
    ProtocolError,
    RemoteError,
    StateError,
    UsageError,
)
from tests.paths import REPO

h = bytes.fromhex
VECTORS: dict[str, Any] = json.loads(
    (REPO / "tests" / "crypto" / "data" / "bsp-pysim-mode51.json").read_text()
)
SK = VECTORS["session_keys"]
SESSION = SessionKeys(h(SK["initial_mcv"]), h(SK["s_enc"]), h(SK["s_mac"]))
PP = VECTORS["ppk"]
PPK = SessionKeys.from_replace_session_keys(
    h(PP["initial_mcv"]), h(PP["ppk_enc"]), h(PP["ppk_mac"])
)


def test_published_segments_protect() -> None:
    enc = BspEncryptor(SESSION)
    for v in VECTORS["session_segments"]:
        one = enc.protect if v["mode"] == "encrypt" else enc.protect_mac_only
        assert one(int(v["tag"], 16), h(v["data"])) == h(v["segment"])
    enc.replace_session_keys(PPK)
    assert enc.block_counter == 1
    for v in VECTORS["ppk_segments"]:
        segment = enc.protect(int(v["tag"], 16), h(v["data"]))
        assert segment == h(v["segment"])
        assert len(segment) == MAX_SEGMENT_SIZE
        assert len(h(v["data"])) == MAX_ENCRYPTED_DATA_SIZE


def test_published_segments_unprotect() -> None:
    dec = BspDecryptor(SESSION)
    plain = []
    for v in VECTORS["session_segments"]:
        one = dec.unprotect if v["mode"] == "encrypt" else dec.unprotect_mac_only
        plain.append(one(h(v["segment"]), tag=int(v["tag"], 16)))
        assert plain[-1] == h(v["data"])
    # The third segment is ReplaceSessionKeysRequest ('BF26': 80 initialMacChainingValue,
    # 81 ppkEnc, 82 ppkCmac); the trace goes on under exactly those keys.
    rsk = plain[2]
    assert rsk[:3] == h("bf2636")
    assert (rsk[3:5], rsk[21:23], rsk[39:41]) == (h("8010"), h("8110"), h("8210"))
    assert SessionKeys.from_replace_session_keys(rsk[5:21], rsk[23:39], rsk[41:57]) == PPK
    dec.replace_session_keys(PPK)
    for v in VECTORS["ppk_segments"]:
        assert dec.unprotect(h(v["segment"]), tag=0x86) == h(v["data"])


# --------------------------------------------------------------------------
# An independent formulation, written straight from SGP.22 §2.6.4.


class Reference:
    def __init__(self, keys: SessionKeys) -> None:
        self.keys = keys
        self.counter = 1
        self.mcv = keys.initial_mac_chaining_value

    def icv(self) -> bytes:
        # AES-CBC with a zero IV over one block is the block cipher itself.
        c = Cipher(algorithms.AES(self.keys.s_enc), modes.CBC(bytes(16))).encryptor()
        out = c.update(self.counter.to_bytes(16, "big")) + c.finalize()
        self.counter += 1
        return out

    def segment(self, tag: int, data: bytes, encrypt: bool) -> bytes:
        if encrypt:
            padded = data + b"\x80"
            while len(padded) % 16:
                padded += b"\x00"
            c = Cipher(algorithms.AES(self.keys.s_enc), modes.CBC(self.icv())).encryptor()
            body = c.update(padded) + c.finalize()
        else:
            self.counter += 1
            body = data
        n = len(body) + 8
        if n < 128:
            length = bytes([n])
        elif n < 256:
            length = bytes([0x81, n])
        else:
            length = b"\x82" + n.to_bytes(2, "big")
        m = cmac.CMAC(algorithms.AES(self.keys.s_mac))
        m.update(self.mcv + bytes([tag]) + length + body)
        full = m.finalize()
        self.mcv = full
        return bytes([tag]) + length + body + full[:8]


# A plan is a list of steps: (tag, data, encrypt) or None for ReplaceSessionKeys.
Step = tuple[int, bytes, bool] | None

steps = st.one_of(
    st.tuples(st.just(0x87), st.binary(max_size=300), st.just(True)),
    st.tuples(st.just(0x88), st.binary(max_size=300), st.just(False)),
    st.tuples(st.just(0x86), st.binary(max_size=MAX_ENCRYPTED_DATA_SIZE), st.just(True)),
    st.none(),
)
plans = st.lists(steps, min_size=1, max_size=8)


def run_plan(plan: list[Step]) -> list[tuple[int, bytes, bool, bytes]]:
    enc = BspEncryptor(SESSION)
    out = []
    for step in plan:
        if step is None:
            enc.replace_session_keys(PPK)
            continue
        tag, data, encrypt = step
        seg = enc.protect(tag, data) if encrypt else enc.protect_mac_only(tag, data)
        out.append((tag, data, encrypt, seg))
    return out


def replay(plan: list[Step], segments: list[bytes]) -> list[bytes]:
    """Unprotect ``segments`` following the shape of ``plan``; the plaintexts."""
    dec = BspDecryptor(SESSION)
    it = iter(segments)
    out = []
    for step in plan:
        if step is None:
            dec.replace_session_keys(PPK)
            continue
        tag, _, encrypt = step
        seg = next(it)
        out.append(
            dec.unprotect(seg, tag=tag) if encrypt else dec.unprotect_mac_only(seg, tag=tag)
        )
    return out


@given(plans)
def test_matches_reference_and_round_trips(plan: list[Step]) -> None:
    ref = Reference(SESSION)
    produced = run_plan(plan)
    it = iter(produced)
    for step in plan:
        if step is None:
            ref = Reference(PPK)
            continue
        tag, data, encrypt, seg = next(it)
        assert seg == ref.segment(tag, data, encrypt)
        assert len(seg) <= MAX_SEGMENT_SIZE
    assert replay(plan, [p[3] for p in produced]) == [p[1] for p in produced]


@settings(max_examples=60)
@given(plans.filter(lambda p: any(s is not None for s in p)), st.data())
def test_any_single_bit_flip_is_rejected_and_poisons(plan: list[Step], data: st.DataObject) -> None:
    produced = run_plan(plan)
    segments = [p[3] for p in produced]
    i = data.draw(st.integers(0, len(segments) - 1))
    bit = data.draw(st.integers(0, 8 * len(segments[i]) - 1))
    bad = bytearray(segments[i])
    bad[bit // 8] ^= 0x80 >> (bit % 8)
    segments[i] = bytes(bad)
    dec = BspDecryptor(SESSION)
    it = iter(segments)
    k = 0
    for step in plan:
        if step is None:
            dec.replace_session_keys(PPK)
            continue
        tag, data_, encrypt = step
        seg = next(it)
        call = dec.unprotect if encrypt else dec.unprotect_mac_only
        if k < i:
            assert call(seg, tag=tag) == data_
        else:
            with pytest.raises((IntegrityError, DecodeError, ProtocolError)):
                call(seg, tag=tag)
            break
        k += 1
    assert dec.failed
    with pytest.raises(StateError):
        dec.unprotect(produced[0][3], tag=produced[0][0])
    with pytest.raises(StateError):
        dec.replace_session_keys(PPK)


def three_segments() -> list[bytes]:
    enc = BspEncryptor(SESSION)
    return [enc.protect(0x86, bytes([i]) * 40) for i in range(3)]


def test_reordered_segments_are_rejected() -> None:
    s = three_segments()
    dec = BspDecryptor(SESSION)
    assert dec.unprotect(s[0], tag=0x86) == b"\x00" * 40
    with pytest.raises(IntegrityError):
        dec.unprotect(s[2], tag=0x86)


def test_replayed_segment_is_rejected() -> None:
    s = three_segments()
    dec = BspDecryptor(SESSION)
    dec.unprotect(s[0], tag=0x86)
    with pytest.raises(IntegrityError):
        dec.unprotect(s[0], tag=0x86)


def test_segment_with_wrong_mode_or_tag_is_rejected() -> None:
    s = three_segments()
    with pytest.raises(IntegrityError):
        # the MAC covers the tag: a relabelled segment does not verify
        BspDecryptor(SESSION).unprotect(b"\x87" + s[0][1:], tag=0x87)
    with pytest.raises(ProtocolError):
        BspDecryptor(SESSION).unprotect(s[0], tag=0x87)
    # The mode is not part of the MAC input: the caller takes it from the BPP structure
    # (87 and 86 encrypted, 88 MAC only).  Read as MAC-only, an encrypted segment yields
    # its ciphertext, never the data.
    dec = BspDecryptor(SESSION)
    assert dec.unprotect_mac_only(s[0], tag=0x86) != b"\x00" * 40


def test_segment_size_limits() -> None:
    enc = BspEncryptor(SESSION)
    full = enc.protect(0x86, bytes(MAX_ENCRYPTED_DATA_SIZE))
    assert len(full) == MAX_SEGMENT_SIZE == 1020
    mac_full = enc.protect_mac_only(0x88, bytes(MAX_MAC_ONLY_DATA_SIZE))
    assert len(mac_full) == MAX_SEGMENT_SIZE
    counter = enc.block_counter
    with pytest.raises(UsageError):
        enc.protect(0x86, bytes(MAX_ENCRYPTED_DATA_SIZE + 1))
    with pytest.raises(UsageError):
        enc.protect_mac_only(0x88, bytes(MAX_MAC_ONLY_DATA_SIZE + 1))
    assert enc.block_counter == counter  # refused calls change nothing
    dec = BspDecryptor(SESSION)
    assert dec.unprotect(full, tag=0x86) == bytes(MAX_ENCRYPTED_DATA_SIZE)
    assert dec.unprotect_mac_only(mac_full, tag=0x88) == bytes(MAX_MAC_ONLY_DATA_SIZE)


def test_oversized_incoming_segment_is_decode_error() -> None:
    seg = b"\x86\x82\x03\xf9" + bytes(1017)  # 1021 octets
    with pytest.raises(DecodeError):
        BspDecryptor(SESSION).unprotect(seg, tag=0x86)


@pytest.mark.parametrize(
    "seg",
    [
        "",
        "86",
        "8681",
        "860400000000",  # shorter than a MAC
        "8609" + "00" * 8,  # length larger than the content
        "8608" + "00" * 9,  # trailing octet
        "868108" + "00" * 8,  # non-minimal length
        "8683000008" + "00" * 8,  # unsupported length form
        "8614" + "00" * 20,  # 12 octets of "ciphertext" (the MAC is checked first)
    ],
)
def test_malformed_segments(seg: str) -> None:
    dec = BspDecryptor(SESSION)
    with pytest.raises(RemoteError):
        dec.unprotect(h(seg), tag=0x86)
    assert dec.failed


@given(st.binary(max_size=1100), st.sampled_from([0x86, 0x87, 0x88]), st.booleans())
def test_arbitrary_input_raises_only_remote_errors(blob: bytes, tag: int, mac_only: bool) -> None:
    dec = BspDecryptor(SESSION)
    call = dec.unprotect_mac_only if mac_only else dec.unprotect
    with pytest.raises(RemoteError):
        call(blob, tag=tag)
    assert dec.failed


@pytest.mark.parametrize("size", [0, 1, 1006, 1007, 1008, 2014, 2015, 5000])
def test_split_uses_full_segments(size: int) -> None:
    data = bytes(range(256)) * 20
    data = data[:size]
    enc = BspEncryptor(SESSION)
    segs = enc.protect_split(0x86, data)
    assert len(segs) == max(1, -(-size // MAX_ENCRYPTED_DATA_SIZE))
    assert all(len(s) == MAX_SEGMENT_SIZE for s in segs[:-1])
    dec = BspDecryptor(SESSION)
    assert b"".join(dec.unprotect(s, tag=0x86) for s in segs) == data
    mac_segs = BspEncryptor(SESSION).protect_split(0x88, data, encrypt=False)
    assert len(mac_segs) == max(1, -(-size // MAX_MAC_ONLY_DATA_SIZE))
    dec = BspDecryptor(SESSION)
    assert b"".join(dec.unprotect_mac_only(s, tag=0x88) for s in mac_segs) == data


def test_bad_tags_are_usage_errors() -> None:
    enc = BspEncryptor(SESSION)
    for tag in (0x1F, 0xBF, 0x100, -1, 0xA0):
        with pytest.raises(UsageError):
            enc.protect(tag, b"x")


def test_no_secret_in_repr_or_errors() -> None:
    enc = BspEncryptor(SESSION)
    seg = enc.protect(0x86, b"secret data")
    dec = BspDecryptor(SESSION)
    bad = seg[:-1] + bytes([seg[-1] ^ 1])
    with pytest.raises(IntegrityError) as info:
        dec.unprotect(bad, tag=0x86)
    text = repr(enc) + repr(dec) + str(info.value) + repr(SESSION)
    for secret in (SESSION.s_enc, SESSION.s_mac, SESSION.initial_mac_chaining_value, seg[-8:]):
        assert secret.hex() not in text.lower()
    assert "secret data" not in text
