"""Fixtures of the transport tests: a fresh pair of network namespaces."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.transport.netns import NetnsPair, netns_unavailable_reason, sweep_stale


@pytest.fixture(scope="session")
def netns_reason() -> str | None:
    """Why netns tests cannot run here (checked once per session), or None.

    When they can run, namespaces left by killed earlier runs are removed.
    """
    reason = netns_unavailable_reason()
    if reason is None:
        sweep_stale()
    return reason


@pytest.fixture
def netns(netns_reason: str | None) -> Iterator[NetnsPair]:
    """Two namespaces joined by a veth pair; skipped with the reason when unavailable."""
    if netns_reason is not None:
        pytest.skip(netns_reason)
    with NetnsPair() as pair:
        yield pair
