"""``rspfed pki``: the test PKI and certificate chain verification (placeholder)."""

from __future__ import annotations

import click

__all__ = ["pki"]


@click.group()
def pki() -> None:
    """The SGP.22 RSP PKI: test PKI generation, revocation, chain verification."""
