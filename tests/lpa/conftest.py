"""Shared fixtures for the LPA tests: a test PKI and software eUICCs."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from rspfed.crypto.curves import Curve
from rspfed.euicc.euicc import Euicc
from rspfed.pki.testpki import TestPki

NOW = datetime.now(UTC)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki.create(tmp_path_factory.mktemp("lpa-pki") / "pki", now=NOW)


@pytest.fixture
def euicc(tmp_path: Path, pki: TestPki) -> Iterator[Euicc]:
    with Euicc.create(tmp_path / "euicc.db", pki, curves=(Curve.NIST,)) as card:
        yield card
