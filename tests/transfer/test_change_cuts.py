"""A device-change exchange cut at every octet offset (issue I item 2, the connection's part).

Over the in-memory stream pair with asyncio tasks on both sides (TCP-reset
semantics: the cut raises ``TransportError``, the driver aborts), and sans-IO
(the bytes stop after N octets, then both streams end).  At every offset:
each side ends CLOSED, with either a clean bye or an ``RspfedError``; what a
side received is a prefix of what the whole exchange delivers (a change
message is released only whole and authentic, never twice); whatever the old
device learned, the new device had sent.  The recovery from such a cut is the
journals' (``rspfed.transfer.change``), not the connection's.
"""

from __future__ import annotations

from functools import cache

import pytest

from rspfed.errors import RspfedError
from rspfed.transfer import (
    ByeReceived,
    ChangeDoneReceived,
    ChangeFailure,
    ChangeOrdered,
    ChangeResultReceived,
    ConnectionState,
)
from tests.transfer.change_world import DONE, ORDER, change, change_over_streams


@cache
def _whole_streams() -> tuple[list[object], list[object], int]:
    old, new, oa, na, total = change_over_streams()
    assert (oa.error, na.error) == (None, None)
    assert (old.state, new.state) == (ConnectionState.CLOSED, ConnectionState.CLOSED)
    return oa.events, na.events, total


def test_whole_exchange_over_streams_one_octet_at_a_time() -> None:
    old, new, oa, na, _ = change_over_streams(max_chunk=1)
    assert (oa.error, na.error) == (None, None)
    assert [e for e in na.events if isinstance(e, ChangeOrdered)] == [ChangeOrdered(ORDER)]
    assert [e for e in na.events if isinstance(e, ChangeDoneReceived)] == [ChangeDoneReceived(DONE)]
    assert isinstance(na.events[-1], ByeReceived)
    assert (old.state, new.state) == (ConnectionState.CLOSED, ConnectionState.CLOSED)


def test_a_failed_result_ends_with_a_bye_and_no_change_done() -> None:
    old, new, oa, na, _ = change_over_streams(failure=ChangeFailure.ENABLE)
    assert (oa.error, na.error) == (None, None)
    assert not any(isinstance(e, ChangeDoneReceived) for e in na.events)
    results = [e for e in oa.events if isinstance(e, ChangeResultReceived)]
    assert [r.message.failure for r in results] == [ChangeFailure.ENABLE]
    assert isinstance(na.events[-1], ByeReceived)
    assert (old.state, new.state) == (ConnectionState.CLOSED, ConnectionState.CLOSED)


def _check_cut(
    n: int,
    old_state: ConnectionState,
    new_state: ConnectionState,
    old_events: list[object],
    new_events: list[object],
    old_error: RspfedError | None,
    new_error: RspfedError | None,
    whole_old: list[object],
    whole_new: list[object],
) -> None:
    assert old_state is ConnectionState.CLOSED, n
    assert new_state is ConnectionState.CLOSED, n
    # the new device ends with the old one's bye, or an error
    assert isinstance(new_error, RspfedError) or isinstance(new_events[-1], ByeReceived), n
    if old_error is not None:
        assert isinstance(old_error, RspfedError), n
    # a prefix of the whole exchange, each change message whole, at most once
    assert new_events == whole_new[: len(new_events)], n
    assert old_events == whole_old[: len(old_events)], n


def test_stream_cut_at_every_octet() -> None:
    whole_old, whole_new, total = _whole_streams()
    assert total > 500
    for n in range(total):
        old, new, oa, na, _ = change_over_streams(cut_after=n)
        assert isinstance(na.error, RspfedError), n  # the cut comes before the last octet
        _check_cut(
            n, old.state, new.state, oa.events, na.events, oa.error, na.error, whole_old, whole_new
        )
        assert old.burnt
        # what the old device learned, the new device had sent
        if any(isinstance(e, ChangeResultReceived) for e in oa.events):
            assert any(isinstance(e, ChangeOrdered) for e in na.events), n


@pytest.mark.parametrize("approve", [True, False])
def test_sans_io_cut_at_every_octet(approve: bool) -> None:
    whole, old_app, new_app = change(approve=approve)
    assert (old_app.error, new_app.error) == (None, None)
    whole_old, whole_new = old_app.events, new_app.events
    for n in range(whole.total + 1):
        r, oa, na = change(approve=approve, cut_at=n)
        _check_cut(
            n,
            r.offerer.state,
            r.joiner.state,
            oa.events,
            na.events,
            oa.error,
            na.error,
            whole_old,
            whole_new,
        )
        if n < whole.total:
            assert na.error is not None, n
        else:
            assert (oa.error, na.error) == (None, None)
