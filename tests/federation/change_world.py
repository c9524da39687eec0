"""Helpers for the device-change tests: a moving device's new eUICC downloads,
enables and notifies, the old one deletes and notifies (real eUICCs, the
SM-DP+ core and the operator core in one process)."""

from __future__ import annotations

from rspfed.es9p import messages as m
from rspfed.lpa import ActivationCode, InProcessEs10
from rspfed.lpa import Lpa as RealLpa
from rspfed.lpa.notifications import remove_notification
from tests.federation.world import OperatorWorld, Phone
from tests.smdp.helpers import Lpa

__all__ = ["delete_and_notify", "deliver", "download_only", "enable_and_notify"]


def _lpa(device: Phone) -> RealLpa:
    return RealLpa(InProcessEs10(device.euicc.isdr))


def download_only(ow: OperatorWorld, device: Phone, code: str) -> str:
    """Download (the profile stays disabled after install); its ICCID."""
    before = {p.iccid for p in _lpa(device).profiles()}
    ac = ActivationCode.parse(code)
    Lpa(ow.smdp, device.euicc.isdr).download(ac.matching_id or None)
    after = [p.iccid for p in _lpa(device).profiles() if p.iccid not in before]
    assert len(after) == 1
    return after[0]


def deliver(ow: OperatorWorld, device: Phone, event: str | None = None) -> int:
    """Send the eUICC's pending notifications (of ``event``) to the SM-DP+; how many."""
    isdr = InProcessEs10(device.euicc.isdr)
    sent = 0
    for note in _lpa(device).notifications():
        if event is not None and note.event != event:
            continue
        ow.smdp.handle_notification(m.HandleNotificationRequest(note.pending_notification))
        remove_notification(isdr, note.seq_number)
        sent += 1
    return sent


def enable_and_notify(ow: OperatorWorld, device: Phone, iccid: str, *, notify: bool = True) -> None:
    """ES10c.EnableProfile of ``iccid`` (the other profile is disabled) and its notification."""
    _lpa(device).enable(iccid)
    device.iccid = iccid
    if notify:
        deliver(ow, device, "enable")


def delete_and_notify(ow: OperatorWorld, device: Phone, iccid: str, *, notify: bool = True) -> None:
    """Disable (if enabled) and delete ``iccid``, then send the delete notification."""
    lpa = _lpa(device)
    for p in lpa.profiles():
        if p.iccid == iccid and p.enabled:
            lpa.disable(iccid)
    lpa.delete(iccid)
    if notify:
        deliver(ow, device, "delete")
