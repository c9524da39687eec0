"""The ISD-R: SGP.22 ES10a/ES10b/ES10c functions, sans-IO (DER request in, DER response out).

:class:`IsdR` answers one request at a time through :meth:`IsdR.handle`:
the request's outer tag (``BF2D`` GetProfilesInfo, ``BF31`` EnableProfile,
…) picks the function; the answer is exactly the SGP.22 response type.
Malformed input raises :class:`~rspfed.errors.DecodeError` (the APDU front
end answers ``6A80``) and changes nothing; a well-formed request that the
eUICC refuses gets the response's own error code (``iccidOrAidNotFound``,
``disallowedByPolicy``, …) from the state table (:mod:`rspfed.euicc._state`).

Every state change goes through the injected :class:`~rspfed.euicc.store.Store`
in one transaction; the store is the only I/O, and randomness (``rand``) and
time (``now``) are injected too.  :class:`IsdR` is also an
:class:`~rspfed.euicc.uicc.Applet`: registered on a
:class:`~rspfed.euicc.uicc.Uicc`, it receives the reassembled STORE DATA
(SGP.22 §5.7.2: ``80 E2 91 xx``) and answers with the response DER.

Implemented here: ES10c GetProfilesInfo (searchCriteria, tagList),
EnableProfile, DisableProfile, DeleteProfile, SetNickname, GetEID
(GetEuiccData), eUICCMemoryReset, GetRAT, GetEuiccConfiguredAddresses,
SetDefaultDpAddress; ES10b ListNotification, RetrieveNotificationsList,
RemoveNotificationFromList (NotificationSent).  Notifications other than the
installation result are ``otherSignedNotification``: the
``euiccNotificationSignature`` is ECDSA with SK.EUICC.ECDSA over the DER of
``tbsOtherNotification`` (the NotificationMetadata, tag ``BF2F``), followed
by CERT.EUICC.ECDSA and CERT.EUM.ECDSA.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import attrs
from asn1crypto import core, x509
from cryptography.hazmat.primitives.asymmetric import ec

from rspfed import asn1
from rspfed.asn1 import rsp
from rspfed.crypto import signature
from rspfed.errors import DecodeError, RspfedError
from rspfed.euicc import _state as st
from rspfed.euicc.apdu import (
    SW_CONDITIONS_NOT_SATISFIED,
    SW_INCORRECT_P1P2,
    SW_INS_NOT_SUPPORTED,
    CommandApdu,
    ResponseApdu,
    StatusError,
)
from rspfed.euicc.store import Store

__all__ = [
    "ISD_R_AID",
    "EuiccCredential",
    "IsdR",
    "ProfileSwitch",
    "profile_info_tags",
]

ISD_R_AID = bytes.fromhex("A0000005591010FFFFFFFF8900000100")
"""The ISD-R's AID (SGP.22 §2.2.3)."""

ProfileSwitch = Callable[["st.Profile | None"], None]
"""Called after a committed change of the enabled profile (``None``: none enabled)."""


@attrs.frozen
class EuiccCredential:
    """One eUICC key pair with its certificates (one per supported curve)."""

    private_key: ec.EllipticCurvePrivateKey
    euicc_certificate: bytes
    """CERT.EUICC.ECDSA (DER)."""
    eum_certificate: bytes
    """CERT.EUM.ECDSA (DER)."""


def _tag_of(field_tag: tuple[int, int], constructed: bool) -> bytes:
    cls, number = field_tag
    first = (cls << 6) | (0x20 if constructed else 0)
    if number < 31:
        return bytes([first | number])
    out = [number & 0x7F]
    number >>= 7
    while number:
        out.append(0x80 | (number & 0x7F))
        number >>= 7
    return bytes([first | 0x1F, *reversed(out)])


