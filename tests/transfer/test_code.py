"""Short codes, discovery identifiers and the pairing key derivations.

The word list is checked against its published shape (256 + 256 distinct,
disjoint words; a few well-known entries) and the derivations against HKDF
written out here with ``cryptography``.
"""

from __future__ import annotations

import os
import uuid

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from hypothesis import given
from hypothesis import strategies as st

from rspfed.errors import DecodeError, UsageError
from rspfed.transfer.code import (
    DISCOVERY_ID_SIZE,
    NAMEPLATE_MAX,
    PairingMethod,
    ShortCode,
    discovery_id_from_nameplate,
    discovery_id_from_secret,
    pairing_prologue,
    psk_from_pake_key,
    psk_from_secret,
)
from rspfed.transfer.wordlist import EVEN_WORDS, ODD_WORDS


def _hkdf(ikm: bytes, info: bytes, length: int) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=None, info=info).derive(ikm)


def test_word_lists_shape() -> None:
    assert len(EVEN_WORDS) == len(set(EVEN_WORDS)) == 256
    assert len(ODD_WORDS) == len(set(ODD_WORDS)) == 256
    assert not set(EVEN_WORDS) & set(ODD_WORDS)
    assert all(w.isascii() and w.isalpha() and w.islower() for w in EVEN_WORDS + ODD_WORDS)
    # Well-known entries of the PGP word list (first, last, and the wormhole example).
    assert (EVEN_WORDS[0], ODD_WORDS[0]) == ("aardvark", "adroitness")
    assert (EVEN_WORDS[255], ODD_WORDS[255]) == ("zulu", "yucatan")
    assert ODD_WORDS[0x69] == "guitarist"
    assert EVEN_WORDS[0xA9] == "revenge"


codes = st.builds(
    ShortCode,
    st.integers(1, NAMEPLATE_MAX),
    st.tuples(st.sampled_from(ODD_WORDS), st.sampled_from(EVEN_WORDS)),
)


@given(code=codes, upper=st.booleans(), pad=st.sampled_from(["", " ", "\t", "\n "]))
def test_format_parse_round_trip(code: ShortCode, upper: bool, pad: str) -> None:
    text = str(code)
    assert text == code.text
    assert ShortCode.parse(text) == code
    typed = text.upper() if upper else text
    assert ShortCode.parse(pad + typed + pad) == code
    assert code.password == text.encode("ascii")


def test_example() -> None:
    code = ShortCode.parse("17-Guitarist-REVENGE")
    assert code.nameplate == 17
    assert code.words == ("guitarist", "revenge")
    assert code.password == b"17-guitarist-revenge"
    assert "guitarist" not in repr(code)


@pytest.mark.parametrize(
    "text",
    [
        "",
        "17",
        "17-guitarist",
        "17-guitarist-revenge-extra",
        "0-guitarist-revenge",
        "017-guitarist-revenge",
        "1000-guitarist-revenge",
        "-1-guitarist-revenge",
        "17-revenge-guitarist",  # lists swapped
        "17-guitarist-guitarist",
        "17-revenge-revenge",
        "17-guitarist-revengee",
        "17--guitarist-revenge",
        "17 guitarist revenge",
        "17-guitarist-revenge-",
        "x7-guitarist-revenge",
        "17-guitar\u0130st-revenge",
        "１７-guitarist-revenge",
        "17-guitarist-revenge" + "x" * 100,
    ],
)
def test_junk_rejected(text: str) -> None:
    with pytest.raises(DecodeError) as info:
        ShortCode.parse(text)
    assert "guitarist" not in str(info.value)
    assert "revenge" not in str(info.value)


@given(text=st.text(max_size=40))
def test_parse_arbitrary_text_never_crashes(text: str) -> None:
    try:
        code = ShortCode.parse(text)
    except DecodeError:
        return
    assert ShortCode.parse(str(code)) == code


