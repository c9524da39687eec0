"""The operator core end to end, in-process, with real eUICCs, SM-DP+ and AuC.

The story: a subscription, the phone downloads and registers its federation
key over EAP-AKA', it signs tokens; a laptop (data only) and a tablet redeem
them, download their own linked profiles and attach; the network enforces
the class's services; a device is removed and can no longer attach; it can
be re-added with a new token.  Then the refusals, each with its own error.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from rspfed.errors import (
    AuthorizationError,
    DeviceLimitError,
    NotFoundError,
    ReplayError,
    SignatureError,
    StateError,
    TokenConsumedError,
    TokenEidMismatchError,
    TokenExpiredError,
    TokenNotYetValidError,
    TokenRevokedError,
    TokenScopeError,
)
from rspfed.federation import DeviceClass, Service
from rspfed.federation.signing import sign_request
from rspfed.federation.types import (
    Caller,
    DeviceRole,
    DeviceState,
    EapPurpose,
    JoinState,
    Plan,
    TokenState,
)
from rspfed.network import NetworkRefusedError, RefusalReason
from rspfed.smdp import ItemState
from tests.federation.world import GB, PLAN, OperatorWorld, Phone, make_operator_world
from tests.smdp.helpers import make_world


@pytest.fixture(scope="module")
def shared_world(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    return make_world(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def ow(tmp_path: Path, shared_world) -> Iterator[OperatorWorld]:  # type: ignore[no-untyped-def]
    w = make_operator_world(tmp_path, shared_world)
    yield w
    w.close()


def primary_of(ow: OperatorWorld, plan: Plan = PLAN) -> tuple[str, Phone, Caller]:
    """A subscription whose phone has downloaded, enabled and registered."""
    sub, enrolment = ow.operator.subscribe("ts48", plan)
    phone = ow.euicc()
    ow.download(phone, enrolment.activation_code)
    device = ow.register(phone)
    assert device.role is DeviceRole.PRIMARY
    assert device.eid == phone.eid
    assert phone.key is not None
    header = sign_request(
        phone.key, method="POST", path="/x", body=b"", now=ow.clock(), nonce=os.urandom(16)
    )
    caller = ow.operator.authenticate_request(header, "POST", "/x", b"")
    return sub.id, phone, caller


def caller_for(ow: OperatorWorld, device: Phone) -> Caller:
    assert device.key is not None
    header = sign_request(
        device.key, method="POST", path="/y", body=b"{}", now=ow.clock(), nonce=os.urandom(16)
    )
    return ow.operator.authenticate_request(header, "POST", "/y", b"{}")


def test_phone_laptop_tablet_share_a_subscription(ow: OperatorWorld) -> None:
    sub_id, phone, primary = primary_of(ow)
    assert ow.operator.subscription(sub_id).primary_key == phone.point
    assert ow.attach(phone, Service.VOICE) >= {Service.DATA, Service.VOICE}

    laptop, tablet = ow.euicc(), ow.euicc()
    laptop_token = ow.token(phone, sub_id, laptop.eid, DeviceClass.LAPTOP)
    enrolment = ow.operator.redeem(laptop_token, laptop.eid)
    item = ow.smdp.item(enrolment.iccid)
    assert item is not None
    assert item.eid == laptop.eid
    assert item.state is ItemState.RELEASED
    # the same token by the same EID before the download: the same order again
    assert ow.operator.redeem(laptop_token, laptop.eid) == enrolment
    ow.download(laptop, enrolment.activation_code)
    laptop_iccid = enrolment.iccid

    tablet_token = ow.token(
        phone, sub_id, tablet.eid, DeviceClass.TABLET, frozenset({Service.DATA, Service.VOICE})
    )
    ow.download(tablet, ow.operator.redeem(tablet_token, tablet.eid).activation_code)

    devices = {d.device_class: d for d in ow.operator.devices(primary)}
    assert set(devices) == {DeviceClass.PHONE, DeviceClass.LAPTOP, DeviceClass.TABLET}
    assert all(d.state is DeviceState.ACTIVE for d in devices.values())
    assert devices[DeviceClass.LAPTOP].token_consumed
    assert len({d.iccid for d in devices.values()}) == 3  # never a cloned profile
    assert len({d.imsi for d in devices.values()}) == 3
    with pytest.raises(TokenConsumedError):
        ow.operator.redeem(laptop_token, laptop.eid)

    # the network: the laptop gets data, not voice; the tablet both
    assert ow.attach(laptop, Service.DATA) == frozenset({Service.DATA})
    with pytest.raises(NetworkRefusedError) as refused:
        ow.attach(laptop, Service.VOICE)
    assert refused.value.reason is RefusalReason.SERVICE_NOT_ALLOWED
    assert ow.attach(tablet, Service.VOICE) == frozenset({Service.DATA, Service.VOICE})

    # the laptop registers its own device key with its own USIM
    laptop_device = ow.register(laptop)
    assert laptop_device.role is DeviceRole.SECONDARY
    laptop_caller = caller_for(ow, laptop)
    assert ow.operator.status(laptop_caller).iccid == laptop_iccid
    with pytest.raises(AuthorizationError):
        ow.operator.devices(laptop_caller)

    # removal: slot freed, IMSI refused, the device learns it at its next sync
    removed = ow.operator.remove(primary, laptop_device.id)
    assert removed.state is DeviceState.REMOVED
    with pytest.raises(NetworkRefusedError) as refused:
        ow.attach(laptop)
    assert refused.value.reason is RefusalReason.REMOVED
    # at its next sync the laptop learns it was removed (and which profile to delete)
    told = ow.operator.status(caller_for(ow, laptop))
    assert told.state is DeviceState.REMOVED
    assert told.iccid == laptop_iccid
    with pytest.raises(AuthorizationError):
        ow.operator.remove(caller_for(ow, laptop), laptop_device.id)

    # re-added later with a new token: a new profile, a new IMSI
    again = ow.operator.redeem(ow.token(phone, sub_id, laptop.eid, DeviceClass.LAPTOP), laptop.eid)
    assert again.iccid != laptop_iccid
    ow.download(laptop, again.activation_code)
    assert ow.attach(laptop, Service.DATA) == frozenset({Service.DATA})


def test_device_limit_and_lapsed_orders_free_the_slot(ow: OperatorWorld) -> None:
    sub_id, phone, _ = primary_of(ow, Plan(pool_bytes=GB, device_limit=2))
    a, b = ow.euicc(), ow.euicc()
    first = ow.operator.redeem(ow.token(phone, sub_id, a.eid, DeviceClass.TABLET), a.eid)
    token_b = ow.token(phone, sub_id, b.eid, DeviceClass.TABLET)
    with pytest.raises(DeviceLimitError):
        ow.operator.redeem(token_b, b.eid)
    # a photographed token: redeemed, never downloaded; the order lapses, the slot frees
    ow.clock.advance(ow.operator.config.order_ttl + timedelta(seconds=1))
    ow.operator.sync()
    item = ow.smdp.item(first.iccid)
    assert item is not None
    assert item.state is ItemState.AVAILABLE
    token_b = ow.token(phone, sub_id, b.eid, DeviceClass.TABLET)
    enrolment = ow.operator.redeem(token_b, b.eid)
    ow.download(b, enrolment.activation_code)
    ow.operator.sync()  # reconciliation learns the authentication from the SM-DP+
    record = ow.operator.store.token(ow_token_id(token_b))
    assert record is not None
    assert record.state is TokenState.CONSUMED


def ow_token_id(token: bytes) -> bytes:
    from rspfed.federation import parse_token

    return parse_token(token).token_id


def test_token_refusals(ow: OperatorWorld) -> None:
    sub_id, phone, primary = primary_of(ow)
    laptop, other = ow.euicc(), ow.euicc()
    good = ow.token(phone, sub_id, laptop.eid, DeviceClass.LAPTOP)
    with pytest.raises(TokenEidMismatchError):
        ow.operator.redeem(good, other.eid)
    forged = bytearray(good)
    forged[-3] ^= 1
    with pytest.raises(SignatureError):
        ow.operator.redeem(bytes(forged), laptop.eid)
    with pytest.raises(TokenScopeError):  # a laptop token asking for voice
        ow.operator.redeem(
            ow.token(phone, sub_id, laptop.eid, DeviceClass.LAPTOP, frozenset({Service.VOICE})),
            laptop.eid,
        )
    with pytest.raises(TokenScopeError):
        ow.operator.redeem(
            ow.token(phone, sub_id, laptop.eid, DeviceClass.LAPTOP, quota=100 * GB), laptop.eid
        )
    expired = ow.token(phone, sub_id, laptop.eid, DeviceClass.LAPTOP, ttl=timedelta(seconds=60))
    ow.clock.advance(timedelta(seconds=61))
    with pytest.raises(TokenExpiredError):
        ow.operator.redeem(expired, laptop.eid)
    ow.clock.advance(timedelta(seconds=-120))
    with pytest.raises(TokenNotYetValidError):
        ow.operator.redeem(good, laptop.eid)
    ow.clock.advance(timedelta(seconds=59))
    # a key that is not the registered one
    stranger = Phone(phone.euicc)
    from cryptography.hazmat.primitives.asymmetric import ec

    stranger.key = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(SignatureError):
        ow.operator.redeem(ow.token(stranger, sub_id, laptop.eid, DeviceClass.LAPTOP), laptop.eid)
    # revocation of one token, then of all outstanding ones, then rotation
    one = ow.token(phone, sub_id, laptop.eid, DeviceClass.LAPTOP)
    ow.operator.revoke(caller_for(ow, phone), ow_token_id(one))
    with pytest.raises(TokenRevokedError):
        ow.operator.redeem(one, laptop.eid)
    assert ow.operator.revoke(primary, None) == 0
    with pytest.raises(TokenRevokedError):
        ow.operator.redeem(good, laptop.eid)
    ow.clock.advance(timedelta(seconds=2))
    old_key_token = ow.token(phone, sub_id, laptop.eid, DeviceClass.LAPTOP)
    ow.register(phone)  # key rotation
    with pytest.raises(TokenRevokedError):
        ow.operator.redeem(old_key_token, laptop.eid)
    fresh = ow.operator.redeem(ow.token(phone, sub_id, laptop.eid, DeviceClass.LAPTOP), laptop.eid)
    assert fresh.iccid
    # nothing allocated by any refusal: one slot for the phone, one for the laptop
    assert ow.operator.store.slots_used(sub_id) == 2


def test_signed_requests_replay_and_roles(ow: OperatorWorld) -> None:
    _, phone, _ = primary_of(ow)
    assert phone.key is not None
    header = sign_request(
        phone.key, method="POST", path="/p", body=b"b", now=ow.clock(), nonce=bytes(16)
    )
    ow.operator.authenticate_request(header, "POST", "/p", b"b")
    with pytest.raises(ReplayError):
        ow.operator.authenticate_request(header, "POST", "/p", b"b")
    header2 = sign_request(
        phone.key, method="POST", path="/p", body=b"b", now=ow.clock(), nonce=bytes(15) + b"1"
    )
    with pytest.raises(SignatureError):
        ow.operator.authenticate_request(header2, "POST", "/p", b"tampered")


def test_registration_refusals(ow: OperatorWorld) -> None:
    sub_id, phone, primary = primary_of(ow)
    laptop = ow.euicc()
    ow.download(
        laptop,
        ow.operator.redeem(
            ow.token(phone, sub_id, laptop.eid, DeviceClass.LAPTOP), laptop.eid
        ).activation_code,
    )
    # the laptop's USIM claiming the phone's EID: refused before any challenge
    with pytest.raises(TokenEidMismatchError):
        ow.operator.eap_start(ow.identity(laptop), purpose=EapPurpose.REGISTER, eid=phone.eid)
    # a replayed EAP answer: the completed exchange refuses it
    first = ow.operator.eap_start(ow.identity(laptop), purpose=EapPurpose.ATTACH)
    from rspfed.eap import EapAkaPrimePeer
    from rspfed.network.usim import eap_usim

    peer = EapAkaPrimePeer(
        identity=ow.identity(laptop),
        usim=eap_usim(laptop.euicc.card),
        network_name=ow.operator.config.network_name,
    )
    answer = peer.receive(first.packet)
    assert answer is not None
    done = ow.operator.eap_continue(first.session_id, answer)
    assert done.done
    assert done.services == frozenset({Service.DATA})
    with pytest.raises(ReplayError):
        ow.operator.eap_continue(first.session_id, answer)
    # the same answer in a new exchange (new RAND) fails its MAC
    second = ow.operator.eap_start(ow.identity(laptop), purpose=EapPurpose.ATTACH)
    from rspfed.errors import IntegrityError, ProtocolError

    with pytest.raises((IntegrityError, ProtocolError)):
        ow.operator.eap_continue(second.session_id, answer)
    with pytest.raises(NotFoundError):
        ow.operator.eap_continue("nope", answer)
    # the primary cannot be removed; another subscription's device is not found
    phone_id = next(d.id for d in ow.operator.devices(primary) if d.role is DeviceRole.PRIMARY)
    with pytest.raises(StateError):
        ow.operator.remove(primary, phone_id)
    with pytest.raises(NotFoundError):
        ow.operator.remove(primary, "dnosuchdevice")


def test_cloud_join(ow: OperatorWorld) -> None:
    sub_id, phone, primary = primary_of(ow)
    watch = ow.euicc()
    ticket = ow.operator.join(sub_id, watch.eid, DeviceClass.HOTSPOT, "car hotspot")
    assert ow.operator.collect(ticket.request.id, ticket.secret) is None
    with pytest.raises(AuthorizationError):
        ow.operator.collect(ticket.request.id, "wrong")
    pending = ow.operator.requests(primary)
    assert [r.id for r in pending] == [ticket.request.id]
    assert pending[0].state is JoinState.PENDING
    with pytest.raises(TokenScopeError):  # the token must name the requested class
        ow.operator.approve(
            caller_for(ow, phone),
            ticket.request.id,
            ow.token(phone, sub_id, watch.eid, DeviceClass.LAPTOP),
        )
    with pytest.raises(TokenEidMismatchError):
        ow.operator.approve(
            caller_for(ow, phone),
            ticket.request.id,
            ow.token(phone, sub_id, phone.eid, DeviceClass.HOTSPOT),
        )
    token = ow.token(
        phone, sub_id, watch.eid, DeviceClass.HOTSPOT, frozenset({Service.DATA, Service.TETHERING})
    )
    ow.operator.approve(caller_for(ow, phone), ticket.request.id, token)
    enrolment = ow.operator.collect(ticket.request.id, ticket.secret)
    assert enrolment is not None
    assert ow.operator.collect(ticket.request.id, ticket.secret) == enrolment
    ow.download(watch, enrolment.activation_code)
    assert ow.attach(watch, Service.TETHERING) == frozenset({Service.DATA, Service.TETHERING})
    assert ow.operator.requests(caller_for(ow, phone)) == []


def test_a_failed_primary_order_is_placed_again(ow: OperatorWorld) -> None:
    sub, enrolment = ow.operator.subscribe("ts48", PLAN)
    # the operator's admin cancels the order at the SM-DP+ (any final failure would do)
    ow.smdp.cancel_order(iccid=enrolment.iccid, final_profile_status_indicator="Unavailable")
    again = ow.operator.primary_enrolment(sub.id)
    assert again.device_id == enrolment.device_id
    assert again.iccid != enrolment.iccid
    assert again.activation_code != enrolment.activation_code
    phone = ow.euicc()
    ow.download(phone, again.activation_code)
    assert ow.register(phone).id == enrolment.device_id
    with pytest.raises(NotFoundError):
        ow.operator.primary_enrolment(sub.id)


def test_a_joined_device_keeps_its_name(ow: OperatorWorld) -> None:
    sub_id, phone, primary = primary_of(ow)
    tablet = ow.euicc()
    ticket = ow.operator.join(sub_id, tablet.eid, DeviceClass.TABLET, "kitchen")
    ow.operator.approve(
        primary, ticket.request.id, ow.token(phone, sub_id, tablet.eid, DeviceClass.TABLET)
    )
    enrolment = ow.operator.collect(ticket.request.id, ticket.secret)
    assert enrolment is not None
    names = {d.id: d.name for d in ow.operator.devices(caller_for(ow, phone))}
    assert names[enrolment.device_id] == "kitchen"
