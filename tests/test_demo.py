"""``rspfed demo`` runs as README says: no arguments, exit 0, the story told."""

from __future__ import annotations

import subprocess
import sys


def test_demo_runs_and_tells_the_story() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rspfed", "demo"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Traceback" not in out + result.stderr
    # chapter 1: both curves, chains valid, wrong role and revocation refused
    assert out.count("eUICC -> EUM -> CI valid") == 2
    assert out.count("DPpb presented as DPauth") == 2
    assert out.count("revoked DPauth") == 2
    # chapter 2: the TS.48 package summarised and re-encoded byte-exact
    assert "ICCID 89000123456789012341" in out
    assert "IMSI 001010123456063" in out
    assert "byte-exact" in out
    # chapter 3: BSP round trip and a flipped bit caught
    assert "decrypted back byte-exact: True" in out
    assert "C-MAC does not verify" in out
