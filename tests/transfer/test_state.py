"""The pairing state table itself: complete where it must be, closed where it must be."""

from __future__ import annotations

import pytest

from rspfed.errors import StateError
from rspfed.transfer._state import (
    APPLICATION_STATES,
    INPUT_ABORT,
    INPUT_EOF,
    PAIRING_STATES,
    TRANSITIONS,
    ConnectionState,
    Side,
    move,
)
from rspfed.transfer.messages import CODECS

S = ConnectionState
STARTS = (S.AWAIT_OPEN, S.AWAIT_PAKE, S.AWAIT_HANDSHAKE)
APP_KINDS = set(CODECS)


def _reachable(start: ConnectionState) -> set[ConnectionState]:
    seen = {start}
    todo = [start]
    while todo:
        state = todo.pop()
        for (src, _side, _kind), dst in TRANSITIONS.items():
            if src is state and dst not in seen:
                seen.add(dst)
                todo.append(dst)
    return seen


def test_every_state_is_reachable_and_every_start_reaches_ready() -> None:
    reach = set().union(*(_reachable(s) for s in STARTS))
    assert reach == set(ConnectionState)
    for start in STARTS:
        assert S.READY in _reachable(start)
        assert S.CLOSED in _reachable(start)


def test_pairing_inputs_come_only_from_the_peer() -> None:
    for (state, side, kind), _ in TRANSITIONS.items():
        if state in PAIRING_STATES and kind != INPUT_ABORT:
            assert side is Side.THEM
            assert kind not in APP_KINDS


def test_no_application_message_before_the_channel() -> None:
    for state, _side, kind in TRANSITIONS:
        if kind in APP_KINDS:
            assert state in APPLICATION_STATES


def test_abort_from_everywhere_and_bye_from_every_application_state() -> None:
    for state in ConnectionState:
        assert TRANSITIONS[(state, Side.US, INPUT_ABORT)] is S.CLOSED
    for state in APPLICATION_STATES:
        for side in Side:
            assert TRANSITIONS[(state, side, "bye")] is S.CLOSED


def test_closed_is_final() -> None:
    out = {(side, kind) for (state, side, kind) in TRANSITIONS if state is S.CLOSED}
    assert out == {(Side.THEM, INPUT_EOF), (Side.US, INPUT_ABORT)}
    assert all(dst is S.CLOSED for (src, _, _), dst in TRANSITIONS.items() if src is S.CLOSED)


def test_eof_is_clean_only_when_closed() -> None:
    assert [k for k in TRANSITIONS if k[2] == INPUT_EOF] == [(S.CLOSED, Side.THEM, INPUT_EOF)]


def test_hello_is_received_once_and_never_sent() -> None:
    hello = [k for k in TRANSITIONS if k[2] == "hello"]
    assert hello == [(S.AWAIT_HELLO, Side.THEM, "hello")]


def test_join_exchange_is_mirrored() -> None:
    # what we may send in one state is what the peer may send in its mirror state
    mirror = {
        S.READY: S.READY,
        S.JOIN_SENT: S.JOIN_RECEIVED,
        S.JOIN_RECEIVED: S.JOIN_SENT,
        S.GRANT_SENT: S.GRANT_RECEIVED,
        S.GRANT_RECEIVED: S.GRANT_SENT,
        # the companion relay (issue H): phone states mirror the watch's
        S.COMPANION_REQUESTED: S.COMPANION_INFO_DUE,
        S.COMPANION_INFO_DUE: S.COMPANION_REQUESTED,
        S.RELAY_READY: S.RELAY_SERVING,
        S.RELAY_SERVING: S.RELAY_READY,
        S.ES10_SENT: S.ES10_RECEIVED,
        S.ES10_RECEIVED: S.ES10_SENT,
        # device change (issue I): the new device's states mirror the old device's
        S.CHANGE_REQUESTED: S.CHANGE_ASKED,
        S.CHANGE_ASKED: S.CHANGE_REQUESTED,
        S.CHANGE_ORDERED: S.CHANGE_ORDER_SENT,
        S.CHANGE_ORDER_SENT: S.CHANGE_ORDERED,
        S.CHANGE_RESULT_SENT: S.CHANGE_RESULT_RECEIVED,
        S.CHANGE_RESULT_RECEIVED: S.CHANGE_RESULT_SENT,
    }
    other = {Side.US: Side.THEM, Side.THEM: Side.US}
    for (state, side, kind), dst in TRANSITIONS.items():
        if state in mirror and kind in APP_KINDS:
            assert TRANSITIONS[(mirror[state], other[side], kind)] is mirror.get(dst, dst)


def test_token_and_result_only_in_order() -> None:
    grants = {k for k in TRANSITIONS if k[2] == "tokenGrant"}
    assert grants == {
        (S.JOIN_RECEIVED, Side.US, "tokenGrant"),
        (S.JOIN_SENT, Side.THEM, "tokenGrant"),
    }
    results = {k for k in TRANSITIONS if k[2] == "joinResult"}
    assert results == {
        (S.GRANT_RECEIVED, Side.US, "joinResult"),
        (S.GRANT_SENT, Side.THEM, "joinResult"),
    }


def test_move() -> None:
    assert move(S.READY, Side.US, "joinRequest") is S.JOIN_SENT
    with pytest.raises(StateError, match="tokenGrant"):
        move(S.READY, Side.US, "tokenGrant")
    with pytest.raises(StateError):
        move(S.CLOSED, Side.THEM, "hello")
