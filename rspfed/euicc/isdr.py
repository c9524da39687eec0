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

Implemented here: ES10a GetEuiccConfiguredAddresses, SetDefaultDpAddress;
ES10b GetEUICCInfo1/2, GetEUICCChallenge, AuthenticateServer,
PrepareDownload, LoadBoundProfilePackage (through
:class:`rspfed.es8p.BppUnbinder`), CancelSession, ListNotification,
RetrieveNotificationsList, RemoveNotificationFromList (NotificationSent),
GetRAT, LoadCRL; ES10c GetProfilesInfo (searchCriteria, tagList),
EnableProfile, DisableProfile, DeleteProfile, SetNickname, GetEID
(GetEuiccData), eUICCMemoryReset.  The RSP session (challenge, transaction
id, one-time keys, the unbinder) lives in memory only and is dropped by
:meth:`IsdR.reset` (card reset or power-off).  See ``docs/euicc.md`` for the
error codes and their order.  Notifications other than the
installation result are ``otherSignedNotification``: the
``euiccNotificationSignature`` is ECDSA with SK.EUICC.ECDSA over the DER of
``tbsOtherNotification`` (the NotificationMetadata, tag ``BF2F``), followed
by CERT.EUICC.ECDSA and CERT.EUM.ECDSA.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import attrs
from asn1crypto import core, x509
from cryptography.hazmat.primitives.asymmetric import ec

from rspfed import asn1
from rspfed.asn1 import rsp
from rspfed.asn1.bertlv import encode_tlv
from rspfed.crypto import ecka, signature
from rspfed.crypto.curves import Curve
from rspfed.errors import (
    CertificateError,
    DecodeError,
    RspfedError,
    SignatureError,
    StorageError,
    UsageError,
)
from rspfed.es8p import (
    BppCommandId,
    BppComplete,
    BppError,
    BppUnbinder,
    ErrorReason,
    InstallationFailure,
    InstallationSuccess,
    MetadataStored,
)
from rspfed.es8p._tlv import children
from rspfed.es8p.result import (
    profile_installation_result_data_der,
    sign_profile_installation_result,
)
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
from rspfed.pki import (
    CertificateRole,
    parse_certificate,
    parse_crl,
    verify_chain,
)
from rspfed.saip.identifiers import encode_iccid

__all__ = [
    "ISD_R_AID",
    "UNDEFINED_ERROR",
    "EuiccCredential",
    "EuiccInfo",
    "IsdR",
    "PackageInstaller",
    "ProfileSwitch",
    "euicc_signed1_der",
    "euicc_signed2_der",
    "profile_info_tags",
]

UNDEFINED_ERROR = 127
"""``undefinedError``: the answer when the store cannot be written."""

ISD_R_AID = bytes.fromhex("A0000005591010FFFFFFFF8900000100")
"""The ISD-R's AID (SGP.22 §2.2.3)."""

ProfileSwitch = Callable[["st.Profile | None"], None]
"""Called after a committed change of the enabled profile (``None``: none enabled)."""

PackageInstaller = Callable[[bytes], str]
"""Processes an unprotected profile package before it is committed; returns its ICCID digits.

Raises an :class:`~rspfed.errors.RspfedError` for a package the eUICC cannot
install (``rspfed.saip.install.install_package(package).iccid`` fits)."""


@attrs.frozen
class EuiccCredential:
    """One eUICC key pair with its certificates (one per supported curve)."""

    private_key: ec.EllipticCurvePrivateKey
    euicc_certificate: bytes
    """CERT.EUICC.ECDSA (DER)."""
    eum_certificate: bytes
    """CERT.EUM.ECDSA (DER)."""


@attrs.frozen
class EuiccInfo:
    """The static parts of EUICCInfo2 (SGP.22 §5.7.8); versions are 3 octets."""

    svn: bytes = b"\x02\x02\x02"
    profile_version: bytes = b"\x02\x03\x01"
    firmware_version: bytes = b"\x01\x00\x00"
    pp_version: bytes = b"\x00\x00\x01"
    sas_accreditation_number: str = "RSPFED-SOFTWARE-EUICC"
    uicc_capability: frozenset[str] = frozenset({"usimSupport", "akaMilenage"})
    rsp_capability: frozenset[str] = frozenset({"additionalProfile", "testProfileSupport"})
    free_nvm: int = 1 << 20
    free_ram: int = 1 << 16


