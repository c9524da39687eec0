"""``rspfed demo`` runs as README says: no arguments, exit 0, the story told; ``--step``
pauses on a terminal and goes on at its EOF."""

from __future__ import annotations

import io
import os
import re
import select
import subprocess
import sys
import time

import pytest
import segno

from rspfed.cli._demo_qr import read_terminal_qr


def chapter_text(out: str, title: str) -> str:
    """The text of the chapter whose title starts with ``title`` (up to the next one)."""
    found = re.search(rf"^\d+\. {re.escape(title)}.*?(?=^\d+\. |\Z)", out, re.M | re.S)
    assert found is not None, title
    return found.group(0)


def test_demo_runs_and_tells_the_story() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "rspfed", "demo"],
        stdin=subprocess.DEVNULL,
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
    code_shown = re.search(r"activation code: (LPA:1\$localhost:\d+\$[0-9A-Z-]+)\n", out)
    assert code_shown is not None
    assert "█" in out  # the QR codes
    # 5: the phone takes the activation code from the rendered QR code
    scanned = re.search(r"the phone's camera reads the QR code above: (\S+)\n", out)
    assert scanned is not None
    assert scanned.group(1) == code_shown.group(1)
    assert "read back from the rendered QR code" in out
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
        r"^   (phone|laptop|hotspot|watch|tablet) .* active  ICCID (\d+) IMSI (\d+)", out, re.M
    )
    assert sorted(r[0] for r in rows) == ["hotspot", "laptop", "phone", "tablet", "watch"]
    assert len({r[1] for r in rows}) == 5
    assert len({r[2] for r in rows}) == 5
    assert "5 devices, 5 distinct profiles: nothing cloned" in out
    # 12: the hotspot removed: refused by the network, its profile deleted
    assert "hotspot attaches: removed" in out
    hotspot_iccid = next(r[1] for r in rows if r[0] == "hotspot")
    assert f"hotspot's next sync: removed; its LPA deleted {hotspot_iccid}" in out
    assert "hotspot (4 devices left)" in out
    # 13: the shared pool: alerts once each, the tablet stopped at its quota, a top-up
    pool = chapter_text(out, "One 20 GB pool")
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
    assert "the pool's alerts fired as it filled: 50 %, 75 %, 90 %" in first
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
    # 14: abroad: a partner before a stronger stranger (refused, forbidden), the periodic
    # search takes the higher-priority partner, usage metered per visited network
    roaming = chapter_text(out, "Abroad")
    assert "selected 20810: an operator-list partner ranks above the stronger 20815" in roaming
    assert "the phone tries 20815 by hand: plmn-not-allowed" in roaming
    assert "20815 is not allowed for this profile: added to EF.FPLMN" in roaming
    assert re.search(r"found partner 20801 \(higher priority\): taken over in \d+\.\d s", roaming)
    assert re.search(r"usage by visited network: 20801 0\.3 GB, 20810 0\.2 GB", roaming)
    # 15-16: a second carrier's profile as backup; fail-over and fail-back, notified
    backup = re.search(r"the phone downloads Carrier Two's profile (\d+) next to (\d+)", out)
    assert backup is not None
    two, one = backup.groups()
    failover = chapter_text(out, "Carrier One's network goes down")
    assert f"switch {one} -> {two}: primary {one} lost" in failover
    assert f"switch {two} -> {one}: primary {one} seen again (trial)" in failover
    assert "trial -> on-primary (attach-ok)" in failover
    assert f"on {one} again after" in failover
    assert "Carrier One disable, enable; Carrier Two install, enable, disable" in failover
    _watch_and_final_tables(out, rows, pool)
    total = re.search(r"^demo finished in (\d+\.\d) s$", out, re.M)
    assert total is not None
    times = re.search(r"chapter times: (.*)\n", out)
    assert times is not None
    numbers = [int(t.split()[0]) for t in times.group(1).split(", ")]
    assert numbers == list(range(1, len(numbers) + 1))
    assert len(numbers) >= 17


