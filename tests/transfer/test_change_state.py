"""The device-change state rows (``rspfed/transfer/_state.py``) through the connection.

The order (docs/device-change.md section 4): after the hellos the new device
(joiner) sends ``changeRequest``; the old device (offerer) answers
``changeOrder`` or ``refusal``; the new device sends ``changeResult``; after
``switched`` the old device may send ``changeDone``; ``bye`` ends it.  Both
hellos must carry ``deviceChange``.  What the caller may not send raises
``StateError`` and changes nothing; what the peer may not send (injected
here as a well-sealed record, a misbehaving peer) raises ``ProtocolError``
on the receiver, which closes and sends a bye, so both ends are CLOSED.
Checked exhaustively for every change message in every state of the
exchange, and by a hypothesis walk against a model written here.
"""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rspfed.errors import ProtocolError, StateError
from rspfed.transfer import (
    TRANSITIONS,
    Bye,
    ByeReason,
    ByeReceived,
    Capability,
    ChangeDoneReceived,
    ChangeFailure,
    ChangeOrdered,
    ChangeRequested,
    ChangeResult,
    ChangeResultReceived,
    ConnectionState,
    PairingConnection,
    Refusal,
    RefusalReason,
    Refused,
    Side,
    encode_message,
)
from rspfed.transfer.messages import Message
from tests.transfer.change_world import (
    DONE,
    NEW_HELLO,
    NEW_ICCID,
    OLD_HELLO,
    ORDER,
    REQUEST,
    deliver,
    ready,
)

S = ConnectionState
SWITCHED = ChangeResult.switched(NEW_ICCID)
FAILED = ChangeResult.failed(ChangeFailure.DOWNLOAD)
REFUSAL = Refusal(RefusalReason.DENIED)
CHANGE_MESSAGES: list[Message] = [REQUEST, ORDER, SWITCHED, FAILED, DONE, REFUSAL]


def test_the_rows() -> None:
    rows = {
        (S.READY, Side.US, "changeRequest"): S.CHANGE_REQUESTED,
        (S.CHANGE_REQUESTED, Side.THEM, "changeOrder"): S.CHANGE_ORDERED,
        (S.CHANGE_REQUESTED, Side.THEM, "refusal"): S.READY,
        (S.CHANGE_ORDERED, Side.US, "changeResult"): S.CHANGE_RESULT_SENT,
        (S.CHANGE_RESULT_SENT, Side.THEM, "changeDone"): S.READY,
        (S.READY, Side.THEM, "changeRequest"): S.CHANGE_ASKED,
        (S.CHANGE_ASKED, Side.US, "changeOrder"): S.CHANGE_ORDER_SENT,
        (S.CHANGE_ASKED, Side.US, "refusal"): S.READY,
        (S.CHANGE_ORDER_SENT, Side.THEM, "changeResult"): S.CHANGE_RESULT_RECEIVED,
        (S.CHANGE_RESULT_RECEIVED, Side.US, "changeDone"): S.READY,
    }
    for key, target in rows.items():
        assert TRANSITIONS[key] is target
    change_kinds = {"changeRequest", "changeOrder", "changeResult", "changeDone"}
    assert {k: v for k, v in TRANSITIONS.items() if k[2] in change_kinds} == {
        k: v for k, v in rows.items() if k[2] in change_kinds
    }
    change_states = {
        S.CHANGE_REQUESTED,
        S.CHANGE_ORDERED,
        S.CHANGE_RESULT_SENT,
        S.CHANGE_ASKED,
        S.CHANGE_ORDER_SENT,
        S.CHANGE_RESULT_RECEIVED,
    }
    for state in change_states:  # a bye ends the exchange anywhere
        assert TRANSITIONS[(state, Side.US, "bye")] is S.CLOSED
        assert TRANSITIONS[(state, Side.THEM, "bye")] is S.CLOSED