@attrs.define
class _Session:
    """The volatile RSP session (SGP.22 §3.0.1): never stored."""

    challenge: bytes
    transaction_id: bytes | None = None
    server_address: str = ""
    credential: EuiccCredential | None = None
    ci_pkid: bytes = b""
    """The CI CERT.DPauth chained to; CERT.DPpb must chain to the same one."""
    euicc_signature1: bytes = b""
    dpauth_oid: str | None = None
    """The SM-DP+ OID of CERT.DPauth.ECDSA (signed in CancelSession)."""
    smdp_oid: str | None = None
    """The SM-DP+ OID of CERT.DPpb.ECDSA (signed in the ProfileInstallationResult)."""
    smdp_public_key: ec.EllipticCurvePublicKey | None = None
    ot_key: ec.EllipticCurvePrivateKey | None = None
    unbinder: BppUnbinder | None = None
    metadata: rsp.StoreMetadataRequest | None = None
    profile: st.Profile | None = None
    """The profile the metadata describes (its ISD-P AID as at the metadata)."""


def _sig_tlv(sig: bytes) -> bytes:
    return b"\x5f\x37" + bytes([len(sig)]) + sig


def euicc_signed1_der(
    transaction_id: bytes,
    server_address: str,
    server_challenge: bytes,
    euicc_info2: bytes,
    ctx_params1: bytes,
) -> bytes:
    """The DER of EuiccSigned1 from its parts (SGP.22 §5.7.13), built directly.

    ``euicc_info2`` and ``ctx_params1`` are complete DER encodings (the latter
    as received, already strictly checked).  Equal to :func:`rspfed.asn1.encode`
    of the same ``rsp.EuiccSigned1`` (tested), without building asn1crypto values.
    """
    return encode_tlv(
        0x30,
        encode_tlv(0x80, transaction_id)
        + encode_tlv(0x83, server_address.encode())
        + encode_tlv(0x84, server_challenge)
        + euicc_info2
        + ctx_params1,
    )


def euicc_signed2_der(transaction_id: bytes, euicc_otpk: bytes, hash_cc: bytes | None) -> bytes:
    """The DER of EUICCSigned2 from its parts (SGP.22 §5.7.14), built directly.

    ``transaction_id`` and ``hash_cc`` come from the strictly checked request.
    Equal to :func:`rspfed.asn1.encode` of the same ``rsp.EUICCSigned2`` (tested).
    """
    # EUICCSigned2 { transactionId [0], euiccOtpk [APPLICATION 73], hashCc Octet32 OPTIONAL }
    fields = encode_tlv(0x80, transaction_id) + encode_tlv(0x5F49, euicc_otpk)
    if hash_cc is not None:
        fields += encode_tlv(0x04, hash_cc)
    return encode_tlv(0x30, fields)


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


def _children(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int, int]]:
    """The TLVs in ``data[start:end]`` of strictly checked DER: the ES10b requests'
    components are read straight from the received encoding (no asn1crypto values)."""
    return children(data, start, end, "ES10b request")