_PROFILE_INFO_TAGS: dict[str, bytes] = {
    "iccid": b"\x5a",
    "isdpAid": b"\x4f",
    "profileState": b"\x9f\x70",
    "profileNickname": b"\x90",
    "serviceProviderName": b"\x91",
    "profileName": b"\x92",
    "iconType": b"\x93",
    "icon": b"\x94",
    "profileClass": b"\x95",
    "notificationConfigurationInfo": b"\xb6",
    "profileOwner": b"\xb7",
    "dpProprietaryData": b"\xb8",
    "profilePolicyRules": b"\x99",
}


def profile_info_tags() -> dict[str, bytes]:
    """ProfileInfo field name → its tag octets (what a ``tagList`` lists)."""
    return dict(_PROFILE_INFO_TAGS)


def _split_tags(data: bytes) -> set[bytes]:
    """The BER tags listed in a ``tagList`` (DecodeError if truncated)."""
    tags: set[bytes] = set()
    i = 0
    while i < len(data):
        start = i
        if data[i] & 0x1F == 0x1F:
            i += 1
            while i < len(data) and data[i] & 0x80:
                i += 1
            if i >= len(data):
                raise DecodeError("truncated tag in tagList", type_name="tagList", offset=start)
        i += 1
        tags.add(data[start:i])
    return tags


def _operator(op: st.OperatorId) -> dict[str, Any]:
    out: dict[str, Any] = {"mccMnc": op.mcc_mnc}
    if op.gid1 is not None:
        out["gid1"] = op.gid1
    if op.gid2 is not None:
        out["gid2"] = op.gid2
    return out


def _operator_from(value: rsp.OperatorID) -> st.OperatorId:
    native = value.native
    return st.OperatorId(bytes(native["mccMnc"]), native.get("gid1"), native.get("gid2"))