def _watch_and_final_tables(out: str, rows: list[tuple[str, str, str]], pool: str) -> None:
    """9: the watch over BLE; the closing tables."""
    watch = chapter_text(out, "The watch joins as a companion over BLE")
    assert "the watch (no camera, no network) shows its pairing offer" in watch
    assert "█" in watch
    assert re.search(r"phone   \. connected: ble:", watch)
    assert "watch   . paired by QR code: secure channel up" in watch
    assert "phone   . paired by QR code: secure channel up" in watch
    assert re.search(r"phone   \. watch token [0-9a-f]{32} signed", watch)
    downloaded = re.search(
        r"downloaded (\d+) to the watch: .*\((\d+) ES10 requests relayed\)", watch
    )
    assert downloaded is not None
    watch_iccid = downloaded.group(1)
    assert int(downloaded.group(2)) > 5
    assert re.search(r"\d+ ES10 requests answered by the watch's eUICC, 0 refused", watch)
    # managed later through the phone: a reconnection on the stored key lists its profile
    assert "watch   . the paired phone reconnects (Noise keyed by the stored psk)" in watch
    assert f"lists the watch's profiles: {watch_iccid} enabled\n" in watch
    listed = {r[0]: (r[1], r[2]) for r in rows}
    assert listed["watch"][0] == watch_iccid
    # the watch attaches with its own IMSI, the one the operator lists for it
    attached = re.search(
        r"the watch attaches with its own IMSI (\d+) \(the phone's is (\d+)\)", watch
    )
    assert attached is not None
    assert attached.group(1) == listed["watch"][1]
    assert attached.group(2) == listed["phone"][1]
    assert attached.group(1) != attached.group(2)
    assert re.search(r"the watch attaches .*: data, voice, sms\n", watch)
    # the watch registers its own key by itself (companion_serve(register_with=...))
    registered = re.search(
        r"watch   \. registered with the operator: secondary watch device (d[a-z2-7]+), "
        r"key id ([0-9a-f]{16})",
        watch,
    )
    assert registered is not None
    assert (
        f"the watch registered its own device key by itself (EAP-AKA' with its USIM, straight "
        f"to the operator): device {registered.group(1)} key id {registered.group(2)}..." in watch
    )
    assert "the watch uses 7 MB on its own: the pool counts 7 MB for Ana's watch" in watch
    # its usage is in the pool (the pool chapter's per-device lines)
    assert re.search(r"Ana's watch +7 MB", pool)

    # 17: the subscription moves to a new phone; the linked devices keep their service
    change = chapter_text(out, "The subscription moves to a new phone")
    moved = re.search(
        r"moved in [\d.]+ s: ICCID (\d+) on EID (\d{32}) -> ICCID (\d+) on EID (\d{32}); "
        r"the old profile is deleted",
        change,
    )
    assert moved is not None
    old_iccid, old_eid, new_iccid, new_eid = moved.groups()
    assert old_iccid == listed["phone"][0]
    assert new_iccid != old_iccid
    assert new_eid != old_eid
    assert "old phone ? Move your subscription to 'new phone' (phone, EID" in change
    assert f"old phone . profile {old_iccid} deleted" in change
    assert f"new phone . the network serves {new_iccid}" in change
    assert "the new phone on the network (its new IMSI): data, voice, sms, tethering" in change
    for name in ("watch", "tablet", "laptop"):
        assert f"{name} still attaches with its own profile {listed[name][0]}" in change
    assert "it is the primary (new phone)" in change
    assert "1 companion pairing(s) moved with it" in change

    final = chapter_text(out, "The subscription at the end")
    devices = final.split("Profiles on each eUICC")[0]
    table = re.findall(
        r"^   (.{13}) (phone|laptop|hotspot|watch|tablet) +(primary|secondary) +(\d{32})  "
        r"(\d{19,20})  (\w+)$",
        devices,
        re.M,
    )
    by_class = {t[1]: t for t in table}
    assert sorted(by_class) == ["hotspot", "laptop", "phone", "tablet", "watch"]
    assert len(table) == 5
    assert by_class["phone"][2] == "primary"
    assert by_class["phone"][3] == new_eid
    assert by_class["phone"][4] == new_iccid
    assert by_class["hotspot"][5] == "removed"
    assert all(by_class[c][5] == "active" for c in ("phone", "laptop", "watch", "tablet"))
    assert by_class["watch"][0].strip() == "Ana's watch"
    assert by_class["tablet"][0].strip() == "kitchen"
    for cls, (iccid, _) in listed.items():
        if cls != "phone":
            assert by_class[cls][4] == iccid
    # profiles per eUICC: the watch's profile on the watch's eUICC, not on the phone's
    profiles = final.split("Profiles on each eUICC")[1].split("Pool")[0]
    owners: dict[str, str] = {}
    eids: dict[str, str] = {}
    current = ""
    for line in profiles.splitlines():
        head = re.match(r"^   ([\w-]+) +EID (\d{32})", line)
        if head:
            current = head.group(1)
            eids[current] = head.group(2)
        for iccid in re.findall(r"  (\d{19,20})  (?:enabled|disabled)", line):
            owners[iccid] = current
    assert owners[watch_iccid] == "watch"
    assert eids["watch"] == by_class["watch"][3]
    assert eids["phone"] == old_eid
    assert eids["new-phone"] == by_class["phone"][3]
    assert owners[new_iccid] == "new-phone"
    assert old_iccid not in owners  # deleted from the old phone's eUICC
    assert watch_iccid not in [i for i, o in owners.items() if o != "watch"]
    assert "hotspot  EID" in profiles
    assert "(no profile)" in profiles  # the removed hotspot's was deleted
    # the pool: used/limit and every device's share
    shares = final.split("Pool")[-1]
    assert re.search(r"used [\d.]+ GB of 25\.0 GB \([\d.]+ %\)", shares)
    assert re.search(r"Ana's watch +watch +7 MB", shares)
    assert re.search(r"kitchen +tablet +5\.0 GB +quota 5\.0 GB", shares)
    assert "5 devices (4 in service), 5 profiles, one pool" in final


