"""A secondary's enrolment, as a library call: redeem, download, enable, register.

What ``rspfed federation redeem`` / ``join`` do once the device holds a
token (or an activation code collected from the cloud path), usable by any
front end -- the command line, the device-to-device pairing flows
(:mod:`rspfed.transfer.flows`), the demo:

1. *redeem* the federation token at the operator for this eUICC's EID
   (skipped when an :class:`~rspfed.federation.types.Enrolment` is given);
2. write the device store's :class:`~rspfed.federation.device.DeviceRecord`
   (operator URL, subscription, device id, role ``secondary``, EID, class,
   name) -- before the download, so a crash after it still knows the device;
3. *download* the profile through the LPA (SGP.22 over ES9+/ES10);
4. *enable* it;
5. *register* this device's own key with the operator by EAP-AKA' with the
   new profile's USIM (a fresh key in the device store, committed only once
   the operator took it).

Each step is announced to ``progress`` as an :class:`EnrolEvent`.  Steps
3-5 run only when an LPA (and, for 5, the card and the device store) is
given, as the command's options allow.

Errors: any failure up to and including the enable step raises its
:class:`~rspfed.errors.RspfedError`.  A failed *registration* does not:
the profile is installed and enabled, so :func:`enrol` returns with
:attr:`EnrolResult.registration_error` set (and the pending key discarded);
the caller says so and registers later (``rspfed federation register``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import TYPE_CHECKING

import attrs

from rspfed.errors import ProtocolError, RspfedError, StateError, UsageError
from rspfed.federation.token import DeviceClass, parse_token
from rspfed.federation.types import Device, Enrolment

if TYPE_CHECKING:
    from rspfed.euicc.card import Card
    from rspfed.federation.client import OperatorClient
    from rspfed.federation.device import DeviceStore
    from rspfed.lpa import DownloadResult, Lpa
    from rspfed.lpa.download import ConsentCallback, ProgressCallback

__all__ = [
    "EnrolEvent",
    "EnrolProgress",
    "EnrolResult",
    "EnrolStep",
    "enrol",
    "register_device",
]


class EnrolStep(enum.Enum):
    """The steps of :func:`enrol`, in order."""

    REDEEMING = "redeeming"
    """The token goes to the operator (not announced for a given enrolment)."""
    REDEEMED = "redeemed"
    """The operator answered with the device id and activation code."""
    RECORDED = "recorded"
    """The device store's record names the new device (only with a store)."""
    DOWNLOADING = "downloading"
    """The LPA starts the SGP.22 download."""
    DOWNLOADED = "downloaded"
    """The profile is installed (:attr:`EnrolEvent.download` has the result)."""
    ENABLED = "enabled"
    """The profile is enabled."""
    REGISTERING = "registering"
    """EAP-AKA' registration of a new device key starts."""
    REGISTERED = "registered"
    """The operator registered the key (:attr:`EnrolEvent.device` has the record)."""


@attrs.frozen
class EnrolEvent:
    """One step of an enrolment and what it produced so far."""

    step: EnrolStep
    enrolment: Enrolment | None = None
    download: DownloadResult | None = None
    device: Device | None = None


EnrolProgress = Callable[[EnrolEvent], None]
"""The ``progress`` callback of :func:`enrol`."""


@attrs.frozen
class EnrolResult:
    """What :func:`enrol` did.

    ``download`` is None without an LPA; ``device`` (the operator's record of
    the registered key) is None when no registration ran or it failed, in
    which case ``registration_error`` says why.
    """

    enrolment: Enrolment
    subscription_id: str
    eid: str
    download: DownloadResult | None = None
    device: Device | None = None
    registration_error: RspfedError | None = attrs.field(default=None, eq=False)

    @property
    def iccid(self) -> str:
        """The ICCID of the device's profile (installed when :attr:`installed`)."""
        return self.download.iccid if self.download is not None else self.enrolment.iccid

    @property
    def installed(self) -> bool:
        """Whether the profile was downloaded and enabled."""
        return self.download is not None

    @property
    def registered(self) -> bool:
        """Whether this device's key was registered."""
        return self.device is not None


