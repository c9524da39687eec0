"""Property test: ES2+ operations and download outcomes against the inventory table.

A hypothesis state machine drives a real :class:`rspfed.smdp.Smdp` (in-memory
store) and a real software eUICC: orders (with or without an EID, a
confirmation code, the release flag), releases, cancellations, and downloads
that complete, stop after GetBoundProfilePackage (a cut link), are cancelled by
the eUICC, or present a wrong confirmation code.  A model predicts each item's
state from :data:`rspfed.smdp.TRANSITIONS` and the attempt limits; after every
step the store must agree with it, and invariants that do not depend on the
table must hold (single-use matchingIds, kept packages only while
``downloaded``, available items carry no order data).
"""

from __future__ import annotations

import os
from pathlib import Path
from tempfile import TemporaryDirectory

import attrs
import pytest
from hypothesis import settings
from hypothesis import strategies as hs
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from rspfed import asn1
from rspfed.asn1 import rsp
from rspfed.errors import FunctionExecutionError
from rspfed.es9p import messages as m
from rspfed.pki.eid import generate_eid
from rspfed.smdp import TRANSITIONS, ItemState, Smdp, Trigger
from tests.smdp.helpers import Lpa, World, make_euicc, make_smdp, make_world

MAX_DOWNLOADS = 3
MAX_CC = 2
CODE = "1234"
OUTCOMES = (
    *["install"] * 4,
    "cut",
    "cut",
    "wrong-cc",
    "endUserRejection",
    "postponed",
    "timeout",
    "pprNotAllowed",
)

_WORLD: list[World] = []


def world() -> World:
    if not _WORLD:
        directory = TemporaryDirectory()
        _WORLD.append(make_world(Path(directory.name) / "pki"))
        _WORLD.append(directory)  # type: ignore[arg-type]  # keep it alive
    return _WORLD[0]


@attrs.define
class Model:
    state: ItemState
    eid: str | None = None
    matching_id: str | None = None
    cc: bool = False
    downloads: int = 0
    cc_attempts: int = 0


def target(trigger: Trigger, state: ItemState) -> ItemState | None:
    return TRANSITIONS.get((trigger, state))


class InventoryMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = TemporaryDirectory()
        w = world()
        self.smdp: Smdp = make_smdp(
            w, max_download_attempts=MAX_DOWNLOADS, max_confirmation_code_attempts=MAX_CC
        )
        self.euicc = make_euicc(w, Path(self.dir.name) / "e")
        self.lpa = Lpa(self.smdp, self.euicc.isdr)
        self.foreign_eid = generate_eid(w.pki.ein, os.urandom)
        self.model: dict[str, Model] = {}
        self.used_mids: set[str] = set()

    def teardown(self) -> None:
        self.euicc.close()
        self.smdp.store.close()
        self.dir.cleanup()

    def pick(self, n: int) -> str:
        keys = sorted(self.model)
        return keys[n % len(keys)]

    def expect_refused(self, iccid: str, call: object) -> None:
        before = self.smdp.item(iccid)
        with pytest.raises(FunctionExecutionError):
            call()  # type: ignore[operator]
        assert self.smdp.item(iccid) == before

    # -- ES2+ ---------------------------------------------------------------------

    @precondition(lambda self: len(self.model) < 6)
    @rule(eid=hs.sampled_from([None, None, "own", "foreign"]))
    def download_order(self, eid: str | None) -> None:
        self._order(eid)

    def _order(self, eid: str | None) -> str:
        value = {None: None, "own": self.euicc.eid, "foreign": self.foreign_eid}[eid]
        iccid = self.smdp.download_order(profile_type="ts48", eid=value)
        model = self.model.setdefault(iccid, Model(ItemState.AVAILABLE))
        assert model.state is ItemState.AVAILABLE
        trigger = Trigger.DOWNLOAD_ORDER if value is None else Trigger.DOWNLOAD_ORDER_EID
        new = target(trigger, model.state)
        assert new is not None
        self.model[iccid] = Model(new, eid=value)
        return iccid

    @precondition(lambda self: self.model)
    @rule(
        n=hs.integers(0, 50),
        release=hs.sampled_from([True, True, False]),
        cc=hs.booleans(),
        prefer=hs.booleans(),
    )
    def confirm_order(self, n: int, release: bool, cc: bool, prefer: bool) -> None:
        ordered = [k for k, v in sorted(self.model.items()) if v.matching_id is None]
        self._confirm(
            ordered[n % len(ordered)] if prefer and ordered else self.pick(n), release, cc
        )

    def _confirm(self, iccid: str, release: bool, cc: bool) -> None:
        model = self.model[iccid]
        trigger = Trigger.CONFIRM_ORDER_RELEASE if release else Trigger.CONFIRM_ORDER
        new = target(trigger, model.state)
        code = CODE if cc else None
        if new is None:
            self.expect_refused(
                iccid,
                lambda: self.smdp.confirm_order(
                    iccid=iccid, release_flag=release, confirmation_code=code
                ),
            )
            return
        order = self.smdp.confirm_order(iccid=iccid, release_flag=release, confirmation_code=code)
        assert order.matching_id not in self.used_mids
        self.used_mids.add(order.matching_id)
        model.state, model.matching_id, model.cc = new, order.matching_id, cc

    @precondition(lambda self: self.model)
    @rule(n=hs.integers(0, 50))
    def release_profile(self, n: int) -> None:
        iccid = self.pick(n)
        model = self.model[iccid]
        new = target(Trigger.RELEASE_PROFILE, model.state)
        if new is None:
            self.expect_refused(iccid, lambda: self.smdp.release_profile(iccid=iccid))
            return
        self.smdp.release_profile(iccid=iccid)
        model.state = new

    @precondition(lambda self: self.model)
    @rule(n=hs.integers(0, 50), available=hs.booleans())
    def cancel_order(self, n: int, available: bool) -> None:
        iccid = self.pick(n)
        model = self.model[iccid]
        indicator = "Available" if available else "Unavailable"
        trigger = Trigger.CANCEL_ORDER_AVAILABLE if available else Trigger.CANCEL_ORDER_UNAVAILABLE
        new = target(trigger, model.state)
        if new is None:
            self.expect_refused(
                iccid,
                lambda: self.smdp.cancel_order(
                    iccid=iccid, final_profile_status_indicator=indicator
                ),
            )
            return
        self.smdp.cancel_order(iccid=iccid, final_profile_status_indicator=indicator)
        self.model[iccid] = Model(new) if available else attrs.evolve(model, state=new)

    # -- ES9+ -----------------------------------------------------------------------

    def eligible(self, model: Model) -> bool:
        """Whether AuthenticateClient accepts the order (else: refused, nothing changes)."""
        if target(Trigger.AUTHENTICATE_CLIENT, model.state) is None:
            return False
        return model.eid in (None, self.euicc.eid)

    def authenticate(self, iccid: str, model: Model) -> m.AuthenticateClientResponse | None:
        """AuthenticateClient as the model predicts; the answer when it is accepted."""
        assert model.matching_id is not None
        if not self.eligible(model):
            self.expect_refused(
                iccid, lambda: self.lpa.authenticate(self.lpa.initiate(), model.matching_id)
            )
            return None
        if model.downloads >= MAX_DOWNLOADS:
            with pytest.raises(FunctionExecutionError):
                self.lpa.authenticate(self.lpa.initiate(), model.matching_id)
            new = target(Trigger.ATTEMPTS_EXCEEDED, model.state)
            assert new is not None
            model.state = new
            return None
        auth = self.lpa.authenticate(self.lpa.initiate(), model.matching_id)
        model.downloads += 1
        model.eid = self.euicc.eid
        return auth

    def candidate(self, n: int, prefer: bool) -> str:
        """An item with a matchingId; with ``prefer`` one the eUICC may download, if any."""
        candidates = sorted(k for k, v in self.model.items() if v.matching_id)
        eligible = [k for k in candidates if self.eligible(self.model[k])]
        if prefer and eligible:
            candidates = eligible
        return candidates[n % len(candidates)]

    @precondition(lambda self: any(v.matching_id for v in self.model.values()))
    @rule(
        n=hs.integers(0, 50),
        outcome=hs.sampled_from(OUTCOMES),
        prefer=hs.booleans(),
    )
    def download(self, n: int, outcome: str, prefer: bool) -> None:
        self._download(self.candidate(n, prefer), outcome)

    def _download(self, iccid: str, outcome: str) -> None:
        model = self.model[iccid]
        auth = self.authenticate(iccid, model)
        if auth is None:
            return
        if outcome == "wrong-cc" and model.cc:
            with pytest.raises(FunctionExecutionError):
                self.lpa.get_bpp(auth, "9999")
            model.cc_attempts += 1
            if model.cc_attempts >= MAX_CC:
                new = target(Trigger.ATTEMPTS_EXCEEDED, model.state)
                assert new is not None
                model.state = new
            return
        if outcome in ("endUserRejection", "postponed", "timeout", "pprNotAllowed"):
            self.cancel_session(auth, model, outcome)
            return
        bpp = self.lpa.get_bpp(auth, CODE if model.cc else None)
        new = target(Trigger.GET_BOUND_PROFILE_PACKAGE, model.state)
        assert new is not None
        model.state = new
        if outcome == "install":
            pir = self.lpa.load(bpp)
            self.lpa.notify(pir)
            new = target(Trigger.INSTALL_SUCCESS, model.state)
            assert new is not None
            model.state = new

    @precondition(lambda self: len(self.model) < 6)
    @rule(outcome=hs.sampled_from(OUTCOMES), cc=hs.booleans(), own=hs.booleans())
    def order_and_download(self, outcome: str, cc: bool, own: bool) -> None:
        """A whole order then a download attempt (the common path, made frequent)."""
        self.download_order("own" if own else None)
        iccid = max(
            self.model,
            key=lambda k: (
                self.model[k].state is ItemState.ALLOCATED
                or self.model[k].state is ItemState.LINKED
            ),
        )
        self.confirm_order(sorted(self.model).index(iccid), True, cc, False)
        candidates = sorted(k for k, v in self.model.items() if v.matching_id)
        self.download(candidates.index(iccid), outcome, False)

    def cancel_session(self, auth: m.AuthenticateClientResponse, model: Model, reason: str) -> None:
        request = asn1.encode(
            rsp.CancelSessionRequest({"transactionId": auth.transaction_id, "reason": reason})
        )
        answer = self.euicc.isdr.handle(request)
        self.smdp.cancel_session(m.CancelSessionRequest(auth.transaction_id, answer))
        trigger = (
            Trigger.SESSION_POSTPONED
            if reason in ("postponed", "timeout")
            else Trigger.SESSION_CANCELLED
        )
        new = target(trigger, model.state)
        assert new is not None
        model.state = new

    # -- invariants -------------------------------------------------------------------

    @invariant()
    def store_agrees_with_the_model(self) -> None:
        items = {i.iccid: i for i in self.smdp.inventory()}
        assert set(items) == set(self.model)
        for iccid, model in self.model.items():
            assert items[iccid].state is model.state, iccid

    @invariant()
    def table_independent_rules(self) -> None:
        mids = [i.matching_id for i in self.smdp.inventory() if i.matching_id]
        assert len(mids) == len(set(mids))
        for item in self.smdp.inventory():
            kept = self.smdp.store.get_binding(item.iccid)
            if kept is not None:
                assert item.state is ItemState.DOWNLOADED
            if item.state is ItemState.AVAILABLE:
                assert item.eid is None
                assert item.matching_id is None
                assert item.cc_hash is None
            if item.state is ItemState.INSTALLED:
                assert item.eid == self.euicc.eid
            if item.state in (ItemState.DOWNLOADED, ItemState.INSTALLED):
                assert item.download_attempts <= MAX_DOWNLOADS


InventoryMachine.TestCase.settings = settings(
    max_examples=max(5, settings().max_examples // 5), stateful_step_count=25
)
test_inventory_machine = InventoryMachine.TestCase
