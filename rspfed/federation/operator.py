"""The operator service core: subscriptions, registration, tokens, linked devices.

Sans-IO: the clock (``now``) and randomness (``rand``) are injected; the
:class:`~rspfed.federation.store.SqliteOperatorStore`, the SM-DP+ core
(:class:`~rspfed.smdp.Smdp`, the operator is its ES2+ client in-process) and
the network's AuC (:class:`~rspfed.network.Auc`) are passed in.  The aiohttp
adapter is :mod:`rspfed.federation.http`.

Theory of operation
-------------------
* :meth:`Operator.subscribe` creates a subscription and orders the primary's
  profile (ES2+ DownloadOrder + ConfirmOrder with a matchingId): its
  activation code.
* The primary downloads, then *registers*: EAP-AKA' (RFC 9048) with its USIM
  (:meth:`eap_start` / :meth:`eap_continue`, purpose ``register``), carrying
  the public half of a new P-256 federation key in AT_RSPFED_FEDERATION_KEY
  (covered by AT_MAC).  A new registration rotates the key: the old one is
  retired and every token it signed is refused (:class:`TokenRevokedError`).
* The primary signs federation tokens offline.  :meth:`redeem` checks one
  (signature with the registered key, window, revocation, device limit,
  class, services, quota, EID) and places an ES2+ order *bound to the
  token's EID* for a linked profile of the secondary's own (own ICCID, IMSI,
  K/OPc): the activation code.  The token is only *reserved*; it is
  *consumed* when that EID's eUICC authenticates in the ES9+ session, which
  :meth:`sync` learns from the SM-DP+ inventory.  An order that is not
  downloaded within ``order_ttl`` is cancelled and its slot freed.
* :meth:`sync` reconciles with the SM-DP+: consumed tokens, installed
  profiles (the device becomes ``active`` and its IMSI is provisioned in the
  AuC with the services its class and token allow), lapsed orders.  Every
  public call runs it first, so the answer reflects the SM-DP+'s state.
* Management requests are signed (:mod:`rspfed.federation.signing`); the
  primary lists devices and join requests, approves, removes, revokes.
* :meth:`remove` frees the slot, removes the IMSI from the AuC (the network
  refuses it from then on) and marks the device removed, which the device's
  LPA learns from :meth:`status` at its next sync and deletes the profile.

* Device change (:mod:`rspfed.federation.change`,
  docs/device-change-operator.md): a device's record moves to a new eUICC
  with a new profile; :meth:`sync` switches the network (one AuC
  transaction: the new IMSI in service, the old one removed) when the new
  eUICC's enable notification reaches the SM-DP+.

The SM-DP+ and the operator keep separate stores.  A redemption orders at
the SM-DP+ first and records the device after; if recording fails the order
is cancelled again, and :meth:`sync` with ``full=True`` cancels any order
carrying the operator's requester identity that the operator does not know
(a crash between the two writes).  So nothing stays allocated on failure.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import hmac
from collections.abc import Callable
from datetime import UTC, datetime

import attrs
from cryptography.hazmat.primitives.asymmetric import ec

from rspfed.eap.machines import EapAkaPrimeServer, ServerState
from rspfed.errors import (
    AuthorizationError,
    DecodeError,
    DeviceLimitError,
    NotFoundError,
    PolicyError,
    ProtocolError,
    ReplayError,
    RspfedError,
    SignatureError,
    StateError,
    TokenConsumedError,
    TokenEidMismatchError,
    TokenRevokedError,
    TokenScopeError,
    UsageError,
)
from rspfed.federation import _state
from rspfed.federation._state import Event
from rspfed.federation.cells import check_attach, profile_files, radio_environment
from rspfed.federation.change import DeviceChanges
from rspfed.federation.signing import parse_authorization, verify_request
from rspfed.federation.store import (
    EapSessionRecord,
    KeyRecord,
    SqliteOperatorStore,
    TokenRecord,
)
from rspfed.federation.token import (
    DeviceClass,
    FederationToken,
    Service,
    parse_token,
    primary_key_id,
    verify_token,
)
from rspfed.federation.types import (
    Caller,
    Device,
    DeviceChange,
    DeviceChangeOrder,
    DeviceRole,
    DeviceState,
    EapPurpose,
    EapStep,
    Enrolment,
    JoinRequest,
    JoinState,
    JoinTicket,
    OperatorConfig,
    Plan,
    Subscription,
    TokenState,
)
from rspfed.lpa.activation import ActivationCode
from rspfed.network.auc import Auc, Subscriber, SubscriberState
from rspfed.network.eap import NetworkEapAuc
from rspfed.network.errors import NetworkRefusedError, RefusalReason
from rspfed.network.nai import imsi_from_identity
from rspfed.network.radio import VisibleNetwork
from rspfed.network.service import DEVICE_CLASS_SERVICES, ServicePolicy
from rspfed.pki.eid import is_valid_eid
from rspfed.smdp import ItemState, Smdp

__all__ = ["Operator", "TokenScopeError"]


_LAPSED_STATES = frozenset({ItemState.ERROR, ItemState.UNAVAILABLE, ItemState.AVAILABLE})
_MAX_NAME = 64


def _b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def _public_key(point: bytes) -> ec.EllipticCurvePublicKey:
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), point)


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not 1 <= len(name) <= _MAX_NAME or not name.isprintable():
        raise UsageError(f"a device name is 1 to {_MAX_NAME} printable characters")
    return name


def _check_eid(eid: str) -> str:
    if not isinstance(eid, str) or not is_valid_eid(eid):
        raise DecodeError("not a valid EID", type_name="EID")
    return eid


class Operator:
    """The operator service (see the module doc)."""

    def __init__(
        self,
        store: SqliteOperatorStore,
        smdp: Smdp,
        auc: Auc,
        *,
        config: OperatorConfig | None = None,
        now: Callable[[], datetime],
        rand: Callable[[int], bytes],
    ) -> None:
        self._store = store
        self._smdp = smdp
        self._auc = auc
        self._eap_auc = NetworkEapAuc(auc)
        self._config = config or OperatorConfig()
        self._clock = now
        self._rand = rand
        self._changes = DeviceChanges(self)
        smdp.set_profile_files(lambda _ptype, sizes: profile_files(self._store, sizes))

    def __repr__(self) -> str:
        return f"Operator({self._store!r})"

    @property
    def store(self) -> SqliteOperatorStore:
        """The operator's store."""
        return self._store

    @property
    def smdp(self) -> Smdp:
        """The SM-DP+ core the operator orders from."""
        return self._smdp

    @property
    def auc(self) -> Auc:
        """The network's authentication centre."""
        return self._auc

    @property
    def config(self) -> OperatorConfig:
        """The settings."""
        return self._config

    def _now(self) -> datetime:
        now = self._clock()
        if now.tzinfo is None or now.utcoffset() is None:
            raise UsageError("the clock must return timezone-aware datetimes")
        return now.astimezone(UTC)

    def _id(self, prefix: str) -> str:
        raw = self._rand(10)
        if len(raw) != 10:
            raise UsageError("the randomness source returned the wrong length")
        return prefix + _b32(raw)

    # -- subscriptions ---------------------------------------------------------

    def subscribe(
        self, profile_type: str, plan: Plan, *, name: str = "phone"
    ) -> tuple[Subscription, Enrolment]:
        """A new subscription and its primary's activation code.

        The primary's order is not bound to an EID (the code carries a
        matchingId); the primary's EID is learnt when its eUICC authenticates.
        """
        _check_name(name)
        now = self._now()
        sub = Subscription(id=self._id("s"), profile_type=profile_type, plan=plan, created=now)
        enrolment, device = self._order(
            sub,
            role=DeviceRole.PRIMARY,
            device_class=DeviceClass.PHONE,
            name=name,
            eid=None,
            services=plan.services,
            quota=None,
            token_id=None,
            expires=None,
            now=now,
        )
        try:
            with self._store.transaction():
                self._store.put_subscription(sub)
                self._store.put_device(device)
        except BaseException:
            self._cancel_order(device.iccid)
            raise
        return sub, enrolment

    def subscription(self, subscription_id: str) -> Subscription:
        """A subscription; :class:`NotFoundError` if unknown."""
        sub = self._store.subscription(subscription_id)
        if sub is None:
            raise NotFoundError("no such subscription")
        return sub

    def _order(
        self,
        sub: Subscription,
        *,
        role: DeviceRole,
        device_class: DeviceClass,
        name: str,
        eid: str | None,
        services: frozenset[Service],
        quota: int | None,
        token_id: bytes | None,
        expires: datetime | None,
        now: datetime,
    ) -> tuple[Enrolment, Device]:
        """ES2+ DownloadOrder + ConfirmOrder; the order is cancelled if anything fails."""
        requester = self._config.requester
        iccid = self._smdp.download_order(
            profile_type=sub.profile_type, eid=eid, requester=requester
        )
        try:
            confirmed = self._smdp.confirm_order(
                iccid=iccid, eid=eid, release_flag=True, requester=requester
            )
            item = self._smdp.item(iccid)
            if item is None:  # pragma: no cover - just ordered
                raise StateError("the SM-DP+ lost the order")
            code = ActivationCode(
                address=confirmed.smdp_address, matching_id=confirmed.matching_id
            ).to_text()
        except BaseException:
            self._cancel_order(iccid)
            raise
        device = Device(
            id=self._id("d"),
            subscription_id=sub.id,
            role=role,
            device_class=device_class,
            name=name,
            state=_state.move(_state.DEVICE_TRANSITIONS, Event.CREATE, None),
            eid=eid,
            iccid=iccid,
            imsi=item.imsi,
            services=services,
            quota_bytes=quota,
            token_id=token_id,
            activation_code=code,
            created=now,
            order_expires=expires,
        )
        return Enrolment(device.id, iccid, code, expires), device

    def _cancel_order(self, iccid: str, *, final: str = "Available") -> None:
        """Cancel an SM-DP+ order (best effort).

        ``final`` ``"Available"`` returns the instance to the inventory (fresh
        keys); ``"Unavailable"`` retires it — for a removed device, whose
        record keeps the ICCID.
        """
        item = self._smdp.item(iccid)
        if item is None or item.state in (
            ItemState.AVAILABLE,
            ItemState.UNAVAILABLE,
            ItemState.INSTALLED,
        ):
            return
        # an order downloaded meanwhile refuses: the install notification decides
        with contextlib.suppress(RspfedError):
            self._smdp.cancel_order(
                iccid=iccid,
                final_profile_status_indicator=final,
                requester=self._config.requester,
            )

    # -- reconciliation ----------------------------------------------------------

    def sync(self, *, full: bool = False) -> None:
        """Bring the operator's records in line with the SM-DP+ (see the module doc).

        ``full`` also cancels orphan orders (placed by the operator, unknown to
        it or of a removed device after a crash) and purges expired nonces, sessions and requests.
        """
        now = self._now()
        for device in self._store.devices_in_state(DeviceState.ORDERED):
            self._sync_device(device, now)
        self._changes.sync(now)
        if full:
            self._store.purge(now)
            known = {
                d.iccid
                for state in (DeviceState.ORDERED, DeviceState.ACTIVE)
                for d in self._store.devices_in_state(state)
            }  # a removed device's order is one to cancel too
            known |= self._changes.open_iccids()
            removed = {d.iccid for d in self._store.devices_in_state(DeviceState.REMOVED)}
            for item in self._smdp.inventory():
                if (
                    item.requester == self._config.requester
                    and item.iccid not in known
                    and item.state in (ItemState.LINKED, ItemState.ALLOCATED, ItemState.RELEASED)
                    and item.updated + self._config.order_ttl <= now
                ):
                    final = "Unavailable" if item.iccid in removed else "Available"
                    self._cancel_order(item.iccid, final=final)

    def _sync_device(self, device: Device, now: datetime) -> None:
        item = self._smdp.item(device.iccid)
        if item is None:
            return
        authenticated = item.download_attempts > 0 and item.eid is not None
        if authenticated and device.eid is None:
            device = attrs.evolve(device, eid=item.eid)
            self._store.put_device(device)
        if authenticated and device.token_id is not None and not device.token_consumed:
            with self._store.transaction():
                record = self._store.token(device.token_id)
                if record is not None and record.state is TokenState.RESERVED:
                    state = _state.move(_state.TOKEN_TRANSITIONS, Event.AUTHENTICATED, record.state)
                    self._store.put_token(attrs.evolve(record, state=state))
                device = attrs.evolve(device, token_consumed=True)
                self._store.put_device(device)
        if item.state is ItemState.INSTALLED:
            self._activate(device, item.k, item.opc)
            return
        lapsed = item.state in _LAPSED_STATES or (
            not authenticated and device.order_expires is not None and now >= device.order_expires
        )
        if lapsed:
            self._lapse(device)

    def _activate(self, device: Device, k: bytes, opc: bytes) -> None:
        sub = self.subscription(device.subscription_id)
        policy = ServicePolicy(device.device_class, sub.plan.services & device.services)
        with self._store.transaction():
            state = _state.move(_state.DEVICE_TRANSITIONS, Event.INSTALLED, device.state)
            try:
                self._auc.provision(Subscriber(imsi=device.imsi, k=k, opc=opc, policy=policy))
            except UsageError:  # provisioned already (another worker, or a retried sync)
                self._auc.set_policy(device.imsi, policy)
            self._store.put_device(attrs.evolve(device, state=state, order_expires=None))

    def _store_auc_missing(self, imsi: str) -> bool:
        try:
            self._auc.subscriber(imsi)
        except RspfedError:
            return True
        return False

    def _lapse(self, device: Device) -> None:
        """An order that will not complete: cancel it, free the slot, release the token.

        The primary's order is placed again instead (a new ICCID and
        activation code, shown by :meth:`primary_enrolment`): a subscription
        never loses its primary.
        """
        self._cancel_order(device.iccid)
        if device.role is DeviceRole.PRIMARY:
            self._reorder_primary(device)
            return
        with self._store.transaction():
            self._store.delete_device(device.id)
            if device.token_id is not None and not device.token_consumed:
                record = self._store.token(device.token_id)
                if record is not None and record.state is TokenState.RESERVED:
                    self._store.delete_token(device.token_id)

    def _reorder_primary(self, device: Device) -> None:
        sub = self.subscription(device.subscription_id)
        try:
            _, fresh = self._order(
                sub,
                role=DeviceRole.PRIMARY,
                device_class=device.device_class,
                name=device.name,
                eid=None,
                services=device.services,
                quota=None,
                token_id=None,
                expires=None,
                now=self._now(),
            )
        except RspfedError:
            return  # the SM-DP+ cannot order now; the next sync tries again
        try:
            self._store.put_device(attrs.evolve(fresh, id=device.id, created=device.created))
        except BaseException:
            self._cancel_order(fresh.iccid)
            raise

    def primary_enrolment(self, subscription_id: str) -> Enrolment:
        """The primary's current activation code (while its profile is not installed)."""
        self.sync()
        for device in self._store.devices(subscription_id):
            if device.role is DeviceRole.PRIMARY and device.state is DeviceState.ORDERED:
                return Enrolment(device.id, device.iccid, device.activation_code, None)
        raise NotFoundError("no primary order waits for a download in this subscription")

    # -- redemption --------------------------------------------------------------

    def _verified(
        self, token_der: bytes, now: datetime, eid: str | None
    ) -> tuple[FederationToken, Subscription]:
        token = parse_token(token_der)
        sub = self._store.subscription(token.subscription_id)
        if sub is None:
            raise NotFoundError("the token names an unknown subscription")
        key = self._store.key(token.primary_key_id)
        if key is None or key.subscription_id != sub.id or key.role is not DeviceRole.PRIMARY:
            raise SignatureError("the token is not signed by this subscription's primary key")
        if not key.active:
            raise TokenRevokedError("the key that signed the token was replaced")
        verify_token(
            token_der, primary_public_key=_public_key(key.public_key), now=now, expected_eid=eid
        )
        if sub.tokens_revoked_before is not None and token.not_before <= sub.tokens_revoked_before:
            raise TokenRevokedError("the primary revoked its outstanding tokens")
        self._check_scope(token, sub.plan)
        return token, sub

    @staticmethod
    def _check_scope(token: FederationToken, plan: Plan) -> None:
        if token.device_class not in plan.device_classes:
            raise TokenScopeError(f"the plan does not allow a {token.device_class.value}")
        allowed = plan.services & DEVICE_CLASS_SERVICES[token.device_class]
        extra = token.services - allowed
        if extra:
            names = ", ".join(sorted(s.value for s in extra))
            raise TokenScopeError(f"a {token.device_class.value} may not get {names}")
        if token.quota > plan.pool_bytes:
            raise TokenScopeError("the quota is larger than the subscription's pool")

    def redeem(self, token: bytes, eid: str, *, name: str | None = None) -> Enrolment:
        """Redeem a federation token for the eUICC ``eid``: its activation code.

        Checks, in order: DER, subscription, signing key (registered, not
        replaced), signature, window, EID, revocation, scope (class, services,
        quota against the plan), the token's state (consumed or revoked
        tokens are refused; a token already redeemed by this EID and waiting
        for the download gives the same activation code again), the device
        limit.  Then orders the linked profile bound to ``eid``; the device is
        called ``name`` (default: its class).
        """
        return self._redeem(token, eid, name=name)

    def _redeem(
        self,
        token: bytes,
        eid: str,
        *,
        name: str | None,
        recorded: Callable[[str], None] | None = None,
    ) -> Enrolment:
        """:meth:`redeem`; ``recorded(device_id)`` writes along with the device's record."""
        _check_eid(eid)
        if name is not None:
            _check_name(name)
        self.sync()
        now = self._now()
        parsed, sub = self._verified(token, now, eid)
        record = self._store.token(parsed.token_id)
        if record is not None:
            return self._existing(record, recorded)
        if self._store.slots_used(sub.id) >= sub.plan.device_limit:
            raise DeviceLimitError("the subscription has reached its device limit")
        for other in self._store.devices(sub.id):
            if other.eid == eid and other.occupies_slot:
                raise StateError("this eUICC already holds a profile of the subscription")
        if any(r.change.open for r in self._store.changes_to_eid(eid)):
            raise StateError("a device of the subscription is moving onto this eUICC")
        enrolment, device = self._order(
            sub,
            role=DeviceRole.SECONDARY,
            device_class=parsed.device_class,
            name=name or parsed.device_class.value,
            eid=eid,
            services=parsed.services,
            quota=parsed.quota or None,
            token_id=parsed.token_id,
            expires=now + self._config.order_ttl,
            now=now,
        )
        won: TokenRecord | None = None
        try:
            with self._store.transaction():
                # re-checked inside the write transaction: another worker may have won
                won = self._store.token(parsed.token_id)
                if won is None:
                    if self._store.slots_used(sub.id) >= sub.plan.device_limit:
                        raise DeviceLimitError("the subscription has reached its device limit")
                    self._store.put_token(
                        TokenRecord(
                            token_id=parsed.token_id,
                            subscription_id=sub.id,
                            state=_state.move(_state.TOKEN_TRANSITIONS, Event.CREATE, None),
                            eid=eid,
                            device_id=device.id,
                            not_after=parsed.not_after,
                        )
                    )
                    self._store.put_device(device)
                    if recorded is not None:
                        recorded(device.id)
        except BaseException:
            self._cancel_order(device.iccid)
            raise
        if won is not None:  # the same token recorded by a concurrent redemption
            self._cancel_order(device.iccid)
            return self._existing(won, recorded)
        return enrolment

    def _existing(
        self, record: TokenRecord, recorded: Callable[[str], None] | None = None
    ) -> Enrolment:
        if record.state is TokenState.CONSUMED:
            raise TokenConsumedError("the token was already used")
        if record.state is TokenState.REVOKED:
            raise TokenRevokedError("the token was revoked")
        device = None if record.device_id is None else self._store.device(record.device_id)
        if device is None:  # pragma: no cover - reserved tokens have their device
            raise TokenConsumedError("the token was already used")
        if recorded is not None:
            recorded(device.id)
        return Enrolment(device.id, device.iccid, device.activation_code, device.order_expires)

    # -- cloud enrolment -----------------------------------------------------------

    def join(
        self, subscription_id: str, eid: str, device_class: DeviceClass, name: str
    ) -> JoinTicket:
        """A secondary asks to join a subscription; the ticket's secret collects the result."""
        _check_eid(eid)
        _check_name(name)
        device_class = DeviceClass(device_class)
        now = self._now()
        sub = self.subscription(subscription_id)
        if device_class not in sub.plan.device_classes:
            raise PolicyError(f"the plan does not allow a {device_class.value}")
        self._store.purge(now)
        pending = [r for r in self._store.joins(sub.id) if r.state is JoinState.PENDING]
        if len(pending) >= self._config.max_pending_joins:
            raise PolicyError("too many pending join requests for this subscription")
        secret = base64.urlsafe_b64encode(self._rand(18)).decode("ascii")
        request = JoinRequest(
            id=self._id("r"),
            subscription_id=sub.id,
            eid=eid,
            device_class=device_class,
            name=name,
            state=_state.move(_state.JOIN_TRANSITIONS, Event.CREATE, None),
            created=now,
            expires=now + self._config.join_ttl,
        )
        self._store.put_join(
            request, secret_hash=hashlib.sha256(secret.encode()).digest(), token=None
        )
        return JoinTicket(request, secret)

    def _join_record(self, request_id: str) -> tuple[JoinRequest, bytes, bytes | None]:
        found = self._store.join(request_id)
        if found is None or found[0].expires <= self._now():
            raise NotFoundError("no such join request")
        return found

    def collect(self, request_id: str, secret: str) -> Enrolment | None:
        """The activation code of an approved join request (None while pending)."""
        request, secret_hash, token = self._join_record(request_id)
        if not hmac.compare_digest(hashlib.sha256(secret.encode()).digest(), secret_hash):
            raise AuthorizationError("wrong join secret")
        if request.state is JoinState.PENDING:
            return None
        if request.state is JoinState.COLLECTED:
            device = None if request.device_id is None else self._store.device(request.device_id)
            if device is None or device.state is DeviceState.REMOVED:
                raise NotFoundError("the join request's device is gone")
            return Enrolment(device.id, device.iccid, device.activation_code, device.order_expires)
        assert token is not None
        state = _state.move(_state.JOIN_TRANSITIONS, Event.COLLECT, request.state)

        def collected(device_id: str) -> None:  # in the device's transaction: never half done
            self._store.put_join(
                attrs.evolve(request, state=state, device_id=device_id),
                secret_hash=secret_hash,
                token=token,
            )

        return self._redeem(token, request.eid, name=request.name, recorded=collected)

    def requests(self, caller: Caller) -> list[JoinRequest]:
        """The caller's subscription's join requests that are not collected (primary only)."""
        self._primary(caller)
        self._store.purge(self._now())
        return [
            r
            for r in self._store.joins(caller.subscription_id)
            if r.state is not JoinState.COLLECTED
        ]

    def approve(self, caller: Caller, request_id: str, token: bytes) -> JoinRequest:
        """Attach the primary's token to a pending join request (its EID and class)."""
        self._primary(caller)
        request, secret_hash, _ = self._join_record(request_id)
        if request.subscription_id != caller.subscription_id:
            raise NotFoundError("no such join request")
        parsed, _sub = self._verified(token, self._now(), request.eid)
        if parsed.device_class is not request.device_class:
            raise TokenScopeError("the token names another device class than the request")
        state = _state.move(_state.JOIN_TRANSITIONS, Event.APPROVE, request.state)
        approved = attrs.evolve(request, state=state)
        self._store.put_join(approved, secret_hash=secret_hash, token=bytes(token))
        return approved

    # -- signed requests and device management ---------------------------------

    def authenticate_request(
        self, authorization: str, method: str, path: str, body: bytes
    ) -> Caller:
        """Who signed this request (see :mod:`rspfed.federation.signing`).

        :class:`SignatureError` for an unknown or retired key or a bad
        signature, :class:`ReplayError` for a nonce that key used before.
        """
        request = parse_authorization(authorization)
        key = self._store.key(request.key_id)
        if key is None:
            raise SignatureError("the request is signed with an unknown key")
        if not key.active:
            raise SignatureError("the request is signed with a replaced key")
        now = self._now()
        window = self._config.request_window
        verify_request(
            request,
            _public_key(key.public_key),
            method=method,
            path=path,
            body=body,
            now=now,
            window=window,
        )
        if not self._store.use_nonce(key.key_id, request.nonce, now + 2 * window):
            raise ReplayError("the request was seen before")
        return Caller(key.key_id, key.subscription_id, key.device_id, key.role)

    def _primary(self, caller: Caller) -> Subscription:
        if caller.role is not DeviceRole.PRIMARY:
            raise AuthorizationError("only the primary device may do this")
        return self.subscription(caller.subscription_id)

    def devices(self, caller: Caller) -> list[Device]:
        """The caller's subscription's devices (primary only)."""
        self._primary(caller)
        self.sync()
        return self._store.devices(caller.subscription_id)

    def status(self, caller: Caller) -> Device:
        """The caller's own device record (a removed device learns it must delete its profile)."""
        self.sync()
        device = self._store.device(caller.device_id)
        if device is None:  # pragma: no cover - keys belong to devices
            raise NotFoundError("no such device")
        return device

    def remove(self, caller: Caller, device_id: str) -> Device:
        """Remove a secondary (primary only): slot freed, IMSI refused by the network."""
        self._primary(caller)
        self.sync()
        device = self._store.device(device_id)
        if device is None or device.subscription_id != caller.subscription_id:
            raise NotFoundError("no such device")
        if device.role is DeviceRole.PRIMARY:
            raise StateError("the primary device cannot be removed")
        if any(r.change.open for r in self._store.changes_of_device(device.id)):
            raise StateError("the device is moving to a new eUICC: cancel its device change first")
        state = _state.move(_state.DEVICE_TRANSITIONS, Event.REMOVE, device.state)
        with self._store.transaction():
            if not self._store_auc_missing(device.imsi):
                self._auc.remove(device.imsi)
            if device.token_id is not None:
                record = self._store.token(device.token_id)
                if record is not None and record.state is TokenState.RESERVED:
                    revoked = _state.move(_state.TOKEN_TRANSITIONS, Event.REVOKE, record.state)
                    self._store.put_token(attrs.evolve(record, state=revoked))
            # the device key stays: the removed device may still ask its status
            # (and learn to delete its profile); it can do nothing else
            removed = attrs.evolve(device, state=state, order_expires=None)
            self._store.put_device(removed)
        # cancelled once the removal is recorded: cancelled first, a failed
        # write left an ordered device whose order lapsed at the next sync,
        # its token redeemable again; a crash here leaves an order that
        # sync(full=True) cancels
        if device.state is DeviceState.ORDERED:
            # retired, not returned: the removed device's record keeps the ICCID
            self._cancel_order(device.iccid, final="Unavailable")
        return removed

    def revoke(self, caller: Caller, token_id: bytes | None = None) -> int:
        """Revoke one token (by id) or every outstanding one (``None``); orders cancelled.

        Returns how many reserved (redeemed, not yet downloaded) orders were
        cancelled.  A consumed token cannot be revoked: remove its device.
        """
        sub = self._primary(caller)
        self.sync()
        now = self._now()
        reserved = [
            d
            for d in self._store.devices(sub.id)
            if d.state is DeviceState.ORDERED
            and d.token_id is not None
            and not d.token_consumed
            and (token_id is None or d.token_id == token_id)
        ]
        with self._store.transaction():
            if token_id is None:
                self._store.put_subscription(attrs.evolve(sub, tokens_revoked_before=now))
            else:
                record = self._store.token(token_id)
                if record is not None and record.subscription_id != sub.id:
                    raise NotFoundError("no such token")
                if record is not None and record.state is TokenState.CONSUMED:
                    raise StateError("the token was consumed; remove its device instead")
                if record is None or record.state is not TokenState.REVOKED:
                    state = _state.move(
                        _state.TOKEN_TRANSITIONS,
                        Event.REVOKE,
                        None if record is None else record.state,
                    )
                    self._store.put_token(
                        TokenRecord(
                            token_id=token_id,
                            subscription_id=sub.id,
                            state=state,
                            eid="" if record is None else record.eid,
                            device_id=None if record is None else record.device_id,
                            not_after=now if record is None else record.not_after,
                        )
                    )
            for device in reserved:
                self._store.delete_device(device.id)
                if token_id is None and device.token_id is not None:
                    record = self._store.token(device.token_id)
                    if record is not None and record.state is TokenState.RESERVED:
                        self._store.put_token(attrs.evolve(record, state=TokenState.REVOKED))
        for device in reserved:
            self._cancel_order(device.iccid)
        return len(reserved)

    # -- device change (rspfed.federation.change) ---------------------------------

    def device_change(
        self,
        caller: Caller,
        new_eid: str,
        *,
        name: str | None = None,
        device_class: DeviceClass | None = None,
    ) -> DeviceChangeOrder:
        """Move the caller's device record to the eUICC ``new_eid``: a new profile's order.

        Signed by the moving device's own key (primary or secondary).  The
        answer's secret (shown once) reads the change with
        :meth:`device_change_status`.  Asking again for the same ``new_eid``
        while the change is ordered or installed gives the same change with a
        new secret (the old one stops working) and the same activation code,
        or a fresh one if the SM-DP+ order failed.  ``name`` and
        ``device_class`` (default: the device's) apply at the switch.

        :class:`StateError` if the device is not active, another change of it
        is open for a different EID, or the new eUICC holds the primary or a
        pending order of the subscription; :class:`UsageError` if ``new_eid``
        is the device's own; :class:`TokenScopeError` if the plan does not
        allow the class (a primary stays a phone).
        """
        return self._changes.request(caller, new_eid, name=name, device_class=device_class)

    def device_change_status(self, change_id: str, secret: str) -> DeviceChange:
        """A device change read with its secret (the new device; the old one after the switch).

        :class:`NotFoundError` if unknown, :class:`AuthorizationError` for a
        wrong secret (compared in constant time).
        """
        return self._changes.status(change_id, secret)

    def device_change_for(self, caller: Caller) -> DeviceChange | None:
        """The caller's device's latest device change (``None`` if it never moved)."""
        return self._changes.latest(caller)

    def cancel_device_change(self, caller: Caller, change_id: str) -> DeviceChange:
        """Cancel an ordered or installed change (the moving device or the primary).

        The pending IMSI is removed from the AuC and the order cancelled at
        the SM-DP+; the old profile stays in service.  :class:`StateError`
        once switched; cancelling a cancelled change returns it.
        """
        return self._changes.cancel(caller, change_id)

    def complete_device_change(self, change_id: str, secret: str) -> DeviceChange:
        """The old device acknowledges its profile is deleted: switched -> completed.

        (The old eUICC's signed delete notification for the old ICCID does
        the same at the next :meth:`sync`.)  :class:`StateError` before the
        switch or after a cancel; idempotent once completed.
        """
        return self._changes.complete(change_id, secret)

    # -- EAP-AKA' (registration and network attach) ----------------------------

    def eap_start(
        self,
        identity: bytes,
        *,
        purpose: EapPurpose,
        eid: str | None = None,
        service: Service | None = None,
        plmn: str | None = None,
    ) -> EapStep:
        """Start EAP-AKA' for a permanent identity: the EAP-Request/AKA-Challenge.

        ``register`` needs the device's ``eid``, which must be the one the
        operator bound the IMSI's profile to.  The AuC refuses unknown, barred
        and removed IMSIs (:class:`~rspfed.network.NetworkRefusedError`).
        An ``attach`` goes through the network ``plmn`` (``MCC || MNC``;
        ``None``: the home network): it must be on air and be the home PLMN
        or a roaming partner (:func:`rspfed.federation.cells.check_attach`:
        ``no-coverage``, ``plmn-not-allowed``); a data bearer opened by the
        attach is metered against it.
        """
        purpose = EapPurpose(purpose)
        imsi = imsi_from_identity(identity)
        self.sync()
        now = self._now()
        visited = ""
        if purpose is EapPurpose.ATTACH:
            subscriber = self._auc.subscriber(imsi)  # an unknown IMSI is refused as such first
            if subscriber.state is SubscriberState.PENDING:
                raise NetworkRefusedError(
                    RefusalReason.PENDING, "the profile is not yet in service (device change)"
                )
            visited = check_attach(self._store, imsi, plmn, now)
        if purpose is EapPurpose.REGISTER:
            if eid is None:
                raise UsageError("registration needs the device's EID")
            _check_eid(eid)
            device = self._store.device_by_imsi(imsi)
            if device is None or device.state is not DeviceState.ACTIVE:
                raise NotFoundError("no active device holds this IMSI")
            if device.eid != eid:
                raise TokenEidMismatchError("this IMSI belongs to another eUICC's profile")
        server = EapAkaPrimeServer(
            identity=identity,
            network_name=self._config.network_name,
            auc=self._eap_auc,
            random=self._rand,
        )
        packet = server.start()
        session = EapSessionRecord(
            id=_b32(self._rand(16)),
            purpose=purpose,
            imsi=imsi,
            eid=eid,
            service=None if service is None else Service(service),
            snapshot=server.snapshot(),
            expires=now + self._config.eap_ttl,
            plmn=visited,
        )
        self._store.put_eap_session(session)
        return EapStep(session.id, packet, done=False)

    def eap_continue(self, session_id: str, packet: bytes) -> EapStep:
        """Feed the device's EAP response; the next packet (and the result when done)."""
        now = self._now()
        session = self._store.eap_session(session_id)
        if session is None or session.expires <= now:
            raise NotFoundError("no such EAP session")
        if session.done:
            raise ReplayError("the EAP exchange is already complete")
        server = EapAkaPrimeServer.restore(session.snapshot, auc=self._eap_auc, random=self._rand)
        try:
            answer = server.receive(packet)
        except RspfedError:
            self._finish(session, server)
            raise
        if server.state is ServerState.FAILURE:
            self._finish(session, server)
            return EapStep(session.id, answer, done=True)
        if server.state is not ServerState.SUCCESS:
            if not self._store.update_eap_session(
                attrs.evolve(session, snapshot=server.snapshot(), version=session.version + 1)
            ):
                raise ReplayError("the EAP exchange moved on meanwhile")
            return EapStep(session.id, answer, done=False)
        if not self._finish(session, server):
            raise ReplayError("the EAP exchange moved on meanwhile")
        if session.purpose is EapPurpose.REGISTER:
            key = server.federation_key
            if key is None:
                raise ProtocolError("registration without AT_RSPFED_FEDERATION_KEY")
            device = self._register(session, key, now)
            return EapStep(session.id, answer, done=True, device=device)
        subscriber = self._auc.subscriber(session.imsi)
        if session.service is not None:
            self._auc.check_service(session.imsi, session.service)
        return EapStep(session.id, answer, done=True, services=subscriber.policy.allowed)

    def _finish(self, session: EapSessionRecord, server: EapAkaPrimeServer) -> bool:
        return self._store.update_eap_session(
            attrs.evolve(
                session, snapshot=server.snapshot(), done=True, version=session.version + 1
            )
        )

    def _register(self, session: EapSessionRecord, point: bytes, now: datetime) -> Device:
        device = self._store.device_by_imsi(session.imsi)
        if device is None or device.state is not DeviceState.ACTIVE or device.eid != session.eid:
            raise StateError("the device is no longer active")
        public = _public_key(point)
        key_id = primary_key_id(public)
        existing = self._store.key(key_id)
        if existing is not None and existing.device_id != device.id:
            raise AuthorizationError("this key is registered to another device")
        with self._store.transaction():
            self._store.retire_keys(device.id)
            self._store.put_key(
                KeyRecord(
                    key_id=key_id,
                    public_key=point,
                    subscription_id=device.subscription_id,
                    device_id=device.id,
                    role=device.role,
                    active=True,
                    registered=now,
                )
            )
            device = attrs.evolve(device, device_key=point, device_key_id=key_id)
            self._store.put_device(device)
            if device.role is DeviceRole.PRIMARY:
                sub = self.subscription(device.subscription_id)
                self._store.put_subscription(
                    attrs.evolve(sub, primary_key=point, primary_key_id=key_id)
                )
        return device

    # -- network ---------------------------------------------------------------

    def cells(self, now: datetime | None = None) -> list[VisibleNetwork]:
        """What a scan of the operator's simulated radio shows at ``now`` (default: the clock)."""
        return radio_environment(self._store).scan(self._now() if now is None else now)

    def check_service(self, imsi: str, service: Service) -> None:
        """Whether the network lets ``imsi`` use ``service`` (NetworkRefusedError if not)."""
        self.sync()
        self._auc.check_service(imsi, Service(service))
