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


# --------------------------------------------------------------------------
# Property test: the state machine over a real store, with crashes


import tempfile  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

from hypothesis import settings  # noqa: E402
from hypothesis import strategies as hs  # noqa: E402
from hypothesis.stateful import (  # noqa: E402
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
)

from rspfed.errors import StorageError  # noqa: E402
from rspfed.euicc.store import Store  # noqa: E402

N_PROFILES = 4
OWNER_B = st.OperatorId(bytes.fromhex("00F120"))
# the RAT lets OWNER (00F110) set PPR1 and PPR2; OWNER_B may set nothing
MACHINE_RAT = (st.RatRule(frozenset({"ppr1", "ppr2"}), (OWNER,)),)
EID = bytes.fromhex("89049032123451234512345678901235")

Op = Callable[[st.EuiccState], st.Outcome]


class ProfileMachine(RuleBasedStateMachine):
    """Operations on a store-backed eUICC state; invariants after every step."""

    def __init__(self) -> None:
        super().__init__()
        self.dir = tempfile.TemporaryDirectory()
        self.path = Path(self.dir.name) / "e.db"
        self.store = Store.create(self.path, eid=EID)
        self.store.commit(attrs.evolve(self.store.state, rat=MACHINE_RAT))

    def teardown(self) -> None:
        self.store.close()
        self.dir.cleanup()

    # -- helpers

    def ref(self, n: int) -> st.ProfileRef:
        return st.ProfileRef(iccid=profile(n).iccid)

    def apply(self, op: Op) -> st.Outcome:
        before = self.store.state
        out = op(before)
        if out.ok:
            contents = {
                p.iccid: b"content"
                for p in out.state.profiles
                if before.find(st.ProfileRef(iccid=p.iccid)) is None
            }
            self.store.commit(out.state, contents=contents)
        else:
            assert out.state == before
        self.check_notified(before, out)
        return out

    @staticmethod
    def check_notified(before: st.EuiccState, out: st.Outcome) -> None:
        """Every status change, install and delete produced its configured notification."""
        if not out.ok:
            return
        after = out.state
        new = [n for n in after.notifications if n.seq_number >= before.next_seq]
        expected: list[tuple[str, bytes]] = []
        for p in before.profiles:
            q = after.find(st.ProfileRef(iccid=p.iccid))
            if q is None:
                expected.append(("notificationDelete", p.iccid))
            elif q.status != p.status:
                event = (
                    "notificationEnable"
                    if q.status is st.ProfileStatus.ENABLED
                    else "notificationDisable"
                )
                expected.append((event, p.iccid))
        for q in after.profiles:
            if before.find(st.ProfileRef(iccid=q.iccid)) is None:
                expected.append(("notificationInstall", q.iccid))
        known = {p.iccid: p for p in (*before.profiles, *after.profiles)}
        wanted = sorted(
            (e, i)
            for e, i in expected
            if e == "notificationInstall" or known[i].address_for(e) is not None
        )
        assert sorted((n.event, n.iccid or b"") for n in new) == wanted

    # -- rules

    @rule(
        n=hs.integers(0, N_PROFILES - 1),
        ppr=hs.sampled_from(
            [frozenset(), frozenset({"ppr1"}), frozenset({"ppr2"}), frozenset({"ppr1", "ppr2"})]
        ),
        events=hs.frozensets(hs.sampled_from(sorted(ALL_EVENTS))),
        own=hs.booleans(),
        test_class=hs.booleans(),
    )
    def install(
        self, n: int, ppr: frozenset[str], events: frozenset[str], own: bool, test_class: bool
    ) -> None:
        p = attrs.evolve(
            profile(n, ppr=ppr, events=events, profile_class=0 if test_class else 2),
            profile_owner=OWNER if own else OWNER_B,
        )
        state = self.store.state
        p = attrs.evolve(p, isdp_aid=st.next_isdp_aid(state))
        existed = state.find(self.ref(n)) is not None
        out = self.apply(lambda s: st.install(s, p, address="dp.example", pending=b"PIR"))
        if existed:
            assert out.result == 9
        elif ppr and not own:
            assert out.result == 15
        else:
            assert out.ok

    @rule(n=hs.integers(0, N_PROFILES - 1))
    def enable(self, n: int) -> None:
        before = self.store.state
        current = before.enabled
        out = self.apply(lambda s: st.enable(s, self.ref(n), signer))
        if current is not None and "ppr1" in current.ppr and current.iccid != profile(n).iccid:
            assert not out.ok
        if out.ok:
            assert self.store.state.enabled is not None
            assert self.store.state.enabled.iccid == profile(n).iccid

    @rule(n=hs.integers(0, N_PROFILES - 1))
    def disable(self, n: int) -> None:
        p = self.store.state.find(self.ref(n))
        out = self.apply(lambda s: st.disable(s, self.ref(n), signer))
        if p is not None and "ppr1" in p.ppr and p.status is st.ProfileStatus.ENABLED:
            assert out.result == 3

    @rule(n=hs.integers(0, N_PROFILES - 1))
    def delete(self, n: int) -> None:
        p = self.store.state.find(self.ref(n))
        out = self.apply(lambda s: st.delete(s, self.ref(n), signer))
        if p is not None and "ppr2" in p.ppr and p.status is st.ProfileStatus.DISABLED:
            assert out.result == 3
        if out.ok:
            assert self.store.state.find(self.ref(n)) is None

    @rule(n=hs.integers(0, N_PROFILES - 1), nickname=hs.text(max_size=8))
    def nickname(self, n: int, nickname: str) -> None:
        out = self.apply(lambda s: st.set_nickname(s, profile(n).iccid, nickname))
        if out.ok:
            found = self.store.state.find(self.ref(n))
            assert found is not None
            assert found.nickname == (nickname or None)

    @rule(operational=hs.booleans(), test=hs.booleans())
    def memory_reset(self, operational: bool, test: bool) -> None:
        before = self.store.state
        out = st.memory_reset(before, operational=operational, test=test, default_dp_address=False)
        if out.ok:
            self.store.commit(out.state)
        assert out.state.notifications == before.notifications

    @precondition(lambda self: bool(self.store.state.notifications))
    @rule(data=hs.data())
    def remove_notification(self, data: hs.DataObject) -> None:
        seqs = [n.seq_number for n in self.store.state.notifications]
        seq = data.draw(hs.sampled_from(seqs))
        self.apply(lambda s: st.remove_notification(s, seq))
        assert seq not in [n.seq_number for n in self.store.state.notifications]

    @rule(
        kind=hs.sampled_from(["install", "enable", "disable", "delete", "remove"]),
        n=hs.integers(0, N_PROFILES - 1),
        abort_at=hs.integers(1, 300),
    )
    def crash(self, kind: str, n: int, abort_at: int) -> None:
        """A write interrupted at VM step ``abort_at``; the reopened store is before or after."""
        before = self.store.state
        if kind == "install":
            p = attrs.evolve(profile(n), isdp_aid=st.next_isdp_aid(before))
            out = st.install(before, p, address="a", pending=b"PIR")
        elif kind == "enable":
            out = st.enable(before, self.ref(n), signer)
        elif kind == "disable":
            out = st.disable(before, self.ref(n), signer)
        elif kind == "delete":
            out = st.delete(before, self.ref(n), signer)
        else:
            seq = before.notifications[0].seq_number if before.notifications else 0
            out = st.remove_notification(before, seq)
        if not out.ok:
            return
        left = abort_at

        def tick() -> int:
            nonlocal left
            left -= 1
            return 1 if left <= 0 else 0

        contents = {
            p.iccid: b"c"
            for p in out.state.profiles
            if before.find(st.ProfileRef(iccid=p.iccid)) is None
        }
        self.store.connection.set_progress_handler(tick, 1)
        try:
            self.store.commit(out.state, contents=contents)
        except StorageError:
            pass
        finally:
            self.store.connection.set_progress_handler(None, 1)
        self.store.close()  # the process "dies"; a new one opens the file
        self.store = Store.open(self.path)
        assert self.store.state in (before, out.state)

    # -- invariants

    @invariant()
    def at_most_one_enabled(self) -> None:
        enabled = [p for p in self.store.state.profiles if p.status is st.ProfileStatus.ENABLED]
        assert len(enabled) <= 1

    @invariant()
    def pprs_are_authorised(self) -> None:
        for p in self.store.state.profiles:
            for ppr in p.ppr & {"ppr1", "ppr2"}:
                assert st.ppr_allowed(MACHINE_RAT, ppr, p.profile_owner)

    @invariant()
    def notifications_are_ordered_and_below_counter(self) -> None:
        seqs = [n.seq_number for n in self.store.state.notifications]
        assert seqs == sorted(set(seqs))
        assert all(s < self.store.state.next_seq for s in seqs)


ProfileMachine.TestCase.settings = settings(
    max_examples=max(5, settings().max_examples // 4), stateful_step_count=25
)
test_profile_machine = ProfileMachine.TestCase
