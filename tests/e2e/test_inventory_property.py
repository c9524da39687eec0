"""Property: random operator and device actions over HTTPS keep the inventory consistent.

A hypothesis state machine drives one running SM-DP+ (HTTPS app from a
thread) with ES2+ over mutual TLS (DownloadOrder, ConfirmOrder, ReleaseProfile,
CancelOrder) and LPA downloads into three eUICCs over APDUs (the right
confirmation code, a wrong one, none; a link cut on every
GetBoundProfilePackage answer).  After every step:

* each ICCID is on at most one eUICC;
* an item is ``installed`` exactly when the eUICC its EID names holds it, and
  every profile an eUICC holds is such an item;
* an ES2+ call either moves the item as SGP.22 says or is refused with an
  SGP.22 code and changes nothing;
* a download that must work (order released or downloaded, EID free or the
  eUICC's, attempts left, the right code) works, and one that must not
  does not, raising an :class:`~rspfed.errors.RspfedError`.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import attrs
import pytest
from aiohttp import web
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from rspfed import es2p
from rspfed.crypto.curves import Curve
from rspfed.errors import FunctionExecutionError, RspfedError, TransportError
from rspfed.es2p.client import requester_of
from rspfed.euicc.euicc import Euicc
from rspfed.lpa import ActivationCode, ApduEs10, download
from rspfed.pki.testpki import TestPki
from rspfed.smdp import InventoryItem, ItemState
from rspfed.smdp.datadir import tls_paths
from tests.e2e.conftest import SmdpServer, iccids_on, make_euicc, settings_for, start_server

CODE = "13579"
EXAMPLES = max(2, settings().max_examples // 10)  # ci: 10, fuzz: 2000
_run_machine: Callable[..., None] = run_state_machine_as_test  # (hypothesis leaves it untyped)


@attrs.define
class Order:
    iccid: str
    code: ActivationCode | None = None
    confirmation_code: str | None = None


def cut_when(flag: dict[str, bool]) -> Any:
    @web.middleware
    async def cut(
        request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        response = await handler(request)
        if flag["on"] and request.path.endswith("getBoundProfilePackage"):
            assert request.transport is not None
            request.transport.abort()
        return response

    return cut


def es2_call(server: SmdpServer, call: Callable[[es2p.Es2Client], Awaitable[Any]]) -> Any:
    files = tls_paths(server.data)

    async def body() -> Any:
        ctx = es2p.client_ssl_context(
            cert=files.operator_cert, key=files.operator_key, ca_file=files.server_ca
        )
        async with es2p.Es2Client(
            f"https://{server.address}",
            requester=requester_of(files.operator_cert),
            ssl_context=ctx,
        ) as es2:
            return await call(es2)

    return asyncio.run(body())


@pytest.mark.slow
def test_inventory_stays_consistent(
    tmp_path: Path, pki: TestPki, servers: list[SmdpServer]
) -> None:
    flag = {"on": False}
    server = start_server(tmp_path / "smdp", pki, middlewares=(cut_when(flag),))
    servers.append(server)
    limit = server.core.config.max_download_attempts
    examples = itertools.count()

    class Machine(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            n = next(examples)
            self.euiccs: list[Euicc] = [
                make_euicc(tmp_path / f"x{n}-{i}.db", pki, curve)
                for i, curve in enumerate((Curve.NIST, Curve.NIST, Curve.BRAINPOOL))
            ]
            self.orders: list[Order] = []

        def teardown(self) -> None:
            for euicc in self.euiccs:
                euicc.close()

        def item(self, order: Order) -> InventoryItem:
            found = server.core.item(order.iccid)
            assert found is not None
            return found

        # -- ES2+ ----------------------------------------------------------------------

        @rule(bound=st.none() | st.integers(0, 2))
        def download_order(self, bound: int | None) -> None:
            eid = None if bound is None else self.euiccs[bound].eid
            iccid = es2_call(server, lambda es2: es2.download_order(profile_type="test", eid=eid))
            item = server.core.item(iccid)
            assert item is not None
            assert item.state is (ItemState.ALLOCATED if eid is None else ItemState.LINKED)
            assert item.eid == eid
            self.orders.append(Order(iccid))

        @precondition(lambda self: self.orders)
        @rule(data=st.data(), with_code=st.booleans(), release=st.booleans())
        def confirm_order(self, data: st.DataObject, with_code: bool, release: bool) -> None:
            order = data.draw(st.sampled_from(self.orders))
            before = self.item(order)
            code = CODE if with_code else None
            try:
                answer = es2_call(
                    server,
                    lambda es2: es2.confirm_order(
                        iccid=order.iccid, confirmation_code=code, release_flag=release
                    ),
                )
            except FunctionExecutionError:
                assert before.state not in (ItemState.ALLOCATED, ItemState.LINKED)
                assert self.item(order).state is before.state
                return
            assert before.state in (ItemState.ALLOCATED, ItemState.LINKED)
            assert self.item(order).state is (
                ItemState.RELEASED if release else ItemState.CONFIRMED
            )
            assert answer.activation_code is not None
            order.code = ActivationCode.parse(answer.activation_code)
            order.confirmation_code = code

        @precondition(lambda self: self.orders)
        @rule(data=st.data())
        def release_profile(self, data: st.DataObject) -> None:
            order = data.draw(st.sampled_from(self.orders))
            before = self.item(order)
            try:
                es2_call(server, lambda es2: es2.release_profile(iccid=order.iccid))
            except FunctionExecutionError:
                assert before.state is not ItemState.CONFIRMED
                assert self.item(order).state is before.state
                return
            assert before.state is ItemState.CONFIRMED
            assert self.item(order).state is ItemState.RELEASED

        @precondition(lambda self: self.orders)
        @rule(data=st.data(), final=st.sampled_from(["Available", "Unavailable"]))
        def cancel_order(self, data: st.DataObject, final: str) -> None:
            order = data.draw(st.sampled_from(self.orders))
            before = self.item(order)
            try:
                es2_call(
                    server,
                    lambda es2: es2.cancel_order(
                        iccid=order.iccid, final_profile_status_indicator=final
                    ),
                )
            except FunctionExecutionError:
                assert before.state in (
                    ItemState.AVAILABLE,
                    ItemState.INSTALLED,
                    ItemState.UNAVAILABLE,
                )
                assert self.item(order).state is before.state
                return
            assert before.state not in (
                ItemState.AVAILABLE,
                ItemState.INSTALLED,
                ItemState.UNAVAILABLE,
            )
            after = self.item(order)
            assert after.state is (
                ItemState.AVAILABLE if final == "Available" else ItemState.UNAVAILABLE
            )
            assert after.matching_id is None
            if final == "Available":
                self.orders.remove(order)  # back in the pool: a later order may take it

        # -- LPA downloads ------------------------------------------------------------------

        @precondition(lambda self: any(o.code is not None for o in self.orders))
        @rule(
            data=st.data(),
            who=st.integers(0, 2),
            code=st.sampled_from(["right", "wrong", "none"]),
            cut=st.booleans(),
        )
        def download(self, data: st.DataObject, who: int, code: str, cut: bool) -> None:
            order = data.draw(st.sampled_from([o for o in self.orders if o.code is not None]))
            assert order.code is not None
            euicc = self.euiccs[who]
            before = self.item(order)
            given = {"right": order.confirmation_code or CODE, "wrong": "0000", "none": None}[code]
            must_work = (
                before.state in (ItemState.RELEASED, ItemState.DOWNLOADED)
                and before.eid in (None, euicc.eid)
                and before.download_attempts < limit
                and (before.cc_hash is None or code == "right")
            )
            held_before = iccids_on(euicc)
            flag["on"] = cut

            async def body() -> str:
                link = ApduEs10(euicc.card)
                try:
                    result = await download(
                        link,
                        order.code,
                        confirmation_code=given,
                        settings=settings_for(euicc),
                        retries=0,
                    )
                    return result.iccid
                finally:
                    link.close()

            error: RspfedError | None = None
            try:
                iccid = asyncio.run(body())
            except RspfedError as exc:
                error = exc
            finally:
                flag["on"] = False
            if error is not None:
                assert not (must_work and not cut), (before, error)
                if must_work:  # the link was cut: the package is bound, kept for later
                    assert isinstance(error, TransportError)
                    assert self.item(order).state is ItemState.DOWNLOADED
                assert iccids_on(euicc) == held_before  # nothing installed
                return
            assert must_work
            assert not cut
            assert iccid == order.iccid
            assert self.item(order).state is ItemState.INSTALLED

        # -- the invariant ---------------------------------------------------------------

        @invariant()
        def consistent(self) -> None:
            held = {e.eid: iccids_on(e) for e in self.euiccs}
            everything = [i for iccids in held.values() for i in iccids]
            assert len(everything) == len(set(everything))  # an ICCID on one eUICC at most
            items = {i.iccid: i for i in server.core.inventory()}
            for eid, iccids in held.items():
                for iccid in iccids:
                    assert items[iccid].state is ItemState.INSTALLED
                    assert items[iccid].eid == eid
            for order in self.orders:
                item = items[order.iccid]
                holders = [eid for eid, iccids in held.items() if order.iccid in iccids]
                if item.state is ItemState.INSTALLED:
                    assert holders == [item.eid]
                else:
                    assert holders == []

    _run_machine(
        Machine,
        settings=settings(max_examples=EXAMPLES, stateful_step_count=8, deadline=None),
    )
