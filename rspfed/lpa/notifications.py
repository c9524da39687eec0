"""Pending notifications: list them, deliver them over ES9+, remove delivered ones (SGP.22 §3.5).

The eUICC keeps a signed notification for each profile installation (the
ProfileInstallationResult) and each enable, disable and delete that the
profile's notification configuration asks for.  The LPA sends each one with
ES9+.HandleNotification to the address it names and, once the server took
it, removes it with ES10b.RemoveNotificationFromList.  A notification that
cannot be delivered stays on the eUICC for a later attempt.
"""

from __future__ import annotations

from collections.abc import Collection

import attrs

from rspfed import asn1
from rspfed.asn1 import rsp
from rspfed.errors import ProtocolError, RspfedError
from rspfed.es9p import HandleNotificationRequest
from rspfed.lpa import _es10x
from rspfed.lpa.es9 import Es9, Es9Client, Es9Settings
from rspfed.lpa.es10 import Es10
from rspfed.saip.identifiers import decode_iccid

__all__ = [
    "Delivery",
    "Notification",
    "deliver",
    "list_notifications",
    "notification_from_der",
    "remove_notification",
]

_EVENTS = {
    "notificationInstall": "install",
    "notificationEnable": "enable",
    "notificationDisable": "disable",
    "notificationDelete": "delete",
}


@attrs.frozen
class Notification:
    """One pending notification: ``event`` is ``install``, ``enable``, ``disable`` or
    ``delete``; ``pending_notification`` the DER sent in ES9+.HandleNotification."""

    seq_number: int
    event: str
    address: str
    iccid: str | None
    pending_notification: bytes = attrs.field(repr=False)


@attrs.frozen
class Delivery:
    """The outcome of delivering one notification (``error`` is ``None`` on success)."""

    notification: Notification
    delivered: bool
    removed: bool
    error: RspfedError | None = None


def _metadata(meta: rsp.NotificationMetadata) -> tuple[int, str, str, str | None]:
    native = meta.native
    events = sorted(_EVENTS.get(e, e) for e in native["profileManagementOperation"])
    iccid = native.get("iccid")
    return (
        int(native["seqNumber"]),
        ",".join(events),
        native["notificationAddress"],
        None if iccid is None else decode_iccid(bytes(iccid)),
    )


def notification_from_der(der: bytes) -> Notification:
    """A :class:`Notification` from the DER of a ``PendingNotification``."""
    value = asn1.decode(rsp.PendingNotification, der)
    if value.name == "profileInstallationResult":
        meta = value.chosen["profileInstallationResultData"]["notificationMetadata"]
    else:
        meta = value.chosen["tbsOtherNotification"]
    seq, event, address, iccid = _metadata(meta)
    return Notification(seq, event, address, iccid, der)


def list_notifications(es10: Es10) -> list[Notification]:
    """ES10b.RetrieveNotificationsList: every pending notification, in eUICC order."""
    resp, _ = _es10x.call(es10, bytes.fromhex("BF2B00"), rsp.RetrieveNotificationsListResponse)
    if resp.name != "notificationList":
        code = resp.native
        if code in ("noResultAvailable", 1):
            return []
        raise ProtocolError(f"RetrieveNotificationsList answered {code}")
    return [notification_from_der(asn1.received_der(item)) for item in resp.chosen]


def remove_notification(es10: Es10, seq_number: int) -> bool:
    """ES10b.RemoveNotificationFromList; ``False`` if the eUICC had nothing to delete."""
    request = asn1.encode(rsp.NotificationSentRequest({"seqNumber": seq_number}))
    resp, _ = _es10x.call(es10, request, rsp.NotificationSentResponse)
    status = resp["deleteNotificationStatus"].native
    if status in ("ok", 0):
        return True
    if status in ("nothingToDelete", 1):
        return False
    raise ProtocolError(f"RemoveNotificationFromList answered {status}")


async def deliver(
    es10: Es10,
    notifications: Collection[Notification],
    settings: Es9Settings,
    ci_pkids: Collection[bytes] | None,
    *,
    remove: bool = True,
    clients: dict[str, Es9] | None = None,
) -> list[Delivery]:
    """Send each notification to its address; remove it from the eUICC once delivered.

    ``clients`` may hold already open ES9+ clients (:class:`~rspfed.lpa.es9.Es9`) by address
    (reused and left open); others are made from ``settings`` and closed here.
    Failures are reported per notification, never raised.
    """
    own: dict[str, Es9Client] = {}
    known = clients if clients is not None else {}
    out: list[Delivery] = []
    try:
        for note in notifications:
            try:
                client: Es9 | None = known.get(note.address) or own.get(note.address)
                if client is None:
                    client = own[note.address] = settings.client(note.address, ci_pkids)
                await client.handle_notification(
                    HandleNotificationRequest(note.pending_notification)
                )
            except RspfedError as exc:
                out.append(Delivery(note, False, False, exc))
                continue
            try:
                removed = remove_notification(es10, note.seq_number) if remove else False
            except RspfedError as exc:
                out.append(Delivery(note, True, False, exc))
                continue
            out.append(Delivery(note, True, removed))
    finally:
        for client in own.values():
            await client.close()
    return out
