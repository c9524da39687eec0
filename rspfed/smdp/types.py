"""Value types of the SM-DP+: configuration, profile types, inventory items, RSP sessions.

All are frozen ``attrs`` classes.  Secrets (K, OPc, private keys) are left out
of ``repr``; they live in the store file (mode 0600) and never in exception
text or logs.
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import attrs
from cryptography.hazmat.primitives.asymmetric import ec

from rspfed.crypto.curves import Curve
from rspfed.errors import DecodeError, UsageError
from rspfed.es9p.codes import StatusCodeData
from rspfed.smdp._inventory import ItemState

__all__ = [
    "NOTIFICATION_EVENTS",
    "PROFILE_CLASSES",
    "ConfirmedOrder",
    "DownloadProgressEvent",
    "InventoryItem",
    "KeptBinding",
    "NotificationPoint",
    "NotificationRecord",
    "ProfileType",
    "RspSession",
    "SessionStage",
    "SmdpConfig",
    "SmdpCredential",
    "from_micros",
    "to_micros",
]

PROFILE_CLASSES = ("test", "provisioning", "operational")
"""``ProfileClass`` values (SGP.22 §2.4a)."""

NOTIFICATION_EVENTS: Mapping[str, str] = {
    "install": "notificationInstall",
    "enable": "notificationEnable",
    "disable": "notificationDisable",
    "delete": "notificationDelete",
}
"""Short event names of a profile type's notification configuration → NotificationEvent bits."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_micros(when: datetime) -> int:
    """``when`` (timezone-aware) as integer microseconds since the Unix epoch."""
    if when.tzinfo is None:
        raise UsageError("datetimes must be timezone-aware")
    delta = when - _EPOCH
    return (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds


def from_micros(value: int) -> datetime:
    """The inverse of :func:`to_micros` (UTC)."""
    return _EPOCH + timedelta(microseconds=value)


@attrs.frozen
class SmdpCredential:
    """The SM-DP+'s keys and certificates on one curve (SGP.22 §4.5.2).

    ``intermediates`` are DER certificates between the DP certificates and
    the CI (none for SGP.22 v2).
    """

    curve: Curve
    dp_auth_key: ec.EllipticCurvePrivateKey = attrs.field(repr=False)
    dp_auth_certificate: bytes = attrs.field(repr=False)
    dp_pb_key: ec.EllipticCurvePrivateKey = attrs.field(repr=False)
    dp_pb_certificate: bytes = attrs.field(repr=False)
    intermediates: tuple[bytes, ...] = attrs.field(default=(), repr=False)


@attrs.frozen
class SmdpConfig:
    """What the SM-DP+ core needs besides its store.

    ``address``
        ``FQDN[:port]`` exactly as activation codes carry it; InitiateAuthentication
        refuses any other ``smdpAddress`` (compared case-insensitively).
    ``credentials``
        one :class:`SmdpCredential` per supported curve.
    ``trusted_cis``, ``crls``
        CI certificates (DER) trusted for eUICC chains and the CRLs (DER) checked.
    ``session_ttl``
        lifetime of an RSP session from InitiateAuthentication.
    ``max_confirmation_code_attempts``, ``max_download_attempts``
        limits per order (SGP.22 §3.1.3: wrong codes; started downloads).
    ``callback_url``, ``callback_urls``
        where HandleDownloadProgressInfo goes: ``callback_urls`` maps an ES2+
        requester identity to its URL, ``callback_url`` is the default.  An
        event is recorded only when a URL is known for the order's requester.
    ``host_id``
        the hostId of the BPP's control reference template (1-16 octets).
    """

    address: str
    credentials: tuple[SmdpCredential, ...]
    trusted_cis: tuple[bytes, ...]
    crls: tuple[bytes, ...] = ()
    session_ttl: timedelta = timedelta(minutes=10)
    max_confirmation_code_attempts: int = 3
    max_download_attempts: int = 3
    callback_url: str | None = None
    callback_urls: tuple[tuple[str, str], ...] = ()
    host_id: bytes = b"rspfed-smdp"


def _ppr_from(metadata: Mapping[str, Any]) -> tuple[bool, bool]:
    rules = metadata.get("profilePolicyRules", [])
    if not isinstance(rules, list) or not all(r in ("ppr1", "ppr2") for r in rules):
        raise UsageError('profilePolicyRules must be a list of "ppr1" / "ppr2"')
    return "ppr1" in rules, "ppr2" in rules


def _events_from(metadata: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    raw = metadata.get("notificationConfigurationInfo", [])
    if not isinstance(raw, list):
        raise UsageError("notificationConfigurationInfo must be a list")
    out: list[tuple[str, str]] = []
    for entry in raw:
        if not isinstance(entry, dict):
            raise UsageError("notificationConfigurationInfo entries are objects")
        events = entry.get("events")
        address = entry.get("address")
        if not isinstance(events, list) or not isinstance(address, str) or not address:
            raise UsageError('each notification entry needs "events" (list) and "address"')
        for event in events:
            if event not in NOTIFICATION_EVENTS:
                raise UsageError(f"unknown notification event {event!r}")
            out.append((event, address))
    return tuple(out)


def _digits(value: object, name: str, lo: int, hi: int) -> str:
    if not isinstance(value, str) or not value.isdigit() or not lo <= len(value) <= hi:
        raise UsageError(f"{name} must be {lo} to {hi} decimal digits")
    return value


def _hex_field(value: object, name: str, size: int) -> bytes:
    if not isinstance(value, str):
        raise UsageError(f"{name} must be a hex string")
    try:
        raw = bytes.fromhex(value)
    except ValueError:
        raise UsageError(f"{name} must be a hex string") from None
    if len(raw) != size:
        raise UsageError(f"{name} must be {size} octets")
    return raw


def _check_profile_type(instance: ProfileType) -> None:
    if not instance.name or len(instance.name) > 64 or not instance.name.isprintable():
        raise UsageError("a profile type name is 1 to 64 printable characters")
    if instance.profile_class not in PROFILE_CLASSES:
        raise UsageError(f"profileClass must be one of {', '.join(PROFILE_CLASSES)}")
    if len(instance.service_provider_name.encode()) > 32:
        raise UsageError("serviceProviderName is at most 32 octets")
    if len(instance.profile_name.encode()) > 64:
        raise UsageError("profileName is at most 64 octets")
    _digits(instance.iccid_prefix, "iccidPrefix", 2, 12)
    _digits(instance.imsi_prefix, "imsiPrefix", 5, 8)
    if instance.op is not None and len(instance.op) != 16:
        raise UsageError("op must be 16 octets")
    if instance.algorithm not in ("milenage", "usim-test-algorithm"):
        raise UsageError('algorithm must be "milenage" or "usim-test-algorithm"')
    if instance.profile_owner is not None:
        _digits(instance.profile_owner, "profileOwner", 5, 6)
    if (instance.ppr1 or instance.ppr2) and instance.profile_owner is None:
        raise UsageError("Profile Policy Rules need a profileOwner (MCC MNC)")
    for event, address in instance.notification_events:
        if event not in NOTIFICATION_EVENTS or not address:
            raise UsageError("notification_events holds (event, address) pairs")


@attrs.frozen(eq=False)
class ProfileType:
    """A profile type: the template package and the metadata of every instance.

    ``package`` is the unprotected SAIP package (DER ProfileElements) that is
    personalised per instance (ICCID, IMSI, K, OPc).  ``iccid_prefix`` and
    ``imsi_prefix`` number generated instances (ICCID = prefix + counter +
    Luhn digit, 20 digits; IMSI = prefix + counter, 15 digits); ``op``, when
    set, is the operator's OP from which OPc is computed (else OPc is random);
    ``profile_owner`` the MCC+MNC digits (``"00101"``) sent as
    ``profileOwner``, needed with PPRs.  Registered once; a type never
    changes (register a new name instead).
    """

    name: str
    package: bytes = attrs.field(repr=False)
    service_provider_name: str
    profile_name: str
    profile_class: str = "operational"
    ppr1: bool = False
    ppr2: bool = False
    notification_events: tuple[tuple[str, str], ...] = ()
    iccid_prefix: str = "8900000"
    imsi_prefix: str = "00101"
    op: bytes | None = attrs.field(default=None, repr=False)
    algorithm: str = "milenage"
    profile_owner: str | None = None

    def __attrs_post_init__(self) -> None:
        _check_profile_type(self)

    @classmethod
    def from_metadata(cls, name: str, package: bytes, metadata: Mapping[str, Any]) -> ProfileType:
        """A profile type from the JSON object of ``rspfed smdp template add --metadata``.

        Keys (all optional except the first two)::

            {"serviceProviderName": "rspfed", "profileName": "Test profile",
             "profileClass": "operational",            # test | provisioning | operational
             "profilePolicyRules": ["ppr1", "ppr2"],   # needs profileOwner
             "profileOwner": "00101",                  # MCC+MNC digits
             "notificationConfigurationInfo": [
                 {"events": ["install", "enable", "disable", "delete"],
                  "address": "smdp.example.com"}],
             "iccidPrefix": "8900000", "imsiPrefix": "00101",
             "op": "<32 hex digits>",                  # OPc = MILENAGE(K, OP)
             "algorithm": "milenage"}                  # or usim-test-algorithm

        Raises :class:`~rspfed.errors.UsageError` for a missing or bad value.
        """
        if not isinstance(metadata, Mapping):
            raise UsageError("profile type metadata must be a JSON object")
        spn = metadata.get("serviceProviderName")
        pname = metadata.get("profileName")
        if not isinstance(spn, str) or not isinstance(pname, str):
            raise UsageError("metadata needs serviceProviderName and profileName (strings)")
        ppr1, ppr2 = _ppr_from(metadata)
        op = metadata.get("op")
        owner = metadata.get("profileOwner")
        if owner is not None and not isinstance(owner, str):
            raise UsageError("profileOwner must be MCC+MNC digits")
        pclass = metadata.get("profileClass", "operational")
        algorithm = metadata.get("algorithm", "milenage")
        if not isinstance(pclass, str) or not isinstance(algorithm, str):
            raise UsageError("profileClass and algorithm are strings")
        return cls(
            name=name,
            package=bytes(package),
            service_provider_name=spn,
            profile_name=pname,
            profile_class=pclass,
            ppr1=ppr1,
            ppr2=ppr2,
            notification_events=_events_from(metadata),
            iccid_prefix=_digits(metadata.get("iccidPrefix", "8900000"), "iccidPrefix", 2, 12),
            imsi_prefix=_digits(metadata.get("imsiPrefix", "00101"), "imsiPrefix", 5, 8),
            op=None if op is None else _hex_field(op, "op", 16),
            algorithm=algorithm,
            profile_owner=owner,
        )

    def metadata(self) -> dict[str, Any]:
        """The JSON object :meth:`from_metadata` reads (without the package)."""
        out: dict[str, Any] = {
            "serviceProviderName": self.service_provider_name,
            "profileName": self.profile_name,
            "profileClass": self.profile_class,
            "profilePolicyRules": [n for n, v in (("ppr1", self.ppr1), ("ppr2", self.ppr2)) if v],
            "notificationConfigurationInfo": [
                {"events": [event], "address": address}
                for event, address in self.notification_events
            ],
            "iccidPrefix": self.iccid_prefix,
            "imsiPrefix": self.imsi_prefix,
            "algorithm": self.algorithm,
        }
        if self.op is not None:
            out["op"] = self.op.hex()
        if self.profile_owner is not None:
            out["profileOwner"] = self.profile_owner
        return out

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, ProfileType)
            and other.name == self.name
            and other.package == self.package
            and other.metadata() == self.metadata()
        )

    def __hash__(self) -> int:
        return hash((self.name, self.package))


