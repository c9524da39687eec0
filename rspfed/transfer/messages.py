"""The application messages of a pairing connection, as value types, and their DER.

Each message is one ``TransferMessage`` of ``rspfed/asn1/modules/transfer.asn``
(``version`` v1 and one ``body`` alternative), sent inside the secure channel
(:mod:`rspfed.transfer.channel`) once the pairing handshake is done; see
``docs/pairing.md``.  The value types are frozen ``attrs`` classes:

============================  =====================  ================================
class                         body alternative       meaning
============================  =====================  ================================
:class:`Hello`                ``hello``              who the sender is (first message)
:class:`JoinRequest`          ``joinRequest``        "let me join your subscription"
:class:`TokenGrant`           ``tokenGrant``         the federation token + operator
:class:`Refusal`              ``refusal``            the join request is refused
:class:`JoinResult`           ``joinResult``         the joined device's outcome
:class:`LedgerState`          ``ledgerState``        E's usage ledger state (opaque DER)
:class:`Bye`                  ``bye``                the sender is done
:class:`CompanionRequest`     ``companionRequest``   the phone asks a companion (H)
:class:`CompanionInfo`        ``companionInfo``      name, EID, DeviceInfo DER (H)
:class:`Es10Request`          ``es10Request``        one ES10 request DER (H)
:class:`Es10Response`         ``es10Response``       the eUICC's response DER (H)
:class:`Es10Refusal`          ``es10Refused``        the request is not relayed (H)
:class:`ChangeRequest`        ``changeRequest``      "take over my subscription" (I)
:class:`ChangeOrder`          ``changeOrder``        the operator's order for it (I)
:class:`ChangeResult`         ``changeResult``       switched, or the failed step (I)
:class:`ChangeDone`           ``changeDone``         old profile deleted, carry-over (I)
============================  =====================  ================================

:func:`encode_message` / :func:`decode_message` convert.  Decoding is strict
DER; a malformed message or a field outside its type raises
:class:`~rspfed.errors.DecodeError`; a well-formed message of another
``version`` or with an alternative this version does not know (an extension
addition from a later rspfed) raises :class:`~rspfed.errors.ProtocolError`
(the connection answers it with ``bye unsupported``).

Extending (issues H and I): add the alternative after the extension marker
of ``TransferMessage.body`` in ``transfer.asn``, regenerate
``rspfed.asn1.transfer``, add an ``attrs`` class and one :class:`MessageCodec`
to :data:`CODECS`, and the rows that allow it to
:data:`rspfed.transfer._state.TRANSITIONS`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, TypeAlias

import attrs

from rspfed import asn1
from rspfed.asn1 import rsp
from rspfed.asn1 import transfer as schema
from rspfed.errors import DecodeError, EncodeError, ProtocolError, UsageError
from rspfed.federation.token import DeviceClass, Service
from rspfed.pki.eid import is_valid_eid
from rspfed.saip.identifiers import decode_iccid, encode_iccid

__all__ = [
    "CODECS",
    "MAX_COMPANIONS",
    "MAX_DEVICE_INFO_SIZE",
    "MAX_NAME_LENGTH",
    "MAX_OPERATOR_URL_LENGTH",
    "MAX_TOKEN_SIZE",
    "TRANSFER_VERSION",
    "Bye",
    "ByeReason",
    "Capability",
    "ChangeDone",
    "ChangeFailure",
    "ChangeOrder",
    "ChangeRequest",
    "ChangeResult",
    "CompanionHandover",
    "CompanionInfo",
    "CompanionRequest",
    "CompanionTransport",
    "DeviceRole",
    "Es10Refusal",
    "Es10RefusalReason",
    "Es10Request",
    "Es10Response",
    "Hello",
    "JoinFailure",
    "JoinRequest",
    "JoinResult",
    "LedgerState",
    "Message",
    "MessageCodec",
    "Refusal",
    "RefusalReason",
    "TokenGrant",
    "decode_message",
    "encode_message",
    "message_kind",
]

TRANSFER_VERSION = 1
"""The ``TransferMessage.version`` this implementation writes and accepts (v1)."""

MAX_NAME_LENGTH = 64
"""Longest device name, in characters (``DeviceName``)."""
MAX_TOKEN_SIZE = 4096
"""Largest federation token DER in a :class:`TokenGrant`."""
MAX_OPERATOR_URL_LENGTH = 2048
"""Longest operator URL in a :class:`TokenGrant`, in characters."""

MAX_DEVICE_INFO_SIZE = 1024
"""Largest DeviceInfo DER in a :class:`CompanionInfo`."""

MAX_COMPANIONS = 8
"""Most companion pairings a :class:`ChangeDone` hands over."""

_TYPE = "TransferMessage"


class DeviceRole(enum.Enum):
    """ASN.1 ``DeviceRole``: what a device is to its subscription."""

    PRIMARY = "primary"
    """Holds the subscription and its federation key (grants joins)."""
    SECONDARY = "secondary"
    """A linked device with its own profile (tablet, laptop)."""
    COMPANION = "companion"
    """A device set up and managed through its paired phone (watch, issue H)."""


class Capability(enum.Enum):
    """A named bit of ASN.1 ``Capabilities``: what the sender supports."""

    JOIN = "join"
    """The join exchange (join request, token grant, join result)."""
    COMPANION = "companion"
    """The companion ES10 relay (issue H)."""
    DEVICE_CHANGE = "deviceChange"
    """Device change (issue I)."""
    LEDGER = "ledger"
    """Receiving the usage ledger state."""


class RefusalReason(enum.Enum):
    """ASN.1 ``RefusalReason``: why a join request is refused."""

    DENIED = "denied"
    """The user said no."""
    BUSY = "busy"
    """Another join is in progress."""
    LIMIT = "limit"
    """The subscription's device limit is reached."""
    ERROR = "error"
    """The token could not be issued."""


