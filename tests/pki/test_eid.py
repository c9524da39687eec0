"""EID (SGP.29) check digits: published vectors and properties."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rspfed.errors import UsageError
from rspfed.pki.eid import (
    eid_check_digits,
    eid_in_range,
    generate_eid,
    is_valid_eid,
    validate_eid,
)

# Published EIDs: #EID1 of SGP.23 Annex A (the EID of SGP.26's test eUICC
# certificate), EIDs from Osmocom pySim's EID tests, and valid EIDs from the
# Apache Commons Validator EIDCheckDigitTest.
PUBLISHED = [
    "89049032123451234512345678901235",
    "89086030202200000022000023022943",
    "89044045116727494800000004479366",
    "89001012012341234012345678901224",
    "89001039240180124400000000000157",
    "89001039240180124400000000000254",
    "89001039240180124400000000000351",
    "89001039240180124400000000000448",
    "89001039240170123000000000000237",
    "89001039240060125400000003999238",
    "89001039240060112200000000486783",
    "89001039240060114800000000453298",
]


@pytest.mark.parametrize("eid", PUBLISHED)
def test_published_eids_are_valid(eid: str) -> None:
    assert is_valid_eid(eid)
    assert validate_eid(eid) == eid
    assert eid_check_digits(eid[:30]) == eid[30:]


@pytest.mark.parametrize(
    ("eid", "reason"),
    [
        ("8904903212345123451234567890123", "32 digits"),
        ("890490321234512345123456789012356", "32 digits"),
        ("8904903212345123451234567890123A", "decimal digits"),
        ("８９049032123451234512345678901235", "decimal digits"),
        ("89049032123451234512345678901236", "check digits"),
    ],
)
def test_invalid_eids_are_rejected_with_a_reason(eid: str, reason: str) -> None:
    assert not is_valid_eid(eid)
    with pytest.raises(UsageError, match=reason):
        validate_eid(eid)


@given(st.text(alphabet="0123456789", min_size=1, max_size=12), st.binary(min_size=64))
def test_generated_eids_validate_and_keep_the_prefix(ein: str, seed: bytes) -> None:
    pool = bytearray(seed * 8)

    def rand(size: int) -> bytes:
        if len(pool) < size:
            return os.urandom(size)
        out = bytes(pool[:size])
        del pool[:size]
        return out

    eid = generate_eid(ein, rand)
    assert len(eid) == 32
    assert eid.startswith(ein)
    assert is_valid_eid(eid)
    assert eid_in_range(eid, ein)


@given(
    st.sampled_from(PUBLISHED),
    st.integers(min_value=0, max_value=31),
    st.integers(min_value=1, max_value=9),
)
def test_any_single_digit_change_is_detected(eid: str, position: int, delta: int) -> None:
    changed = eid[:position] + str((int(eid[position]) + delta) % 10) + eid[position + 1 :]
    assert not is_valid_eid(changed)


@given(st.sampled_from(PUBLISHED), st.integers(min_value=0, max_value=30))
def test_adjacent_transpositions_of_distinct_digits_are_detected(eid: str, i: int) -> None:
    if eid[i] == eid[i + 1]:
        return
    swapped = eid[:i] + eid[i + 1] + eid[i] + eid[i + 2 :]
    assert not is_valid_eid(swapped)


def test_range_matching() -> None:
    eid = PUBLISHED[0]
    assert eid_in_range(eid, "89049032")
    assert eid_in_range(eid, ["89001012", "8904"])
    assert not eid_in_range(eid, "89049033")
    assert not eid_in_range(eid, "")
    assert not eid_in_range(eid, [])


def test_bad_generator_arguments() -> None:
    with pytest.raises(UsageError):
        generate_eid("89x", os.urandom)
    with pytest.raises(UsageError):
        generate_eid("1" * 31, os.urandom)
    with pytest.raises(UsageError):
        eid_check_digits("123")