@attrs.frozen
class InventoryItem:
    """One profile instance (ICCID) with its order.

    ``cc_hash`` is ``SHA256(confirmation code)`` (the first step of SGP.22's
    ``hashCc``), never the code; ``euicc_public_key`` the eUICC's key from the
    last authenticated session (curve byte + uncompressed point) and
    ``transaction_id`` that session's, both used to verify the installation
    result.  Timestamps are UTC.
    """

    iccid: str
    profile_type: str
    state: ItemState
    imsi: str
    k: bytes = attrs.field(repr=False)
    opc: bytes = attrs.field(repr=False)
    eid: str | None = None
    matching_id: str | None = None
    cc_hash: bytes | None = attrs.field(default=None, repr=False)
    release_flag: bool = False
    cc_attempts: int = 0
    download_attempts: int = 0
    requester: str | None = None
    smds_address: str | None = None
    transaction_id: bytes | None = None
    euicc_public_key: bytes | None = attrs.field(default=None, repr=False)
    created: datetime = _EPOCH
    updated: datetime = _EPOCH
    version: int = 0
    """Incremented by :meth:`~rspfed.smdp.store.SmdpStore.update_item` (optimistic locking)."""

    @property
    def confirmation_code_required(self) -> bool:
        """Whether the order has a confirmation code."""
        return self.cc_hash is not None


