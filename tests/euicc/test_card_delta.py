"""Card state saved as changed items: card_state_delta / apply_card_delta, snapshot reuse."""

from __future__ import annotations

import functools
import json

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rspfed.errors import StorageError
from rspfed.euicc.euicc import apply_card_delta, card_state_delta
from rspfed.euicc.fs import FileNode, Lcsi
from rspfed.euicc.uicc import Uicc, UiccState
from rspfed.saip.install import install_package
from tests.paths import TS48


@functools.cache
def reloaded_state() -> UiccState:
    """:func:`profile_state` through its JSON form (what the store keeps as the whole state)."""
    return UiccState.from_dict(json.loads(json.dumps(profile_state().to_dict())))


@functools.cache
def profile_state() -> UiccState:
    """A whole TS.48 profile: transparent, linear fixed, cyclic and BER-TLV files, ADFs."""
    return install_package((TS48 / "TS48v2_SAIP2.3_BERTLV.der").read_bytes()).uicc_state()


def nodes(uicc: Uicc) -> list[FileNode]:
    fs = uicc.filesystem
    return [n for root in (fs.mf, *fs.adfs) for n in root.walk()]


# one change to the live card: (file index, kind, data)
changes = st.lists(
    st.tuples(st.integers(0, 10_000), st.sampled_from(["content", "record", "lcsi", "pin", "sqn"]),
              st.binary(min_size=1, max_size=8)),
    min_size=0,
    max_size=8,
)  # fmt: skip


def apply_change(uicc: Uicc, index: int, kind: str, data: bytes) -> None:
    """Change the live card the way APDUs do (in place), without going through APDUs."""
    files = nodes(uicc)
    node = files[index % len(files)]
    if kind == "content" and not node.is_df and not node.structure.is_record and node.content:
        n = min(len(data), len(node.content))
        node.content[:n] = data[:n]
    elif kind == "record" and node.structure.is_record:
        length = node.spec.record_length
        node.records[index % len(node.records)] = (data * length)[:length]
    elif kind == "lcsi":
        node.lcsi = (
            Lcsi.OPERATIONAL_DEACTIVATED
            if node.lcsi is Lcsi.OPERATIONAL_ACTIVATED
            else Lcsi.OPERATIONAL_ACTIVATED
        )
    elif kind in ("pin", "sqn"):
        # through the persistent state: a new state with one PIN counter / SQN changed
        state = uicc.snapshot()
        if kind == "pin" and state.pins:
            pins = list(state.pins)
            i = index % len(pins)
            pins[i] = attrs.evolve(pins[i], tries_left=data[0] % (pins[i].max_tries + 1))
            state = attrs.evolve(state, pins=tuple(pins))
        elif kind == "sqn" and state.aka:
            aka = state.aka[0]
            array = list(aka.sqn_array)
            array[index % len(array)] = data[0]
            new_aka = attrs.evolve(aka, sqn_array=tuple(array))
            state = attrs.evolve(state, aka=(new_aka, *state.aka[1:]))
        uicc.replace_state(state)


@settings(max_examples=25, deadline=None)
@given(changes, changes)
def test_delta_applied_to_the_saved_state_gives_the_new_state(
    first: list[tuple[int, str, bytes]], second: list[tuple[int, str, bytes]]
) -> None:
    base = profile_state()
    uicc = Uicc(base)
    saved = uicc.snapshot()
    assert saved == base
    items: dict[str, bytes] = {}
    for batch in (first, second):  # two saves, the second on top of the first
        for change in batch:
            apply_change(uicc, *change)
        now = uicc.snapshot()
        delta = card_state_delta(saved, now)
        assert delta is not None
        if now == saved:
            assert delta == {}
        items.update(delta)  # what the store keeps: the latest value of each item
        assert apply_card_delta(base, items) == now
        # and through JSON (what the store holds as the whole state)
        assert apply_card_delta(reloaded_state(), items) == now
        saved = now


def test_unchanged_snapshot_reuses_the_file_objects() -> None:
    uicc = Uicc(profile_state())
    first = uicc.snapshot()
    assert uicc.snapshot().fs.mf is first.fs.mf
    target = next(n for n in uicc.filesystem.mf.walk() if not n.is_df and n.content)
    target.content[0] ^= 0xFF
    second = uicc.snapshot()
    assert second != first
    assert second.fs.mf is not first.fs.mf  # the path to the changed file is new
    assert all(a is b for a, b in zip(second.fs.adfs, first.fs.adfs, strict=True))  # the rest not
    assert card_state_delta(first, second) == {
        f"file:3F00/{target.fid:04X}": bytes((int(target.lcsi),)) + bytes(target.content)
    }


def test_structural_differences_need_the_whole_state() -> None:
    base = profile_state()
    fewer_pins = attrs.evolve(base, pins=base.pins[1:])
    assert card_state_delta(base, fewer_pins) is None
    mf = base.fs.mf
    one_file_less = attrs.evolve(mf, children=mf.children[1:])
    assert (
        card_state_delta(base, attrs.evolve(base, fs=attrs.evolve(base.fs, mf=one_file_less)))
        is None
    )


@pytest.mark.parametrize(
    "items",
    [
        {"file:3F00/0001": b"\x05"},  # no such file
        {"pin:77": b"{}"},  # no such PIN
        {"file:3F00/2FE2": b""},  # empty value
        {"file:3F00": b"\x05\x00"},  # content for a DF
        {"file:3F00/2F00": b"\x05\x01"},  # records of the wrong size
        {"file:3F00/2FE2": b"\x42" + bytes(10)},  # unknown life cycle status
    ],
)
def test_bad_items_are_storage_errors(items: dict[str, bytes]) -> None:
    with pytest.raises(StorageError):
        apply_card_delta(profile_state(), items)
