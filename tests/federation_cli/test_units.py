"""Sizes and durations with units (``rspfed.cli._units``); operator URLs."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rspfed.cli._units import format_duration, format_size, parse_duration, parse_size
from rspfed.cli.federation import resolve_operator_url
from rspfed.errors import UsageError
from rspfed.federation.device import DeviceRecord


@pytest.mark.parametrize(
    ("text", "octets"),
    [
        ("20GB", 20_000_000_000),
        ("5gb", 5_000_000_000),
        ("1.5 GB", 1_500_000_000),
        ("512MB", 512_000_000),
        ("1KB", 1000),
        ("2TB", 2_000_000_000_000),
        ("0B", 0),
        ("7B", 7),
        ("1GiB", 1073741824),
        ("3MiB", 3145728),
        ("1KiB", 1024),
        ("1TiB", 1099511627776),
    ],
)
def test_sizes(text: str, octets: int) -> None:
    assert parse_size(text) == octets


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30d", 2_592_000), ("10m", 600), ("1h", 3600), ("1.5h", 5400), ("45s", 45), ("24H", 86400)],
)
def test_durations(text: str, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize(
    "text", ["20", "GB", "-1GB", "1e3GB", "20 G B", "20XB", "", "1.GB", "0x10MB", "10000000TB"]
)
def test_bad_sizes(text: str) -> None:
    with pytest.raises(UsageError):
        parse_size(text)


@pytest.mark.parametrize("text", ["30", "d", "4w", "1y", "-5m", "1000000d"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(UsageError):
        parse_duration(text)


@given(st.integers(min_value=0, max_value=10**6), st.sampled_from(["B", "KB", "MB", "GB", "TB"]))
def test_size_units_are_decimal(n: int, unit: str) -> None:
    power = {"B": 0, "KB": 3, "MB": 6, "GB": 9, "TB": 12}[unit]
    assert parse_size(f"{n}{unit}") == n * 10**power


@given(st.integers(min_value=0, max_value=10**15))
def test_size_format_round_trip_within_rounding(octets: int) -> None:
    back = parse_size(format_size(octets))
    assert abs(back - octets) <= max(octets // 200, 0)


@given(st.integers(min_value=0, max_value=10**8))
def test_duration_format_round_trip(seconds: int) -> None:
    span = timedelta(seconds=seconds)
    assert parse_duration(format_duration(span)) == span


@pytest.mark.parametrize(
    ("given", "no_tls", "url"),
    [
        ("https://op.example:8443", False, "https://op.example:8443"),
        ("HTTPS://op.example:8443/", False, "https://op.example:8443"),
        ("op.example:8443", False, "https://op.example:8443"),
        ("localhost:8080", True, "http://localhost:8080"),
        ("http://localhost:8080", True, "http://localhost:8080"),
    ],
)
def test_operator_urls(given: str, no_tls: bool, url: str) -> None:
    assert resolve_operator_url(given, None, no_tls) == url


@pytest.mark.parametrize(
    ("given", "no_tls"),
    [("http://localhost:8080", False), ("https://op.example", True), ("ftp://op.example", False)],
)
def test_operator_urls_refused(given: str, no_tls: bool) -> None:
    with pytest.raises(UsageError):
        resolve_operator_url(given, None, no_tls)


def test_operator_url_from_the_device_store() -> None:
    record = DeviceRecord(operator_url="https://op.example")
    assert resolve_operator_url(None, record, False) == "https://op.example"
    assert resolve_operator_url("https://other.example", record, False) == "https://other.example"
    with pytest.raises(UsageError):
        resolve_operator_url(None, None, False)
