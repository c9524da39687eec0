"""Hypothesis strategies for the usage ledger's values (small domains, so values collide)."""

from __future__ import annotations

from hypothesis import strategies as st

from rspfed.federation.ledger import (
    AlertKey,
    CounterKey,
    EpochReason,
    LedgerState,
    PoolEpoch,
    SourceKind,
)

SUB = "sub-0001"
ICCIDS = [
    "8949000000000000001",
    "8949000000000000019",
    "89490000000000000027",
    "894900000000000035",
]
PLMNS = ["", "26201", "310260", "00101"]
PERIODS = [0, 1_764_000_000, (1 << 63) - 1]

counter_keys: st.SearchStrategy[CounterKey] = st.tuples(
    st.sampled_from([int(SourceKind.NETWORK), int(SourceKind.DEVICE)]),
    st.sampled_from(["pgw-1", "pgw-2", "dev-ä"]),
    st.sampled_from(ICCIDS),
    st.sampled_from(PERIODS),
    st.integers(0, 3) | st.just((1 << 63) - 1),
    st.sampled_from(PLMNS),
)
octets = st.integers(0, 1000) | st.integers(0, (1 << 63) - 1)

pool_epochs = st.builds(
    PoolEpoch,
    period=st.sampled_from(PERIODS),
    index=st.integers(0, 3),
    reason=st.sampled_from(list(EpochReason)),
    limit=st.integers(1, 5000) | st.integers(1, (1 << 63) - 1),
    opening_used=octets,
    opening_device_used=st.dictionaries(st.sampled_from(ICCIDS), octets, max_size=3),
)

alert_keys = st.builds(
    AlertKey,
    device=st.none() | st.sampled_from(ICCIDS),
    threshold=st.sampled_from([50, 75, 90, 100, 1, 1000]),
    period=st.sampled_from(PERIODS),
    pool_epoch=st.integers(0, 3),
)


@st.composite
def states(draw: st.DrawFn, subscription_id: str = SUB) -> LedgerState:
    """A ledger state of one subscription."""
    return LedgerState(
        subscription_id,
        draw(st.dictionaries(counter_keys, octets, max_size=8)),
        draw(st.lists(pool_epochs, max_size=3)),
        draw(st.sets(alert_keys, max_size=4)),
    )