def _ct_equal(a: bytes, b: bytes) -> bool:
    """Constant-time comparison."""
    return hmac.compare_digest(a, b)


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
        ci_certificates: Sequence[bytes] = (),
        crls: Sequence[bytes] = (),
        info: EuiccInfo | None = None,
        installer: PackageInstaller | None = None,
    ) -> None:
        if not credentials:
            raise UsageError("an ISD-R needs at least one credential")
        self._cis = tuple(parse_certificate(bytes(c)) for c in ci_certificates)
        self._crls = tuple(bytes(c) for c in crls)
        self._info = info or EuiccInfo()
        self._installer = installer
        self._info2_der: dict[int, bytes] = {}  # EUICCInfo2 DER by number of profiles
        self._checked_certs: set[bytes] = set()
        self._akis: dict[bytes, bytes | None] = {}
        self._session: _Session | None = None
        self._kept_ot_keys: dict[bytes, ec.EllipticCurvePrivateKey] = {}
        self._stored_crls: list[bytes] | None = None  # LoadCRL's, read once from the store
        self._store = store
        self._eid = store.eid
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
            b"\xbf\x20": self.get_euicc_info1,
            b"\xbf\x22": self.get_euicc_info2,
            b"\xbf\x2e": self.get_euicc_challenge,
            b"\xbf\x38": self.authenticate_server,
            b"\xbf\x21": self.prepare_download,
            b"\xbf\x41": self.cancel_session,
            b"\xbf\x36": self.load_bound_profile_package,
            b"\xbf\x35": self.load_crl,
        }
        for tag in (b"\xa0", b"\xa1", b"\xa2", b"\xa3", b"\x86", b"\x87", b"\x88"):
            self._handlers[tag] = self.load_bound_profile_package

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

    def _commit(self, outcome: st.Outcome) -> int:
        """Commit a successful outcome; the result code to answer.

        A store failure leaves everything as it was and answers
        ``undefinedError(127)`` (every ES10c response type has it).
        """
        if not outcome.ok:
            return outcome.result
        before = self._store.state.enabled
        try:
            self._store.commit(outcome.state)
        except StorageError:
            return UNDEFINED_ERROR
        after = outcome.state.enabled
        changed = (before is None) != (after is None) or (
            before is not None and after is not None and before.iccid != after.iccid
        )
        if self._on_switch is not None and changed:
            self._on_switch(after)
        return outcome.result

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
        return asn1.encode(rsp.EnableProfileResponse({"enableResult": self._commit(out)}))

    def disable_profile(self, request: bytes) -> bytes:
        """ES10c.DisableProfile (``BF32``)."""
        req = asn1.decode(rsp.DisableProfileRequest, request)
        ref = self._ref(req["profileIdentifier"])
        out = st.disable(self._store.state, ref, self._sign_notification)
        return asn1.encode(rsp.DisableProfileResponse({"disableResult": self._commit(out)}))

    def delete_profile(self, request: bytes) -> bytes:
        """ES10c.DeleteProfile (``BF33``)."""
        req = asn1.decode(rsp.DeleteProfileRequest, request)
        out = st.delete(self._store.state, self._ref(req), self._sign_notification)
        return asn1.encode(rsp.DeleteProfileResponse({"deleteResult": self._commit(out)}))

    def set_nickname(self, request: bytes) -> bytes:
        """ES10c.SetNickname (``BF29``)."""
        req = asn1.decode(rsp.SetNicknameRequest, request)
        out = st.set_nickname(
            self._store.state, bytes(req["iccid"].native), req["profileNickname"].native
        )
        return asn1.encode(rsp.SetNicknameResponse({"setNicknameResult": self._commit(out)}))

    def get_euicc_data(self, request: bytes) -> bytes:
        """ES10c.GetEID (GetEuiccDataRequest ``BF3E`` with tagList ``5A``)."""
        req = asn1.decode(rsp.GetEuiccDataRequest, request)
        if bytes(req["tagList"].native) != b"\x5a":
            raise DecodeError("GetEuiccData tagList must be 5A", type_name="GetEuiccDataRequest")
        return asn1.encode(rsp.GetEuiccDataResponse({"eidValue": self._eid}))

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
        return asn1.encode(rsp.EuiccMemoryResetResponse({"resetResult": self._commit(out)}))

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
        code = self._commit(st.Outcome(0, "ok", new)) if new != self._store.state else 0
        return asn1.encode(rsp.SetDefaultDpAddressResponse({"setDefaultDpAddressResult": code}))

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
        status = self._commit(out)
        return asn1.encode(rsp.NotificationSentResponse({"deleteNotificationStatus": status}))

    # -- ES10b download ----------------------------------------------------

    def _ci_pkids_for_signing(self) -> list[bytes]:
        out: list[bytes] = []
        for cred in self._credentials:
            aki = self._eum_aki(cred)
            if aki is not None and aki not in out:
                out.append(aki)
        return out

    def _ci_pkids_for_verification(self) -> list[bytes]:
        out: list[bytes] = []
        for ci in self._cis:
            if ci.subject_key_id is not None and ci.subject_key_id not in out:
                out.append(ci.subject_key_id)
        return out

    def _credential_for(self, ci_pkid: bytes) -> EuiccCredential | None:
        for cred in self._credentials:
            if self._eum_aki(cred) == ci_pkid:
                return cred
        return None

    def _eum_aki(self, credential: EuiccCredential) -> bytes | None:
        """The CI key id CERT.EUM.ECDSA names (parsed once per certificate)."""
        der = credential.eum_certificate
        if der not in self._akis:
            self._akis[der] = parse_certificate(der).authority_key_id
        return self._akis[der]

    def euicc_info2(self) -> rsp.EUICCInfo2:
        """This eUICC's EUICCInfo2."""
        info = self._info
        resources = (
            b"\x81\x01"
            + bytes([len(self._store.state.profiles) & 0xFF])
            + b"\x82\x03"
            + info.free_nvm.to_bytes(3, "big")
            + b"\x83\x03"
            + info.free_ram.to_bytes(3, "big")
        )
        return rsp.EUICCInfo2(
            {
                "profileVersion": info.profile_version,
                "svn": info.svn,
                "euiccFirmwareVer": info.firmware_version,
                "extCardResource": resources,
                "uiccCapability": set(info.uicc_capability),
                "rspCapability": set(info.rsp_capability),
                "euiccCiPKIdListForVerification": self._ci_pkids_for_verification(),
                "euiccCiPKIdListForSigning": self._ci_pkids_for_signing(),
                "ppVersion": info.pp_version,
                "sasAcreditationNumber": info.sas_accreditation_number,
            }
        )

    def _euicc_info2_der(self) -> bytes:
        count = len(self._store.state.profiles) & 0xFF
        der = self._info2_der.get(count)
        if der is None:
            der = self._info2_der[count] = asn1.encode(self.euicc_info2())
        return der

    def _certificates_der(self, credential: EuiccCredential) -> bytes:
        """CERT.EUICC.ECDSA then CERT.EUM.ECDSA (each strictly checked once)."""
        ders = (credential.euicc_certificate, credential.eum_certificate)
        for der in ders:
            if der not in self._checked_certs:
                asn1.decode(x509.Certificate, der)
                self._checked_certs.add(der)
        return ders[0] + ders[1]

    def get_euicc_info1(self, request: bytes) -> bytes:
        """ES10b.GetEUICCInfo1 (``BF20``)."""
        asn1.decode(rsp.GetEuiccInfo1Request, request)
        return asn1.encode(
            rsp.EUICCInfo1(
                {
                    "svn": self._info.svn,
                    "euiccCiPKIdListForVerification": self._ci_pkids_for_verification(),
                    "euiccCiPKIdListForSigning": self._ci_pkids_for_signing(),
                }
            )
        )

    def get_euicc_info2(self, request: bytes) -> bytes:
        """ES10b.GetEUICCInfo2 (``BF22``)."""
        asn1.decode(rsp.GetEuiccInfo2Request, request)
        return asn1.encode(self.euicc_info2())

    def get_euicc_challenge(self, request: bytes) -> bytes:
        """ES10b.GetEUICCChallenge (``BF2E``): a new session with a fresh 16-octet challenge."""
        if request != b"\xbf\x2e\x00":  # the only DER of the empty [46] SEQUENCE
            asn1.decode(rsp.GetEuiccChallengeRequest, request)
        self._close_session()
        challenge = bytes(self._rand(16))
        if len(challenge) != 16:
            raise UsageError("rand(16) must give 16 octets")
        self._session = _Session(challenge)
        # GetEuiccChallengeResponse [46] { euiccChallenge [0] Octet16 }
        return b"\xbf\x2e\x12\x80\x10" + challenge

    def _close_session(self) -> None:
        self._session = None

    def _auth_error(self, transaction_id: bytes, code: int) -> bytes:
        self._close_session()
        return asn1.encode(
            rsp.AuthenticateServerResponse(
                name="authenticateResponseError",
                value={"transactionId": transaction_id, "authenticateErrorCode": code},
            )
        )

    def authenticate_server(self, request: bytes) -> bytes:
        """ES10b.AuthenticateServer (``BF38``, SGP.22 §5.7.13).

        Checks in order: ``euiccCiPKIdToBeUsed`` names a CI this eUICC has a
        certificate under (in euiccCiPKIdListForSigning, else ``ciPKUnknown``),
        CERT.DPauth chains to a trusted CI (euiccCiPKIdListForVerification) and
        is valid, not revoked, of the right role (else ``invalidCertificate``),
        serverSignature1 (``invalidSignature``), a session
        (``noSessionContext``), euiccChallenge (``euiccChallengeMismatch``).
        ``unsupportedCurve`` cannot occur: both RSP curves are supported.
        """
        asn1.decode(rsp.AuthenticateServerRequest, request)  # the strict check
        # [56] { serverSigned1, serverSignature1, euiccCiPKIdToBeUsed, serverCertificate,
        #   ctxParams1, ... }: read from the checked DER.  All mandatory: they are the
        # first five components; extension additions (ignored) can only follow.
        ((_, _, at, end),) = _children(request, 0, len(request))
        signed1, signature1, pkid, certificate, ctx = _children(request, at, end)[:5]
        # ServerSigned1 { transactionId [0], euiccChallenge [1], serverAddress [3],
        #   serverChallenge [4], ... }
        tid, challenge_v, address_v, server_challenge_v = (
            request[c[2] : c[3]] for c in _children(request, signed1[2], signed1[3])[:4]
        )
        ci_pkid = request[pkid[2] : pkid[3]]
        credential = self._credential_for(ci_pkid)
        if credential is None:
            return self._auth_error(tid, 7)
        try:
            chain = verify_chain(
                request[certificate[1] : certificate[3]],
                role=CertificateRole.DPAUTH,
                trust_anchors=self._cis,
                now=self._now(),
                crls=self._all_crls(),
            )
        except CertificateError:
            return self._auth_error(tid, 1)
        try:
            signature.verify(
                chain.public_key,
                request[signed1[1] : signed1[3]],
                request[signature1[2] : signature1[3]],
            )
        except SignatureError:
            return self._auth_error(tid, 2)
        session = self._session
        if session is None or session.transaction_id is not None:
            return self._auth_error(tid, 4)
        if not _ct_equal(challenge_v, session.challenge):
            return self._auth_error(tid, 6)
        server_address = address_v.decode("utf-8")  # valid UTF-8: checked
        euicc_signed1 = euicc_signed1_der(
            tid,
            server_address,
            server_challenge_v,
            self._euicc_info2_der(),
            request[ctx[1] : ctx[3]],
        )
        certificates = self._certificates_der(credential)
        sig1 = signature.sign(credential.private_key, euicc_signed1)
        session.transaction_id = tid
        session.server_address = server_address
        session.credential = credential
        session.ci_pkid = chain.ci_pkid
        session.euicc_signature1 = sig1
        session.dpauth_oid = chain.leaf.registered_id
        # AuthenticateServerResponse [56] { authenticateResponseOk [0] IMPLICIT SEQUENCE {
        #   euiccSigned1, euiccSignature1 [APPLICATION 55], euiccCertificate, eumCertificate } }
        ok = encode_tlv(0xA0, euicc_signed1 + _sig_tlv(sig1) + certificates)
        return encode_tlv(0xBF38, ok)

    def _download_error(self, transaction_id: bytes, code: int) -> bytes:
        self._close_session()
        return asn1.encode(
            rsp.PrepareDownloadResponse(
                name="downloadResponseError",
                value={"transactionId": transaction_id, "downloadErrorCode": code},
            )
        )

    def prepare_download(self, request: bytes) -> bytes:
        """ES10b.PrepareDownload (``BF21``, SGP.22 §5.7.14).

        Checks CERT.DPpb (``invalidCertificate``), smdpSignature2 over
        ``smdpSigned2 || euiccSignature1`` (``invalidSignature``), the session
        (``noSessionContext``) and its transactionId (``invalidTransactionId``).
        ``hashCc`` is required when ``ccRequiredFlag`` is set (``undefinedError``
        otherwise) and is passed to the SM-DP+ in euiccSigned2: the SM-DP+
        checks it against ``SHA256(SHA256(code) || transactionId)``.  When
        ``bppEuiccOtpk`` names a one-time key this eUICC still holds (a
        retried download) that key is reused, else a new one is generated
        from the injected randomness.
        """
        asn1.decode(rsp.PrepareDownloadRequest, request)  # the strict check
        # [33] { smdpSigned2, smdpSignature2, hashCc Octet32 OPTIONAL, smdpCertificate, ... }
        # read from the checked DER: hashCc is the OCTET STRING (04) in third place;
        # extension additions (ignored) can only follow the certificate.
        ((_, _, at, end),) = _children(request, 0, len(request))
        parts = _children(request, at, end)
        signed2, signature2 = parts[0], parts[1]
        has_cc = parts[2][0] == b"\x04"
        hash_cc = request[parts[2][2] : parts[2][3]] if has_cc else None
        certificate = parts[3] if has_cc else parts[2]
        # SmdpSigned2 { transactionId [0], ccRequiredFlag BOOLEAN,
        #   bppEuiccOtpk [APPLICATION 73] OPTIONAL, ... }
        fields2 = _children(request, signed2[2], signed2[3])
        tid = request[fields2[0][2] : fields2[0][3]]
        cc_required = request[fields2[1][2]] != 0
        has_otpk = len(fields2) > 2 and fields2[2][0] == b"\x5f\x49"
        previous = request[fields2[2][2] : fields2[2][3]] if has_otpk else None
        session = self._session
        if session is None or session.credential is None or session.transaction_id is None:
            return self._download_error(tid, 4)
        try:
            chain = verify_chain(
                request[certificate[1] : certificate[3]],
                role=CertificateRole.DPPB,
                trust_anchors=self._cis,
                now=self._now(),
                crls=self._all_crls(),
                ci_pkids={session.ci_pkid},
            )
        except CertificateError:
            return self._download_error(tid, 1)
        smdp_sig2 = request[signature2[2] : signature2[3]]
        try:
            signature.verify(
                chain.public_key,
                request[signed2[1] : signed2[3]] + _sig_tlv(session.euicc_signature1),
                smdp_sig2,
            )
        except SignatureError:
            return self._download_error(tid, 2)
        if tid != session.transaction_id:
            return self._download_error(tid, 5)
        if cc_required and hash_cc is None:
            return self._download_error(tid, 127)
        credential = session.credential
        curve = Curve.of_key(credential.private_key)
        ot_key = None if previous is None else self._kept_ot_keys.get(previous)
        if ot_key is None:
            ot_key = ecka.generate_key_pair(curve, self._rand)
        otpk = ecka.encode_public_key(ot_key.public_key())
        self._kept_ot_keys = {otpk: ot_key}
        euicc_signed2 = euicc_signed2_der(tid, otpk, hash_cc if cc_required else None)
        sig2 = signature.sign(credential.private_key, euicc_signed2 + _sig_tlv(smdp_sig2))
        session.ot_key = ot_key
        session.smdp_public_key = chain.public_key
        session.smdp_oid = chain.leaf.registered_id
        # PrepareDownloadResponse [33] { downloadResponseOk [0] IMPLICIT SEQUENCE {
        #   euiccSigned2, euiccSignature2 [APPLICATION 55] } }
        return encode_tlv(0xBF21, encode_tlv(0xA0, euicc_signed2 + _sig_tlv(sig2)))

    def cancel_session(self, request: bytes) -> bytes:
        """ES10b.CancelSession (``BF41``): signed by the eUICC; the session is closed."""
        req = asn1.decode(rsp.CancelSessionRequest, request)
        tid = bytes(req["transactionId"].native)
        session = self._session
        if session is None or session.transaction_id != tid or session.credential is None:
            return asn1.encode(
                rsp.CancelSessionResponse(name="cancelSessionResponseError", value=5)
            )
        signed = asn1.encode(
            rsp.EuiccCancelSessionSigned(
                {
                    "transactionId": tid,
                    # SGP.22 §5.7.14: the OID of CERT.DPauth.ECDSA
                    "smdpOid": session.dpauth_oid or "2.999",
                    "reason": req["reason"].native,
                }
            )
        )
        sig = signature.sign(session.credential.private_key, signed)
        self._close_session()
        self._kept_ot_keys.clear()
        ok = rsp.CancelSessionResponseOk(
            {
                "euiccCancelSessionSigned": asn1.decode(rsp.EuiccCancelSessionSigned, signed),
                "euiccCancelSessionSignature": sig,
            }
        )
        return asn1.encode(rsp.CancelSessionResponse(name="cancelSessionResponseOk", value=ok))

    def _pir(
        self,
        session: _Session,
        result: InstallationSuccess | InstallationFailure,
        seq: int,
    ) -> bytes:
        """The signed ProfileInstallationResult, built from DER parts."""
        assert session.credential is not None
        assert session.transaction_id is not None
        profile = session.profile
        data = profile_installation_result_data_der(
            transaction_id=session.transaction_id,
            seq_number=seq,
            notification_address=self._pir_address(session),
            final_result=result,
            iccid=None if profile is None else profile.iccid,
            smdp_oid=session.smdp_oid,
        )
        return sign_profile_installation_result(data, session.credential.private_key)

    @staticmethod
    def _pir_address(session: _Session) -> str:
        """Where the install notification goes: the profile's, else the SM-DP+'s address."""
        if session.profile is not None:
            for config in session.profile.notification_config:
                if "notificationInstall" in config.events:
                    return config.address
        return session.server_address

    def load_bound_profile_package(self, block: bytes) -> bytes:
        """ES10b.LoadBoundProfilePackage: one BPP block (SGP.22 §5.7.6).

        Intermediate blocks answer nothing (empty data); the last answers the
        signed ProfileInstallationResult.  On success the profile, its
        content and the PIR (as install notification) are committed in one
        store transaction.  On any failure the PIR carries the error, nothing
        is stored and the session is closed.
        """
        session = self._session
        if block[:2] == b"\xbf\x36":
            if session is None or session.ot_key is None or session.smdp_public_key is None:
                raise DecodeError("no prepared download session for a BPP")
            assert session.transaction_id is not None
            session.unbinder = BppUnbinder(
                euicc_ot_key=session.ot_key,
                smdp_public_key=session.smdp_public_key,
                transaction_id=session.transaction_id,
                eid=self._eid,
            )
            session.metadata = None
            session.profile = None
        if session is None or session.unbinder is None:
            raise DecodeError("BPP segment outside a BPP")
        unbinder = session.unbinder
        state = self._store.state
        try:
            events = unbinder.feed(block)
            for event in events:
                if isinstance(event, MetadataStored):
                    session.metadata = event.request
                    session.profile = self._profile_from_metadata(state, event.request)
                    error = self._check_metadata(state, session.profile)
                    if error is not None:
                        raise unbinder.fail(error)
                if isinstance(event, BppComplete):
                    return self._install(session, state, event.profile_package)
        except BppError as exc:
            pir = self._pir(session, InstallationFailure.from_error(exc), state.next_seq)
            self._close_session()
            return pir
        return b""

    def _check_metadata(self, state: st.EuiccState, profile: st.Profile) -> ErrorReason | None:
        if state.find(st.ProfileRef(iccid=profile.iccid)) is not None:
            return ErrorReason.installFailedDueToIccidAlreadyExistsOnEuicc
        for ppr in ("ppr1", "ppr2"):
            if ppr in profile.ppr and not st.ppr_allowed(state.rat, ppr, profile.profile_owner):
                return ErrorReason.pprNotAllowed
        return None

    @staticmethod
    def _profile_from_metadata(state: st.EuiccState, meta: rsp.StoreMetadataRequest) -> st.Profile:
        native = meta.native
        owner = meta["profileOwner"]
        classes = {"test": 0, "provisioning": 1, "operational": 2}
        pclass = native.get("profileClass")
        return st.Profile(
            iccid=bytes(native["iccid"]),
            isdp_aid=st.next_isdp_aid(state),
            service_provider_name=native["serviceProviderName"],
            profile_name=native["profileName"],
            icon_type={"jpg": 0, "png": 1}.get(native.get("iconType") or ""),
            icon=None if native.get("icon") is None else bytes(native["icon"]),
            profile_class=2 if pclass is None else classes.get(pclass, 2),
            notification_config=tuple(
                st.NotificationConfig(
                    frozenset(c["profileManagementOperation"]), c["notificationAddress"]
                )
                for c in native.get("notificationConfigurationInfo") or []
            ),
            profile_owner=None if isinstance(owner, core.Void) else _operator_from(owner),
            ppr=frozenset(native.get("profilePolicyRules") or ()),
        )

    def _check_package(self, profile: st.Profile, package: bytes) -> ErrorReason | None:
        if self._installer is None:
            return None
        try:
            iccid = self._installer(package)
        except RspfedError:
            return ErrorReason.installFailedDueToPEProcessingError
        try:
            if encode_iccid(iccid) != profile.iccid:
                return ErrorReason.installFailedDueToIccidMismatch
        except RspfedError:
            return ErrorReason.installFailedDueToIccidMismatch
        return None

    def _install(self, session: _Session, state: st.EuiccState, package: bytes) -> bytes:
        assert session.profile is not None
        # the ISD-P AID as of now (another ES10 function may have run since the metadata)
        profile = attrs.evolve(session.profile, isdp_aid=st.next_isdp_aid(state))
        problem = self._check_package(profile, package)
        if problem is not None:
            failure = InstallationFailure(BppCommandId.loadProfileElements, problem)
            pir = self._pir(session, failure, state.next_seq)
            self._close_session()
            return pir
        profile = attrs.evolve(profile, dp_oid=session.smdp_oid)
        seq = state.next_seq
        pir = self._pir(session, InstallationSuccess(profile.isdp_aid), seq)
        address = self._pir_address(session)  # the one the PIR names
        out = st.install(state, profile, address=address, pending=pir)
        if not out.ok:
            unbinder = session.unbinder
            assert unbinder is not None  # the BPP that just completed came through it
            failure = InstallationFailure.from_error(unbinder.fail(ErrorReason(out.result)))
            pir = self._pir(session, failure, seq)
            self._close_session()
            return pir
        try:
            self._store.commit(out.state, contents={profile.iccid: package})
            self._kept_ot_keys.clear()  # installed: no retry will name this otPK
        except StorageError:
            # nothing was written; report the failure (SGP.22 has no "storage" reason)
            failure = InstallationFailure(
                BppCommandId.loadProfileElements, ErrorReason.installFailedDueToUnknownError
            )
            pir = self._pir(session, failure, seq)
        self._close_session()
        return pir

    # -- ES10b.LoadCRL -------------------------------------------------------

    _CRL_META = "crl:"

    def _all_crls(self) -> list[bytes]:
        """The CRLs given at creation, then those loaded (read from the store once)."""
        if self._stored_crls is None:
            self._stored_crls = [
                value
                for ci in self._cis
                if ci.subject_key_id is not None
                and (value := self._store.get_meta(self._CRL_META + ci.subject_key_id.hex()))
                is not None
            ]
        return [*self._crls, *self._stored_crls]

    def load_crl(self, request: bytes) -> bytes:
        """ES10b.LoadCRL (``BF35``): a CI's CRL, verified and kept for chain checks.

        ``invalidCRLFormat(2)`` if it does not parse, ``verificationKeyNotFound(4)``
        if no trusted CI issued it, ``invalidSignature(1)``.  A CRL older than
        the one kept (lower CRL number) is accepted and ignored.
        """
        req = asn1.decode(rsp.LoadCRLRequest, request)
        received = asn1.received_der(req["crl"])
        der = b"\x30" + received[1:]  # [0] IMPLICIT CertificateList -> SEQUENCE

        def error(code: int) -> bytes:
            return asn1.encode(rsp.LoadCRLResponse(name="loadCRLResponseError", value=code))

        try:
            crl = parse_crl(der)
        except DecodeError:
            return error(2)
        issuer = next(
            (
                ci
                for ci in self._cis
                if ci.subject_key_id is not None
                and (
                    crl.authority_key_id == ci.subject_key_id
                    if crl.authority_key_id is not None
                    else crl.issuer == ci.subject
                )
            ),
            None,
        )
        if issuer is None or issuer.public_key is None or issuer.subject_key_id is None:
            return error(4)
        if not crl.crl.is_signature_valid(issuer.public_key):
            return error(1)
        name = self._CRL_META + issuer.subject_key_id.hex()
        kept = self._store.get_meta(name)
        newer = True
        if kept is not None:
            old = parse_crl(kept)
            newer = (crl.crl_number or 0) >= (old.crl_number or 0)
        if newer:
            self._stored_crls = None  # read again, whether the write landed or not
            try:
                self._store.put_meta(name, crl.der)
            except StorageError:
                return error(UNDEFINED_ERROR)
        return asn1.encode(rsp.LoadCRLResponse(name="loadCRLResponseOk", value={}))

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
        """Power-off or reset: the RSP session (and kept one-time keys) are lost."""
        self._session = None
        self._kept_ot_keys.clear()
        self._stored_crls = None
