"""The watch's side of the ES10 relay: which relayed requests reach its eUICC.

A companion watch answers its phone's relayed ES10 requests
(:class:`~rspfed.transfer.messages.Es10Request`) with its own eUICC.  The
phone is the watch's LPA and SGP.22 trusts an LPA for local profile
management, so the relay carries what an LPA sends for a download and for
managing profiles; what only the device's own user should do stays local.
:class:`CompanionResponder` checks each request's outer tag against
:data:`ES10_RELAY_TAGS` before the eUICC sees it:

======================  ===============================================
allowed                 ES10 functions (SGP.22 v2 §5.6, §5.7)
======================  ===============================================
download                GetEUICCInfo1/2 (``BF20``/``BF22``), GetEUICCChallenge
                        (``BF2E``), AuthenticateServer (``BF38``), PrepareDownload
                        (``BF21``), CancelSession (``BF41``),
                        LoadBoundProfilePackage (``BF36`` and the segments
                        ``A0``-``A3``, ``86``-``88``), GetRAT (``BF43``)
profiles                GetProfilesInfo (``BF2D``), Enable/Disable/DeleteProfile
                        (``BF31``-``BF33``), SetNickname (``BF29``), GetEuiccData
                        (``BF3E``), GetEuiccConfiguredAddresses (``BF3C``)
notifications           ListNotification (``BF28``), RetrieveNotificationsList
                        (``BF2B``), RemoveNotificationFromList (``BF30``)
======================  ===============================================

Refused with ``notAllowed``: eUICCMemoryReset (``BF34``), SetDefaultDpAddress
(``BF3F``) and LoadCRL (``BF35``) — a reset or a changed default SM-DP+ is the
watch owner's decision, made on the watch — and anything else.  The eUICC's own
checks (signatures, MACs, profile state, PPRs) still apply to what passes.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from rspfed.errors import RspfedError
from rspfed.lpa.es10 import Es10
from rspfed.transfer.messages import Es10Refusal, Es10RefusalReason, Es10Request, Es10Response

__all__ = ["ES10_RELAY_TAGS", "CompanionResponder", "request_tag"]

ES10_RELAY_TAGS: Mapping[bytes, str] = MappingProxyType(
    {
        bytes.fromhex("BF20"): "GetEUICCInfo1",
        bytes.fromhex("BF22"): "GetEUICCInfo2",
        bytes.fromhex("BF2E"): "GetEUICCChallenge",
        bytes.fromhex("BF38"): "AuthenticateServer",
        bytes.fromhex("BF21"): "PrepareDownload",
        bytes.fromhex("BF41"): "CancelSession",
        bytes.fromhex("BF36"): "LoadBoundProfilePackage",
        bytes.fromhex("A0"): "LoadBoundProfilePackage (ConfigureISDP)",
        bytes.fromhex("A1"): "LoadBoundProfilePackage (StoreMetadata)",
        bytes.fromhex("A2"): "LoadBoundProfilePackage (ReplaceSessionKeys)",
        bytes.fromhex("A3"): "LoadBoundProfilePackage (profile elements)",
        bytes.fromhex("86"): "LoadBoundProfilePackage (segment)",
        bytes.fromhex("87"): "LoadBoundProfilePackage (segment)",
        bytes.fromhex("88"): "LoadBoundProfilePackage (segment)",
        bytes.fromhex("BF43"): "GetRAT",
        bytes.fromhex("BF2D"): "GetProfilesInfo",
        bytes.fromhex("BF31"): "EnableProfile",
        bytes.fromhex("BF32"): "DisableProfile",
        bytes.fromhex("BF33"): "DeleteProfile",
        bytes.fromhex("BF29"): "SetNickname",
        bytes.fromhex("BF3E"): "GetEuiccData",
        bytes.fromhex("BF3C"): "GetEuiccConfiguredAddresses",
        bytes.fromhex("BF28"): "ListNotification",
        bytes.fromhex("BF2B"): "RetrieveNotificationsList",
        bytes.fromhex("BF30"): "RemoveNotificationFromList",
    }
)
"""Outer tags of the ES10 requests a phone may relay to its watch, with their names."""


def request_tag(der: bytes) -> bytes:
    """The outer tag of a request (one octet, or two for a ``xF`` high-tag-number first octet).

    ``b""`` for an empty or truncated request.
    """
    if not der:
        return b""
    if der[0] & 0x1F == 0x1F:
        return der[:2] if len(der) >= 2 else b""
    return der[:1]


class CompanionResponder:
    """Answers the phone's relayed ES10 requests with the watch's eUICC (module doc).

    ``answer`` returns the eUICC's :class:`~rspfed.transfer.messages.Es10Response`,
    or an :class:`~rspfed.transfer.messages.Es10Refusal`: ``notAllowed`` for a
    request outside :data:`ES10_RELAY_TAGS` (the eUICC never sees it),
    ``error`` when the eUICC link fails with an :class:`~rspfed.errors.RspfedError`
    (a malformed request, a card that cannot answer).  It never raises.
    ``refused`` counts the refusals.
    """

    def __init__(self, es10: Es10) -> None:
        self._es10 = es10
        self.refused = 0

    def allowed(self, request: Es10Request) -> bool:
        """Whether ``request`` may reach the eUICC."""
        return request_tag(request.der) in ES10_RELAY_TAGS

    def answer(self, request: Es10Request) -> Es10Response | Es10Refusal:
        """The eUICC's answer to ``request``, or the refusal (see the class doc)."""
        if not self.allowed(request):
            self.refused += 1
            return Es10Refusal(Es10RefusalReason.NOT_ALLOWED)
        try:
            return Es10Response(self._es10.transceive(request.der))
        except RspfedError:
            self.refused += 1
            return Es10Refusal(Es10RefusalReason.ERROR)