class IsdR:
    """The ISD-R of one eUICC.

    ``credentials`` lists the eUICC's key pairs (the first signs
    notifications); ``rand`` (like :func:`os.urandom`) and ``now`` are the
    injected randomness and clock; ``on_switch`` is told when the enabled
    profile changes (the card then shows that profile's file system).
    """

    def __init__(
        self,
        *,
        store: Store,
        credentials: Sequence[EuiccCredential],
        rand: Callable[[int], bytes],
        now: Callable[[], datetime],
        on_switch: ProfileSwitch | None = None,
    ) -> None:
        if not credentials:
            raise RspfedError("an ISD-R needs at least one credential")
        self._store = store
        self._credentials = tuple(credentials)
        self._rand = rand
        self._now = now
        self._on_switch = on_switch
        self._handlers: dict[bytes, Callable[[bytes], bytes]] = {
            b"\xbf\x2d": self.get_profiles_info,
            b"\xbf\x31": self.enable_profile,
            b"\xbf\x32": self.disable_profile,
            b"\xbf\x33": self.delete_profile,
            b"\xbf\x29": self.set_nickname,
            b"\xbf\x3e": self.get_euicc_data,
            b"\xbf\x34": self.euicc_memory_reset,
            b"\xbf\x28": self.list_notification,
            b"\xbf\x2b": self.retrieve_notifications_list,
            b"\xbf\x30": self.remove_notification_from_list,
            b"\xbf\x43": self.get_rat,
            b"\xbf\x3c": self.get_euicc_configured_addresses,
            b"\xbf\x3f": self.set_default_dp_address,
        }

    # -- dispatch ----------------------------------------------------------

    @property
    def credentials(self) -> tuple[EuiccCredential, ...]:
        """The eUICC's key pairs and certificates."""
        return self._credentials

    @property
    def store(self) -> Store:
        """The eUICC's store."""
        return self._store

    def register(self, tag: bytes, handler: Callable[[bytes], bytes]) -> None:
        """Add a function for requests with outer tag ``tag`` (used by ES10b download)."""
        self._handlers[bytes(tag)] = handler

    def handle(self, request: bytes) -> bytes:
        """Answer one ES10x request (DER) with its response (DER).

        Raises :class:`~rspfed.errors.DecodeError` for malformed or unknown requests.
        """
        request = bytes(request)
        if len(request) < 2:
            raise DecodeError("request too short", offset=0)
        tag = request[:2] if request[0] & 0x1F == 0x1F else request[:1]
        handler = self._handlers.get(tag)
        if handler is None:
            raise DecodeError(f"no ES10 function for tag {tag.hex().upper()}", offset=0)
        return handler(request)

    # -- helpers -----------------------------------------------------------

    def _sign_notification(self, seq: int, event: str, address: str, iccid: bytes | None) -> bytes:
        metadata: dict[str, Any] = {
            "seqNumber": seq,
            "profileManagementOperation": {event},
            "notificationAddress": address,
        }
        if iccid is not None:
            metadata["iccid"] = iccid
        tbs = asn1.encode(rsp.NotificationMetadata(metadata))
        cred = self._credentials[0]
        sig = signature.sign(cred.private_key, tbs)
        value = rsp.OtherSignedNotification(
            {
                "tbsOtherNotification": asn1.decode(rsp.NotificationMetadata, tbs),
                "euiccNotificationSignature": sig,
                "euiccCertificate": x509.Certificate.load(cred.euicc_certificate),
                "eumCertificate": x509.Certificate.load(cred.eum_certificate),
            }
        )
        return asn1.encode(rsp.PendingNotification(name="otherSignedNotification", value=value))

    def _commit(self, outcome: st.Outcome) -> None:
        if not outcome.ok:
            return
        before = self._store.state.enabled
        self._store.commit(outcome.state)
        after = outcome.state.enabled
        if self._on_switch is not None and before != after:
            self._on_switch(after)

    @staticmethod
    def _ref(choice: core.Choice) -> st.ProfileRef:
        value = bytes(choice.chosen.native)
        if choice.name == "iccid":
            return st.ProfileRef(iccid=value)
        if choice.name == "isdpAid":
            return st.ProfileRef(isdp_aid=value)
        raise DecodeError("unknown profileIdentifier alternative")

    # -- ES10c -------------------------------------------------------------

    def _profile_info(self, profile: st.Profile, tags: set[bytes] | None) -> dict[str, Any]:
        info: dict[str, Any] = {
            "iccid": profile.iccid,
            "isdpAid": profile.isdp_aid,
            "profileState": 1 if profile.status is st.ProfileStatus.ENABLED else 0,
            "serviceProviderName": profile.service_provider_name,
            "profileName": profile.profile_name,
            "profileClass": profile.profile_class,
        }
        if profile.nickname is not None:
            info["profileNickname"] = profile.nickname
        if profile.icon_type is not None:
            info["iconType"] = profile.icon_type
        if profile.icon is not None:
            info["icon"] = profile.icon
        if profile.notification_config:
            info["notificationConfigurationInfo"] = [
                {"profileManagementOperation": set(c.events), "notificationAddress": c.address}
                for c in profile.notification_config
            ]
        if profile.profile_owner is not None:
            info["profileOwner"] = _operator(profile.profile_owner)
        if profile.dp_oid is not None:
            info["dpProprietaryData"] = {"dpOid": profile.dp_oid}
        if profile.ppr:
            info["profilePolicyRules"] = set(profile.ppr)
        if tags is not None:
            info = {k: v for k, v in info.items() if _PROFILE_INFO_TAGS[k] in tags}
        return info

    def get_profiles_info(self, request: bytes) -> bytes:
        """ES10c.GetProfilesInfo (``BF2D``)."""
        req = asn1.decode(rsp.ProfileInfoListRequest, request)
        profiles = list(self._store.state.profiles)
        criteria = req["searchCriteria"]
        if not isinstance(criteria, core.Void):
            choice = criteria
            name = choice.name
            value = choice.chosen.native
            if name == "isdpAid":
                profiles = [p for p in profiles if p.isdp_aid == bytes(value)]
            elif name == "iccid":
                profiles = [p for p in profiles if p.iccid == bytes(value)]
            elif name == "profileClass":
                number = {"test": 0, "provisioning": 1, "operational": 2}.get(value, value)
                profiles = [p for p in profiles if p.profile_class == number]
            else:
                return asn1.encode(
                    rsp.ProfileInfoListResponse(name="profileInfoListError", value=1)
                )
        tag_list = req["tagList"].native
        tags = None if tag_list is None else _split_tags(bytes(tag_list))
        items = [self._profile_info(p, tags) for p in profiles]
        return asn1.encode(rsp.ProfileInfoListResponse(name="profileInfoListOk", value=items))

    def enable_profile(self, request: bytes) -> bytes:
        """ES10c.EnableProfile (``BF31``)."""
        req = asn1.decode(rsp.EnableProfileRequest, request)
        ref = self._ref(req["profileIdentifier"])
        out = st.enable(self._store.state, ref, self._sign_notification)
        self._commit(out)
        return asn1.encode(rsp.EnableProfileResponse({"enableResult": out.result}))

    def disable_profile(self, request: bytes) -> bytes:
        """ES10c.DisableProfile (``BF32``)."""
        req = asn1.decode(rsp.DisableProfileRequest, request)
        ref = self._ref(req["profileIdentifier"])
        out = st.disable(self._store.state, ref, self._sign_notification)
        self._commit(out)
        return asn1.encode(rsp.DisableProfileResponse({"disableResult": out.result}))

    def delete_profile(self, request: bytes) -> bytes:
        """ES10c.DeleteProfile (``BF33``)."""
        req = asn1.decode(rsp.DeleteProfileRequest, request)
        out = st.delete(self._store.state, self._ref(req), self._sign_notification)
        self._commit(out)
        return asn1.encode(rsp.DeleteProfileResponse({"deleteResult": out.result}))

    def set_nickname(self, request: bytes) -> bytes:
        """ES10c.SetNickname (``BF29``)."""
        req = asn1.decode(rsp.SetNicknameRequest, request)
        out = st.set_nickname(
            self._store.state, bytes(req["iccid"].native), req["profileNickname"].native
        )
        self._commit(out)
        return asn1.encode(rsp.SetNicknameResponse({"setNicknameResult": out.result}))

    def get_euicc_data(self, request: bytes) -> bytes:
        """ES10c.GetEID (GetEuiccDataRequest ``BF3E`` with tagList ``5A``)."""
        req = asn1.decode(rsp.GetEuiccDataRequest, request)
        if bytes(req["tagList"].native) != b"\x5a":
            raise DecodeError("GetEuiccData tagList must be 5A", type_name="GetEuiccDataRequest")
        return asn1.encode(rsp.GetEuiccDataResponse({"eidValue": self._store.eid}))

    def euicc_memory_reset(self, request: bytes) -> bytes:
        """ES10c.eUICCMemoryReset (``BF34``)."""
        req = asn1.decode(rsp.EuiccMemoryResetRequest, request)
        options = req["resetOptions"].native
        out = st.memory_reset(
            self._store.state,
            operational="deleteOperationalProfiles" in options,
            test="deleteFieldLoadedTestProfiles" in options,
            default_dp_address="resetDefaultSmdpAddress" in options,
        )
        self._commit(out)
        return asn1.encode(rsp.EuiccMemoryResetResponse({"resetResult": out.result}))

    def get_rat(self, request: bytes) -> bytes:
        """ES10b.GetRAT (``BF43``)."""
        asn1.decode(rsp.GetRatRequest, request)
        rules = [
            {
                "pprIds": set(rule.ppr_ids),
                "allowedOperators": [_operator(o) for o in rule.allowed_operators],
                "pprFlags": {"consentRequired"} if rule.consent_required else set(),
            }
            for rule in self._store.state.rat
        ]
        return asn1.encode(rsp.GetRatResponse({"rat": rules}))

    def get_euicc_configured_addresses(self, request: bytes) -> bytes:
        """ES10a.GetEuiccConfiguredAddresses (``BF3C``)."""
        asn1.decode(rsp.EuiccConfiguredAddressesRequest, request)
        state = self._store.state
        value: dict[str, Any] = {"rootDsAddress": state.root_ds_address or ""}
        if state.default_dp_address is not None:
            value["defaultDpAddress"] = state.default_dp_address
        return asn1.encode(rsp.EuiccConfiguredAddressesResponse(value))

    def set_default_dp_address(self, request: bytes) -> bytes:
        """ES10a.SetDefaultDpAddress (``BF3F``; an empty address removes it)."""
        req = asn1.decode(rsp.SetDefaultDpAddressRequest, request)
        address = req["defaultDpAddress"].native or None
        new = attrs.evolve(self._store.state, default_dp_address=address)
        if new != self._store.state:
            self._store.commit(new)
        return asn1.encode(rsp.SetDefaultDpAddressResponse({"setDefaultDpAddressResult": 0}))

    # -- ES10b notifications ---------------------------------------------

    @staticmethod
    def _metadata(note: st.Notification) -> dict[str, Any]:
        value: dict[str, Any] = {
            "seqNumber": note.seq_number,
            "profileManagementOperation": {note.event},
            "notificationAddress": note.address,
        }
        if note.iccid is not None:
            value["iccid"] = note.iccid
        return value

    def list_notification(self, request: bytes) -> bytes:
        """ES10b.ListNotification (``BF28``)."""
        req = asn1.decode(rsp.ListNotificationRequest, request)
        wanted = req["profileManagementOperation"].native
        notes = [
            self._metadata(n)
            for n in self._store.state.notifications
            if wanted is None or n.event in wanted
        ]
        return asn1.encode(
            rsp.ListNotificationResponse(name="notificationMetadataList", value=notes)
        )

    def retrieve_notifications_list(self, request: bytes) -> bytes:
        """ES10b.RetrieveNotificationsList (``BF2B``).

        Without search criteria: every pending notification (possibly none).
        With criteria that match nothing: ``noResultAvailable(1)``.
        """
        req = asn1.decode(rsp.RetrieveNotificationsListRequest, request)
        criteria = req["searchCriteria"]
        notes = list(self._store.state.notifications)
        if not isinstance(criteria, core.Void):
            choice = criteria
            if choice.name == "seqNumber":
                seq = int(choice.chosen.native)
                notes = [n for n in notes if n.seq_number == seq]
            elif choice.name == "profileManagementOperation":
                events = choice.chosen.native
                notes = [n for n in notes if n.event in events]
            else:
                notes = []
            if not notes:
                return asn1.encode(
                    rsp.RetrieveNotificationsListResponse(
                        name="notificationsListResultError", value=1
                    )
                )
        items = [asn1.decode(rsp.PendingNotification, n.pending) for n in notes]
        return asn1.encode(
            rsp.RetrieveNotificationsListResponse(name="notificationList", value=items)
        )

    def remove_notification_from_list(self, request: bytes) -> bytes:
        """ES10b.RemoveNotificationFromList (NotificationSentRequest ``BF30``)."""
        req = asn1.decode(rsp.NotificationSentRequest, request)
        out = st.remove_notification(self._store.state, int(req["seqNumber"].native))
        self._commit(out)
        return asn1.encode(rsp.NotificationSentResponse({"deleteNotificationStatus": out.result}))

    # -- Applet --------------------------------------------------------------

    @property
    def aid(self) -> bytes:
        """The ISD-R AID."""
        return ISD_R_AID

    def select(self, channel: int, command: CommandApdu) -> ResponseApdu:
        """SELECT: answers ``9000`` (no FCI)."""
        return ResponseApdu()

    def deselect(self, channel: int) -> None:
        """Nothing is kept per channel."""

    def process(self, channel: int, command: CommandApdu) -> ResponseApdu:
        """STORE DATA (``80 E2 91 00``, reassembled by the front end) carrying an ES10 request."""
        if command.ins != 0xE2:
            raise StatusError(SW_INS_NOT_SUPPORTED)
        if command.p1 != 0x91:
            raise StatusError(SW_INCORRECT_P1P2, "STORE DATA P1 must be 91 (last block, BER)")
        if not command.data:
            raise StatusError(SW_CONDITIONS_NOT_SATISFIED, "empty STORE DATA")
        return ResponseApdu(self.handle(command.data))

    def reset(self) -> None:
        """Power-off or reset: volatile session state would be dropped here."""