def test_a_whole_change_and_a_second_one_after_a_refusal() -> None:
    old, new = ready()
    new.send(REQUEST)
    assert new.state is S.CHANGE_REQUESTED
    assert deliver(new, old) == [ChangeRequested(REQUEST)]
    assert old.state is S.CHANGE_ASKED
    old.send(REFUSAL)
    assert deliver(old, new) == [Refused(REFUSAL)]
    assert (old.state, new.state) == (S.READY, S.READY)
    new.send(REQUEST)  # asked again (the user changed their mind)
    deliver(new, old)
    old.send(ORDER)
    assert deliver(old, new) == [ChangeOrdered(ORDER)]
    assert (old.state, new.state) == (S.CHANGE_ORDER_SENT, S.CHANGE_ORDERED)
    new.send(SWITCHED)
    assert deliver(new, old) == [ChangeResultReceived(SWITCHED)]
    assert (old.state, new.state) == (S.CHANGE_RESULT_RECEIVED, S.CHANGE_RESULT_SENT)
    old.send(DONE)
    old.send(Bye())
    assert deliver(old, new) == [ChangeDoneReceived(DONE), ByeReceived(Bye())]
    assert (old.state, new.state) == (S.CLOSED, S.CLOSED)


def test_a_failed_change_ends_with_a_bye() -> None:
    old, new = ready()
    new.send(REQUEST)
    deliver(new, old)
    old.send(ORDER)
    deliver(old, new)
    new.send(FAILED)
    assert deliver(new, old) == [ChangeResultReceived(FAILED)]
    _unchanged_after(old, DONE)  # no changeDone after a failure
    old.send(Bye(ByeReason.CANCELLED))
    assert deliver(old, new) == [ByeReceived(Bye(ByeReason.CANCELLED))]
    assert (old.state, new.state) == (S.CLOSED, S.CLOSED)


# -- refusals ---------------------------------------------------------------------------


def _unchanged_after(conn: PairingConnection, message: Message) -> None:
    state = conn.state
    with pytest.raises(StateError):
        conn.send(message)
    assert conn.state is state
    assert conn.data_to_send() == b""


def _inject(sender: PairingConnection, message: Message) -> bytes:
    """A well-sealed record the public API refuses to send (a misbehaving peer)."""
    channel = sender._channel  # white box
    assert channel is not None
    return channel.seal(encode_message(message))


def _events_until_error(conn: PairingConnection) -> None:
    for _ in range(10):
        conn.next_event()


def _refused(
    receiver: PairingConnection, sender: PairingConnection, message: Message, reason: ByeReason
) -> None:
    receiver.receive_data(_inject(sender, message))
    with pytest.raises(ProtocolError):
        _events_until_error(receiver)
    assert receiver.state is S.CLOSED
    sender.receive_data(receiver.data_to_send())
    assert sender.next_event() == ByeReceived(Bye(reason))
    assert sender.state is S.CLOSED


def _at(step: int) -> tuple[PairingConnection, PairingConnection]:
    """(old, new) after ``step`` messages of the switched exchange (0: READY)."""
    old, new = ready()
    script: list[tuple[str, Message]] = [("new", REQUEST), ("old", ORDER), ("new", SWITCHED)]
    for who, message in script[:step]:
        sender, receiver = (new, old) if who == "new" else (old, new)
        sender.send(message)
        deliver(sender, receiver)
    return old, new


ALLOWED = {
    # step -> the one (sender, kind) pairs allowed next (bye aside)
    0: {("new", "changeRequest")},
    1: {("old", "changeOrder"), ("old", "refusal")},
    2: {("new", "changeResult")},
    3: {("old", "changeDone")},
}


def _kind(message: Message) -> str:
    return {
        "ChangeRequest": "changeRequest",
        "ChangeOrder": "changeOrder",
        "ChangeResult": "changeResult",
        "ChangeDone": "changeDone",
        "Refusal": "refusal",
    }[type(message).__name__]