def test_constructor_validates() -> None:
    with pytest.raises(UsageError):
        ShortCode(0, ("guitarist", "revenge"))
    with pytest.raises(UsageError):
        ShortCode(1000, ("guitarist", "revenge"))
    with pytest.raises(UsageError):
        ShortCode(1, ("revenge", "guitarist"))
    with pytest.raises(UsageError):
        ShortCode(1, ("guitarist",))


def test_generate_uses_injected_randomness() -> None:
    stream = iter([b"\xff\xff", b"\x00\x10", b"\x69\xa9"])  # first draw rejected
    code = ShortCode.generate(lambda n: next(stream))
    assert code == ShortCode(0x0010 % 999 + 1, ("guitarist", "revenge"))
    seed = os.urandom(8)

    def rand_from(seed: bytes) -> list[ShortCode]:
        counter = iter(range(1000))

        def rand(n: int) -> bytes:
            h = hashes.Hash(hashes.SHAKE256(n))
            h.update(seed + next(counter).to_bytes(4, "big"))
            return h.finalize()

        return [ShortCode.generate(rand) for _ in range(5)]

    assert rand_from(seed) == rand_from(seed)


@given(raw=st.binary(min_size=4, max_size=4))
def test_generate_is_valid(raw: bytes) -> None:
    chunks = iter([raw[:2], raw[2:]])

    def rand(n: int) -> bytes:
        try:
            return next(chunks)
        except StopIteration:
            return b"\x00" * n

    code = ShortCode.generate(rand)
    assert ShortCode.parse(str(code)) == code


def test_generate_with_broken_rand() -> None:
    with pytest.raises(UsageError):
        ShortCode.generate(lambda n: b"")


def test_discovery_ids() -> None:
    secret = os.urandom(32)
    did = discovery_id_from_secret(secret)
    assert did == _hkdf(secret, b"rspfed pairing discovery v1", 16)
    assert len(did) == DISCOVERY_ID_SIZE
    assert discovery_id_from_nameplate(17) == _hkdf(
        (17).to_bytes(2, "big"), b"rspfed pairing nameplate discovery v1", 16
    )
    assert len({discovery_id_from_nameplate(n) for n in range(1, 1000)}) == 999
    assert str(uuid.UUID(bytes=did))  # usable as a BLE service UUID's bytes
    with pytest.raises(UsageError):
        discovery_id_from_secret(b"short")
    with pytest.raises(UsageError):
        discovery_id_from_nameplate(0)


@given(
    nameplate=st.integers(1, NAMEPLATE_MAX),
    a=st.tuples(st.sampled_from(ODD_WORDS), st.sampled_from(EVEN_WORDS)),
    b=st.tuples(st.sampled_from(ODD_WORDS), st.sampled_from(EVEN_WORDS)),
)
def test_discovery_id_never_depends_on_the_words(
    nameplate: int, a: tuple[str, str], b: tuple[str, str]
) -> None:
    ca, cb = ShortCode(nameplate, a), ShortCode(nameplate, b)
    assert ca.discovery_id == cb.discovery_id == discovery_id_from_nameplate(nameplate)


def test_psk_derivations() -> None:
    secret, key = os.urandom(32), os.urandom(32)
    assert psk_from_secret(secret) == _hkdf(secret, b"rspfed pairing psk v1", 32)
    assert psk_from_pake_key(key) == _hkdf(key, b"rspfed pairing psk code v1", 32)
    assert psk_from_secret(secret) != psk_from_pake_key(secret)
    assert psk_from_secret(secret) != discovery_id_from_secret(secret)
    with pytest.raises(UsageError):
        psk_from_secret(b"x" * 31)
    with pytest.raises(UsageError):
        psk_from_pake_key(b"x" * 33)


def test_prologue() -> None:
    did = discovery_id_from_nameplate(5)
    assert pairing_prologue(PairingMethod.CODE, did) == b"rspfed-pair-v1\x02" + did
    assert pairing_prologue(PairingMethod.QR, did) == b"rspfed-pair-v1\x01" + did
    with pytest.raises(UsageError):
        pairing_prologue(PairingMethod.QR, b"short")
