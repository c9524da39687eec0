"""The companion relay cut at sampled points of a whole download (issue H, item 4).

The phone's unchanged LPA downloads the watch's linked profile (a watch-class
token redeemed at the real operator core; the real SM-DP+ core behind ES9+)
through the ES10 relay to the watch's software eUICC (``relay_world``).  The
memory link between them is cut at one point per case: around
AuthenticateServer and PrepareDownload, in the middle of the bound profile
package (after ConfigureISDP, StoreMetadata, a profile-element segment),
when the ProfileInstallationResult is lost (the install notification never
reaches the SM-DP+), and around RemoveNotificationFromList.

For each cut:

* both sides end cleanly: the phone with a :class:`~rspfed.errors.RspfedError`
  (a :class:`~rspfed.errors.TransportError`), the watch with one or an
  orderly end, never another exception, never a hang (every wait is bounded);
* the watch's eUICC store, read afresh from disk, is either **unchanged**
  (every row of every table as before the session: no profile, no half-made
  ISD-P) or **complete** (the ordered profile installed, its install
  notification still pending when the SM-DP+ did not get it);
* SGP.22 retry in a **new companion session** (a reconnection with the
  stored key) ends consistent: an unchanged watch downloads the *same order*
  again (same activation code: the SM-DP+ kept the order ``released`` or,
  after the package went out, ``downloaded`` for the retry), a complete watch
  only has its pending notification delivered; afterwards the watch holds
  exactly one profile (the ordered one), no pending notification, the SM-DP+
  item is ``installed`` and the operator lists the watch ``active``.

A cancelled session (the user refuses the profile: CancelSession does reach
the SM-DP+, which marks the order ``error``) needs a fresh order: the phone
signs a new token and the retry downloads that.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from rspfed.errors import PolicyError, RspfedError, TransportError
from rspfed.federation.types import DeviceState
from rspfed.lpa import Es9Settings, Lpa, download
from rspfed.lpa.download import DownloadResult, ProfileMetadata
from rspfed.lpa.es10 import Es10
from rspfed.lpa.notifications import deliver, list_notifications
from rspfed.smdp import ItemState
from rspfed.transfer import CompanionInfo
from tests.companion.relay_world import (
    WATCH_DEVICE_INFO,
    Cut,
    CutWhen,
    RelayWorld,
    SessionOutcome,
    device_info_from_der,
    make_relay_world,
)
from tests.smdp.helpers import World, make_world

AUTHENTICATE_SERVER = bytes.fromhex("BF38")
PREPARE_DOWNLOAD = bytes.fromhex("BF21")
INITIALISE_SECURE_CHANNEL = bytes.fromhex("BF36")
CONFIGURE_ISDP = bytes.fromhex("A0")
STORE_METADATA = bytes.fromhex("A1")
LOAD_PROFILE_ELEMENTS = bytes.fromhex("A3")
SEGMENT = bytes.fromhex("86")
PROFILE_INSTALLATION_RESULT = bytes.fromhex("BF37")
REMOVE_NOTIFICATION = bytes.fromhex("BF30")


@pytest.fixture(scope="module")
def pki_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("relay-cuts-pki"))


@pytest.fixture
def rw(tmp_path: Path, pki_world: World) -> Iterator[RelayWorld]:
    world = make_relay_world(tmp_path / "world", pki_world)
    yield world
    world.close()


def downloading(
    rw: RelayWorld, code: str, consent: Callable[[ProfileMetadata], bool] | None = None
) -> Callable[[Es10, CompanionInfo], Awaitable[DownloadResult]]:
    """The phone's work: the LPA download of ``code`` with the watch's DeviceInfo."""

    async def work(es10: Es10, info: CompanionInfo) -> DownloadResult:
        return await download(
            es10,
            code,
            es9=rw.es9(),
            device_info=device_info_from_der(info.device_info),
            consent=consent,
        )

    return work


async def delivering(rw: RelayWorld, es10: Es10) -> list[tuple[str, bool, bool]]:
    """The phone delivers the watch's pending notifications over ES9+ and removes them."""
    notes = list_notifications(es10)
    done = await deliver(
        es10, notes, Es9Settings(), None, clients={rw.smdp.config.address: rw.es9()}
    )
    return [(d.notification.event, d.delivered, d.removed) for d in done]