@pytest.mark.parametrize("step", [0, 1, 2, 3])
@pytest.mark.parametrize("who", ["old", "new"])
@pytest.mark.parametrize("message", CHANGE_MESSAGES, ids=lambda m: type(m).__name__)
def test_every_out_of_order_message_is_refused(step: int, who: str, message: Message) -> None:
    if (who, _kind(message)) in ALLOWED[step]:
        return  # the allowed ones are the whole-exchange tests
    old, new = _at(step)
    sender, receiver = (new, old) if who == "new" else (old, new)
    _unchanged_after(sender, message)  # the caller's mistake changes nothing
    # a change request to the new device (it is the joiner) is "unsupported"
    unsupported = who == "old" and isinstance(message, type(REQUEST)) and step == 0
    _refused(
        receiver,
        sender,
        message,
        ByeReason.UNSUPPORTED if unsupported else ByeReason.PROTOCOL_ERROR,
    )


def test_a_change_done_after_a_failure_is_refused() -> None:
    old, new = _at(2)
    new.send(FAILED)
    deliver(new, old)
    _refused(new, old, DONE, ByeReason.PROTOCOL_ERROR)


@pytest.mark.parametrize("missing", ["old", "new", "both"])
def test_both_hellos_must_carry_the_capability(missing: str) -> None:
    without = frozenset({Capability.JOIN, Capability.COMPANION})
    old_hello = attrs.evolve(OLD_HELLO, capabilities=without) if missing != "new" else OLD_HELLO
    new_hello = attrs.evolve(NEW_HELLO, capabilities=without) if missing != "old" else NEW_HELLO
    old, new = ready(old_hello=old_hello, new_hello=new_hello)
    _unchanged_after(new, REQUEST)  # the new device cannot ask
    # a peer that asks anyway is told "unsupported"; both ends close
    _refused(old, new, REQUEST, ByeReason.UNSUPPORTED)


def test_the_old_device_never_asks() -> None:
    old, new = ready()
    _unchanged_after(old, REQUEST)
    _refused(new, old, REQUEST, ByeReason.UNSUPPORTED)


# -- a hypothesis walk against a model ----------------------------------------------------

STEPS = st.lists(
    st.tuples(st.sampled_from(["old", "new"]), st.sampled_from(CHANGE_MESSAGES)), max_size=10
)


def _model(phase: str, who: str, message: Message) -> str | None:
    """The next phase, or None if not allowed (independent of rspfed's table)."""
    kind = _kind(message)
    if phase == "idle" and (who, kind) == ("new", "changeRequest"):
        return "asked"
    if phase == "asked" and who == "old" and kind in ("changeOrder", "refusal"):
        return "ordered" if kind == "changeOrder" else "idle"
    if phase == "ordered" and (who, kind) == ("new", "changeResult"):
        assert isinstance(message, ChangeResult)
        return "switched" if message.ok else "failed"
    if phase == "switched" and (who, kind) == ("old", "changeDone"):
        return "idle"
    return None


@given(STEPS)
def test_random_walks_follow_the_model(steps: list[tuple[str, Message]]) -> None:
    old, new = ready()
    phase = "idle"
    for who, message in steps:
        sender, receiver = (new, old) if who == "new" else (old, new)
        nxt = _model(phase, who, message)
        if nxt is None:
            _unchanged_after(sender, message)
            receiver.receive_data(_inject(sender, message))
            with pytest.raises(ProtocolError):
                _events_until_error(receiver)
            sender.receive_data(receiver.data_to_send())
            event = sender.next_event()
            assert isinstance(event, ByeReceived)
            assert event.message.reason in (ByeReason.PROTOCOL_ERROR, ByeReason.UNSUPPORTED)
            assert (old.state, new.state) == (S.CLOSED, S.CLOSED)
            return
        sender.send(message)
        events = deliver(sender, receiver)
        assert len(events) == 1
        assert getattr(events[0], "message", None) == message
        phase = nxt
        busy = phase != "idle"
        assert (old.state is S.READY) is not busy
        assert (new.state is S.READY) is not busy
    new.send(Bye())
    assert deliver(new, old) == [ByeReceived(Bye())]
    assert (old.state, new.state) == (S.CLOSED, S.CLOSED)
