"""``rspfed demo`` runs as README says: no arguments, exit 0, the story told."""

from __future__ import annotations

import re
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
    # 1: both curves, chains valid, wrong role and revocation refused
    assert out.count("eUICC -> EUM -> CI valid") == 2
    assert out.count("DPpb presented as DPauth") == 2
    assert out.count("revoked DPauth") == 2
    # 2-3: the template checked byte-exact, the profile type registered, HTTPS up
    assert "re-encoded byte-exact" in out
    assert 'profile type "demo-mobile" registered' in out
    assert re.search(r"listening on https://localhost:\d+", out)
    # 4-5: an eUICC and an EID-bound order with its activation code and QR code
    eid = re.search(r"EID (\d{32})", out.split("4. A phone")[1])
    assert eid is not None
    order = re.search(r"ICCID (\d{19,20}), bound to the EID", out)
    assert order is not None
    iccid = order.group(1)
    assert re.search(r"activation code: LPA:1\$localhost:\d+\$[0-9A-Z-]+\n", out)
    assert "█" in out  # the QR code
    # 6: every SGP.22 step shown, then installed
    progress = [line.strip()[4:] for line in out.splitlines() if line.strip().startswith("... ")]
    assert [p for p in progress if p.startswith("ES")] == [
        "ES9+ InitiateAuthentication",
        "ES10b AuthenticateServer",
        "ES9+ AuthenticateClient",
        "ES10b PrepareDownload",
        "ES9+ GetBoundProfilePackage",
        "ES10b LoadBoundProfilePackage",
        "ES9+ HandleNotification",
    ]
    assert 'installed "Demo subscription" from rspfed mobile' in out
    # 7: enabled, and the network's AKA challenge answered by the USIM
    assert f"profile {iccid} is enabled" in out
    assert "RES = XRES (8 octets), CK and IK agree" in out
    # 8: the enable notification delivered; the SM-DP+ saw the installation
    assert "1 of 1 pending notification(s) delivered" in out
    assert f"SM-DP+ inventory: {iccid} is installed" in out
    assert re.search(r"done in \d+\.\d+ s", out)
