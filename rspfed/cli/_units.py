"""Sizes and durations with units, as the operator and federation commands take them.

Sizes (``--pool 20GB``, ``--quota 5GB``) are **decimal**, as operators bill
data and as SI prefixes mean: ``B``, ``KB`` (10^3), ``MB`` (10^6), ``GB``
(10^9), ``TB`` (10^12).  The binary units ``KiB``, ``MiB``, ``GiB``, ``TiB``
(2^10 ... 2^40) are accepted too.  Units are case-insensitive; the number may
have a fraction (``1.5GB``); the result is rounded down to whole octets.

Durations (``--period 30d``, ``--ttl 10m``) take ``s``, ``m``, ``h`` or ``d``
(seconds, minutes, hours, days of 24 hours); the number may have a fraction
(``1.5h``); the result is whole seconds.

A number without a unit is refused (``20`` could be anything).  Errors are
:class:`~rspfed.errors.UsageError`.
"""

from __future__ import annotations

import re
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any, Final

import click

from rspfed.errors import UsageError

__all__ = [
    "DURATION_UNITS",
    "SIZE_UNITS",
    "DurationType",
    "SizeType",
    "format_duration",
    "format_size",
    "parse_duration",
    "parse_size",
]

#: Octets per size unit (lower-case keys).
SIZE_UNITS: Final[dict[str, int]] = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 1 << 10,
    "mib": 1 << 20,
    "gib": 1 << 30,
    "tib": 1 << 40,
}
#: Seconds per duration unit.
DURATION_UNITS: Final[dict[str, int]] = {"s": 1, "m": 60, "h": 3600, "d": 86400}

_QUANTITY = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]+)\s*", re.ASCII)
_MAX: Final = (1 << 63) - 1


def _split(text: str, units: dict[str, int], what: str, example: str) -> tuple[Decimal, int]:
    match = _QUANTITY.fullmatch(text)
    names = ", ".join(k if k in ("s", "m", "h", "d") else k.upper() for k in units)
    if match is None:
        raise UsageError(f"{what} {text!r} is not NUMBER+UNIT (e.g. {example}; units {names})")
    unit = units.get(match.group(2).lower())
    if unit is None:
        raise UsageError(f"{what} {text!r}: unknown unit {match.group(2)!r} (units {names})")
    try:
        return Decimal(match.group(1)), unit
    except InvalidOperation:  # pragma: no cover - the pattern admits only decimal numbers
        raise UsageError(f"{what} {text!r} is not a number") from None


def parse_size(text: str) -> int:
    """Octets in ``text`` (``20GB`` = 20 * 10^9, ``2GiB`` = 2 * 2^30); at most 2^63 - 1."""
    number, unit = _split(text, SIZE_UNITS, "size", "20GB")
    value = int(number * unit)
    if value > _MAX:
        raise UsageError(f"size {text!r} is too large")
    return value


def parse_duration(text: str) -> timedelta:
    """The duration in ``text`` (``30d``, ``10m``, ``1.5h``), whole seconds."""
    number, unit = _split(text, DURATION_UNITS, "duration", "30d")
    seconds = int(number * unit)
    if seconds > 100 * 365 * 86400:
        raise UsageError(f"duration {text!r} is too long")
    return timedelta(seconds=seconds)


def format_size(octets: int) -> str:
    """``octets`` in the largest decimal unit that keeps it short (``20GB``, ``1.5GB``, ``0B``)."""
    for name in ("TB", "GB", "MB", "KB"):
        unit = SIZE_UNITS[name.lower()]
        if octets >= unit:
            value = Decimal(octets) / unit
            text = f"{value:.2f}".rstrip("0").rstrip(".")
            return f"{text}{name}"
    return f"{octets}B"


def format_duration(span: timedelta) -> str:
    """``span`` in the largest whole unit (``30d``, ``90m``, ``45s``)."""
    seconds = int(span.total_seconds())
    for name in ("d", "h", "m"):
        unit = DURATION_UNITS[name]
        if seconds and seconds % unit == 0:
            return f"{seconds // unit}{name}"
    return f"{seconds}s"


class SizeType(click.ParamType[int]):
    """A click parameter: a size with a unit (:func:`parse_size`), in octets."""

    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        try:
            return parse_size(str(value))
        except UsageError as exc:
            self.fail(str(exc), param, ctx)


class DurationType(click.ParamType[timedelta]):
    """A click parameter: a duration with a unit (:func:`parse_duration`)."""

    name = "duration"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> timedelta:
        if isinstance(value, timedelta):
            return value
        try:
            return parse_duration(str(value))
        except UsageError as exc:
            self.fail(str(exc), param, ctx)
