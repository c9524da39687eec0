"""Every ``examples/*.py`` runs as its README says (``python examples/<name>.py``) and does
what its docstring claims; the library calls are also checked directly where the
example exposes them."""

from __future__ import annotations

import asyncio
import importlib.util
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from rspfed.errors import TokenEidMismatchError
from rspfed.federation.token import DeviceClass
from tests.paths import REPO

EXAMPLES = REPO / "examples"
HARDWARE = {"ble_check.py"}  # needs two machines with BLE adapters (docs/transport-ble.md)


def _load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(name: str) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_every_example_is_covered() -> None:
    names = {p.name for p in EXAMPLES.glob("*.py")} - HARDWARE
    assert names == set(RUNS), "a new example needs its test here"


def _download(out: str) -> None:
    assert "activation code: LPA:1$smdp.example$" in out
    assert "installed ICCID" in out
    assert " enabled " in out


def _token(out: str) -> None:
    assert "accepted: a tablet (data, sms)" in out
    assert "another eUICC presenting it: refused" in out
    assert "eleven minutes later: refused" in out


def _pairing(out: str) -> None:
    assert "laptop: paired with Ana's phone" in out
    assert "got a token for EID 89049032123451234512345678901235" in out
    assert "done: phone closed, laptop closed" in out


RUNS = {
    "download_profile.py": _download,
    "federation_token.py": _token,
    "pairing_sans_io.py": _pairing,
}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_example_runs(name: str) -> None:
    RUNS[name](_run(name))


def test_download_profile_library_call(tmp_path: Path) -> None:
    module = _load("download_profile")
    eid, profiles = asyncio.run(module.provision(tmp_path))
    assert len(eid) == 32
    assert eid.isdigit()
    assert [p.state for p in profiles] == ["enabled"]
    assert profiles[0].service_provider_name == "Example Mobile"


def test_federation_token_library_calls() -> None:
    module = _load("federation_token")
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    uri = module.authorise_tablet(key, now)
    token = module.redeem(uri, key.public_key(), module.TABLET_EID, now)
    assert token.device_class is DeviceClass.TABLET
    assert token.eid == module.TABLET_EID
    with pytest.raises(TokenEidMismatchError):
        module.redeem(uri, key.public_key(), module.OTHER_EID, now)
