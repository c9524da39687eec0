"""The operator's simulated radio over real HTTPS on loopback, with a real software eUICC.

One story: an operator with a home cell, a roaming partner and a stranger on
air; a phone downloads a profile the operator made (its partner in
EF.OPLMNwAcT, EF.HPPLMN set), reads its PLMN lists over APDUs, scans, selects;
attaches through the partner (metered against the partner's PLMN in the
ledger), is refused by the stranger (plmn-not-allowed, written to EF.FPLMN)
and by a PLMN off air (no-coverage); the home cell goes off air while the
server runs and the next attach sees it.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from rspfed.federation import cells as radio
from rspfed.federation.client import OperatorClient, scan
from rspfed.federation.datadir import open_operator_store
from rspfed.federation.http import POOL_KEY
from rspfed.federation.types import Plan
from rspfed.network import NetworkRefusedError, RefusalReason
from rspfed.network.radio import Rat, VisibleNetwork
from rspfed.network.selection import (
    NetworkSelected,
    NetworkSelector,
    PlmnForbidden,
    PriorityClass,
    read_plmn_lists,
    select_network,
    write_fplmn,
)
from rspfed.pki.testpki import TestPki
from tests.federation_http.conftest import (
    download_and_enable,
    make_euicc,
    make_operator_dir,
    reserve_port,
    running,
    tls_for,
    usim_of,
)

MB = 1 << 20
PLAN = Plan(pool_bytes=1000 * MB, device_limit=2)
HOME, PARTNER, STRANGER = "00101", "20801", "20820"


def test_radio_over_https(tmp_path: Path, pki: TestPki) -> None:
    directory = make_operator_dir(tmp_path, pki)
    now = datetime.now(UTC) - timedelta(seconds=1)
    store = open_operator_store(directory.data)
    try:
        radio.set_cell(store, HOME, Rat.EUTRAN, -104, now=now, country="FR", name="Home")
        radio.set_cell(store, PARTNER, Rat.EUTRAN, -70, now=now, country="FR", name="Partner")
        radio.set_cell(store, PARTNER, Rat.UTRAN, -90, now=now, country="FR", name="Partner")
        radio.set_cell(store, STRANGER, Rat.NGRAN, -60, now=now, country="FR", name="Stranger")
        assert radio.add_partner(store, PARTNER, now=now)
        radio.set_hpplmn_period(store, timedelta(minutes=12), off=False)
    finally:
        store.close()
    phone = make_euicc(tmp_path, pki, "phone")

    async def story() -> None:
        async with running(directory) as server:
            sub, enrolment = server.operator.subscribe("ts48", PLAN)
            await download_and_enable(phone, enrolment.activation_code)

            # the profile the operator made carries its partner and search period
            lists = read_plmn_lists(phone.card)
            assert lists.hplmn == HOME
            assert lists.operator == ((PARTNER, frozenset(Rat)),)
            assert lists.hpplmn_period == timedelta(minutes=12)
            assert lists.forbidden == ()
            assert lists.ehplmn == ()
            assert lists.user == ()

            async with OperatorClient(server.url, ssl_context=tls_for(phone)) as op:
                visible = await op.cells()
                assert [(v.plmn, v.rat) for v in visible] == [
                    (STRANGER, Rat.NGRAN),
                    (PARTNER, Rat.EUTRAN),
                    (PARTNER, Rat.UTRAN),
                    (HOME, Rat.EUTRAN),
                ]
                assert visible[1] == VisibleNetwork(PARTNER, Rat.EUTRAN, -70, "FR", "Partner")
                assert await scan([op, op]) == visible
                # an operator out of reach shows nothing, as a network out of range
                gone = reserve_port()
                dead_url = f"https://localhost:{gone.getsockname()[1]}"
                gone.close()
                async with OperatorClient(dead_url, ssl_context=tls_for(phone)) as dead:
                    assert await scan([dead, op]) == visible
                    assert await scan([dead]) == []
                chosen = select_network(lists, visible)  # a weak home beats a strong partner
                assert chosen is not None
                assert (chosen.network.plmn, chosen.priority, chosen.roaming) == (
                    HOME,
                    PriorityClass.HPLMN,
                    False,
                )

                # refusals: not a partner (simulated here or not); off air below
                with pytest.raises(NetworkRefusedError) as refused:
                    await op.attach(**usim_of(phone), plmn="90170")
                assert refused.value.reason is RefusalReason.ROAMING_NOT_ALLOWED
                with pytest.raises(NetworkRefusedError) as refused:
                    await op.attach(**usim_of(phone), plmn=STRANGER)
                assert refused.value.reason is RefusalReason.ROAMING_NOT_ALLOWED

                # the selector forbids the stranger and the card remembers it (EF.FPLMN)
                selector = NetworkSelector(lists)
                selector.on_scan(visible, datetime.now(UTC))
                events = selector.on_refused(
                    STRANGER, RefusalReason.ROAMING_NOT_ALLOWED, datetime.now(UTC)
                )
                forbidden = next(e for e in events if isinstance(e, PlmnForbidden))
                assert write_fplmn(phone.card, forbidden.forbidden)
                assert read_plmn_lists(phone.card).forbidden == (STRANGER,)

                # home and partner attach; data metered against the visited PLMN
                assert await op.attach(**usim_of(phone), plmn=HOME)
                assert await op.attach(**usim_of(phone), plmn=PARTNER)
                roaming = await op.attach_data(**usim_of(phone), plmn=PARTNER)
                assert (await op.use(roaming, 5 * MB)).carried == 5 * MB
                home = await op.attach_data(**usim_of(phone))
                assert (await op.use(home, 2 * MB)).carried == 2 * MB
                view = server.app[POOL_KEY].view(sub.id)
                assert dict(view.by_plmn) == {PARTNER: 5 * MB, "": 2 * MB}
                assert view.pool_used == 7 * MB

                # the home cell goes off air while the server runs
                side = open_operator_store(directory.data)
                try:
                    radio.set_off(side, HOME, None, now=datetime.now(UTC))
                finally:
                    side.close()
                for plmn in (None, HOME):
                    with pytest.raises(NetworkRefusedError) as refused:
                        await op.attach(**usim_of(phone), plmn=plmn)
                    assert refused.value.reason is RefusalReason.NO_COVERAGE
                # another operator's subscriber is unknown here, whatever the PLMN
                with pytest.raises(NetworkRefusedError) as refused:
                    await op.attach(**usim_of(phone) | {"imsi": "001019999999999"}, plmn=HOME)
                assert refused.value.reason is RefusalReason.UNKNOWN_SUBSCRIBER
                visible = await op.cells()
                assert HOME not in {v.plmn for v in visible}
                events = selector.on_scan(visible, datetime.now(UTC))
                (selected,) = [e for e in events if isinstance(e, NetworkSelected)]
                assert selected.selection.network.plmn == PARTNER
                assert selected.selection.priority is PriorityClass.OPERATOR
                assert selected.selection.roaming
                assert selected.country == "FR"
                assert await op.attach(**usim_of(phone), plmn=PARTNER)

    asyncio.run(story())