class SessionStage(enum.IntEnum):
    """Where an RSP session is (one ES9+ function each)."""

    INITIATED = 1
    """After InitiateAuthentication: waiting for AuthenticateClient."""
    AUTHENTICATED = 2
    """After AuthenticateClient: waiting for GetBoundProfilePackage."""
    BOUND = 3
    """A BPP was delivered: only CancelSession is left."""


_SESSION_VERSION = 1
_SESSION_HEAD = struct.Struct(">BBqBB")  # version, stage, expires (µs), credential, flags


def _pack(*fields: bytes) -> bytes:
    return b"".join(struct.pack(">H", len(f)) + f for f in fields)


@attrs.frozen
class RspSession:
    """The state of one RSP session, kept in the store so any worker serves any step.

    Serialised by :meth:`to_bytes` (compact binary, see there).
    """

    transaction_id: bytes
    stage: SessionStage
    expires: datetime
    credential: int
    """Index into :attr:`SmdpConfig.credentials` (the curve chosen)."""
    server_challenge: bytes = attrs.field(repr=False)
    euicc_ci_pkid: bytes = b""
    """CI key id the eUICC was asked to sign with (``euiccCiPKIdToBeUsed``)."""
    euicc_info1: bytes = attrs.field(default=b"", repr=False)
    iccid: str = ""
    eid: str = ""
    euicc_public_key: bytes = attrs.field(default=b"", repr=False)
    """Curve byte + uncompressed point of PK.EUICC.ECDSA (after AuthenticateClient)."""
    euicc_signature1: bytes = attrs.field(default=b"", repr=False)
    smdp_signature2: bytes = attrs.field(default=b"", repr=False)
    cc_required: bool = False
    retry_otpk: bytes = attrs.field(default=b"", repr=False)
    """The otPK.EUICC.ECKA named in ``bppEuiccOtpk`` (a retry), else empty."""

    def to_bytes(self) -> bytes:
        """The compact serialisation.

        ``version(1) stage(1) expires(8, µs since epoch, signed) credential(1)
        flags(1, bit 0 = ccRequired)`` then, each as a 2-octet big-endian
        length and the octets: transactionId, serverChallenge,
        euiccCiPKIdToBeUsed, euiccInfo1, ICCID (ASCII), EID (ASCII),
        PK.EUICC (curve byte + point), euiccSignature1, smdpSignature2,
        bppEuiccOtpk.  About 400 octets for an authenticated session.
        """
        return _SESSION_HEAD.pack(
            _SESSION_VERSION,
            int(self.stage),
            to_micros(self.expires),
            self.credential,
            1 if self.cc_required else 0,
        ) + _pack(
            self.transaction_id,
            self.server_challenge,
            self.euicc_ci_pkid,
            self.euicc_info1,
            self.iccid.encode("ascii"),
            self.eid.encode("ascii"),
            self.euicc_public_key,
            self.euicc_signature1,
            self.smdp_signature2,
            self.retry_otpk,
        )

    @classmethod
    def from_bytes(cls, data: bytes) -> RspSession:
        """Parse :meth:`to_bytes` output (:class:`~rspfed.errors.DecodeError` when damaged)."""
        try:
            version, stage, expires, credential, flags = _SESSION_HEAD.unpack_from(data)
            if version != _SESSION_VERSION:
                raise DecodeError(f"session format {version}", type_name="RspSession")
            fields: list[bytes] = []
            pos = _SESSION_HEAD.size
            for _ in range(10):
                (n,) = struct.unpack_from(">H", data, pos)
                pos += 2
                if pos + n > len(data):
                    raise DecodeError("truncated", type_name="RspSession", offset=pos)
                fields.append(bytes(data[pos : pos + n]))
                pos += n
            if pos != len(data):
                raise DecodeError("trailing octets", type_name="RspSession", offset=pos)
            return cls(
                transaction_id=fields[0],
                stage=SessionStage(stage),
                expires=from_micros(expires),
                credential=credential,
                server_challenge=fields[1],
                euicc_ci_pkid=fields[2],
                euicc_info1=fields[3],
                iccid=fields[4].decode("ascii"),
                eid=fields[5].decode("ascii"),
                euicc_public_key=fields[6],
                euicc_signature1=fields[7],
                smdp_signature2=fields[8],
                cc_required=bool(flags & 1),
                retry_otpk=fields[9],
            )
        except (struct.error, ValueError, UnicodeDecodeError):
            raise DecodeError("damaged session record", type_name="RspSession") from None