def watch_profiles(rw: RelayWorld) -> list[tuple[str, str]]:
    """The watch's profiles, from its store opened afresh from disk."""
    with rw.reopened() as card:
        from rspfed.lpa import InProcessEs10

        return [(p.iccid, p.state) for p in Lpa(InProcessEs10(card.isdr)).profiles()]


def watch_pending(rw: RelayWorld) -> list[str]:
    """The events of the watch's pending notifications, from its store opened afresh."""
    with rw.reopened() as card:
        from rspfed.lpa import InProcessEs10

        return [n.event for n in list_notifications(InProcessEs10(card.isdr))]


def assert_clean(outcome: SessionOutcome[Any]) -> None:
    """Both sides ended with an RspfedError or an orderly end, nothing else."""
    assert outcome.error is None or isinstance(outcome.error, RspfedError), repr(outcome.error)
    watch_error = outcome.watch.error
    assert watch_error is None or isinstance(watch_error, RspfedError), repr(watch_error)


def assert_consistent(rw: RelayWorld, iccid: str) -> None:
    """Exactly one profile on the watch (the ordered one), nothing pending, SM-DP+
    ``installed``, the operator's watch ``active``."""
    assert watch_profiles(rw) == [(iccid, "disabled")]
    assert watch_pending(rw) == []
    assert rw.item_state(iccid) is ItemState.INSTALLED
    device = rw.watch_device()
    assert device.state is DeviceState.ACTIVE
    assert device.iccid == iccid


def test_whole_download_through_the_relay(rw: RelayWorld) -> None:
    """The baseline: no cut; the profile lands on the watch's eUICC, bound to it."""
    enrolment = rw.order()
    outcome = rw.session(downloading(rw, enrolment.activation_code))
    assert outcome.error is None
    assert outcome.watch.error is None
    assert outcome.watch.ended_by == "ByeReceived"
    assert outcome.watch.refused == 0
    result = outcome.result
    assert result is not None
    assert result.iccid == enrolment.iccid
    assert result.notification is not None
    assert result.notification.removed
    assert outcome.info is not None
    assert device_info_from_der(outcome.info.device_info) == WATCH_DEVICE_INFO
    # the download's ES10 steps all went to the watch, in SGP.22 order
    tags = outcome.requests
    assert tags[:5] == [bytes.fromhex(t) for t in ("BF20", "BF2E", "BF38", "BF21", "BF36")]
    assert tags[5:7] == [CONFIGURE_ISDP, STORE_METADATA]
    assert LOAD_PROFILE_ELEMENTS in tags
    assert tags[-1] == REMOVE_NOTIFICATION
    assert outcome.watch.answered == len(tags)
    assert_consistent(rw, enrolment.iccid)
    # the phone's own eUICC holds only its own profile
    from rspfed.lpa import InProcessEs10

    phone_iccids = [p.iccid for p in Lpa(InProcessEs10(rw.phone.euicc.isdr)).profiles()]
    assert enrolment.iccid not in phone_iccids


UNCHANGED_CUTS = [
    Cut(AUTHENTICATE_SERVER, CutWhen.BEFORE_REQUEST),
    Cut(AUTHENTICATE_SERVER, CutWhen.ANSWER_LOST),
    Cut(AUTHENTICATE_SERVER, CutWhen.AFTER_ANSWER),
    Cut(PREPARE_DOWNLOAD, CutWhen.ANSWER_LOST),
    Cut(INITIALISE_SECURE_CHANNEL, CutWhen.AFTER_ANSWER),
    Cut(CONFIGURE_ISDP, CutWhen.AFTER_ANSWER),
    Cut(STORE_METADATA, CutWhen.AFTER_ANSWER),
    Cut(LOAD_PROFILE_ELEMENTS, CutWhen.ANSWER_LOST),
    Cut(SEGMENT, CutWhen.AFTER_ANSWER, nth=1),
    Cut(SEGMENT, CutWhen.ANSWER_LOST, nth=6),
]
"""Cuts before the eUICC installed anything: the store stays as it was."""


