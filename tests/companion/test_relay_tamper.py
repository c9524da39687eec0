"""A phone that tampers with the relayed ES10 data is caught (issue H, item 4).

The adversary is the phone's own ES10 link: :class:`TamperingEs10` sits
between the phone's unchanged LPA and the relay (``relay_world``) and alters
one request on its way to the watch, or one answer on its way back, or
answers from another eUICC altogether.  Each case names who must catch it
— the watch's eUICC (it verifies the SM-DP+'s signatures and every bound
profile package segment's SCP03t MAC) or the SM-DP+ (it verifies the watch
eUICC's signatures, its certificate chain and the EID the order is linked
to) — and checks it from the evidence: the watch's own answer to the altered
request is an error (:func:`euicc_refused`), or an ES9+ function of the
SM-DP+ refused (:class:`RecordingEs9`).  The watch's eUICC store, read afresh
from disk, is unchanged (row for row: nothing installed, no half-made ISD-P)
except when the tampering came after the installation (the installation
result), where the profile is installed and its notification stays pending
until an honest session delivers it.

``test_any_flipped_bit_never_installs_anything_else`` flips one bit anywhere
in one relayed request or answer (hypothesis; ``FLIP_EXAMPLES`` sets how many
examples, 8 by default; 60 under the ``fuzz`` profile found nothing): the
download fails cleanly with the watch unchanged, or the ordered profile is
installed — never anything else.

One alteration is *not* caught, by design: the watch's ``DeviceInfo`` is the
LPA's word (SGP.22 has the LPA supply ``ctxParams1.deviceInfo``; the eUICC
signs whatever it is given and the SM-DP+ cannot check a TAC).  A phone that
substitutes it gets the download through; ``test_device_info_is_the_lpa_s_word``
documents it (docs/companion.md, trust model).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rspfed import asn1
from rspfed.asn1 import bertlv, rsp
from rspfed.errors import (
    EidError,
    EuiccVerificationError,
    IntegrityError,
    MatchingIdError,
    RspfedError,
    SignatureError,
)
from rspfed.es9p import messages as es9p
from rspfed.euicc.euicc import Euicc
from rspfed.federation import DeviceClass
from rspfed.federation.types import DeviceState
from rspfed.lpa import Es9Settings, InProcessEs10, Lpa, download
from rspfed.lpa.download import DeviceInfo, DownloadResult
from rspfed.lpa.es10 import Es10
from rspfed.lpa.notifications import deliver, list_notifications
from rspfed.smdp import InProcessEs9, ItemState
from rspfed.transfer import CompanionInfo
from rspfed.transfer.relay import request_tag
from tests.companion.relay_world import (
    RelayWorld,
    SessionOutcome,
    device_info_from_der,
    make_relay_world,
)
from tests.smdp.helpers import World, make_world

Mutate = Callable[[bytes], bytes]


def flip_last(*path: int) -> Mutate:
    """Flip the low bit of the last value octet of the TLV at ``path`` (tags from the
    outermost), leaving every length and tag as it was."""

    def mutate(der: bytes) -> bytes:
        tlv = bertlv.find(der, *path)
        assert tlv is not None, f"no TLV at {[hex(t) for t in path]}"
        header = len(bertlv.encode_tag(tlv.tag)) + len(bertlv.encode_length(len(tlv.value)))
        pos = tlv.offset + header + len(tlv.value) - 1
        return der[:pos] + bytes([der[pos] ^ 0x01]) + der[pos + 1 :]

    return mutate


def flip_at(fraction: float) -> Mutate:
    """Flip the low bit of the octet at ``fraction`` of a segment (a byte of its
    ciphertext, past the segment's own tag and length)."""

    def mutate(der: bytes) -> bytes:
        pos = max(4, int(len(der) * fraction))
        return der[:pos] + bytes([der[pos] ^ 0x01]) + der[pos + 1 :]

    return mutate


def replace(old: bytes, new: bytes) -> Mutate:
    """Replace the one occurrence of ``old`` by ``new`` (same length)."""
    assert len(old) == len(new)

    def mutate(der: bytes) -> bytes:
        assert der.count(old) == 1
        return der.replace(old, new)

    return mutate


@attrs.define
class TamperingEs10:
    """An adversarial phone-side :class:`~rspfed.lpa.es10.Es10`: forwards everything to
    ``inner`` (the relay) but alters the ``nth`` request whose tag is ``tag``
    (``side="request"``) or the watch's answer to it (``side="response"``; with
    ``answer=True`` the first answer whose own tag is ``tag``).

    ``seen`` records ``(request as sent to the watch, the watch's answer as it
    came back)`` for the altered exchange, so a test can tell whether the
    watch's eUICC refused it.
    """

    inner: Es10
    tag: bytes
    side: str
    mutate: Mutate
    nth: int = 1
    answer: bool = False
    count: int = 0
    seen: tuple[bytes, bytes] | None = None

    def transceive(self, request_der: bytes) -> bytes:
        """Relay one request, altering the chosen one (class doc)."""
        hit = False
        if not self.answer and self.seen is None and request_tag(request_der) == self.tag:
            self.count += 1
            hit = self.count == self.nth
        if hit and self.side == "request":
            request_der = self.mutate(request_der)
        response = self.inner.transceive(request_der)
        if self.answer and self.seen is None and request_tag(response) == self.tag:
            hit = True
        if hit:
            self.seen = (request_der, response)
            if self.side == "response":
                return self.mutate(response)
        return response


class RecordingEs9(InProcessEs9):
    """The SM-DP+ core as ES9+, recording which function refused (``refusals``)."""

    def __init__(self, rw: RelayWorld) -> None:
        super().__init__(rw.smdp)
        self.refusals: list[tuple[str, RspfedError]] = []

    def _record(self, name: str, exc: RspfedError) -> None:
        self.refusals.append((name, exc))

    async def authenticate_client(
        self, request: es9p.AuthenticateClientRequest
    ) -> es9p.AuthenticateClientResponse:
        """ES9+.AuthenticateClient, recorded."""
        try:
            return await super().authenticate_client(request)
        except RspfedError as exc:
            self._record("AuthenticateClient", exc)
            raise

    async def get_bound_profile_package(
        self, request: es9p.GetBoundProfilePackageRequest
    ) -> es9p.GetBoundProfilePackageResponse:
        """ES9+.GetBoundProfilePackage, recorded."""
        try:
            return await super().get_bound_profile_package(request)
        except RspfedError as exc:
            self._record("GetBoundProfilePackage", exc)
            raise

    async def handle_notification(self, request: es9p.HandleNotificationRequest) -> None:
        """ES9+.HandleNotification, recorded."""
        try:
            await super().handle_notification(request)
        except RspfedError as exc:
            self._record("HandleNotification", exc)
            raise


def euicc_refused(response: bytes) -> bool:
    """Whether the watch's eUICC answered with an error: an AuthenticateServer /
    PrepareDownload error, a failed ProfileInstallationResult, or nothing usable."""
    if not response:
        return False
    tag = request_tag(response)
    if tag == b"\xbf\x38":
        return asn1.decode(rsp.AuthenticateServerResponse, response).name != (
            "authenticateResponseOk"
        )
    if tag == b"\xbf\x21":
        return asn1.decode(rsp.PrepareDownloadResponse, response).name != "downloadResponseOk"
    if tag == b"\xbf\x37":
        result = asn1.decode(rsp.ProfileInstallationResult, response)
        final = result["profileInstallationResultData"]["finalResult"]
        return bool(final.name != "successResult")
    return False


@pytest.fixture(scope="module")
def pki_world(tmp_path_factory: pytest.TempPathFactory) -> World:
    return make_world(tmp_path_factory.mktemp("relay-tamper-pki"))


@pytest.fixture
def rw(tmp_path: Path, pki_world: World) -> Iterator[RelayWorld]:
    world = make_relay_world(tmp_path / "world", pki_world)
    yield world
    world.close()


@attrs.frozen
class Attack:
    """One tampering: where, what, and who must catch it."""

    name: str
    tag: bytes
    side: str
    mutate: Mutate
    catcher: str  # "euicc" or the ES9+ function of the SM-DP+ that refuses
    nth: int = 1
    answer: bool = False
    refusal: type[RspfedError] = EuiccVerificationError
    """The error the phone's LPA ends with: the SM-DP+'s refusal, or the eUICC's
    mapped by the LPA (``invalidSignature``: SignatureError, ``scp03tSecurityError``:
    IntegrityError)."""


BF38 = bytes.fromhex("BF38")
BF21 = bytes.fromhex("BF21")

EUICC, SIG, MAC = "euicc", SignatureError, IntegrityError
A0, SEG88, SEG86 = bytes.fromhex("A0"), bytes.fromhex("88"), bytes.fromhex("86")
LAST = 1.0 - 1e-9  # flip_at(LAST): the segment's last octet (the end of its MAC)

ATTACKS = [
    # the SM-DP+'s AuthenticateServer data, phone -> watch: the watch's eUICC verifies it
    Attack("serverSigned1", BF38, "request", flip_last(0xBF38, 0x30, 0x84), EUICC, refusal=SIG),
    Attack("serverSignature1", BF38, "request", flip_last(0xBF38, 0x5F37), EUICC, refusal=SIG),
    # ctxParams1 is signed by the watch's eUICC inside euiccSigned1: the SM-DP+ checks it
    Attack("ctxParams1 matchingId", BF38, "request", flip_last(0xBF38, 0xA0, 0x80),
           "AuthenticateClient", refusal=MatchingIdError),
    # the watch's answers, watch -> phone: the SM-DP+ verifies the eUICC's signatures
    Attack("euiccSigned1", BF38, "response", flip_last(0xBF38, 0xA0, 0x30, 0xBF22, 0x81),
           "AuthenticateClient"),
    Attack("euiccSignature1", BF38, "response", flip_last(0xBF38, 0xA0, 0x5F37),
           "AuthenticateClient"),
    # PrepareDownload: smdpSigned2 to the watch (eUICC), euiccSigned2 back (SM-DP+)
    Attack("smdpSignature2", BF21, "request", flip_last(0xBF21, 0x5F37), EUICC, refusal=SIG),
    Attack("euiccSigned2 otPK", BF21, "response", flip_last(0xBF21, 0xA0, 0x30, 0x5F49),
           "GetBoundProfilePackage"),
    Attack("euiccSignature2", BF21, "response", flip_last(0xBF21, 0xA0, 0x5F37),
           "GetBoundProfilePackage"),
    # the bound profile package, segment by segment: SCP03t MACs at the watch's eUICC
    Attack("ConfigureISDP MAC", A0, "request", flip_at(LAST), EUICC, refusal=MAC),
    Attack("StoreMetadata segment", SEG88, "request", flip_at(0.5), EUICC, refusal=MAC),
    Attack("profile element ciphertext", SEG86, "request", flip_at(0.5), EUICC, refusal=MAC, nth=2),
    Attack("profile element MAC", SEG86, "request", flip_at(LAST), EUICC, refusal=MAC, nth=5),
]  # fmt: skip


def downloading(
    rw: RelayWorld, code: str, es9: InProcessEs9, device_info: DeviceInfo | None = None
) -> Callable[[Es10, CompanionInfo], Awaitable[DownloadResult]]:
    async def work(es10: Es10, info: CompanionInfo) -> DownloadResult:
        return await download(
            es10,
            code,
            es9=es9,
            device_info=device_info or device_info_from_der(info.device_info),
        )

    return work


def watch_profiles(rw: RelayWorld) -> list[str]:
    with rw.reopened() as card:
        return [p.iccid for p in Lpa(InProcessEs10(card.isdr)).profiles()]


def assert_clean(outcome: SessionOutcome[Any]) -> None:
    assert outcome.error is None or isinstance(outcome.error, RspfedError), repr(outcome.error)
    watch_error = outcome.watch.error
    assert watch_error is None or isinstance(watch_error, RspfedError), repr(watch_error)


@pytest.mark.parametrize("attack", ATTACKS, ids=lambda a: a.name)
def test_tampering_is_caught(rw: RelayWorld, attack: Attack) -> None:
    before = rw.snapshot()
    enrolment = rw.order()
    es9 = RecordingEs9(rw)
    adversary: list[TamperingEs10] = []

    def wrap(relay: Es10) -> Es10:
        adversary.append(
            TamperingEs10(relay, attack.tag, attack.side, attack.mutate, attack.nth, attack.answer)
        )
        return adversary[0]

    outcome = rw.session(downloading(rw, enrolment.activation_code, es9), wrap=wrap)
    assert_clean(outcome)
    assert isinstance(outcome.error, RspfedError), "the tampered download went through"
    seen = adversary[0].seen
    assert seen is not None, "the attack never happened"
    _, response = seen
    if attack.catcher == "euicc":
        # the watch's own answer to the altered request is its refusal (the LPA then
        # passes that refusal on to the SM-DP+, as SGP.22 has it)
        assert euicc_refused(response), response.hex()
        assert isinstance(outcome.error, attack.refusal), repr(outcome.error)
    else:
        assert not euicc_refused(response)
        refused = [(name, type(exc)) for name, exc in es9.refusals]
        assert refused[:1] == [(attack.catcher, attack.refusal)], es9.refusals
        assert isinstance(outcome.error, attack.refusal)
    # the watch's store is as it was: nothing installed, no ISD-P left half-made
    assert rw.snapshot() == before
    assert watch_profiles(rw) == []
    assert rw.item_state(enrolment.iccid) is not ItemState.INSTALLED


def test_installation_result_tampered_is_refused_by_the_smdp(rw: RelayWorld) -> None:
    """The watch installed the profile; the phone alters its signed installation
    result: the SM-DP+ refuses it, the notification stays pending on the watch (not
    removed), and an honest session delivers it later."""
    enrolment = rw.order()
    es9 = RecordingEs9(rw)
    adversaries: list[TamperingEs10] = []

    def wrap(relay: Es10) -> Es10:
        adversary = TamperingEs10(
            relay, bytes.fromhex("BF37"), "response", flip_last(0xBF37, 0x5F37), answer=True
        )
        adversaries.append(adversary)
        return adversary

    outcome = rw.session(downloading(rw, enrolment.activation_code, es9), wrap=wrap)
    assert_clean(outcome)
    assert adversaries[0].seen is not None
    result = outcome.result
    assert isinstance(result, DownloadResult)  # installed on the watch ...
    assert result.notification is not None
    assert not result.notification.delivered  # ... but the SM-DP+ refused the result
    assert [name for name, _ in es9.refusals] == ["HandleNotification"]
    assert rw.item_state(enrolment.iccid) is ItemState.DOWNLOADED
    assert watch_profiles(rw) == [enrolment.iccid]
    with rw.reopened() as card:
        assert [n.event for n in list_notifications(InProcessEs10(card.isdr))] == ["install"]

    async def honest(es10: Es10, info: CompanionInfo) -> int:
        notes = list_notifications(es10)
        done = await deliver(
            es10, notes, Es9Settings(), None, clients={rw.smdp.config.address: es9}
        )
        return sum(d.delivered and d.removed for d in done)

    assert rw.session(honest).result == 1
    assert rw.item_state(enrolment.iccid) is ItemState.INSTALLED
    assert rw.watch_device().state is DeviceState.ACTIVE


def test_answers_from_another_euicc_are_refused_by_the_smdp(rw: RelayWorld) -> None:
    """A phone that answers the watch's download with its *own* eUICC (to take the
    watch's profile): the order is linked to the watch's EID, and the eUICC
    certificate names the phone's, so the SM-DP+ refuses; neither eUICC gets it."""
    enrolment = rw.order()
    es9 = RecordingEs9(rw)
    phone_es10 = InProcessEs10(rw.phone.euicc.isdr)
    phone_before = rw.phone_snapshot()
    before = rw.snapshot()

    async def work(relay: Es10, info: CompanionInfo) -> DownloadResult:
        # the relay is bypassed: the phone's own eUICC answers (opened in the LPA's thread)
        card = Euicc.open(rw.phone_path)
        try:
            own = InProcessEs10(card.isdr)
            return await download(own, enrolment.activation_code, es9=es9)
        finally:
            card.close()

    outcome = rw.session(work)
    assert_clean(outcome)
    assert isinstance(outcome.error, EidError), repr(outcome.error)
    assert [name for name, _ in es9.refusals][:1] == ["AuthenticateClient"]
    assert rw.phone_snapshot() == phone_before
    assert [p.iccid for p in Lpa(phone_es10).profiles()] == [rw.phone.iccid]
    assert rw.snapshot() == before
    assert rw.item_state(enrolment.iccid) is not ItemState.INSTALLED


def test_matching_id_of_another_device_is_refused_by_the_smdp(rw: RelayWorld) -> None:
    """The phone puts another device's order (matchingId) into the watch's
    ctxParams1: the order is linked to that device's EID, the SM-DP+ refuses."""
    other = rw.ow.euicc()
    token = rw.ow.token(rw.phone, rw.subscription_id, other.eid, DeviceClass.WATCH)
    other_order = rw.operator.redeem(token, other.eid)
    es9 = RecordingEs9(rw)
    before = rw.snapshot()
    outcome = rw.session(downloading(rw, other_order.activation_code, es9))
    assert_clean(outcome)
    assert isinstance(outcome.error, EidError), repr(outcome.error)
    assert [name for name, _ in es9.refusals][:1] == ["AuthenticateClient"]
    assert rw.snapshot() == before
    other.euicc.close()


def test_device_info_is_the_lpa_s_word(rw: RelayWorld) -> None:
    """NOT caught, by design: the phone substitutes the watch's DeviceInfo (another
    TAC).  SGP.22 has the LPA supply ``ctxParams1.deviceInfo``; the watch's eUICC
    signs what it is given and the SM-DP+ has nothing to check a TAC against.
    The profile is still bound to the watch's eUICC (the phone gains no key)."""
    enrolment = rw.order()
    es9 = RecordingEs9(rw)
    claimed = DeviceInfo(tac=bytes.fromhex("01020304"))
    wrapped: list[TamperingEs10] = []

    def wrap(relay: Es10) -> Es10:  # an observer: the claim itself is the phone's
        wrapped.append(TamperingEs10(relay, BF38, "request", lambda der: der))
        return wrapped[0]

    outcome = rw.session(downloading(rw, enrolment.activation_code, es9, claimed), wrap=wrap)
    assert outcome.error is None
    assert wrapped[0].seen is not None
    _, response = wrapped[0].seen
    answer = asn1.decode(rsp.AuthenticateServerResponse, response)
    ctx = answer.chosen["euiccSigned1"]["ctxParams1"].chosen["deviceInfo"].native
    assert bytes(ctx["tac"]) == claimed.tac  # the watch's eUICC signed the phone's claim
    assert watch_profiles(rw) == [enrolment.iccid]
    assert es9.refusals == []


@settings(
    max_examples=int(os.environ.get("FLIP_EXAMPLES", "8")),
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    index=st.integers(min_value=0, max_value=22),
    side=st.sampled_from(["request", "response"]),
    fraction=st.floats(min_value=0.0, max_value=1.0),
)
def test_any_flipped_bit_never_installs_anything_else(
    tmp_path_factory: pytest.TempPathFactory,
    pki_world: World,
    index: int,
    side: str,
    fraction: float,
) -> None:
    """One bit flipped anywhere in one relayed request or answer of the download: either
    the download fails cleanly with the watch's store unchanged, or (a bit nobody
    verifies, such as the LPA's own DeviceInfo) the ordered profile is installed.
    Never another profile, never another exception; the SM-DP+ never records an
    installation the watch does not have."""
    rw = make_relay_world(tmp_path_factory.mktemp("flip"), pki_world)
    try:
        before = rw.snapshot()
        enrolment = rw.order()
        flipper = _NthFlip(index, side, fraction)
        outcome = rw.session(
            downloading(rw, enrolment.activation_code, rw.es9()), wrap=flipper.wrap
        )
        assert_clean(outcome)
        profiles = watch_profiles(rw)
        assert profiles in ([], [enrolment.iccid])
        if not profiles:
            assert outcome.error is not None
            assert rw.snapshot() == before
            assert rw.item_state(enrolment.iccid) is not ItemState.INSTALLED
    finally:
        rw.close()


@attrs.define
class _NthFlip:
    """Flip one bit of the ``index``-th relayed request (or of the answer to it)."""

    index: int
    side: str
    fraction: float
    count: int = 0

    def wrap(self, relay: Es10) -> Es10:
        flip = self

        class Flipping:
            def transceive(self, request_der: bytes) -> bytes:
                hit = flip.count == flip.index
                flip.count += 1
                if hit and flip.side == "request":
                    request_der = _flip(request_der, flip.fraction)
                answer = relay.transceive(request_der)
                if hit and flip.side == "response" and answer:
                    answer = _flip(answer, flip.fraction)
                return answer

        return Flipping()


def _flip(der: bytes, fraction: float) -> bytes:
    pos = min(len(der) - 1, int(len(der) * fraction))
    bit = 1 << (pos % 8)
    return der[:pos] + bytes([der[pos] ^ bit]) + der[pos + 1 :]
