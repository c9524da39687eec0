"""Hypothesis state machine over provision / attach / restart / bar / unbar / remove.

The USIM is :class:`rspfed.euicc.usim.Usim` (real SQN checking, TS 33.102
Annex C) called without APDUs.  "restart" replaces the AuC's subscriber by a
fresh one with SEQ_HE = 0 (an AuC that lost its SQN), so the next attach has
to resynchronise.  Invariants: the AuC's SEQ_HE never goes back (except on the
explicit restart), a removed or barred IMSI never attaches, an active one
always does, the USIM's highest SEQ never goes back.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from rspfed.network import (
    Auc,
    MemorySubscriberStore,
    NetworkRefusedError,
    RefusalReason,
    Subscriber,
    SubscriberState,
    attach,
)
from tests.network.helpers import SoftUsim

IMSI = "001010000000042"
K = bytes(range(16))
OPC = bytes(range(100, 116))
NOW = datetime(2026, 1, 1, tzinfo=UTC)


class Network(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.store = MemorySubscriberStore()
        self.auc = Auc(self.store, rand=random.Random(0).randbytes)
        self.usim = SoftUsim(K, OPC)
        self.provisioned = False
        self.seq_he = 0
        self.usim_seq = 0

    @precondition(lambda self: not self.provisioned)
    @rule()
    def provision(self) -> None:
        self.auc.provision(Subscriber(IMSI, k=K, opc=OPC))
        self.provisioned = True

    def _attach(self) -> RefusalReason | None:
        try:
            got = attach(self.auc, IMSI, self.usim, now=NOW)
        except NetworkRefusedError as exc:
            return exc.reason
        assert got.imsi == IMSI
        return None

    @rule()
    def attach(self) -> None:
        sub = self.store.get(IMSI)
        refused = self._attach()
        if sub is None:
            assert refused is RefusalReason.UNKNOWN_SUBSCRIBER
        elif sub.state is SubscriberState.ACTIVE:
            assert refused is None
        else:
            assert refused is not None
            assert refused.value == sub.state.value

    @precondition(lambda self: self.provisioned)
    @rule()
    def restart(self) -> None:
        sub = self.store.get(IMSI)
        assert sub is not None
        self.store.put(Subscriber(IMSI, k=K, opc=OPC, state=sub.state))
        self.seq_he = 0

    @precondition(lambda self: self.provisioned)
    @rule(action=st.sampled_from(["bar", "unbar", "remove"]))
    def lifecycle(self, action: str) -> None:
        sub = self.store.get(IMSI)
        assert sub is not None
        reason = None
        try:
            getattr(self.auc, action)(IMSI)
        except NetworkRefusedError as exc:
            reason = exc.reason
        if reason is not None:
            assert sub.state is SubscriberState.REMOVED
            assert reason is RefusalReason.REMOVED

    @invariant()
    def sqn_never_goes_back(self) -> None:
        sub = self.store.get(IMSI)
        if sub is not None:
            assert sub.seq_he >= self.seq_he
            self.seq_he = sub.seq_he
        assert self.usim.highest_seq >= self.usim_seq
        self.usim_seq = self.usim.highest_seq

    @invariant()
    def removed_stays_removed(self) -> None:
        sub = self.store.get(IMSI)
        if sub is not None and sub.state is SubscriberState.REMOVED:
            assert self._attach() is RefusalReason.REMOVED


TestNetwork = Network.TestCase
