"""Behaviour of the profile state machine (rspfed.euicc._state) on concrete scenarios."""

from __future__ import annotations

import attrs

from rspfed.euicc import _state as st

ALL_EVENTS = frozenset(
    {"notificationInstall", "notificationEnable", "notificationDisable", "notificationDelete"}
)
OWNER = st.OperatorId(bytes.fromhex("00F110"))


def signer(seq: int, event: str, address: str, iccid: bytes | None) -> bytes:
    return b"%d|%s|%s|%s" % (seq, event.encode(), address.encode(), (iccid or b"").hex().encode())


def profile(
    n: int,
    ppr: frozenset[str] = frozenset(),
    events: frozenset[str] = ALL_EVENTS,
    profile_class: int = 2,
) -> st.Profile:
    return st.Profile(
        iccid=bytes([0x98, 0x10, n]) + bytes(7),
        isdp_aid=b"",
        notification_config=(st.NotificationConfig(events, f"smdp{n}.example"),),
        profile_owner=OWNER,
        ppr=ppr,
        profile_class=profile_class,
    )


def installed(state: st.EuiccState, p: st.Profile) -> st.EuiccState:
    p = attrs.evolve(p, isdp_aid=st.next_isdp_aid(state))
    out = st.install(state, p, address="smdp.example", pending=b"PIR")
    assert out.ok, out
    return out.state


def ref(p: st.Profile) -> st.ProfileRef:
    return st.ProfileRef(iccid=p.iccid)


RAT_ALL = (st.RatRule(frozenset({"ppr1", "ppr2"}), (st.OperatorId(bytes.fromhex("EEEEEE")),)),)


def test_install_enable_switch_disable_delete_with_notifications() -> None:
    a, b = profile(1), profile(2)
    s = installed(installed(st.EuiccState(), a), b)
    assert [n.event for n in s.notifications] == ["notificationInstall"] * 2
    assert len({p.isdp_aid for p in s.profiles}) == 2
    s = st.enable(s, ref(a), signer).state
    assert s.enabled is not None
    assert s.enabled.iccid == a.iccid
    out = st.enable(s, ref(b), signer)
    assert out.ok
    s = out.state
    assert s.enabled is not None
    assert s.enabled.iccid == b.iccid
    assert [(n.event, n.iccid) for n in s.notifications[-2:]] == [
        ("notificationDisable", a.iccid),
        ("notificationEnable", b.iccid),
    ]
    assert [n.seq_number for n in s.notifications] == [1, 2, 3, 4, 5]
    assert st.delete(s, ref(b), signer).result_name == "profileNotInDisabledState"
    s = st.disable(s, ref(b), signer).state
    out = st.delete(s, ref(b), signer)
    assert out.ok
    assert out.state.find(ref(b)) is None
    assert out.state.notifications[-1].event == "notificationDelete"
    assert out.state.notifications[-1].address == "smdp2.example"


def test_refusals_leave_state_unchanged() -> None:
    a = profile(1)
    s = installed(st.EuiccState(), a)
    missing = st.ProfileRef(iccid=bytes(10))
    for fn, name in (
        (st.enable, "iccidOrAidNotFound"),
        (st.disable, "iccidOrAidNotFound"),
        (st.delete, "iccidOrAidNotFound"),
    ):
        out = fn(s, missing, signer)
        assert (out.result, out.result_name, out.state) == (1, name, s)
    out = st.disable(s, ref(a), signer)
    assert (out.result, out.result_name, out.state) == (2, "profileNotInEnabledState", s)
    s2 = st.enable(s, ref(a), signer).state
    out = st.enable(s2, ref(a), signer)
    assert (out.result, out.result_name, out.state) == (2, "profileNotInDisabledState", s2)
    assert st.set_nickname(s, bytes(10), "x").result_name == "iccidNotFound"
    aid_ref = st.ProfileRef(isdp_aid=s.profiles[0].isdp_aid)
    assert st.enable(s, aid_ref, signer).ok