async def enrol(
    source: bytes | Enrolment,
    *,
    client: OperatorClient,
    eid: str,
    lpa: Lpa | None = None,
    card: Card | None = None,
    store: DeviceStore | None = None,
    subscription_id: str | None = None,
    device_class: DeviceClass | None = None,
    name: str | None = None,
    operator_url: str | None = None,
    consent: ConsentCallback | None = None,
    progress: EnrolProgress | None = None,
    download_progress: ProgressCallback | None = None,
) -> EnrolResult:
    """Enrol this device as a secondary (see the module doc).

    ``source``: a federation token (DER; redeemed at ``client`` for ``eid``)
    or an :class:`Enrolment` already obtained (``subscription_id`` is then
    required).  ``lpa`` downloads and enables (its ES9+ settings apply);
    ``card`` (the eUICC's card, for the USIM) and ``store`` register this
    device's key.  ``store`` also gets the record; its class and name are
    ``device_class``/``name`` (default: the token's class and the record's
    earlier values).  ``operator_url`` is what the record keeps (default:
    the client's URL).  ``consent`` answers the LPA's profile question
    (default: accept).
    """
    notify: EnrolProgress = progress if progress is not None else _ignore
    if isinstance(source, Enrolment):
        if subscription_id is None:
            raise UsageError("enrolling with an activation code needs the subscription id")
        enrolment = source
    else:
        token = parse_token(source)
        if subscription_id is not None and subscription_id != token.subscription_id:
            raise UsageError("the token names another subscription")
        subscription_id = token.subscription_id
        device_class = device_class or token.device_class
        notify(EnrolEvent(EnrolStep.REDEEMING))
        enrolment = await client.redeem(source, eid, name=name)
    notify(EnrolEvent(EnrolStep.REDEEMED, enrolment))
    url = operator_url if operator_url is not None else client.url
    if store is not None:
        _record(store, url, subscription_id, enrolment, eid, device_class, name)
        notify(EnrolEvent(EnrolStep.RECORDED, enrolment))
    result = EnrolResult(enrolment, subscription_id, eid)
    if lpa is None:
        return result
    from rspfed.lpa import ActivationCode

    notify(EnrolEvent(EnrolStep.DOWNLOADING, enrolment))
    downloaded = await lpa.download(
        ActivationCode.parse(enrolment.activation_code),
        consent=consent,
        progress=download_progress,
    )
    notify(EnrolEvent(EnrolStep.DOWNLOADED, enrolment, downloaded))
    lpa.enable(downloaded.iccid)
    result = attrs.evolve(result, download=downloaded)
    notify(EnrolEvent(EnrolStep.ENABLED, enrolment, downloaded))
    if store is None or card is None:
        return result
    notify(EnrolEvent(EnrolStep.REGISTERING, enrolment, downloaded))
    try:
        device = await register_device(client, card, store, eid=eid, operator_url=url)
    except RspfedError as exc:
        return attrs.evolve(result, registration_error=exc)
    notify(EnrolEvent(EnrolStep.REGISTERED, enrolment, downloaded, device))
    return attrs.evolve(result, device=device)


async def register_device(
    client: OperatorClient,
    card: Card,
    store: DeviceStore,
    *,
    eid: str,
    operator_url: str | None = None,
) -> Device:
    """Register a new key of the device store by EAP-AKA' with the card's enabled USIM.

    The key is generated as the store's pending key and committed once the
    operator registered it (discarded on any failure); the store's record
    is then rewritten from the operator's answer.  :class:`StateError` when
    the card has no usable USIM (no profile enabled).
    """
    from rspfed.federation.device import DeviceRecord
    from rspfed.federation.types import DeviceRole
    from rspfed.network.usim import eap_usim, read_usim_identity

    try:
        imsi, mnc_length = read_usim_identity(card)
    except ProtocolError as exc:
        raise StateError(f"no usable USIM on eUICC {eid} ({exc}): is a profile enabled?") from None
    key = store.generate_key()
    try:
        device = await client.register(
            usim=eap_usim(card), imsi=imsi, mnc_length=mnc_length, eid=eid, key=key
        )
    except BaseException:
        store.discard_pending_key()
        raise
    store.commit_key()
    store.set_record(
        DeviceRecord(
            operator_url=operator_url if operator_url is not None else client.url,
            subscription_id=device.subscription_id,
            device_id=device.id,
            role="primary" if device.role is DeviceRole.PRIMARY else "secondary",
            eid=eid,
            device_class=device.device_class,
            name=device.name,
        )
    )
    return device


def _record(
    store: DeviceStore,
    url: str,
    subscription_id: str,
    enrolment: Enrolment,
    eid: str,
    device_class: DeviceClass | None,
    name: str | None,
) -> None:
    from rspfed.federation.device import DeviceRecord

    old = store.record()
    store.set_record(
        DeviceRecord(
            operator_url=url,
            subscription_id=subscription_id,
            device_id=enrolment.device_id,
            role="secondary",
            eid=eid,
            device_class=device_class or (old.device_class if old else None),
            name=name or (old.name if old else None),
        )
    )


def _ignore(_: EnrolEvent) -> None:
    return None
