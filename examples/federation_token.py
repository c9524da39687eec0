"""Issue and check a federation token (rspfed's own format, docs/federation-token.md).

The primary device (the phone holding the subscription) authorises one
secondary device -- named by its eUICC's EID and its class -- to get a
*linked* profile of the subscription.  Nothing is cloned: the token only lets
the operator bind a new profile to that device's own eUICC.  A token is
short-lived (minutes), single-use (the operator consumes its ``tokenId``) and
bound to one EID.

This example plays both ends without a network: the primary signs a token
and shows it as the ``rspfed:1:token:...`` URI a QR code carries; the
operator side parses the URI and checks the token against the primary's
registered public key, the clock and the EID of the eUICC presenting it --
and refuses a token for another EID or one that has expired.

Run: ``python examples/federation_token.py``
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta

from cryptography.hazmat.primitives.asymmetric import ec

from rspfed.errors import TokenEidMismatchError, TokenExpiredError
from rspfed.federation.token import (
    DeviceClass,
    FederationToken,
    Service,
    issue_token,
    verify_token,
)
from rspfed.federation.uri import token_from_uri, token_uri

TABLET_EID = "89049032123451234512345678901235"
"""The tablet's EID (32 digits with valid check digits, as GSMA SGP.29 defines them)."""
OTHER_EID = "89001012012341234012345678901224"


def authorise_tablet(primary_key: ec.EllipticCurvePrivateKey, now: datetime) -> str:
    """The primary's side: a token for the tablet, as the URI shown in a QR code."""
    der = issue_token(
        primary_key=primary_key,
        subscription_id="sub-0001",
        eid=TABLET_EID,
        device_class=DeviceClass.TABLET,
        services=[Service.DATA, Service.SMS],
        quota=5 * 10**9,  # this device's share of the pool, in octets
        now=now,
        ttl=timedelta(minutes=10),
        rand=os.urandom,
    )
    return token_uri(der)


def redeem(
    uri: str, primary_public: ec.EllipticCurvePublicKey, eid: str, now: datetime
) -> FederationToken:
    """The operator's check (it also records the token id as consumed: single use)."""
    return verify_token(
        token_from_uri(uri), primary_public_key=primary_public, now=now, expected_eid=eid
    )


def main() -> int:
    primary_key = ec.generate_private_key(ec.SECP256R1())  # the primary's federation key
    now = datetime.now(UTC)
    uri = authorise_tablet(primary_key, now)
    print(f"QR code payload ({len(uri)} characters): {uri[:48]}...")

    token = redeem(uri, primary_key.public_key(), TABLET_EID, now)
    services = ", ".join(sorted(s.value for s in token.services))
    print(
        f"accepted: a {token.device_class.value} ({services}) until {token.not_after:%H:%M:%S} UTC"
    )

    try:
        redeem(uri, primary_key.public_key(), OTHER_EID, now)
    except TokenEidMismatchError as exc:
        print(f"another eUICC presenting it: refused ({exc})")
    try:
        redeem(uri, primary_key.public_key(), TABLET_EID, now + timedelta(minutes=11))
    except TokenExpiredError as exc:
        print(f"eleven minutes later: refused ({exc})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