def test_step_pauses_on_a_terminal_and_goes_on_at_eof() -> None:
    """``--step`` with stdin a terminal: two chapters answered by Enter, then the terminal
    closes (EOF): no more pauses, and the story completes."""
    master, slave = os.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rspfed", "demo", "--step"],
        stdin=slave,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    os.close(slave)
    assert proc.stdout is not None
    out = b""
    try:
        os.write(master, b"\n\n")
        deadline = time.monotonic() + 120
        while out.count(b"[press Enter for chapter") < 3 and time.monotonic() < deadline:
            ready, _, _ = select.select([proc.stdout], [], [], 1.0)
            if ready:
                chunk = os.read(proc.stdout.fileno(), 65536)
                if not chunk:
                    break
                out += chunk
        assert out.count(b"[press Enter for chapter") == 3, out.decode()
    finally:
        os.close(master)
    rest, err = proc.communicate(timeout=120)
    text = (out + rest).decode()
    assert proc.returncode == 0, err.decode()
    assert text.count("[press Enter for chapter") == 3
    assert "[press Enter for chapter 4]" in text
    assert re.search(r"^demo finished in \d+\.\d s", text, re.M)


def error_index(error: str) -> int:
    """One mask per level for the large symbols (each mask is tried on the small ones)."""
    return "lmqh".index(error) * 2 + 1


def test_the_qr_reader_reads_what_segno_renders() -> None:
    """The demo's QR camera against an independent encoder (segno): every level, every
    mask, the three modes, small and large versions."""
    texts = [
        "LPA:1$localhost:43829$KY85Z-ACCNE-BMQJ0-6TFQ5",
        "LPA:1$SMDP.EXAMPLE.COM$04386-AGYFT-A74Y8-3F815",
        "8944" * 13,
        "rspfed:1:pair:" + "Ab0-_" * 60,
        "x" * 1200,
    ]
    for text in texts:
        for error in "lmqh":
            for mask in range(8) if len(text) < 200 else (error_index(error),):
                try:
                    qr = segno.make(text, error=error, micro=False, mask=mask, boost_error=False)
                except segno.DataOverflowError:
                    continue
                rendered = io.StringIO()
                qr.terminal(out=rendered, compact=True, border=2)
                assert read_terminal_qr(rendered.getvalue()) == text, (qr.version, error, mask)


def test_step_with_stdin_closed_or_not_a_terminal_does_not_pause(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``--step`` with stdin closed (``sys.stdin`` None, as under ``<&-``) or a pipe:
    the chapters run on, each timed."""
    from rspfed.cli._demo_common import Pacing

    for stdin in (None, io.StringIO("\n\n")):
        monkeypatch.setattr(sys, "stdin", stdin)
        pacing = Pacing()
        pacing.start(step=True)
        for number in (1, 2, 3):
            pacing.begin(number, f"chapter {number}")
        pacing.close()
        assert not pacing.step
        assert [n for n, _, _ in pacing.times] == [1, 2, 3]
        out = capsys.readouterr().out
        assert "stdin is not a terminal" in out
        assert "press Enter" not in out
    if stdin is not None:
        assert stdin.read() == "\n\n"  # nothing was consumed