class JoinFailure(enum.Enum):
    """ASN.1 ``JoinFailure``: the step of a granted join that failed."""

    REFUSED = "refused"
    """The operator refused the token."""
    DOWNLOAD = "download"
    """The profile download failed."""
    ENABLE = "enable"
    """Enabling the profile failed."""
    REGISTRATION = "registration"
    """Registering the device key failed."""
    CANCELLED = "cancelled"
    """The user cancelled."""
    ERROR = "error"
    """Anything else."""


class ByeReason(enum.Enum):
    """ASN.1 ``ByeReason``: why the sender ends the connection."""

    DONE = "done"
    CANCELLED = "cancelled"
    UNSUPPORTED = "unsupported"
    """The peer sent a version or message alternative the sender does not know."""
    PROTOCOL_ERROR = "protocolError"
    """The peer sent a malformed message or one not allowed at that point."""


def _check_name(value: object) -> str:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_NAME_LENGTH:
        raise UsageError(f"a device name is 1 to {MAX_NAME_LENGTH} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError("a device name must be valid Unicode text") from None
    return value


def _name_validator(_i: Any, _a: Any, value: Any) -> None:
    _check_name(value)


def _eid_validator(_i: Any, _a: Any, value: Any) -> None:
    if not isinstance(value, str) or not is_valid_eid(value):
        raise UsageError("eid must be a valid 32-digit EID")


def _enum_validator(cls: type[enum.Enum]) -> Callable[[Any, Any, Any], None]:
    def check(_i: Any, _a: Any, value: Any) -> None:
        if not isinstance(value, cls):
            raise UsageError(f"expected a {cls.__name__}")

    return check


def _set_of(cls: type[enum.Enum], values: Iterable[Any]) -> frozenset[Any]:
    if isinstance(values, str | bytes):
        raise UsageError(f"expected an iterable of {cls.__name__}")
    out = frozenset(values)
    if not all(isinstance(v, cls) for v in out):
        raise UsageError(f"expected an iterable of {cls.__name__}")
    return out


def _capabilities(values: Iterable[Capability]) -> frozenset[Capability]:
    return _set_of(Capability, values)


def _services(values: Iterable[Service]) -> frozenset[Service]:
    return _set_of(Service, values)


@attrs.frozen
class Hello:
    """``hello``: the first message each side sends on the secure channel.

    ``eid`` is the sender's 32-digit EID (the eUICC a token would be issued
    for), ``role`` what it is to its subscription, ``capabilities`` the
    exchanges it supports.
    """

    name: str = attrs.field(validator=_name_validator)
    device_class: DeviceClass = attrs.field(validator=_enum_validator(DeviceClass))
    role: DeviceRole = attrs.field(validator=_enum_validator(DeviceRole))
    eid: str = attrs.field(validator=_eid_validator)
    capabilities: frozenset[Capability] = attrs.field(factory=frozenset, converter=_capabilities)


@attrs.frozen
class JoinRequest:
    """``joinRequest``: the sender asks for a linked profile of the peer's subscription.

    The token is for the EID of the sender's :class:`Hello`; ``device_class``
    and ``services`` are what it asks for, ``name`` what the approval prompt
    shows.
    """

    device_class: DeviceClass = attrs.field(validator=_enum_validator(DeviceClass))
    services: frozenset[Service] = attrs.field(converter=_services)
    name: str = attrs.field(validator=_name_validator)


def _token_validator(_i: Any, _a: Any, value: Any) -> None:
    if not isinstance(value, bytes) or not 1 <= len(value) <= MAX_TOKEN_SIZE:
        raise UsageError(f"token must be 1 to {MAX_TOKEN_SIZE} octets")


def _url_validator(_i: Any, _a: Any, value: Any) -> None:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_OPERATOR_URL_LENGTH:
        raise UsageError(f"operator_url must be 1 to {MAX_OPERATOR_URL_LENGTH} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError("operator_url must be valid Unicode text") from None


@attrs.frozen
class TokenGrant:
    """``tokenGrant``: a federation token (DER ``FederationToken``) and where to redeem it.

    The token is a bearer credential bound to one EID: it is kept out of ``repr``.
    """

    token: bytes = attrs.field(repr=False, validator=_token_validator)
    operator_url: str = attrs.field(validator=_url_validator)


@attrs.frozen
class Refusal:
    """``refusal``: the join request is refused."""

    reason: RefusalReason = attrs.field(validator=_enum_validator(RefusalReason))


def _iccid_validator(_i: Any, _a: Any, value: Any) -> None:
    if value is None:
        return
    if not (isinstance(value, str) and value.isascii() and value.isdigit()):
        raise UsageError("an ICCID is 18 to 20 decimal digits")
    if not 18 <= len(value) <= 20:
        raise UsageError("an ICCID is 18 to 20 decimal digits")


@attrs.frozen
class JoinResult:
    """``joinResult``: the joined device's outcome, exactly one of ``iccid`` and ``failure``.

    ``iccid``: the linked profile is installed and enabled; ``failure``: the
    step that failed.  Build with :meth:`installed` or :meth:`failed`.
    """

    iccid: str | None = attrs.field(default=None, validator=_iccid_validator)
    failure: JoinFailure | None = attrs.field(default=None)

    def __attrs_post_init__(self) -> None:
        if (self.iccid is None) == (self.failure is None):
            raise UsageError("a JoinResult has exactly one of iccid and failure")
        if self.failure is not None and not isinstance(self.failure, JoinFailure):
            raise UsageError("failure must be a JoinFailure")

    @classmethod
    def installed(cls, iccid: str) -> JoinResult:
        """The profile with ``iccid`` is installed and enabled."""
        return cls(iccid=iccid)

    @classmethod
    def failed(cls, failure: JoinFailure) -> JoinResult:
        """The join failed at ``failure``."""
        return cls(failure=failure)

    @property
    def ok(self) -> bool:
        """True if the profile was installed."""
        return self.iccid is not None


def _bytes_validator(_i: Any, _a: Any, value: Any) -> None:
    if not isinstance(value, bytes):
        raise UsageError("state must be bytes (the DER of an RSPFedLedger LedgerState)")


@attrs.frozen
class LedgerState:
    """``ledgerState``: the DER of an RSPFedLedger ``LedgerState`` (E's usage ledger).

    Opaque here: the receiver decodes it with
    :func:`rspfed.federation.ledger.decode_state`.  (Not to be confused with
    :class:`rspfed.federation.ledger.LedgerState`, the decoded value.)
    """

    state: bytes = attrs.field(repr=False, validator=_bytes_validator)


@attrs.frozen
class Bye:
    """``bye``: the sender ends the connection (nothing follows it)."""

    reason: ByeReason = attrs.field(default=ByeReason.DONE, validator=_enum_validator(ByeReason))


@attrs.frozen
class CompanionRequest:
    """``companionRequest``: the phone asks a companion offerer for its :class:`CompanionInfo`.

    Allowed once, after the hellos, from a joiner to an offerer whose hello
    role is :attr:`DeviceRole.COMPANION`; opens the ES10 relay (issue H).
    """


def _device_info_validator(_i: Any, _a: Any, value: Any) -> None:
    if not isinstance(value, bytes) or not 1 <= len(value) <= MAX_DEVICE_INFO_SIZE:
        raise UsageError(f"device_info must be 1 to {MAX_DEVICE_INFO_SIZE} octets")
    try:
        asn1.decode(rsp.DeviceInfo, value)
    except DecodeError:
        raise UsageError("device_info must be the DER of an SGP.22 DeviceInfo") from None


@attrs.frozen
class CompanionInfo:
    """``companionInfo``: the watch's answer to a :class:`CompanionRequest`.

    ``name`` and ``eid`` are the watch's (as in its hello); ``device_info`` is
    the DER of its SGP.22 ``DeviceInfo`` (checked to decode), which the
    phone's LPA puts in ``ctxParams1``.  The EUICCInfo reaches the LPA through
    the relayed ES10 calls themselves.
    """

    name: str = attrs.field(validator=_name_validator)
    eid: str = attrs.field(validator=_eid_validator)
    device_info: bytes = attrs.field(validator=_device_info_validator)


def _request_validator(_i: Any, _a: Any, value: Any) -> None:
    if not isinstance(value, bytes) or not value:
        raise UsageError("an ES10 request is a non-empty DER octet string")


def _response_validator(_i: Any, _a: Any, value: Any) -> None:
    if not isinstance(value, bytes):
        raise UsageError("an ES10 response is bytes (possibly empty)")


@attrs.frozen
class Es10Request:
    """``es10Request``: one complete ES10 request DER (as ``Es10.transceive`` takes it).

    Sent by the phone to the watch; the relay allow-list (ES10a/b/c of
    SGP.22) is the watch application's (:mod:`rspfed.transfer.relay`).  Its
    content (e.g. a bound profile package segment) is kept out of ``repr``.
    """

    der: bytes = attrs.field(repr=False, validator=_request_validator)


@attrs.frozen
class Es10Response:
    """``es10Response``: the watch eUICC's response DER to the outstanding :class:`Es10Request`.

    Empty for an intermediate ``LoadBoundProfilePackage`` segment.  Kept out
    of ``repr``.
    """

    der: bytes = attrs.field(default=b"", repr=False, validator=_response_validator)


class Es10RefusalReason(enum.Enum):
    """ASN.1 ``Es10RefusalReason``: why the watch does not relay an ES10 request."""

    NOT_ALLOWED = "notAllowed"
    """Not an ES10 request the LPA may send (the allow-list)."""
    BUSY = "busy"
    """The eUICC is in use."""
    ERROR = "error"
    """The eUICC could not be reached or failed."""


@attrs.frozen
class Es10Refusal:
    """``es10Refused``: the watch answers the outstanding :class:`Es10Request` without the eUICC."""

    reason: Es10RefusalReason = attrs.field(validator=_enum_validator(Es10RefusalReason))


# --------------------------------------------------------------------------
# device change (issue I, docs/device-change.md)


@attrs.frozen
class ChangeRequest:
    """``changeRequest``: the new device asks the old one to hand its subscription over.

    Sent once by the joiner after the hellos; the new eUICC's EID is the one
    in its :class:`Hello`.  ``name`` and ``device_class`` are what the new
    device will be called and is.
    """

    name: str = attrs.field(validator=_name_validator)
    device_class: DeviceClass = attrs.field(validator=_enum_validator(DeviceClass))


def _text_validator(limit: int) -> Callable[[Any, Any, Any], None]:
    def check(_i: Any, attribute: Any, value: Any) -> None:
        if not isinstance(value, str) or not 1 <= len(value) <= limit:
            raise UsageError(f"{attribute.name} must be text of 1 to {limit} characters")

    return check


@attrs.frozen
class ChangeOrder:
    """``changeOrder``: what the operator ordered for the new device's EID.

    ``activation_code`` (``LPA:1$...``) downloads the new profile;
    ``change_id`` and ``secret`` read the change's state at the operator
    (``device-change/status``) before the new device has a key of its own.
    ``subscription_id``, ``device_id`` and ``role`` are the device record the
    new device takes over; ``replaced_iccid`` names a linked profile of the
    same subscription on the new eUICC that the change replaces (the new
    device deletes it once switched).  The secret and the activation code are
    kept out of ``repr``.
    """

    change_id: str = attrs.field(validator=_text_validator(64))
    secret: str = attrs.field(repr=False, validator=_text_validator(128))
    activation_code: str = attrs.field(repr=False, validator=_text_validator(255))
    operator_url: str = attrs.field(validator=_url_validator)
    subscription_id: str = attrs.field(validator=_text_validator(64))
    device_id: str = attrs.field(validator=_text_validator(64))
    role: DeviceRole = attrs.field(validator=_enum_validator(DeviceRole))
    replaced_iccid: str | None = attrs.field(default=None, validator=_iccid_validator)


class ChangeFailure(enum.Enum):
    """ASN.1 ``ChangeFailure``: the step of the new device that failed."""

    DOWNLOAD = "download"
    ENABLE = "enable"
    SWITCH = "switch"
    """The network did not switch to the new profile in time."""
    CANCELLED = "cancelled"
    ERROR = "error"


@attrs.frozen
class ChangeResult:
    """``changeResult``: exactly one of ``iccid`` (the network serves the new profile:
    switched) and ``failure``.  Build with :meth:`switched` or :meth:`failed`."""

    iccid: str | None = attrs.field(default=None, validator=_iccid_validator)
    failure: ChangeFailure | None = attrs.field(default=None)

    def __attrs_post_init__(self) -> None:
        if (self.iccid is None) == (self.failure is None):
            raise UsageError("a ChangeResult has exactly one of iccid and failure")
        if self.failure is not None and not isinstance(self.failure, ChangeFailure):
            raise UsageError("failure must be a ChangeFailure")

    @classmethod
    def switched(cls, iccid: str) -> ChangeResult:
        """The network switched to the new profile ``iccid``."""
        return cls(iccid=iccid)

    @classmethod
    def failed(cls, failure: ChangeFailure) -> ChangeResult:
        """The change failed at ``failure``."""
        return cls(failure=failure)

    @property
    def ok(self) -> bool:
        """True if the network switched."""
        return self.iccid is not None


class CompanionTransport(enum.Enum):
    """ASN.1 ``CompanionTransport``: how the phone reaches a companion."""

    LAN = "lan"
    BLE = "ble"


def _fixed_bytes(size: int) -> Callable[[Any, Any, Any], None]:
    def check(_i: Any, attribute: Any, value: Any) -> None:
        if not isinstance(value, bytes) or len(value) != size:
            raise UsageError(f"{attribute.name} must be {size} octets")

    return check


@attrs.frozen
class CompanionHandover:
    """One companion pairing the old phone hands to the new one (:class:`ChangeDone`).

    The watch's ``eid`` and ``name``, the long-term ``psk`` of the PAIRED
    method (32 octets, out of ``repr``), the ``reconnection_id`` the watch
    listens on and the ``transport`` that reaches it.
    """

    eid: str = attrs.field(validator=_eid_validator)
    name: str = attrs.field(validator=_name_validator)
    psk: bytes = attrs.field(repr=False, validator=_fixed_bytes(32))
    reconnection_id: bytes = attrs.field(validator=_fixed_bytes(16))
    transport: CompanionTransport = attrs.field(validator=_enum_validator(CompanionTransport))


def _companions(values: Iterable[CompanionHandover]) -> tuple[CompanionHandover, ...]:
    items = tuple(values)
    if len(items) > MAX_COMPANIONS:
        raise UsageError(f"at most {MAX_COMPANIONS} companions")
    if not all(isinstance(c, CompanionHandover) for c in items):
        raise UsageError("companions must be CompanionHandover values")
    return items


@attrs.frozen
class ChangeDone:
    """``changeDone``: the old device is done after a switched change.

    ``deleted``: the old profile's ICCID once deleted (``None``: not yet, the
    old device retries and the operator learns it from the delete
    notification); ``companions``: the pairings that move with the
    subscription.
    """

    deleted: str | None = attrs.field(default=None, validator=_iccid_validator)
    companions: tuple[CompanionHandover, ...] = attrs.field(default=(), converter=_companions)


Message: TypeAlias = (
    Hello
    | JoinRequest
    | TokenGrant
    | Refusal
    | JoinResult
    | LedgerState
    | Bye
    | CompanionRequest
    | CompanionInfo
    | Es10Request
    | Es10Response
    | Es10Refusal
    | ChangeRequest
    | ChangeOrder
    | ChangeResult
    | ChangeDone
)
"""Any application message of this version."""


# --------------------------------------------------------------------------
# codecs


@attrs.frozen
class MessageCodec:
    """How one message class maps to its ``TransferMessage.body`` alternative.

    ``to_native`` gives the asn1crypto native value of the alternative,
    ``from_value`` builds the message from the decoded alternative (raising
    :class:`~rspfed.errors.DecodeError` for values outside the v1 types).
    """

    alternative: str
    cls: type[Any]
    to_native: Callable[[Any], Any]
    from_value: Callable[[Any], Any]


def _enum_from(cls: type[enum.Enum], value: Any, field: str) -> Any:
    try:
        return cls(value.native)
    except ValueError:
        raise DecodeError(f"unknown {field} value", type_name=_TYPE) from None


def _name_from(value: Any) -> str:
    return str(value.native)


def _hello_native(m: Hello) -> dict[str, Any]:
    return {
        "name": m.name,
        "deviceClass": m.device_class.value,
        "role": m.role.value,
        "eid": bytes.fromhex(m.eid),
        "capabilities": {c.value for c in m.capabilities},
    }


def _hello_from(v: Any) -> Hello:
    eid = v["eid"].native.hex()
    if not is_valid_eid(eid):
        raise DecodeError("hello eid is not a valid EID", type_name=_TYPE)
    try:
        caps = frozenset(Capability(c) for c in v["capabilities"].native)
    except ValueError:
        raise DecodeError("unknown capability bit", type_name=_TYPE) from None
    return Hello(
        name=_name_from(v["name"]),
        device_class=_enum_from(DeviceClass, v["deviceClass"], "deviceClass"),
        role=_enum_from(DeviceRole, v["role"], "role"),
        eid=eid,
        capabilities=caps,
    )


def _join_request_native(m: JoinRequest) -> dict[str, Any]:
    return {
        "deviceClass": m.device_class.value,
        "services": {s.value for s in m.services},
        "name": m.name,
    }


def _join_request_from(v: Any) -> JoinRequest:
    try:
        services = frozenset(Service(s) for s in v["services"].native)
    except ValueError:
        raise DecodeError("unknown services bit", type_name=_TYPE) from None
    return JoinRequest(
        device_class=_enum_from(DeviceClass, v["deviceClass"], "deviceClass"),
        services=services,
        name=_name_from(v["name"]),
    )


def _token_grant_native(m: TokenGrant) -> dict[str, Any]:
    return {"token": m.token, "operatorUrl": m.operator_url}


def _token_grant_from(v: Any) -> TokenGrant:
    return TokenGrant(token=bytes(v["token"].native), operator_url=str(v["operatorUrl"].native))


def _refusal_native(m: Refusal) -> dict[str, Any]:
    return {"reason": m.reason.value}


def _refusal_from(v: Any) -> Refusal:
    return Refusal(reason=_enum_from(RefusalReason, v["reason"], "reason"))


def _join_result_native(m: JoinResult) -> dict[str, Any]:
    if m.iccid is not None:
        return {"outcome": ("installed", encode_iccid(m.iccid))}
    assert m.failure is not None
    return {"outcome": ("failed", m.failure.value)}


def _join_result_from(v: Any) -> JoinResult:
    outcome = v["outcome"]
    if outcome.name == "installed":
        octets = bytes(outcome.chosen.native)
        iccid = decode_iccid(octets)
        if not 18 <= len(iccid) <= 20 or encode_iccid(iccid) != octets:
            raise DecodeError("non-canonical ICCID", type_name=_TYPE)
        return JoinResult(iccid=iccid)
    if outcome.name == "failed":
        return JoinResult(failure=_enum_from(JoinFailure, outcome.chosen, "failure"))
    raise DecodeError("unknown joinResult outcome", type_name=_TYPE)


def _ledger_native(m: LedgerState) -> bytes:
    return m.state


def _ledger_from(v: Any) -> LedgerState:
    return LedgerState(state=bytes(v.native))


def _bye_native(m: Bye) -> dict[str, Any]:
    return {"reason": m.reason.value}


def _bye_from(v: Any) -> Bye:
    return Bye(reason=_enum_from(ByeReason, v["reason"], "reason"))


def _companion_request_native(_m: CompanionRequest) -> dict[str, Any]:
    return {}


def _companion_request_from(_v: Any) -> CompanionRequest:
    return CompanionRequest()


def _companion_info_native(m: CompanionInfo) -> dict[str, Any]:
    return {"name": m.name, "eid": bytes.fromhex(m.eid), "deviceInfo": m.device_info}


def _companion_info_from(v: Any) -> CompanionInfo:
    eid = v["eid"].native.hex()
    if not is_valid_eid(eid):
        raise DecodeError("companionInfo eid is not a valid EID", type_name=_TYPE)
    return CompanionInfo(
        name=_name_from(v["name"]), eid=eid, device_info=bytes(v["deviceInfo"].native)
    )


def _es10_request_native(m: Es10Request) -> bytes:
    return m.der


def _es10_request_from(v: Any) -> Es10Request:
    return Es10Request(der=bytes(v.native))


def _es10_response_native(m: Es10Response) -> bytes:
    return m.der


def _es10_response_from(v: Any) -> Es10Response:
    return Es10Response(der=bytes(v.native))


def _es10_refusal_native(m: Es10Refusal) -> dict[str, Any]:
    return {"reason": m.reason.value}


def _es10_refusal_from(v: Any) -> Es10Refusal:
    return Es10Refusal(reason=_enum_from(Es10RefusalReason, v["reason"], "reason"))


def _iccid_octets_from(octets: bytes) -> str:
    iccid = decode_iccid(octets)
    if not 18 <= len(iccid) <= 20 or encode_iccid(iccid) != octets:
        raise DecodeError("non-canonical ICCID", type_name=_TYPE)
    return iccid


def _change_request_native(m: ChangeRequest) -> dict[str, Any]:
    return {"name": m.name, "deviceClass": m.device_class.value}


def _change_request_from(v: Any) -> ChangeRequest:
    return ChangeRequest(
        name=_name_from(v["name"]),
        device_class=_enum_from(DeviceClass, v["deviceClass"], "deviceClass"),
    )


def _change_order_native(m: ChangeOrder) -> dict[str, Any]:
    native: dict[str, Any] = {
        "changeId": m.change_id,
        "secret": m.secret,
        "activationCode": m.activation_code,
        "operatorUrl": m.operator_url,
        "subscriptionId": m.subscription_id,
        "deviceId": m.device_id,
        "role": m.role.value,
    }
    if m.replaced_iccid is not None:
        native["replacedIccid"] = encode_iccid(m.replaced_iccid)
    return native


def _change_order_from(v: Any) -> ChangeOrder:
    replaced = v["replacedIccid"]
    return ChangeOrder(
        change_id=str(v["changeId"].native),
        secret=str(v["secret"].native),
        activation_code=str(v["activationCode"].native),
        operator_url=str(v["operatorUrl"].native),
        subscription_id=str(v["subscriptionId"].native),
        device_id=str(v["deviceId"].native),
        role=_enum_from(DeviceRole, v["role"], "role"),
        replaced_iccid=None
        if replaced.native is None
        else _iccid_octets_from(bytes(replaced.native)),
    )


def _change_result_native(m: ChangeResult) -> dict[str, Any]:
    if m.iccid is not None:
        return {"outcome": ("switched", encode_iccid(m.iccid))}
    assert m.failure is not None
    return {"outcome": ("failed", m.failure.value)}


def _change_result_from(v: Any) -> ChangeResult:
    outcome = v["outcome"]
    if outcome.name == "switched":
        return ChangeResult(iccid=_iccid_octets_from(bytes(outcome.chosen.native)))
    if outcome.name == "failed":
        return ChangeResult(failure=_enum_from(ChangeFailure, outcome.chosen, "failure"))
    raise DecodeError("unknown changeResult outcome", type_name=_TYPE)


def _handover_native(c: CompanionHandover) -> dict[str, Any]:
    return {
        "eid": bytes.fromhex(c.eid),
        "name": c.name,
        "psk": c.psk,
        "reconnectionId": c.reconnection_id,
        "transport": c.transport.value,
    }


def _handover_from(v: Any) -> CompanionHandover:
    eid = v["eid"].native.hex()
    if not is_valid_eid(eid):
        raise DecodeError("companion eid is not a valid EID", type_name=_TYPE)
    return CompanionHandover(
        eid=eid,
        name=_name_from(v["name"]),
        psk=bytes(v["psk"].native),
        reconnection_id=bytes(v["reconnectionId"].native),
        transport=_enum_from(CompanionTransport, v["transport"], "transport"),
    )


def _change_done_native(m: ChangeDone) -> dict[str, Any]:
    native: dict[str, Any] = {"companions": [_handover_native(c) for c in m.companions]}
    if m.deleted is not None:
        native["deleted"] = encode_iccid(m.deleted)
    return native


def _change_done_from(v: Any) -> ChangeDone:
    deleted = v["deleted"]
    return ChangeDone(
        deleted=None if deleted.native is None else _iccid_octets_from(bytes(deleted.native)),
        companions=tuple(_handover_from(c) for c in v["companions"]),
    )


def _codec(
    alternative: str, cls: type[Any], to: Callable[[Any], Any], frm: Callable[[Any], Any]
) -> MessageCodec:
    return MessageCodec(alternative, cls, to, frm)


CODECS: Mapping[str, MessageCodec] = MappingProxyType(
    {
        c.alternative: c
        for c in (
            _codec("hello", Hello, _hello_native, _hello_from),
            _codec("joinRequest", JoinRequest, _join_request_native, _join_request_from),
            _codec("tokenGrant", TokenGrant, _token_grant_native, _token_grant_from),
            _codec("joinResult", JoinResult, _join_result_native, _join_result_from),
            _codec("ledgerState", LedgerState, _ledger_native, _ledger_from),
            _codec("bye", Bye, _bye_native, _bye_from),
            _codec("refusal", Refusal, _refusal_native, _refusal_from),
            _codec(
                "companionRequest",
                CompanionRequest,
                _companion_request_native,
                _companion_request_from,
            ),
            _codec("companionInfo", CompanionInfo, _companion_info_native, _companion_info_from),
            _codec("es10Request", Es10Request, _es10_request_native, _es10_request_from),
            _codec("es10Response", Es10Response, _es10_response_native, _es10_response_from),
            _codec("es10Refused", Es10Refusal, _es10_refusal_native, _es10_refusal_from),
            _codec("changeRequest", ChangeRequest, _change_request_native, _change_request_from),
            _codec("changeOrder", ChangeOrder, _change_order_native, _change_order_from),
            _codec("changeResult", ChangeResult, _change_result_native, _change_result_from),
            _codec("changeDone", ChangeDone, _change_done_native, _change_done_from),
        )
    }
)
"""``TransferMessage.body`` alternative name -> :class:`MessageCodec`."""

_BY_CLASS: Mapping[type[Any], MessageCodec] = MappingProxyType({c.cls: c for c in CODECS.values()})


def message_kind(message: object) -> str:
    """The body alternative name of a message (``"hello"``, ``"tokenGrant"``, ...).

    :class:`~rspfed.errors.UsageError` for an object that is not a message.
    """
    codec = _BY_CLASS.get(type(message))
    if codec is None:
        raise UsageError(f"not a transfer message: {type(message).__name__}")
    return codec.alternative


def encode_message(message: Message) -> bytes:
    """The DER ``TransferMessage`` (version v1) of ``message``."""
    codec = _BY_CLASS.get(type(message))
    if codec is None:
        raise UsageError(f"not a transfer message: {type(message).__name__}")
    value = schema.TransferMessage(
        {"version": TRANSFER_VERSION, "body": (codec.alternative, codec.to_native(message))}
    )
    try:
        return asn1.encode(value)
    except EncodeError as exc:  # pragma: no cover - every field is checked on construction
        raise UsageError(f"cannot encode the message: {exc}") from None


def decode_message(der: bytes) -> Message:
    """The message in a DER ``TransferMessage``.

    :class:`~rspfed.errors.DecodeError` for malformed DER or values outside
    the v1 types; :class:`~rspfed.errors.ProtocolError` for a well-formed
    message of another version or with an unknown body alternative.
    """
    if not isinstance(der, bytes | bytearray | memoryview):
        raise UsageError("a transfer message is bytes")
    value = asn1.decode(schema.TransferMessage, bytes(der))
    version = int(value["version"])
    if version != TRANSFER_VERSION:
        raise ProtocolError(f"unsupported transfer message version {version}")
    body = value["body"]
    if body.name == asn1.UNKNOWN_ALTERNATIVE:
        raise ProtocolError("unknown transfer message alternative")
    codec = CODECS.get(body.name)
    if codec is None:  # pragma: no cover - the schema and CODECS list the same names
        raise ProtocolError(f"unsupported transfer message {body.name!r}")
    try:
        message: Message = codec.from_value(body.chosen)
    except UsageError as exc:
        raise DecodeError(str(exc), type_name=_TYPE) from None
    return message
