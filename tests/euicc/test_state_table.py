"""The profile transition table itself: complete, coded as SGP.22 codes them, consistent."""

from __future__ import annotations

import pytest
from asn1crypto.core import Integer

from rspfed.asn1 import rsp
from rspfed.euicc import _state as st

RESPONSE_TYPES: dict[st.Operation, type[Integer]] = {
    st.Operation.INSTALL: rsp.ErrorReason,
    st.Operation.ENABLE: rsp.EnableProfileResponse_enableResult,
    st.Operation.DISABLE: rsp.DisableProfileResponse_disableResult,
    st.Operation.DELETE: rsp.DeleteProfileResponse_deleteResult,
    st.Operation.SET_NICKNAME: rsp.SetNicknameResponse_setNicknameResult,
}


def code_name(op: st.Operation, code: int) -> object:
    return RESPONSE_TYPES[op](code).native


def test_every_pair_has_a_cell() -> None:
    assert set(st.TRANSITIONS) == set(KEYS)


KEYS = [(o, s) for o in st.Operation for s in st.ProfileStatus]


@pytest.mark.parametrize("key", KEYS, ids=[f"{o.value}-{s.value}" for o, s in KEYS])
def test_codes_are_the_response_types_codes(key: tuple[st.Operation, st.ProfileStatus]) -> None:
    cell = st.TRANSITIONS[key]
    if cell.allowed:
        assert cell.result == 0
        return
    assert code_name(key[0], cell.result) == cell.result_name


def test_policy_code_is_named_disallowed_by_policy() -> None:
    for op in (st.Operation.ENABLE, st.Operation.DISABLE, st.Operation.DELETE):
        assert code_name(op, st.DISALLOWED_BY_POLICY) == "disallowedByPolicy"
    assert rsp.ErrorReason(st.PPR_NOT_ALLOWED).native == "pprNotAllowed"


def test_absent_profiles_are_only_installed() -> None:
    for op in st.Operation:
        cell = st.lookup(op, st.ProfileStatus.ABSENT)
        assert cell.allowed == (op is st.Operation.INSTALL)


def test_moves_produce_the_matching_event_and_valid_guards() -> None:
    events = {
        "notificationInstall",
        "notificationEnable",
        "notificationDisable",
        "notificationDelete",
    }
    assert rsp.NotificationEvent(events).native == events
    for (op, _status), cell in st.TRANSITIONS.items():
        if cell.event is not None:
            assert cell.event in events
        if cell.guard is not None:
            assert rsp.PprIds({cell.guard}).native == {cell.guard}
        if cell.allowed and cell.target is not _status:
            # every status change is announced
            assert cell.event is not None, op


def test_guards_are_the_sgp22_pprs() -> None:
    assert st.lookup(st.Operation.DISABLE, st.ProfileStatus.ENABLED).guard == "ppr1"
    assert st.lookup(st.Operation.DELETE, st.ProfileStatus.DISABLED).guard == "ppr2"
    assert st.lookup(st.Operation.ENABLE, st.ProfileStatus.DISABLED).guard is None


def test_only_enable_reaches_enabled() -> None:
    for (op, status), cell in st.TRANSITIONS.items():
        if cell.target is st.ProfileStatus.ENABLED and status is not st.ProfileStatus.ENABLED:
            assert op is st.Operation.ENABLE


def test_operator_wildcards() -> None:
    owner = st.OperatorId(bytes.fromhex("21F354"), gid1=b"\x01")
    assert st.operator_matches(st.OperatorId(bytes.fromhex("21F354")), owner)
    assert st.operator_matches(st.OperatorId(bytes.fromhex("EEFEEE")), owner)
    assert st.operator_matches(st.OperatorId(bytes.fromhex("2EF3EE"), gid1=b"\x01"), owner)
    assert not st.operator_matches(st.OperatorId(bytes.fromhex("21F355")), owner)
    assert not st.operator_matches(st.OperatorId(bytes.fromhex("21F354"), gid1=b"\x02"), owner)
    assert not st.operator_matches(st.OperatorId(bytes.fromhex("21F354"), gid2=b"\x02"), owner)
