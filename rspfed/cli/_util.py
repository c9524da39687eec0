"""Helpers shared by the command modules: error reporting and input reading."""

from __future__ import annotations

import base64
import binascii
import functools
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

import click

from rspfed.errors import RspfedError

__all__ = ["fail", "read_input", "reports_errors"]

P = ParamSpec("P")
R = TypeVar("R")


def fail(message: str, code: int = 2) -> None:
    """Print ``message`` as one line on stderr and exit with ``code``."""
    click.echo(f"rspfed: error: {' '.join(message.split())}", err=True)
    sys.exit(code)


def reports_errors(func: Callable[P, R]) -> Callable[P, R]:
    """Turn an :class:`RspfedError` (or unreadable input) into exit 2, one line, no traceback."""

    @functools.wraps(func)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return func(*args, **kwargs)
        except RspfedError as exc:
            fail(str(exc))
        except OSError as exc:
            fail(f"{exc.filename or 'input'}: {exc.strerror or exc}")
        raise AssertionError("unreachable")  # pragma: no cover

    return wrapper


def read_input(source: str, *, as_hex: bool = False, as_base64: bool = False) -> bytes:
    """Read ``source`` (a path or ``-`` for stdin) as raw bytes, hex text or base64 text.

    Raises :class:`rspfed.errors.DecodeError` on malformed hex or base64.
    """
    from rspfed.errors import DecodeError

    if source == "-":
        data = sys.stdin.buffer.read()
    else:
        with open(source, "rb") as handle:
            data = handle.read()
    if as_hex:
        text = b"".join(data.split())
        try:
            return binascii.unhexlify(text)
        except (binascii.Error, ValueError):
            raise DecodeError("input is not valid hexadecimal") from None
    if as_base64:
        try:
            return base64.b64decode(b"".join(data.split()), validate=True)
        except (binascii.Error, ValueError):
            raise DecodeError("input is not valid base64") from None
    return data
