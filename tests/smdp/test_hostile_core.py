"""Hostile input straight into the core: random, truncated and bit-flipped DER at every step.

Whatever arrives, the core raises an ``RspfedError`` (an SGP.22
``FunctionExecutionError`` for ES9+ input) and never anything else, and a
refused request leaves the order where it was.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as hs

from rspfed import asn1
from rspfed.asn1 import rsp
from rspfed.errors import FunctionExecutionError
from rspfed.es9p import messages as m
from rspfed.smdp import ItemState, Smdp
from tests.smdp.helpers import Lpa, World, make_euicc, make_smdp, make_world, pir_ok, state_of


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Smdp, Lpa, World]:
    world = make_world(tmp_path_factory.mktemp("pki") / "pki")
    smdp = make_smdp(world)
    euicc = make_euicc(world, tmp_path_factory.mktemp("e"))
    return smdp, Lpa(smdp, euicc.isdr), world


def mutations() -> hs.SearchStrategy[Callable[[bytes], bytes]]:
    def truncate(n: int) -> Callable[[bytes], bytes]:
        return lambda der: der[: n % max(1, len(der))]

    def flip(n: int, bit: int) -> Callable[[bytes], bytes]:
        def go(der: bytes) -> bytes:
            out = bytearray(der)
            out[n % len(out)] ^= 1 << bit
            return bytes(out)

        return go

    def replace(data: bytes) -> Callable[[bytes], bytes]:
        return lambda der: data

    return hs.one_of(
        hs.builds(truncate, hs.integers(0, 5000)),
        hs.builds(flip, hs.integers(0, 5000), hs.integers(0, 7)),
        hs.builds(replace, hs.binary(max_size=300)),
    )


@settings(max_examples=max(10, settings().max_examples // 2))
@given(mutate=mutations(), step=hs.sampled_from(["auth", "bpp", "pir", "cancel", "info1"]))
def test_mutated_input_is_refused_cleanly(
    setup: tuple[Smdp, Lpa, World], mutate: Callable[[bytes], bytes], step: str
) -> None:
    smdp, lpa, _ = setup
    iccid = smdp.download_order(profile_type="ts48")
    mid = smdp.confirm_order(iccid=iccid).matching_id

    def attempt() -> None:
        if step == "info1":
            info1 = lpa.isdr.handle(bytes.fromhex("BF2000"))
            smdp.initiate_authentication(
                m.InitiateAuthenticationRequest(os.urandom(16), mutate(info1), lpa.address)
            )
            return
        init = lpa.initiate()
        if step == "auth":
            lpa.authenticate(init, mid, tamper=mutate)
            return
        auth = lpa.authenticate(init, mid)
        if step == "bpp":
            lpa.get_bpp(auth, tamper=mutate)
            return
        if step == "cancel":
            answer = lpa.isdr.handle(
                asn1.encode(
                    rsp.CancelSessionRequest(
                        {"transactionId": auth.transaction_id, "reason": "postponed"}
                    )
                )
            )
            smdp.cancel_session(m.CancelSessionRequest(auth.transaction_id, mutate(answer)))
            return
        pir = lpa.load(lpa.get_bpp(auth))
        smdp.handle_notification(m.HandleNotificationRequest(mutate(pir)))

    before = state_of(smdp, iccid)
    try:
        attempt()
    except FunctionExecutionError:
        after = state_of(smdp, iccid)
        # a refusal never advances the order (the PIR step already delivered the BPP)
        assert after in (before, ItemState.DOWNLOADED)
        return
    # the mutation happened to leave a valid message (e.g. a flipped bit in unsigned padding)


def test_unknown_transaction_ids(setup: tuple[Smdp, Lpa, World]) -> None:
    smdp, lpa, _ = setup
    tid = os.urandom(16)
    for call in (
        lambda: smdp.authenticate_client(m.AuthenticateClientRequest(tid, b"\xbf\x38\x00")),
        lambda: smdp.get_bound_profile_package(
            m.GetBoundProfilePackageRequest(tid, b"\xbf\x21\x00")
        ),
        lambda: smdp.cancel_session(m.CancelSessionRequest(tid, b"\xbf\x41\x00")),
    ):
        with pytest.raises(FunctionExecutionError) as info:
            call()
        assert (info.value.subject_code, info.value.reason_code) == ("8.10.1", "3.9")
    # still working afterwards
    iccid = smdp.download_order(profile_type="ts48")
    assert pir_ok(lpa.download(smdp.confirm_order(iccid=iccid).matching_id))
