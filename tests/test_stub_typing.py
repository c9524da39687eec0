"""The local asn1crypto stubs (``stubs/asn1crypto``) type-check and match the runtime.

``tests/typing/check_asn1crypto_stubs.py`` uses asn1crypto the way rspfed does,
pinning declared types with ``typing.assert_type``.  It must pass
``mypy --strict`` with the project configuration, and running it must not
fail (so the stubs do not claim what the real library does not do).
``mypy.stubtest`` compares the stubs with the installed asn1crypto (names,
signatures, class hierarchy); deliberate differences are listed in
``stubs/asn1crypto/stubtest-allowlist.txt``.
"""

from __future__ import annotations

import os
import subprocess
import sys
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


def test_stubs_match_installed_asn1crypto(tmp_path: Path) -> None:
    pytest.importorskip("mypy.stubtest")
    config = tmp_path / "mypy.ini"
    config.write_text("[mypy]\nstrict = True\n")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy.stubtest",
            "asn1crypto",
            "--mypy-config-file",
            str(config),
            "--allowlist",
            str(STUBS / "stubtest-allowlist.txt"),
        ],
        # run outside the repository so the stubs are found only via MYPYPATH
        cwd=tmp_path,
        env={**os.environ, "MYPYPATH": str(STUBS.parent)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
