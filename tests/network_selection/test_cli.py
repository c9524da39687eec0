"""``rspfed operator cells``, ``network scan`` and ``attach --plmn`` against ``operator serve``."""

from __future__ import annotations

import json
import re

from tests.federation_cli.conftest import Service, cli
from tests.federation_cli.conftest import service as service  # the module's server


def test_cells_scan_and_attach(service: Service) -> None:
    data = str(service.data)
    out = cli(
        "operator", "cells", "--data-dir", data,
        "--set", "00101:eutran:-104:FR:Home",
        "--set", "20801:EUTRAN:-70:fr:Partner",
        "--set", "20820:ngran:-60::Stranger",
        "--partner", "20801",
        "--search-period", "6m",
    ).stdout  # fmt: skip
    assert re.search(r"00101\s+eutran FR -104 dBm\s+Home", out)
    assert re.search(r"20820\s+ngran\s+-- -60 dBm\s+Stranger", out)
    assert "roaming partners: 20801" in out
    assert "EF.HPPLMN of new profiles: 0:06:00" in out
    listed = json.loads(cli("operator", "cells", "--data", data, "--json").stdout)
    assert [(c["plmn"], c["rat"], c["signal_dbm"]) for c in listed["cells"]] == [
        ("00101", "eutran", -104),
        ("20801", "eutran", -70),
        ("20820", "ngran", -60),
    ]
    assert listed["partners"] == ["20801"]
    assert listed["searchPeriod"] == 360

    out = cli(
        "operator", "subscribe", "--data", data, "--profile-type", "ts48",
        "--pool", "1GB", "--devices", "2",
    ).stdout  # fmt: skip
    code = re.search(r"^(LPA:1\$\S+)$", out, re.M)
    iccid = re.search(r"ICCID (\d+)", out)
    assert code is not None
    assert iccid is not None
    phone, _ = service.euicc("radio-phone")
    cli("lpa", "download", "--euicc", str(phone), code.group(1), "--yes", "--quiet")
    cli("lpa", "enable", iccid.group(1), "--euicc", str(phone))
    tls = ("--ca-file", str(service.ca_file))

    scan = json.loads(
        cli(
            "network", "scan", "--euicc", str(phone), "--operator", service.url, *tls, "--json"
        ).stdout
    )
    assert scan["hplmn"] == "00101"
    assert scan["hpplmnPeriod"] == 360
    assert scan["selected"] == "00101"
    assert scan["roaming"] is False
    classes = {n["plmn"]: n["priority"] for n in scan["networks"]}
    assert classes == {"00101": "hplmn", "20801": "operator", "20820": "other-high-quality"}
    text = cli("network", "scan", "--euicc", str(phone), "--operator", service.url, *tls).stdout
    assert re.search(r"^\* 00101 ", text, re.M)
    assert "selected: 00101 (home; hplmn: the home network (EHPLMN) is on air)" in text

    out = cli("network", "attach", "--euicc", str(phone), "--operator", service.url, *tls).stdout
    assert "network PLMN 00101 Home FR eutran -104 dBm: hplmn, home (initial)" in out
    assert "attached IMSI 00101" in out
    refused = cli(
        "network", "attach", "--euicc", str(phone), "--operator", service.url, *tls,
        "--plmn", "20820", ok=False,
    )  # fmt: skip
    assert refused.exit_code == 1
    assert "plmn-not-allowed" in refused.stderr

    # the home network goes down: automatic selection roams to the partner
    cli("operator", "cells", "--data", data, "--off", "00101")
    out = cli("network", "attach", "--euicc", str(phone), "--operator", service.url, *tls).stdout
    assert "network PLMN 20801 Partner FR eutran -70 dBm: operator, roaming (initial)" in out
    out = cli(
        "network", "use", "--euicc", str(phone), "--operator", service.url, *tls,
        "--bytes", "1MB",
    ).stdout  # fmt: skip
    assert "carried 1MB of 1MB" in out
    refused = cli(
        "network", "attach", "--euicc", str(phone), "--operator", service.url, *tls,
        "--plmn", "00101", ok=False,
    )  # fmt: skip
    assert refused.exit_code == 1
    assert "no-coverage" in refused.stderr

    # a change scheduled for later shows in the listing; --no-partner removes a partner
    out = cli(
        "operator", "cells", "--data", data, "--set", "00101:eutran:-90", "--in", "1h",
        "--no-partner", "20801",
    ).stdout  # fmt: skip
    assert re.search(r"00101\s+eutran FR off air\s+Home\s+\(then -90 dBm at ", out)
    assert "roaming partners: -" in out
    bad = cli("operator", "cells", "--data", data, "--set", "00101:lte:-90", ok=False)
    assert bad.exit_code == 2
    assert "RAT is one of" in bad.stderr
