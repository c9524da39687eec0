"""A hypothesis state machine over the operator core, checked against a model.

The world is the real one (:mod:`tests.federation.world`): the SM-DP+ core,
the AuC, the operator core and software eUICCs.  A subscription's phone has
downloaded and registered; the primary then issues tokens for a small pool
of eUICCs (random class, services, quota, lifetime, sometimes out of the
plan's scope or for the wrong EID), and the rules redeem them (by their EID
or another), download the orders, steal an order with another eUICC, replay
consumed tokens, let time pass (orders and tokens lapse), revoke one token or
all, remove devices, re-add removed ones, rotate the primary's key and attach
to the network.  The model predicts every outcome, refusals by their exact
:class:`~rspfed.errors.RspfedError` subclass.

Invariants after every step: the devices occupying a slot never exceed the
plan's limit; a token is consumed at most once and only by the eUICC of its
EID; every SM-DP+ order carrying the operator's requester is one the
operator knows (nothing allocated by a refusal or a lapse); the operator's
records match the model; the AuC refuses every removed device's IMSI and
grants every active device exactly the services its token (or the plan, for
the primary) allows.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

import attrs
import pytest
from hypothesis import event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from rspfed.errors import (
    DeviceLimitError,
    FunctionExecutionError,
    RspfedError,
    StateError,
    TokenConsumedError,
    TokenEidMismatchError,
    TokenExpiredError,
    TokenNotYetValidError,
    TokenRevokedError,
    TokenScopeError,
)
from rspfed.federation import DeviceClass, Service, parse_token
from rspfed.federation.signing import sign_request
from rspfed.federation.types import (
    Caller,
    DeviceRole,
    DeviceState,
    Enrolment,
    Plan,
    TokenState,
)
from rspfed.lpa import ActivationCode, InProcessEs10
from rspfed.lpa import Lpa as RealLpa
from rspfed.network import NetworkRefusedError
from rspfed.network.service import DEVICE_CLASS_SERVICES
from rspfed.smdp import ItemState
from tests.federation.world import GB, OperatorWorld, Phone, make_operator_world
from tests.smdp.helpers import Lpa, World, make_world

PLAN = Plan(
    pool_bytes=20 * GB,
    device_limit=3,
    device_classes=frozenset(
        {DeviceClass.PHONE, DeviceClass.TABLET, DeviceClass.LAPTOP, DeviceClass.WATCH}
    ),
)
"""The phone and two secondaries; no hotspots (a hotspot token is out of scope)."""

POOL = 4
"""Secondary eUICCs per run (more than the plan's free slots)."""

_ORDER_STATES = frozenset(
    {
        ItemState.ALLOCATED,
        ItemState.LINKED,
        ItemState.CONFIRMED,
        ItemState.RELEASED,
        ItemState.DOWNLOADED,
    }
)

_PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
_EXAMPLES, _STEPS = {"fuzz": (1000, 80), "dev": (4, 15)}.get(_PROFILE, (60, 40))

_SHM = Path("/dev/shm")
_TMP = str(_SHM) if _SHM.is_dir() and os.access(_SHM, os.W_OK) else None
"""Where runs keep their stores: tmpfs when there is one (every store syncs each commit)."""

_shared: dict[str, World] = {}


def _world() -> World:
    """One PKI per process (creating it is the slow part of a world)."""
    if "world" not in _shared:
        _shared["world"] = make_world(
            Path(tempfile.mkdtemp(prefix="rspfed-machine-pki-", dir=_TMP))
        )
    return _shared["world"]


@attrs.define
class TokenModel:
    """What the model knows about one issued token."""

    der: bytes
    token_id: bytes
    eid: str
    device_class: DeviceClass
    services: frozenset[Service]
    quota: int
    not_before: datetime
    not_after: datetime
    key_generation: int
    state: TokenState | None = None
    device_id: str | None = None

    @property
    def in_scope(self) -> bool:
        if self.device_class not in PLAN.device_classes:
            return False
        allowed = PLAN.services & DEVICE_CLASS_SERVICES[self.device_class]
        return self.services <= allowed and self.quota <= PLAN.pool_bytes


@attrs.define
class DeviceModel:
    """What the model knows about one secondary."""

    id: str
    eid: str
    iccid: str
    imsi: str
    services: frozenset[Service]
    token_id: bytes
    state: DeviceState
    expires: datetime | None


_NEW = "new"
_SAME = "same"
Outcome = type[RspfedError] | str
_T = TypeVar("_T")


class OperatorMachine(RuleBasedStateMachine):
    """Tokens, redemptions, downloads, lapses, revocations, removals and rotations."""

    def __init__(self) -> None:
        super().__init__()
        self.tmp = Path(tempfile.mkdtemp(prefix="rspfed-machine-", dir=_TMP))
        self.ow: OperatorWorld = make_operator_world(self.tmp, _world())
        sub, enrolment = self.ow.operator.subscribe("ts48", PLAN)
        self.sub_id = sub.id
        self.phone = self.ow.euicc()
        self.ow.download(self.phone, enrolment.activation_code)
        self.ow.register(self.phone)
        self.primary = self._caller()
        self.pool = [self.ow.euicc() for _ in range(POOL)]
        self.key_generation = 0
        self.revoked_before: datetime | None = None
        self.tokens: list[TokenModel] = []
        self.devices: dict[str, DeviceModel] = {}

    def teardown(self) -> None:
        self.ow.close()
        shutil.rmtree(self.tmp, ignore_errors=True)

    # -- helpers ---------------------------------------------------------------

    @property
    def now(self) -> datetime:
        return self.ow.clock()

    def _caller(self) -> Caller:
        assert self.phone.key is not None
        header = sign_request(
            self.phone.key, method="POST", path="/m", body=b"", now=self.now, nonce=os.urandom(16)
        )
        return self.ow.operator.authenticate_request(header, "POST", "/m", b"")

    def _eids(self) -> list[str]:
        return [p.eid for p in self.pool] + [self.phone.eid]

    def _euicc(self, eid: str) -> Phone:
        return next(p for p in [*self.pool, self.phone] if p.eid == eid)

    def _token(self, token_id: bytes) -> TokenModel:
        return next(t for t in self.tokens if t.token_id == token_id)

    def _lapse(self) -> None:
        """The model's :meth:`Operator.sync`: orders past their time go, tokens unseen again."""
        for device in list(self.devices.values()):
            if (
                device.state is DeviceState.ORDERED
                and device.expires is not None
                and self.now >= device.expires
            ):
                del self.devices[device.id]
                token = self._token(device.token_id)
                if token.state is TokenState.RESERVED:
                    token.state, token.device_id = None, None

    def _slots(self) -> int:
        return 1 + sum(d.state is not DeviceState.REMOVED for d in self.devices.values())

    def _predict_redeem(self, token: TokenModel, eid: str) -> Outcome:
        """The operator's checks, in its documented order."""
        self._lapse()
        now = self.now
        if token.key_generation != self.key_generation:
            return TokenRevokedError
        if now < token.not_before:
            return TokenNotYetValidError
        if now >= token.not_after:
            return TokenExpiredError
        if eid != token.eid:
            return TokenEidMismatchError
        if self.revoked_before is not None and token.not_before <= self.revoked_before:
            return TokenRevokedError
        if not token.in_scope:
            return TokenScopeError
        if token.state is TokenState.CONSUMED:
            return TokenConsumedError
        if token.state is TokenState.REVOKED:
            return TokenRevokedError
        if token.state is TokenState.RESERVED:
            return _SAME
        if self._slots() >= PLAN.device_limit:
            return DeviceLimitError
        holders = [d.eid for d in self.devices.values() if d.state is not DeviceState.REMOVED]
        if eid in holders or eid == self.phone.eid:
            return StateError
        return _NEW

    def _expect(self, expected: Outcome, call: Callable[[], _T]) -> _T | None:
        if isinstance(expected, str):
            return call()
        with pytest.raises(RspfedError) as refused:
            call()
        assert type(refused.value) is expected, (type(refused.value), expected, refused.value)
        return None

    def _issue(
        self,
        eid: str,
        device_class: DeviceClass,
        services: frozenset[Service],
        quota: int,
        ttl: timedelta,
    ) -> TokenModel:
        der = self.ow.token(
            self.phone, self.sub_id, eid, device_class, services, quota=quota, ttl=ttl
        )
        parsed = parse_token(der)
        token = TokenModel(
            der=der,
            token_id=parsed.token_id,
            eid=eid,
            device_class=device_class,
            services=services,
            quota=quota,
            not_before=parsed.not_before,
            not_after=parsed.not_after,
            key_generation=self.key_generation,
        )
        self.tokens.append(token)
        return token

    def _redeem(self, token: TokenModel, eid: str) -> None:
        expected = self._predict_redeem(token, eid)
        event("redeem: " + (expected if isinstance(expected, str) else expected.__name__))
        devices_before = self.ow.store.devices(self.sub_id)
        enrolment = self._expect(expected, lambda: self.ow.operator.redeem(token.der, eid))
        if expected == _SAME:
            assert isinstance(enrolment, Enrolment)
            assert token.device_id == enrolment.device_id
            return
        if expected != _NEW:
            # a refusal changed nothing at the operator (the SM-DP+: the invariant)
            self.ow.operator.sync()
            assert self.ow.store.devices(self.sub_id) == devices_before
            return
        assert isinstance(enrolment, Enrolment)
        device = self.ow.store.device(enrolment.device_id)
        assert device is not None
        assert device.eid == eid
        assert device.state is DeviceState.ORDERED
        assert enrolment.expires == self.now + self.ow.operator.config.order_ttl
        # a removed device's order is retired (its record keeps the ICCID);
        # only a lapsed order's instance (its record gone) is ordered again
        assert all(old.iccid != device.iccid for old in self.devices.values())
        self.devices[device.id] = DeviceModel(
            id=device.id,
            eid=eid,
            iccid=device.iccid,
            imsi=device.imsi,
            services=token.services,
            token_id=token.token_id,
            state=DeviceState.ORDERED,
            expires=enrolment.expires,
        )
        token.state, token.device_id = TokenState.RESERVED, device.id

    # -- rules -----------------------------------------------------------------

    @rule(
        eid_index=st.integers(0, POOL),
        device_class=st.sampled_from(DeviceClass),
        extra=st.sampled_from(
            [frozenset(), frozenset(), frozenset({Service.VOICE}), frozenset({Service.TETHERING})]
        ),
        quota=st.sampled_from([GB, GB, 100 * GB]),
        ttl=st.sampled_from([timedelta(seconds=60), timedelta(minutes=10), timedelta(hours=1)]),
    )
    def issue(
        self,
        eid_index: int,
        device_class: DeviceClass,
        extra: frozenset[Service],
        quota: int,
        ttl: timedelta,
    ) -> None:
        """The primary signs a token (perhaps asking for more than its class or plan allows)."""
        self._issue(
            self._eids()[eid_index], device_class, frozenset({Service.DATA}) | extra, quota, ttl
        )

    @rule(
        eid_index=st.integers(0, POOL - 1),
        device_class=st.sampled_from([DeviceClass.TABLET, DeviceClass.LAPTOP, DeviceClass.WATCH]),
        voice=st.booleans(),
    )
    def issue_and_redeem(self, eid_index: int, device_class: DeviceClass, voice: bool) -> None:
        """The common path: a token within the plan, presented at once by its own eUICC."""
        services = {Service.DATA}
        if voice and Service.VOICE in DEVICE_CLASS_SERVICES[device_class]:
            services.add(Service.VOICE)
        token = self._issue(
            self.pool[eid_index].eid, device_class, frozenset(services), GB, timedelta(minutes=10)
        )
        self._redeem(token, token.eid)

    @precondition(lambda self: bool(self.tokens))
    @rule(index=st.integers(0, 1 << 16), own=st.booleans(), other=st.integers(0, POOL))
    def redeem(self, index: int, own: bool, other: int) -> None:
        """Present a token with its EID, or with another eUICC's."""
        token = self.tokens[index % len(self.tokens)]
        self._redeem(token, token.eid if own else self._eids()[other])

    @precondition(lambda self: any(t.state is TokenState.CONSUMED for t in self.tokens))
    @rule(index=st.integers(0, 1 << 16))
    def replay(self, index: int) -> None:
        """Present a consumed token again, by its own EID."""
        consumed = [t for t in self.tokens if t.state is TokenState.CONSUMED]
        token = consumed[index % len(consumed)]
        self._redeem(token, token.eid)

    def _ordered(self) -> list[DeviceModel]:
        self.ow.operator.sync()
        self._lapse()
        return [d for d in self.devices.values() if d.state is DeviceState.ORDERED]

    @precondition(lambda self: any(d.state is DeviceState.ORDERED for d in self.devices.values()))
    @rule(index=st.integers(0, 1 << 16))
    def download(self, index: int) -> None:
        """The order's own eUICC downloads it: the token is consumed, the device active."""
        ordered = self._ordered()
        if not ordered:
            return
        device = ordered[index % len(ordered)]
        euicc = self._euicc(device.eid)
        lpa = RealLpa(InProcessEs10(euicc.euicc.isdr))
        for profile in lpa.profiles():  # the old profile of a removed device
            if profile.enabled:
                lpa.disable(profile.iccid)
            lpa.delete(profile.iccid)
        euicc.iccid = None
        stored = self.ow.store.device(device.id)
        assert stored is not None
        assert self.ow.download(euicc, stored.activation_code) == device.iccid
        event("downloaded")
        self.ow.operator.sync()
        device.state, device.expires = DeviceState.ACTIVE, None
        self._token(device.token_id).state = TokenState.CONSUMED

    @precondition(lambda self: any(d.state is DeviceState.ORDERED for d in self.devices.values()))
    @rule(index=st.integers(0, 1 << 16), thief=st.integers(0, POOL))
    def steal(self, index: int, thief: int) -> None:
        """Another eUICC tries an order's activation code: refused, the token not consumed."""
        ordered = self._ordered()
        if not ordered:
            return
        device = ordered[index % len(ordered)]
        euicc = [*self.pool, self.phone][thief]
        if euicc.eid == device.eid:
            return
        stored = self.ow.store.device(device.id)
        assert stored is not None
        code = ActivationCode.parse(stored.activation_code)
        with pytest.raises(FunctionExecutionError):
            Lpa(self.ow.smdp, euicc.euicc.isdr).download(code.matching_id)
        event("stolen code refused")
        self.ow.operator.sync()

    @rule(
        wait=st.sampled_from(
            [timedelta(seconds=61), timedelta(seconds=601), timedelta(minutes=30, seconds=1)]
        )
    )
    def expire(self, wait: timedelta) -> None:
        """Time passes: tokens and orders lapse at the next reconciliation."""
        self.ow.clock.advance(wait)
        self.ow.operator.sync()
        self._lapse()

    @rule(index=st.integers(0, 1 << 16), unseen=st.booleans())
    def revoke_one(self, index: int, unseen: bool) -> None:
        """Revoke one token (perhaps one never presented)."""
        if unseen or not self.tokens:
            token = self._issue(
                self.pool[0].eid,
                DeviceClass.TABLET,
                frozenset({Service.DATA}),
                GB,
                timedelta(minutes=10),
            )
        else:
            token = self.tokens[index % len(self.tokens)]
        self._lapse()
        if token.state is TokenState.CONSUMED:
            self._expect(StateError, lambda: self.ow.operator.revoke(self.primary, token.token_id))
            return
        expected = 1 if token.state is TokenState.RESERVED else 0
        assert self.ow.operator.revoke(self.primary, token.token_id) == expected
        if token.state is TokenState.RESERVED:
            assert token.device_id is not None
            del self.devices[token.device_id]
        token.state = TokenState.REVOKED

    @precondition(lambda self: any(d.state is DeviceState.ORDERED for d in self.devices.values()))
    @rule()
    def revoke_all(self) -> None:
        """Revoke every outstanding token: reserved orders are cancelled."""
        self._lapse()
        reserved = [d for d in self.devices.values() if d.state is DeviceState.ORDERED]
        assert self.ow.operator.revoke(self.primary, None) == len(reserved)
        for device in reserved:
            del self.devices[device.id]
            self._token(device.token_id).state = TokenState.REVOKED
        self.revoked_before = self.now

    @precondition(lambda self: bool(self.devices))
    @rule(index=st.integers(0, 1 << 16))
    def remove(self, index: int) -> None:
        """The primary removes a device (again: refused)."""
        self._lapse()
        if not self.devices:
            return
        device = list(self.devices.values())[index % len(self.devices)]
        if device.state is DeviceState.REMOVED:
            self._expect(StateError, lambda: self.ow.operator.remove(self.primary, device.id))
            return
        removed = self.ow.operator.remove(self.primary, device.id)
        assert removed.state is DeviceState.REMOVED
        token = self._token(device.token_id)
        if token.state is TokenState.RESERVED:
            token.state = TokenState.REVOKED
        device.state, device.expires = DeviceState.REMOVED, None

    @precondition(lambda self: any(d.state is DeviceState.REMOVED for d in self.devices.values()))
    @rule(
        index=st.integers(0, 1 << 16),
        device_class=st.sampled_from(sorted(PLAN.device_classes, key=str)),
    )
    def re_add(self, index: int, device_class: DeviceClass) -> None:
        """A removed device's eUICC gets a new token and redeems it."""
        removed = [d for d in self.devices.values() if d.state is DeviceState.REMOVED]
        device = removed[index % len(removed)]
        token = self._issue(
            device.eid, device_class, frozenset({Service.DATA}), GB, timedelta(minutes=10)
        )
        self._redeem(token, device.eid)

    @precondition(lambda self: len(self.tokens) >= 3)
    @rule()
    def rotate(self) -> None:
        """The primary registers a new federation key: every token of the old one is refused."""
        self._lapse()
        self.ow.register(self.phone)
        self.key_generation += 1
        self.primary = self._caller()

    @precondition(lambda self: bool(self.devices))
    @rule(index=st.integers(0, 1 << 16))
    def attach(self, index: int) -> None:
        """A secondary whose profile is enabled attaches with its USIM (EAP-AKA')."""
        self._lapse()
        held = [
            d
            for d in self.devices.values()
            if d.state is not DeviceState.ORDERED and self._euicc(d.eid).iccid == d.iccid
        ]
        if not held:
            return
        device = held[index % len(held)]
        euicc = self._euicc(device.eid)
        event(f"attach: {device.state.value}")
        if device.state is DeviceState.ACTIVE:
            assert self.ow.attach(euicc, Service.DATA) == device.services
        else:
            with pytest.raises(NetworkRefusedError):
                self.ow.attach(euicc)

    # -- invariants ------------------------------------------------------------

    @invariant()
    def records_match_the_model(self) -> None:
        stored = {d.id: d for d in self.ow.store.devices(self.sub_id)}
        primary = [d for d in stored.values() if d.role is DeviceRole.PRIMARY]
        assert len(primary) == 1
        assert primary[0].state is DeviceState.ACTIVE
        secondaries = {i: d for i, d in stored.items() if d.role is DeviceRole.SECONDARY}
        assert set(secondaries) == set(self.devices)
        for device in self.devices.values():
            record = secondaries[device.id]
            assert (record.state, record.eid, record.iccid, record.token_id) == (
                device.state,
                device.eid,
                device.iccid,
                device.token_id,
            )
        assert self.ow.store.slots_used(self.sub_id) == self._slots() <= PLAN.device_limit
        assert sum(d.occupies_slot for d in stored.values()) <= PLAN.device_limit

    @invariant()
    def tokens_consumed_once_by_their_eid(self) -> None:
        devices = [d for d in self.ow.store.devices(self.sub_id) if d.token_id is not None]
        by_token: dict[bytes, list[str]] = {}
        for device in devices:
            assert device.token_id is not None
            by_token.setdefault(device.token_id, []).append(device.id)
            if device.token_consumed:
                token = self._token(device.token_id)
                assert device.eid == token.eid
                record = self.ow.store.token(device.token_id)
                assert record is not None
                assert record.state is TokenState.CONSUMED
                assert record.eid == token.eid
        assert all(len(ids) == 1 for ids in by_token.values())
        for token in self.tokens:
            record = self.ow.store.token(token.token_id)
            assert (None if record is None else record.state) is token.state
            if token.state is TokenState.CONSUMED:
                assert by_token.get(token.token_id) == [token.device_id]

    @invariant()
    def nothing_allocated_behind_the_operators_back(self) -> None:
        stored = {d.iccid: d for d in self.ow.store.devices(self.sub_id)}
        requester = self.ow.operator.config.requester
        for item in self.ow.smdp.inventory():
            if item.requester != requester:
                continue
            if item.state in _ORDER_STATES:
                device = stored.get(item.iccid)
                assert device is not None, item
                assert device.state is DeviceState.ORDERED
            elif item.state is ItemState.INSTALLED:
                assert item.iccid in stored
        for device in stored.values():
            order = self.ow.smdp.item(device.iccid)
            assert order is not None
            if device.state is DeviceState.ORDERED:
                assert order.state is ItemState.RELEASED
                assert order.eid == device.eid
            elif device.state is DeviceState.ACTIVE:
                assert order.state is ItemState.INSTALLED

    @invariant()
    def the_network_follows_the_devices(self) -> None:
        auc = self.ow.auc
        live = {d.imsi for d in self.devices.values() if d.state is not DeviceState.REMOVED}
        for device in self.devices.values():
            if device.state is DeviceState.ACTIVE:
                for service in Service:
                    if service in device.services:
                        auc.check_service(device.imsi, service)
                    else:
                        with pytest.raises(NetworkRefusedError):
                            auc.check_service(device.imsi, service)
            elif device.state is DeviceState.REMOVED and device.imsi not in live:
                with pytest.raises(NetworkRefusedError):
                    auc.check_service(device.imsi, Service.DATA)
        phone = next(d for d in self.ow.store.devices(self.sub_id) if d.role is DeviceRole.PRIMARY)
        for service in PLAN.services:
            auc.check_service(phone.imsi, service)


TestOperatorMachine = OperatorMachine.TestCase
TestOperatorMachine.settings = settings(
    settings.default, max_examples=_EXAMPLES, stateful_step_count=_STEPS
)
