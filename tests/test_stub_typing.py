"""The local asn1crypto stubs (``stubs/asn1crypto``) type-check and match the runtime.

``tests/typing/check_asn1crypto_stubs.py`` uses asn1crypto the way rspfed does,
pinning declared types with ``typing.assert_type``.  It must pass
``mypy --strict`` with the project configuration, and running it must not
fail (so the stubs do not claim what the real library does not do).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.paths import REPO
from tests.typing import check_asn1crypto_stubs

SAMPLE = REPO / "tests" / "typing" / "check_asn1crypto_stubs.py"
STUBS = REPO / "stubs" / "asn1crypto"


def test_sample_runs_against_real_asn1crypto() -> None:
    check_asn1crypto_stubs.exercise()


def test_sample_and_stubs_pass_mypy_strict(tmp_path: Path) -> None:
    api = pytest.importorskip("mypy.api")
    stubs = sorted(str(path) for path in STUBS.glob("*.pyi"))
    stdout, stderr, status = api.run(
        [
            "--config-file",
            str(REPO / "pyproject.toml"),
            "--strict",
            "--cache-dir",
            str(tmp_path),
            "--no-error-summary",
            str(SAMPLE),
            *stubs,
        ]
    )
    assert status == 0, stdout + stderr