@pytest.mark.parametrize("cut", UNCHANGED_CUTS, ids=str)
def test_cut_before_installation_leaves_the_watch_unchanged(rw: RelayWorld, cut: Cut) -> None:
    before = rw.snapshot()
    enrolment = rw.order()
    outcome = rw.session(downloading(rw, enrolment.activation_code), cut=cut)
    assert_clean(outcome)
    assert isinstance(outcome.error, TransportError), repr(outcome.error)
    assert outcome.result is None
    assert cut.tag in outcome.requests
    # unchanged, row for row: no profile, no ISD-P left half-made, no notification
    assert rw.snapshot() == before
    assert watch_profiles(rw) == []
    # the SM-DP+ keeps the order for the retry (the link was cut: no CancelSession reached it)
    package_sent = cut.tag not in (AUTHENTICATE_SERVER, PREPARE_DOWNLOAD)
    assert rw.item_state(enrolment.iccid) is (
        ItemState.DOWNLOADED if package_sent else ItemState.RELEASED
    )
    assert rw.watch_device().state is DeviceState.ORDERED

    # SGP.22 retry: a new companion session downloads the same order
    retry = rw.session(downloading(rw, enrolment.activation_code))
    assert retry.error is None
    assert retry.result is not None
    assert retry.result.iccid == enrolment.iccid
    assert_consistent(rw, enrolment.iccid)


def test_installation_result_lost_leaves_the_watch_complete(rw: RelayWorld) -> None:
    """The last segment was installed but its ProfileInstallationResult never reached
    the phone: the install notification has not reached the SM-DP+."""
    enrolment = rw.order()
    cut = Cut(PROFILE_INSTALLATION_RESULT, CutWhen.ANSWER_LOST, answer=True)
    outcome = rw.session(downloading(rw, enrolment.activation_code), cut=cut)
    assert_clean(outcome)
    assert isinstance(outcome.error, TransportError)
    # complete: the profile is installed, its install notification pending on the watch
    assert watch_profiles(rw) == [(enrolment.iccid, "disabled")]
    assert watch_pending(rw) == ["install"]
    assert rw.item_state(enrolment.iccid) is ItemState.DOWNLOADED
    assert rw.watch_device().state is DeviceState.ORDERED

    # the next companion session delivers the pending notification
    async def work(es10: Es10, info: CompanionInfo) -> list[tuple[str, bool, bool]]:
        return await delivering(rw, es10)

    retry = rw.session(work)
    assert retry.error is None
    assert retry.result == [("install", True, True)]
    assert_consistent(rw, enrolment.iccid)


@pytest.mark.parametrize("when", [CutWhen.BEFORE_REQUEST, CutWhen.ANSWER_LOST], ids=str)
def test_cut_around_remove_notification(rw: RelayWorld, when: CutWhen) -> None:
    """The SM-DP+ got the install notification; the removal from the watch's list is
    cut.  The download itself succeeded (the LPA reports the removal as not done)."""
    enrolment = rw.order()
    outcome = rw.session(
        downloading(rw, enrolment.activation_code), cut=Cut(REMOVE_NOTIFICATION, when)
    )
    assert_clean(outcome)
    result = outcome.result
    assert result is not None
    assert result.notification is not None
    assert result.notification.delivered
    assert not result.notification.removed
    assert isinstance(result.notification.error, TransportError)
    assert isinstance(outcome.watch.error, TransportError)
    assert watch_profiles(rw) == [(enrolment.iccid, "disabled")]
    assert rw.item_state(enrolment.iccid) is ItemState.INSTALLED
    # before the request the notification is still pending; if only the answer was
    # lost the eUICC removed it
    pending = watch_pending(rw)
    assert pending == (["install"] if when is CutWhen.BEFORE_REQUEST else [])

    async def work(es10: Es10, info: CompanionInfo) -> list[tuple[str, bool, bool]]:
        return await delivering(rw, es10)

    retry = rw.session(work)
    assert retry.error is None
    # delivered again (the SM-DP+ takes a repeated notification) and removed
    assert retry.result == [("install", True, True) for _ in pending]
    assert_consistent(rw, enrolment.iccid)


