"""Fuzzing the strict DER decoder: bad input gives a value that re-encodes exactly, or DecodeError.

For every SGP.22 type, ``ProfileElement``, ``Certificate`` and
``CertificateList``: random bytes, and valid encodings (generated values, TS.48
profile elements, SGP.26 certificates, CRLs) mutated by bit flips,
truncation, length-octet changes, inserted, deleted and appended bytes.
Property: :func:`rspfed.asn1.decode` either returns a value whose full parse
(:func:`rspfed.asn1.jsonconv.to_json`) succeeds and whose re-encoding is
exactly the input, or raises :class:`rspfed.errors.DecodeError` -- never
another exception, never a hang (``pytest-timeout`` guards each type, scaled to the example count).

Example counts follow the hypothesis profile (``ci`` small, ``fuzz`` long).
"""

from __future__ import annotations

import functools
from typing import Any

import pytest
from asn1crypto import crl, x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rspfed.asn1 import decode, decode_profile_elements, encode, jsonconv, saip
from rspfed.errors import DecodeError
from tests.asn1.strategies import (
    certificate_ders,
    crl_ders,
    pe_strategies,
    rsp_strategies,
    rspfed_class,
    to_rspfed,
)
from tests.paths import TS48

# ---------------------------------------------------------------------------
# mutations


def _header_offsets(data: bytes) -> list[tuple[int, int]]:
    """(offset of the first length octet, number of length octets) of every TLV
    found by a tolerant walk of ``data`` (constructed TLVs are entered)."""
    found: list[tuple[int, int]] = []
    stack = [(0, len(data))]
    while stack and len(found) < 200:
        pos, end = stack.pop()
        while pos < end:
            first = data[pos]
            p = pos + 1
            if first & 0x1F == 0x1F:
                while p < end and data[p] & 0x80:
                    p += 1
                p += 1
            if p >= end:
                break
            n = data[p]
            length_octets = 1 + (n & 0x7F if n & 0x80 else 0)
            if p + length_octets > end:
                break
            length = int.from_bytes(data[p + 1 : p + length_octets], "big") if n & 0x80 else n
            found.append((p, length_octets))
            start = p + length_octets
            if first & 0x20 and start + length <= end:
                stack.append((start, start + length))
            pos = start + length
    return found


@st.composite
def mutated(draw: st.DrawFn, seeds: st.SearchStrategy[bytes]) -> bytes:
    """A valid encoding from ``seeds`` with 1-3 mutations."""
    data = bytearray(draw(seeds))
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(
            st.sampled_from(["flip", "truncate", "length", "insert", "delete", "append", "byte"])
        )
        if not data:
            data = bytearray(draw(st.binary(min_size=1, max_size=4)))
            continue
        pos = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[pos:]
        elif kind == "length":
            headers = _header_offsets(bytes(data))
            if headers:
                offset, count = draw(st.sampled_from(headers))
                new = draw(
                    st.one_of(
                        st.integers(0, 255),
                        st.just((data[offset] + 1) & 0xFF),
                        st.just((data[offset] - 1) & 0xFF),
                        st.sampled_from([0x80, 0x81, 0x82, 0x84, 0x88, 0xFF]),
                    )
                )
                data[offset + draw(st.integers(0, count - 1))] = new
        elif kind == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=4))
        elif kind == "delete":
            del data[pos : pos + draw(st.integers(1, 4))]
        elif kind == "append":
            data += draw(st.binary(min_size=1, max_size=4))
        else:
            data[pos] = draw(st.integers(0, 255))
    return bytes(data)


# ---------------------------------------------------------------------------
# the property


def _check(cls: type[Any], data: bytes) -> None:
    try:
        value = decode(cls, data)
    except DecodeError:
        return
    jsonconv.to_json(value)  # the full parse of an accepted value cannot fail
    assert encode(value) == data


def _examples() -> int:
    profile = settings.default
    count = profile.max_examples if profile is not None else 100
    return max(10, int(count) // 4)


_TIMEOUT = 120 + _examples() // 5
"""Seconds per test before pytest-timeout calls it a hang (scales with the profile)."""


@functools.cache
def _ts48_elements() -> tuple[bytes, ...]:
    out: list[bytes] = []
    for path in sorted(TS48.glob("*.der")):
        out.extend(pe.dump() for pe in decode_profile_elements(path.read_bytes()))
    return tuple(out)


def _seeds(name: str) -> st.SearchStrategy[bytes]:
    if name == "Certificate":
        return st.sampled_from(certificate_ders())
    if name == "CertificateList":
        return st.sampled_from(crl_ders())
    if name == "ProfileElement":
        generated = pe_strategies().for_type("PEDefinitions", "ProfileElement")
        return st.one_of(
            st.sampled_from(_ts48_elements()),
            generated.map(lambda v: encode(to_rspfed(saip.ProfileElement, v))),
        )
    cls = rspfed_class("RSPDefinitions", name)
    return (
        rsp_strategies()
        .for_type("RSPDefinitions", name)
        .map(functools.partial(_encode_generated, cls))
    )


def _encode_generated(cls: type[Any], value: Any) -> bytes:
    return encode(to_rspfed(cls, value))


_CLASSES: dict[str, type[Any]] = {
    "Certificate": x509.Certificate,
    "CertificateList": crl.CertificateList,
    "ProfileElement": saip.ProfileElement,
}


def _types() -> list[Any]:
    names = ["Certificate", "CertificateList", "ProfileElement"]
    names += list(rsp_strategies().spec["RSPDefinitions"]["types"])
    return [pytest.param(name, id=name) for name in names]


@pytest.mark.timeout(_TIMEOUT)
@pytest.mark.parametrize("name", _types())
def test_fuzz(name: str) -> None:
    """Random and mutated input: exact value or DecodeError, nothing else."""
    cls = _CLASSES.get(name) or rspfed_class("RSPDefinitions", name)
    inputs = st.one_of(st.binary(max_size=64), mutated(_seeds(name)))

    @settings(
        max_examples=_examples(),
        deadline=None,
        suppress_health_check=[
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.filter_too_much,
        ],
    )
    @given(inputs)
    def check(data: bytes) -> None:
        _check(cls, data)

    check()


@pytest.mark.timeout(_TIMEOUT)
@settings(max_examples=_examples(), deadline=None)
@given(mutated(st.sampled_from([p.read_bytes() for p in sorted(TS48.glob("*.der"))[:4]])))
def test_fuzz_profile_package_stream(data: bytes) -> None:
    """Mutated TS.48 packages: decode_profile_elements gives elements that re-encode
    to exactly the input, or DecodeError."""
    try:
        elements = decode_profile_elements(data)
    except DecodeError:
        return
    for element in elements:
        jsonconv.to_json(element)
    assert b"".join(encode(e) for e in elements) == data


def test_seeds_are_valid() -> None:
    """The unmutated seeds decode (so mutations start from valid encodings)."""
    for der in certificate_ders():
        assert encode(decode(x509.Certificate, der)) == der
    for der in _ts48_elements()[:50]:
        assert encode(decode(saip.ProfileElement, der)) == der
