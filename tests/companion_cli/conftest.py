"""Fixtures: the operator service (``rspfed operator serve`` over HTTPS) and a primary
phone made through the real commands, shared with :mod:`tests.pair_cli`."""

from __future__ import annotations

from tests.federation_cli.conftest import service
from tests.pair_cli.conftest import make_primary

__all__ = ["make_primary", "service"]
