"""The pairing offer: what the listening device shows as a QR code.

A :class:`PairingOffer` is the DER ``PairingOffer`` of
``rspfed/asn1/modules/transfer.asn`` carried in the URI
``rspfed:1:pair:<base64url DER>`` (:mod:`rspfed.federation.uri`'s grammar,
type ``pair``).  It holds a 256-bit one-time ``secret`` and what a joiner
needs before connecting: the offerer's role, name and device class, and
transport hints (LAN: zeroconf, optionally a host and port for a direct
connection; BLE).  From the secret come the discovery identifier
(:func:`rspfed.transfer.code.discovery_id_from_secret`) and the Noise psk
(:func:`rspfed.transfer.code.psk_from_secret`); see ``docs/pairing.md``.

The offer is single-use: after one connection attempt (successful or not)
the offerer makes a new one.  The secret is never in ``repr``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

import attrs

from rspfed import asn1
from rspfed.asn1 import transfer as schema
from rspfed.errors import DecodeError, EncodeError, UsageError
from rspfed.federation.token import DeviceClass
from rspfed.federation.uri import RspfedUri
from rspfed.transfer.code import SECRET_SIZE, discovery_id_from_secret
from rspfed.transfer.messages import MAX_NAME_LENGTH, TRANSFER_VERSION, DeviceRole

__all__ = [
    "OFFER_URI_TYPE",
    "LanHint",
    "PairingOffer",
]

OFFER_URI_TYPE = "pair"
"""The ``rspfed:`` URI type of a pairing offer."""

_TYPE = "PairingOffer"
_MAX_HOST = 253


def _host_validator(_i: Any, _a: Any, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, str) or not 1 <= len(value) <= _MAX_HOST or not value.isascii():
        raise UsageError(f"host must be 1 to {_MAX_HOST} ASCII characters")
    try:
        ipaddress.ip_address(value)
    except ValueError:
        labels = value.rstrip(".").split(".")
        if not all(
            1 <= len(label) <= 63 and all(c.isalnum() or c == "-" for c in label)
            for label in labels
        ):
            raise UsageError("host must be an IP address or a DNS name") from None


def _port_validator(_i: Any, _a: Any, value: Any) -> None:
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise UsageError("port must be 1 to 65535")


@attrs.frozen
class LanHint:
    """The offerer listens on the LAN (zeroconf ``_rspfed._tcp.local.``).

    ``host`` (an IP address or DNS name) and ``port``, when given, allow a
    direct TCP connection without discovery.
    """

    host: str | None = attrs.field(default=None, validator=_host_validator)
    port: int | None = attrs.field(default=None, validator=_port_validator)


def _secret_validator(_i: Any, _a: Any, value: Any) -> None:
    if not isinstance(value, bytes) or len(value) != SECRET_SIZE:
        raise UsageError(f"the offer secret is {SECRET_SIZE} octets")


def _name_validator(_i: Any, _a: Any, value: Any) -> None:
    if not isinstance(value, str) or not 1 <= len(value) <= MAX_NAME_LENGTH:
        raise UsageError(f"offerer_name is 1 to {MAX_NAME_LENGTH} characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise UsageError("offerer_name must be valid Unicode text") from None


@attrs.frozen
class PairingOffer:
    """A one-time pairing offer (ASN.1 ``PairingOffer``).

    At least one transport: ``lan`` (a :class:`LanHint`) or ``ble``.
    """

    secret: bytes = attrs.field(repr=False, validator=_secret_validator)
    offerer_role: DeviceRole = attrs.field()
    offerer_name: str = attrs.field(validator=_name_validator)
    device_class: DeviceClass = attrs.field()
    lan: LanHint | None = attrs.field(default=None)
    ble: bool = attrs.field(default=False)

    def __attrs_post_init__(self) -> None:
        if not isinstance(self.offerer_role, DeviceRole):
            raise UsageError("offerer_role must be a DeviceRole")
        if not isinstance(self.device_class, DeviceClass):
            raise UsageError("device_class must be a DeviceClass")
        if self.lan is not None and not isinstance(self.lan, LanHint):
            raise UsageError("lan must be a LanHint or None")
        if not isinstance(self.ble, bool):
            raise UsageError("ble must be a bool")
        if self.lan is None and not self.ble:
            raise UsageError("a pairing offer names at least one transport (lan, ble)")

    @classmethod
    def generate(
        cls,
        rand: Callable[[int], bytes],
        *,
        offerer_role: DeviceRole,
        offerer_name: str,
        device_class: DeviceClass,
        lan: LanHint | None = None,
        ble: bool = False,
    ) -> PairingOffer:
        """A new offer whose secret is ``rand(32)`` (``os.urandom``'s signature)."""
        secret = bytes(rand(SECRET_SIZE))
        if len(secret) != SECRET_SIZE:
            raise UsageError(f"rand({SECRET_SIZE}) returned {len(secret)} octets")
        return cls(
            secret=secret,
            offerer_role=offerer_role,
            offerer_name=offerer_name,
            device_class=device_class,
            lan=lan,
            ble=ble,
        )

    @property
    def discovery_id(self) -> bytes:
        """The 16-octet discovery identifier of the QR path (from the secret)."""
        return discovery_id_from_secret(self.secret)

    def to_der(self) -> bytes:
        """The DER ``PairingOffer``."""
        transports: dict[str, Any] = {}
        if self.lan is not None:
            lan: dict[str, Any] = {}
            if self.lan.host is not None:
                lan["host"] = self.lan.host
            if self.lan.port is not None:
                lan["port"] = self.lan.port
            transports["lan"] = lan
        if self.ble:
            transports["ble"] = {}
        value = schema.PairingOffer(
            {
                "version": TRANSFER_VERSION,
                "secret": self.secret,
                "offererRole": self.offerer_role.value,
                "offererName": self.offerer_name,
                "deviceClass": self.device_class.value,
                "transports": transports,
            }
        )
        try:
            return asn1.encode(value)
        except EncodeError as exc:  # pragma: no cover - checked on construction
            raise UsageError(f"cannot encode the offer: {exc}") from None

    @classmethod
    def from_der(cls, der: bytes) -> PairingOffer:
        """Decode a DER ``PairingOffer`` (strict).

        :class:`~rspfed.errors.DecodeError` for malformed DER, another
        version, unknown enumeration values, a bad host or no transport.
        Unknown extension additions are skipped.
        """
        if not isinstance(der, bytes | bytearray | memoryview):
            raise UsageError("a pairing offer is bytes")
        value = asn1.decode(schema.PairingOffer, bytes(der))
        version = int(value["version"])
        if version != TRANSFER_VERSION:
            raise DecodeError(f"unsupported pairing offer version {version}", type_name=_TYPE)
        try:
            role = DeviceRole(value["offererRole"].native)
            device_class = DeviceClass(value["deviceClass"].native)
        except ValueError:
            raise DecodeError("unknown offererRole or deviceClass", type_name=_TYPE) from None
        transports = value["transports"]
        lan: LanHint | None = None
        try:
            if transports["lan"].native is not None:
                hint = transports["lan"]
                lan = LanHint(host=hint["host"].native, port=hint["port"].native)
            return cls(
                secret=bytes(value["secret"].native),
                offerer_role=role,
                offerer_name=str(value["offererName"].native),
                device_class=device_class,
                lan=lan,
                ble=transports["ble"].native is not None,
            )
        except UsageError as exc:
            raise DecodeError(str(exc), type_name=_TYPE) from None

    def to_uri(self) -> str:
        """``rspfed:1:pair:<base64url of the DER>``."""
        return RspfedUri(type=OFFER_URI_TYPE, payload=self.to_der()).to_text()

    def to_rspfed_uri(self) -> RspfedUri:
        """The :class:`~rspfed.federation.uri.RspfedUri` (for ``qr_png``/``qr_terminal``)."""
        return RspfedUri(type=OFFER_URI_TYPE, payload=self.to_der())

    @classmethod
    def from_uri(cls, text: str) -> PairingOffer:
        """Parse an ``rspfed:1:pair:`` URI.

        :class:`~rspfed.errors.DecodeError` for a malformed URI, one of
        another type, or a bad offer.
        """
        uri = RspfedUri.parse(text)
        if uri.type != OFFER_URI_TYPE:
            raise DecodeError(f"expected type 'pair', got {uri.type!r}", type_name="rspfed URI")
        return cls.from_der(uri.payload)