@attrs.frozen
class KeptBinding:
    """What the SM-DP+ keeps of a delivered BPP for the SGP.22 retry.

    ``euicc_otpk`` is the eUICC's one-time key the package was bound to and
    ``smdp_ot_key`` the SM-DP+'s one-time private key (curve byte 1 NIST /
    2 brainpool + the 32-octet scalar).  With both the package's protected
    segments come out the same again (session keys, BSP, personalisation are
    deterministic), so a retry gets the same Bound Profile Package with only
    ``InitialiseSecureChannelRequest`` signed for the new transactionId.
    Keeping the key instead of the 12 KB package keeps the store writes of a
    download small.
    """

    iccid: str
    euicc_otpk: bytes
    smdp_ot_key: bytes = attrs.field(repr=False)
    created: datetime = _EPOCH


@attrs.frozen
class NotificationRecord:
    """A notification received over ES9+.HandleNotification (verified)."""

    received: datetime
    event: str
    """``install`` (PIR success), ``install-error`` (PIR error), ``enable``,
    ``disable``, ``delete``."""
    iccid: str | None
    eid: str | None
    transaction_id: bytes | None
    seq_number: int
    pending_notification: bytes = attrs.field(repr=False)


class NotificationPoint(enum.IntEnum):
    """``notificationPointId`` of ES2+.HandleDownloadProgressInfo (SGP.22 §5.3.5)."""

    ELIGIBILITY_AND_RETRY_LIMIT_CHECK = 1
    CONFIRMATION_FAILURE = 2
    BPP_DOWNLOAD = 3
    BPP_INSTALLATION = 4
    HANDLE_NOTIFICATION = 5
    """Other notifications (enable, disable, delete) and cancelled sessions."""


@attrs.frozen
class DownloadProgressEvent:
    """One ES2+.HandleDownloadProgressInfo to send to the operator.

    ``status`` is ``None`` for success, else the failure's ``statusCodeData``;
    ``result_data`` the PIR or the eUICC-signed notification (DER) where there
    is one; ``callback_url`` where to send it.
    """

    eid: str | None
    iccid: str
    profile_type: str
    timestamp: datetime
    notification_point_id: int
    status: StatusCodeData | None = None
    result_data: bytes | None = attrs.field(default=None, repr=False)
    callback_url: str | None = None
    requester: str | None = None
    event_id: int = 0
    """Store-assigned sequence number (0 before it is stored)."""


@attrs.frozen
class ConfirmedOrder:
    """The answer of ES2+.ConfirmOrder: what the end user needs."""

    eid: str | None
    matching_id: str
    smdp_address: str
    confirmation_code_required: bool = False

    @property
    def activation_code(self) -> str:
        """``LPA:1$<address>$<matchingId>`` (SGP.22 §4.1), ``$$1`` when a code is required."""
        text = f"LPA:1${self.smdp_address}${self.matching_id}"
        return text + "$$1" if self.confirmation_code_required else text
