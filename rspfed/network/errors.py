"""The refusal the network core raises (a :class:`~rspfed.errors.PolicyError`)."""

from __future__ import annotations

import enum

from rspfed.errors import PolicyError

__all__ = ["NetworkRefusedError", "RefusalReason"]


class RefusalReason(enum.Enum):
    """Why the network said no (names loosely follow TS 24.301 EMM causes)."""

    UNKNOWN_SUBSCRIBER = "unknown-subscriber"
    """No subscriber with this IMSI (EMM cause #2, IMSI unknown in HSS)."""
    BARRED = "barred"
    """The subscriber exists and is barred (operator determined barring)."""
    REMOVED = "removed"
    """The subscriber was removed (its linked device left the subscription)."""
    PENDING = "pending"
    """The subscriber is provisioned but not yet in service: the new profile of a
    device change waits for the switch (:meth:`rspfed.network.Auc.switch`)."""
    AUTHENTICATION_FAILED = "authentication-failed"
    """RES differs from XRES, or the USIM rejected AUTN (MAC failure)."""
    SYNCH_FAILURE = "synch-failure"
    """SQN resynchronisation did not succeed within one round."""
    SERVICE_NOT_ALLOWED = "service-not-allowed"
    """The plan and the device class do not allow the requested service."""
    QUOTA_EXHAUSTED = "quota-exhausted"
    """Data barred: the device's own quota for the billing period is used up."""
    POOL_EXHAUSTED = "pool-exhausted"
    """Data barred: the subscription's shared data pool is used up."""
    NO_BEARER = "no-bearer"
    """No such (or an expired) data bearer: attach again."""
    NO_COVERAGE = "no-coverage"
    """The PLMN asked for is not on air now (no cell of this operator at this PLMN/RAT)."""
    ROAMING_NOT_ALLOWED = "plmn-not-allowed"
    """The PLMN is neither the subscriber's HPLMN nor a roaming partner
    (EMM cause #11, PLMN not allowed: the device adds it to EF.FPLMN)."""


class NetworkRefusedError(PolicyError):
    """The network refused an attach or a service; ``reason`` says why.

    The message names the reason and, where relevant, the service; never a
    key, RES or MAC.
    """

    def __init__(self, reason: RefusalReason, message: str | None = None) -> None:
        self.reason = reason
        super().__init__(f"{reason.value}: {message}" if message else reason.value)
