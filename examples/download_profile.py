"""Download a profile into a software eUICC, all in one process.

What an app embedding rspfed does to provision an eSIM profile (SGP.22):
a test PKI (GSMA CI, EUM, eUICC and SM-DP+ certificates), an SM-DP+ core
with a GSMA TS.48 test profile as its template, an ES2+ order (DownloadOrder
+ ConfirmOrder: the activation code a QR code would carry), a software eUICC
with its SQLite store, and the LPA running the whole ES9+/ES10 download:
mutual authentication, the bound profile package, the installation result.
Then the profile is enabled and listed.

No network and no TLS: :class:`rspfed.smdp.InProcessEs9` puts the SM-DP+
core behind the LPA's ES9+ interface (``rspfed smdp serve`` puts the same
core behind HTTPS).

Run: ``python examples/download_profile.py``
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import rspfed
from rspfed.euicc import Euicc
from rspfed.lpa import InProcessEs10, Lpa, ProfileInfo, download
from rspfed.pki.testpki import TestPki
from rspfed.smdp import InProcessEs9, ProfileType, Smdp
from rspfed.smdp.datadir import init_data_dir, load_config, open_store

PACKAGE = Path(rspfed.__file__).parent / "data" / "ts48" / "TS48v2_SAIP2.3_BERTLV.der"
"""A GSMA TS.48 test profile package (DER SAIP), shipped with rspfed."""


async def provision(root: Path) -> tuple[str, list[ProfileInfo]]:
    """Order a profile, download it into a new eUICC, enable it: (EID, profiles)."""
    now = datetime.now(UTC)
    pki = TestPki.create(root / "pki", now=now)  # CI, EUM, SM-DP+ certificates and keys

    # The SM-DP+: its data directory (credentials, SQLite store) and a profile type.
    init_data_dir(root / "smdp", pki, address="smdp.example")
    data = root / "smdp"
    smdp = Smdp(load_config(data), open_store(data), now=lambda: datetime.now(UTC))
    smdp.add_profile_type(
        ProfileType.from_metadata(
            "ts48",
            PACKAGE.read_bytes(),
            {
                "serviceProviderName": "Example Mobile",
                "profileName": "Example",
                "profileClass": "operational",
            },
        )
    )

    # The operator's ES2+ order: what the activation code (QR code) carries.
    iccid = smdp.download_order(profile_type="ts48")
    activation_code = smdp.confirm_order(iccid=iccid).activation_code
    assert activation_code is not None
    print(f"activation code: {activation_code}")

    # A software eUICC (its EID, certificates and profiles live in one SQLite file).
    euicc = Euicc.create(root / "euicc.db", pki)
    try:
        es10 = InProcessEs10(euicc.isdr)  # ES10a/b/c as DER, straight into the ISD-R
        result = await download(es10, activation_code, es9=InProcessEs9(smdp))
        print(f"installed ICCID {result.iccid} in {result.timings['total'] * 1000:.0f} ms")

        lpa = Lpa(es10)
        lpa.enable(result.iccid)
        return lpa.eid(), lpa.profiles()
    finally:
        euicc.close()
        smdp.store.close()


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        eid, profiles = asyncio.run(provision(Path(tmp)))
    print(f"eUICC {eid}:")
    for profile in profiles:
        print(f"  {profile.iccid}  {profile.state:8}  {profile.profile_name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
