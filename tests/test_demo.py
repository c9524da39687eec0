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
    # 4: a subscription, its activation code and QR code, a phone
    assert re.search(r"activation code: LPA:1\$localhost:\d+\$[0-9A-Z-]+\n", out)
    assert "█" in out  # the QR codes
    assert re.search(r"phone EID (\d{32})", out)
    # 5: every SGP.22 step shown, then installed
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
    installed = re.search(r'installed and enabled "Demo subscription" .*\(ICCID (\d+)\)', out)
    assert installed is not None
    phone_iccid = installed.group(1)
    assert f"SM-DP+ inventory: {phone_iccid} is installed" in out
    # 6-7: the network lets the phone in with every service; its key registered
    assert (
        "attached (AUTHENTICATE answered by the USIM over APDUs): data, voice, sms, tethering"
        in out
    )
    assert re.search(r"device d[a-z2-7]+ is the primary; federation key [0-9a-f]{16}", out)
    # 8: the laptop joins by short code over the LAN (pairing), the hotspot by a token
    code = re.search(r"the phone shows its short code: (\d{1,3}-[a-z]+-[a-z]+) ", out)
    assert code is not None
    assert "phone   . paired by short code: secure channel up" in out
    assert "laptop  . paired by short code: secure channel up" in out
    assert "phone   ? Allow Ana's laptop — laptop, data only — to join?" in out
    assert re.search(r"laptop joined by short code over LAN: its own profile \d+", out)
    assert "rspfed:1:token:" in out
    assert "laptop on the network: data\n" in out
    assert "laptop asks for voice: service-not-allowed" in out
    assert "the same token again: the token was already used" in out
    assert "on the network: data, tethering" in out
    # 9: the tablet through the cloud
    assert 'phone approved "kitchen" (tablet' in out
    assert "on the network: data, voice, sms\n" in out
    # 10: four devices, four distinct profiles
    rows = re.findall(
        r"^   (phone|laptop|hotspot|tablet) .* active  ICCID (\d+) IMSI (\d+)", out, re.M
    )
    assert sorted(r[0] for r in rows) == ["hotspot", "laptop", "phone", "tablet"]
    assert len({r[1] for r in rows}) == 4
    assert len({r[2] for r in rows}) == 4
    assert "4 devices, 4 distinct profiles: nothing cloned" in out
    # 11: the laptop removed: refused by the network, its profile deleted
    assert "laptop attaches: removed" in out
    laptop_iccid = next(r[1] for r in rows if r[0] == "laptop")
    assert f"laptop's next sync: removed; its LPA deleted {laptop_iccid}" in out
    assert "laptop (3 devices left)" in out
    # 12: the shared pool: alerts once each, the tablet stopped at its quota, a top-up
    pool = out.split("12. One 20 GB pool")[1]
    assert "tablet uses 2.5 GB: carried 2.0 GB, then refused: quota-exhausted" in pool
    first, _, after_topup = pool.partition("tops the pool up by 5 GB: 25.0 GB")
    alerts = re.findall(r"alert  (\d+) % of the (pool|tablet's quota)", first)
    assert sorted(a for a in alerts if a[1] == "pool") == [
        ("50", "pool"),
        ("75", "pool"),
        ("90", "pool"),
    ]
    assert sorted(int(a[0]) for a in alerts if a[1] != "pool") == [50, 75, 90, 100]
    assert "each once (0 on the next fetch)" in first
    assert "pool: 18.5 GB of 20.0 GB (92.5 %)" in first
    # the top-up opens at 74 %: only 75 % and above re-arm
    assert re.findall(r"alert  (\d+) % of the pool", after_topup) == ["75"]
    assert re.search(r"kitchen +5\.0 GB +5\.0 GB +data barred", after_topup)
    synced = re.search(
        r"synced the ledger \(version \d+\): ([\d.]+ GB) used, "
        r"the same as the operator's ([\d.]+ GB)",
        after_topup,
    )
    assert synced is not None
    assert synced.group(1) == synced.group(2) == "19.5 GB"
    assert "dashboard link" in after_topup
    assert "HTTP 200" in after_topup
    # 13: abroad: a partner before a stronger stranger (refused, forbidden), the periodic
    # search takes the higher-priority partner, usage metered per visited network
    roaming = out.split("13. Abroad")[1].split("14. ")[0]
    assert "selected 20810: an operator-list partner ranks above the stronger 20815" in roaming
    assert "the phone tries 20815 by hand: plmn-not-allowed" in roaming
    assert "20815 is not allowed for this profile: added to EF.FPLMN" in roaming
    assert re.search(r"found partner 20801 \(higher priority\): taken over in \d+\.\d s", roaming)
    assert re.search(r"usage by visited network: 20801 0\.3 GB, 20810 0\.2 GB", roaming)
    # 14-15: a second carrier's profile as backup; fail-over and fail-back, notified
    backup = re.search(r"the phone downloads Carrier Two's profile (\d+) next to (\d+)", out)
    assert backup is not None
    two, one = backup.groups()
    failover = out.split("15. Carrier One's network goes down")[1].split("16. ")[0]
    assert f"switch {one} -> {two}: primary {one} lost" in failover
    assert f"switch {two} -> {one}: primary {one} seen again (trial)" in failover
    assert "trial -> on-primary (attach-ok)" in failover
    assert f"on {one} again after" in failover
    assert "Carrier One disable, enable; Carrier Two install, enable, disable" in failover
    assert re.search(r"done in \d+\.\d+ s", out)
