"""``rspfed lpa switch``, ``backup``, ``rules`` on a software eUICC with two carriers' profiles.

The SM-DP+ addresses of the profiles are unreachable from the CLI (``.invalid``):
the switch happens and its notifications stay queued on the eUICC.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from click.testing import CliRunner

from rspfed.cli import main
from rspfed.lpa.settings import LpaSettings
from tests.carrier.world import Device, device


@pytest.fixture
def dev() -> Iterator[Device]:
    d = device()
    d.euicc.close()  # the CLI opens the store itself
    yield d
    d.euicc = type(d.euicc).open(d.store_path)
    d.close()


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


def test_switch_backup_rules(dev: Device) -> None:
    store = str(dev.store_path)
    code, out = run("lpa", "backup", "set", dev.b, "--euicc", store)
    assert code == 0, out
    assert f"backup set to {dev.b}" in out
    code, out = run("lpa", "switch", dev.b, "--euicc", store)
    assert code == 0, out
    assert f"-> {dev.b}" in out
    assert "queued" in out  # the SM-DP+ are unreachable: kept on the eUICC
    code, out = run("lpa", "profiles", "--euicc", store)
    assert f"{dev.b} enabled" in out
    code, out = run("lpa", "notifications", "--euicc", store)
    assert "2 notification(s)" in out
    code, out = run("lpa", "backup", "show", "--euicc", store)
    assert f"primary {dev.b}" in out
    # the PPR1 profile, once enabled, cannot be switched away from
    assert run("lpa", "switch", dev.p, "--euicc", store)[0] == 0
    code, out = run("lpa", "switch", dev.a, "--euicc", store)
    assert code == 2
    assert "PPR1" in out
    code, out = run("lpa", "backup", "clear", "--euicc", store)
    assert code == 0, out
    assert "backup cleared" in out

    assert run("lpa", "rules", "add", "fr", dev.a, "--euicc", store)[0] == 0
    assert run("lpa", "rules", "add", "DE", dev.b, "--euicc", store)[0] == 0
    code, out = run("lpa", "rules", "add", "FR", dev.b, "--euicc", store)
    assert code == 2
    code, out = run("lpa", "rules", "list", "--euicc", store)
    assert out.splitlines()[1:] == [f"  FR -> {dev.a}", f"  DE -> {dev.b}"]
    assert run("lpa", "rules", "remove", "FR", "--euicc", store)[0] == 0
    assert run("lpa", "rules", "remove", "FR", "--euicc", store)[0] == 2
    with LpaSettings.open(dev.settings_path) as settings:
        assert [r.country for r in settings.rules()] == ["DE"]


def test_switch_unknown_profile(dev: Device) -> None:
    code, out = run("lpa", "switch", "8900009999999999999", "--euicc", str(dev.store_path))
    assert code == 2
    assert "no profile" in out


def test_watch_once_with_no_operator_on_air(dev: Device) -> None:
    """One bounded round against an operator that is not there: no network, no switch."""
    from tests.federation_http.conftest import reserve_port

    sock = reserve_port()
    url = f"https://localhost:{sock.getsockname()[1]}"
    sock.close()
    store = str(dev.store_path)
    assert run("lpa", "backup", "set", dev.b, "--euicc", store)[0] == 0
    code, out = run("lpa", "watch", "--euicc", store, "--operator", url, "--once")
    assert code == 0, out
    assert "no network (none-visible)" in out
    assert "switch" not in out
    code, out = run("lpa", "watch", "--euicc", store, "--operator", url, "--interval", "0")
    assert code == 2
