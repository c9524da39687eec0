"""The LPA's profile operations on one eUICC (SGP.22 §3.2, ES10c) and its notifications.

:class:`Lpa` wraps an :class:`~rspfed.lpa.es10.Es10` link: list profiles,
enable, disable, delete, set a nickname, list and deliver notifications, and
download (:func:`rspfed.lpa.download.download`).  Profiles are named by ICCID
(a ``str`` of digits) or by ISD-P AID (``bytes``).

The eUICC's result codes become errors: ``iccidOrAidNotFound`` →
:class:`~rspfed.errors.UsageError`, ``profileNotInDisabledState`` /
``profileNotInEnabledState`` / ``wrongProfileReenabling`` →
:class:`~rspfed.errors.StateError`, ``disallowedByPolicy`` →
:class:`~rspfed.errors.PolicyError`, ``undefinedError`` (the eUICC could not
commit) → :class:`~rspfed.errors.ProtocolError`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final, Protocol

import attrs

from rspfed import asn1
from rspfed.asn1 import rsp
from rspfed.errors import PolicyError, ProtocolError, RspfedError, StateError, UsageError
from rspfed.lpa import _es10x
from rspfed.lpa.activation import ActivationCode
from rspfed.lpa.download import DownloadResult, download
from rspfed.lpa.es9 import Es9Settings
from rspfed.lpa.es10 import Es10
from rspfed.lpa.notifications import Delivery, Notification, deliver, list_notifications
from rspfed.saip.identifiers import decode_iccid, encode_iccid

__all__ = ["Lpa", "ProfileInfo", "store_ci_certificates"]

_ERRORS: Final[dict[str, type[RspfedError]]] = {
    "iccidOrAidNotFound": UsageError,
    "iccidNotFound": UsageError,
    "profileNotInDisabledState": StateError,
    "profileNotInEnabledState": StateError,
    "wrongProfileReenabling": StateError,
    "disallowedByPolicy": PolicyError,
    "undefinedError": ProtocolError,
}
_TEXT: Final[dict[str, str]] = {
    "iccidOrAidNotFound": "no such profile on the eUICC",
    "iccidNotFound": "no such profile on the eUICC",
    "profileNotInDisabledState": "the profile is not disabled",
    "profileNotInEnabledState": "the profile is not enabled",
    "wrongProfileReenabling": "the profile cannot be re-enabled now",
    "disallowedByPolicy": "a profile policy rule forbids it",
    "undefinedError": "the eUICC failed (undefinedError)",
}


@attrs.frozen
class ProfileInfo:
    """One profile as ES10c.GetProfilesInfo describes it (icon left out)."""

    iccid: str
    isdp_aid: bytes
    state: str
    """``enabled`` or ``disabled``."""
    nickname: str | None
    service_provider_name: str | None
    profile_name: str | None
    profile_class: str
    """``test``, ``provisioning`` or ``operational``."""
    profile_policy_rules: frozenset[str] = frozenset()

    @property
    def enabled(self) -> bool:
        """Whether the profile is enabled."""
        return self.state == "enabled"


def _profile_info(native: dict[str, Any]) -> ProfileInfo:
    iccid = native.get("iccid")
    aid = native.get("isdpAid")
    state = native.get("profileState")
    pclass = native.get("profileClass")
    return ProfileInfo(
        iccid=decode_iccid(bytes(iccid)) if iccid is not None else "",
        isdp_aid=bytes(aid) if aid is not None else b"",
        state=str(state) if state is not None else "disabled",
        nickname=native.get("profileNickname"),
        service_provider_name=native.get("serviceProviderName"),
        profile_name=native.get("profileName"),
        profile_class=str(pclass) if pclass is not None else "operational",
        profile_policy_rules=frozenset(native.get("profilePolicyRules") or ()),
    )


class _CertificateStore(Protocol):
    def certificate_names(self) -> list[str]: ...
    def certificate(self, name: str) -> bytes | None: ...


def store_ci_certificates(store: _CertificateStore) -> tuple[bytes, ...]:
    """The CI certificates (DER) kept in a software eUICC store (``ci-*`` entries,
    :mod:`rspfed.euicc.store`): the default TLS trust of ``rspfed lpa --euicc``."""
    return tuple(
        der
        for name in store.certificate_names()
        if name.startswith("ci-") and (der := store.certificate(name)) is not None
    )


def _identifier(profile: str | bytes) -> dict[str, bytes]:
    if isinstance(profile, bytes):
        if not 5 <= len(profile) <= 16:
            raise UsageError("an ISD-P AID is 5 to 16 octets")
        return {"isdpAid": profile}
    try:
        return {"iccid": encode_iccid(profile)}
    except RspfedError:
        raise UsageError("an ICCID is 18 to 20 decimal digits") from None


def _check(result: Any, what: str) -> None:
    if result in ("ok", 0):
        return
    name = str(result)
    raise _ERRORS.get(name, ProtocolError)(f"{what}: {_TEXT.get(name, name)}")


class Lpa:
    """Profile operations and notifications on the eUICC behind ``es10``.

    ``settings`` (TLS trust, ``ca_file``, ``tls``) is used to reach SM-DP+
    servers for downloads and notification delivery.
    """

    def __init__(self, es10: Es10, *, settings: Es9Settings | None = None) -> None:
        self.es10 = es10
        self.settings = settings or Es9Settings()

    # -- information ------------------------------------------------------------

    def profiles(self) -> list[ProfileInfo]:
        """ES10c.GetProfilesInfo: every profile on the eUICC."""
        resp, _ = _es10x.call(self.es10, bytes.fromhex("BF2D00"), rsp.ProfileInfoListResponse)
        if resp.name != "profileInfoListOk":
            raise ProtocolError(f"GetProfilesInfo answered {resp.native}")
        return [_profile_info(item.native) for item in resp.chosen]

    def eid(self) -> str:
        """ES10c.GetEID: the EID (32 digits)."""
        resp, _ = _es10x.call(self.es10, bytes.fromhex("BF3E035C015A"), rsp.GetEuiccDataResponse)
        return bytes(resp["eidValue"].native).hex().upper()

    def ci_pkids_for_verification(self) -> list[bytes]:
        """The eUICC's euiccCiPKIdListForVerification (ES10b.GetEUICCInfo1)."""
        info, _ = _es10x.call(self.es10, _es10x.GET_EUICC_INFO1, rsp.EUICCInfo1)
        return [bytes(k) for k in info["euiccCiPKIdListForVerification"].native]

    def default_smdp_address(self) -> str | None:
        """The default SM-DP+ address (ES10a.GetEuiccConfiguredAddresses), if any."""
        resp, _ = _es10x.call(
            self.es10, _es10x.GET_EUICC_CONFIGURED_ADDRESSES, rsp.EuiccConfiguredAddressesResponse
        )
        address = resp["defaultDpAddress"].native
        return str(address) if address else None

    # -- profile operations ------------------------------------------------------

    def enable(self, profile: str | bytes, *, refresh: bool = True) -> None:
        """ES10c.EnableProfile (``refresh``: the refreshFlag)."""
        request = rsp.EnableProfileRequest(
            {"profileIdentifier": _identifier(profile), "refreshFlag": refresh}
        )
        resp, _ = _es10x.call(self.es10, asn1.encode(request), rsp.EnableProfileResponse)
        _check(resp["enableResult"].native, "EnableProfile")

    def disable(self, profile: str | bytes, *, refresh: bool = True) -> None:
        """ES10c.DisableProfile."""
        request = rsp.DisableProfileRequest(
            {"profileIdentifier": _identifier(profile), "refreshFlag": refresh}
        )
        resp, _ = _es10x.call(self.es10, asn1.encode(request), rsp.DisableProfileResponse)
        _check(resp["disableResult"].native, "DisableProfile")

    def delete(self, profile: str | bytes) -> None:
        """ES10c.DeleteProfile (the profile must be disabled)."""
        (name, value), *_ = _identifier(profile).items()
        request = rsp.DeleteProfileRequest(name=name, value=value)
        resp, _ = _es10x.call(self.es10, asn1.encode(request), rsp.DeleteProfileResponse)
        _check(resp["deleteResult"].native, "DeleteProfile")

    def set_nickname(self, iccid: str, nickname: str) -> None:
        """ES10c.SetNickname (at most 64 characters; empty clears it)."""
        if len(nickname.encode("utf-8")) > 64:
            raise UsageError("a nickname is at most 64 octets of UTF-8")
        request = rsp.SetNicknameRequest(
            {"iccid": _identifier(iccid)["iccid"], "profileNickname": nickname}
        )
        resp, _ = _es10x.call(self.es10, asn1.encode(request), rsp.SetNicknameResponse)
        _check(resp["setNicknameResult"].native, "SetNickname")

    # -- notifications -------------------------------------------------------------

    def notifications(self) -> list[Notification]:
        """The pending notifications (ES10b.RetrieveNotificationsList)."""
        return list_notifications(self.es10)

    async def deliver_notifications(
        self, notifications: Sequence[Notification] | None = None, *, remove: bool = True
    ) -> list[Delivery]:
        """Send the pending (or the given) notifications; remove each one delivered."""
        pending = self.notifications() if notifications is None else list(notifications)
        if not pending:
            return []
        return await deliver(
            self.es10, pending, self.settings, self.ci_pkids_for_verification(), remove=remove
        )

    # -- download ---------------------------------------------------------------------

    async def download(
        self, activation_code: ActivationCode | str | None = None, **options: Any
    ) -> DownloadResult:
        """:func:`rspfed.lpa.download.download` with this LPA's settings."""
        if not {"trust", "ca_file", "tls"} & options.keys():
            options.setdefault("settings", self.settings)
        return await download(self.es10, activation_code, **options)