def test_ppr1_blocks_disable_and_switch_ppr2_blocks_delete() -> None:
    a = profile(1, ppr=frozenset({"ppr1", "ppr2"}))
    b = profile(2)
    s = st.EuiccState(rat=RAT_ALL)
    s = installed(installed(s, a), b)
    s = st.enable(s, ref(a), signer).state
    for out in (st.disable(s, ref(a), signer), st.enable(s, ref(b), signer)):
        assert (out.result, out.result_name, out.state) == (3, "disallowedByPolicy", s)
    c = profile(3, ppr=frozenset({"ppr2"}))
    s = installed(s, c)
    out = st.delete(s, ref(c), signer)
    assert (out.result, out.result_name, out.state) == (3, "disallowedByPolicy", s)


def test_ppr_needs_rat_authorisation() -> None:
    a = profile(1, ppr=frozenset({"ppr1"}))
    s = st.EuiccState()
    out = st.install(s, a, address="x", pending=b"PIR")
    assert (out.result, out.result_name, out.state) == (15, "pprNotAllowed", s)
    only_ppr2 = (st.RatRule(frozenset({"ppr2"}), (OWNER,)),)
    out = st.install(st.EuiccState(rat=only_ppr2), a, address="x", pending=b"PIR")
    assert out.result == 15
    other_owner = (st.RatRule(frozenset({"ppr1"}), (st.OperatorId(bytes.fromhex("00F120")),)),)
    assert st.install(st.EuiccState(rat=other_owner), a, address="x", pending=b"").result == 15
    assert st.install(st.EuiccState(rat=RAT_ALL), a, address="x", pending=b"").ok
    # pprUpdateControl alone needs no authorisation
    u = profile(2, ppr=frozenset({"pprUpdateControl"}))
    assert st.install(st.EuiccState(), u, address="x", pending=b"").ok


def test_notification_configuration_is_honoured() -> None:
    a = profile(1, events=frozenset({"notificationDelete"}))
    s = installed(st.EuiccState(), a)
    s = st.disable(st.enable(s, ref(a), signer).state, ref(a), signer).state
    assert [n.event for n in s.notifications] == ["notificationInstall"]
    s = st.delete(s, ref(a), signer).state
    assert [n.event for n in s.notifications] == ["notificationInstall", "notificationDelete"]
    assert s.notifications[-1].pending == signer(2, "notificationDelete", "smdp1.example", a.iccid)


def test_duplicate_iccid_install() -> None:
    a = profile(1)
    s = installed(st.EuiccState(), a)
    out = st.install(s, a, address="x", pending=b"")
    assert (out.result, out.state) == (9, s)


def test_memory_reset_ignores_pprs_and_filters_classes() -> None:
    s = st.EuiccState(rat=RAT_ALL, default_dp_address="dp.example")
    s = installed(s, profile(1, ppr=frozenset({"ppr1", "ppr2"})))
    s = installed(s, profile(2, profile_class=0))
    s = st.enable(s, ref(profile(1)), signer).state
    before = len(s.notifications)
    out = st.memory_reset(s, operational=True, test=False, default_dp_address=False)
    assert out.ok
    assert [p.profile_class for p in out.state.profiles] == [0]
    assert len(out.state.notifications) == before
    out2 = st.memory_reset(out.state, operational=True, test=False, default_dp_address=False)
    assert (out2.result, out2.result_name) == (1, "nothingToDelete")
    out3 = st.memory_reset(out.state, operational=False, test=True, default_dp_address=True)
    assert out3.state.profiles == ()
    assert out3.state.default_dp_address is None


def test_remove_notification() -> None:
    s = installed(st.EuiccState(), profile(1))
    assert st.remove_notification(s, 99).result_name == "nothingToDelete"
    out = st.remove_notification(s, 1)
    assert out.ok
    assert out.state.notifications == ()
    # the counter never goes back
    assert out.state.next_seq == 2
