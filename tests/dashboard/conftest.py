"""Fixtures: the test PKI of tests/federation_http (a throwaway CA for the operator's TLS)
and the served operator of tests/federation_cli."""

from __future__ import annotations

from tests.federation_cli.conftest import service
from tests.federation_http.conftest import pki

__all__ = ["pki", "service"]
