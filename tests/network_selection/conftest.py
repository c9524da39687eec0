"""Fixtures for the network selection tests: the HTTPS tests' test PKI."""

from __future__ import annotations

from tests.federation_http.conftest import pki  # noqa: F401 - the HTTPS tests' PKI fixture