def test_a_cancelled_session_needs_a_fresh_order(rw: RelayWorld) -> None:
    """The user refuses the profile on the phone: the LPA relays CancelSession to the
    watch's eUICC and sends its signed answer to the SM-DP+, which ends the order
    (``error``).  The retry is a fresh order (a new token) in a new session."""
    first = rw.order()

    def refuse(_: ProfileMetadata) -> bool:
        return False

    outcome = rw.session(downloading(rw, first.activation_code, refuse))
    assert_clean(outcome)
    assert isinstance(outcome.error, PolicyError)
    assert bytes.fromhex("BF41") in outcome.requests  # CancelSession went to the watch
    assert watch_profiles(rw) == []
    assert rw.item_state(first.iccid) is ItemState.ERROR
    # the same order cannot be downloaded again
    again = rw.session(downloading(rw, first.activation_code))
    assert_clean(again)
    assert isinstance(again.error, RspfedError)
    assert watch_profiles(rw) == []

    second = rw.order()
    assert second.device_id != first.device_id
    retry = rw.session(downloading(rw, second.activation_code))
    assert retry.error is None
    assert_consistent(rw, second.iccid)


OFFSETS = (0.01, 0.05, 0.2, 0.35, 0.5, 0.65, 0.8, 0.95, 0.99, 0.995)
"""Where :func:`test_cut_at_an_octet_offset` cuts, as fractions of a whole session's octets."""


@pytest.fixture(scope="module")
def session_octets(tmp_path_factory: pytest.TempPathFactory, pki_world: World) -> int:
    """The octets of one whole download session (both directions), from a clean run."""
    world = make_relay_world(tmp_path_factory.mktemp("relay-octets"), pki_world)
    try:
        outcome = world.session(downloading(world, world.order().activation_code))
        assert outcome.error is None
        return sum(len(chunk) for _, chunk in outcome.wire)
    finally:
        world.close()


@pytest.mark.parametrize("fraction", OFFSETS)
def test_cut_at_an_octet_offset(rw: RelayWorld, session_octets: int, fraction: float) -> None:
    """The link dies after a number of octets, anywhere (inside a record too): the same
    rules hold, whichever ES10 exchange that falls in.  (In a session of about 17.5 kB
    the fractions fall in the handshake, AuthenticateServer, the package segments, the
    installation result (0.99: complete, the notification pending) and
    RemoveNotificationFromList / bye (0.995).)"""
    before = rw.snapshot()
    enrolment = rw.order()
    cut_after = int(session_octets * fraction)
    outcome = rw.session(downloading(rw, enrolment.activation_code), cut_after=cut_after)
    assert_clean(outcome)
    assert sum(len(chunk) for _, chunk in outcome.wire) <= cut_after
    profiles = watch_profiles(rw)
    if not profiles:
        assert isinstance(outcome.error, TransportError), repr(outcome.error)
        assert rw.snapshot() == before  # unchanged
        retry = rw.session(downloading(rw, enrolment.activation_code))
        assert retry.error is None, repr(retry.error)
    else:
        assert profiles == [(enrolment.iccid, "disabled")]  # complete

        async def work(es10: Es10, info: CompanionInfo) -> list[tuple[str, bool, bool]]:
            return await delivering(rw, es10)

        delivery = rw.session(work)
        assert delivery.error is None, repr(delivery.error)
        assert all(delivered and removed for _, delivered, removed in delivery.result or [])
    assert_consistent(rw, enrolment.iccid)


@pytest.mark.parametrize(
    "cut",
    [
        Cut(LOAD_PROFILE_ELEMENTS, CutWhen.ANSWER_LOST),
        Cut(PROFILE_INSTALLATION_RESULT, CutWhen.ANSWER_LOST, answer=True),
    ],
    ids=str,
)
def test_retry_after_the_watch_restarts(rw: RelayWorld, cut: Cut) -> None:
    """The watch restarts between the cut session and the retry (its eUICC reopened
    from disk): the retry does not depend on anything the eUICC kept in memory."""
    before = rw.snapshot()
    enrolment = rw.order()
    outcome = rw.session(downloading(rw, enrolment.activation_code), cut=cut)
    assert_clean(outcome)
    assert isinstance(outcome.error, TransportError)
    rw.restart_watch()
    if cut.answer:  # complete: deliver the pending notification
        assert watch_pending(rw) == ["install"]

        async def work(es10: Es10, info: CompanionInfo) -> list[tuple[str, bool, bool]]:
            return await delivering(rw, es10)

        assert rw.session(work).result == [("install", True, True)]
    else:  # unchanged: the same order again
        assert rw.snapshot() == before
        retry = rw.session(downloading(rw, enrolment.activation_code))
        assert retry.error is None, repr(retry.error)
    assert_consistent(rw, enrolment.iccid)
