"""The authentication centre: subscribers by IMSI, vectors and resynchronisation.

**SQN scheme** (TS 33.102 Annex C.1.1 and C.3.2, matching the USIM of
:mod:`rspfed.euicc.usim`): ``SQN = SEQ || IND`` with a 5-bit IND.  The AuC
keeps ``SEQ_HE`` (the highest SEQ it issued) and the next IND.  Each vector
takes ``SEQ = SEQ_HE + 1`` and the next IND, then IND cycles through its 32
values.  SEQ strictly increases, so the USIM's check ``SEQ > array[IND]``
and its Δ bound hold for every vector.

**Resynchronisation** (§6.3.5, Annex C.3.4): AUTS carries ``SQN_MS``; MAC-S
is checked with :func:`rspfed.crypto.aka.check_auts`; on success
``SEQ_HE = max(SEQ_HE, SEQ_MS)``, so the next vector is fresh for the USIM
and SEQ_HE never goes back.

**Device change** (docs/device-change-operator.md): the new profile's IMSI
is provisioned :attr:`SubscriberState.PENDING` (known, refused as not yet in
service); :meth:`Auc.switch` makes it active and removes the old IMSI in one
store transaction, so the AuC serves exactly one of the two at every instant.

Secrets (K, OPc, XRES, CK, IK) never appear in ``repr``, logs or exception
text.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import attrs

from rspfed.crypto.aka import AkaAlgorithm, build_autn, check_auts
from rspfed.crypto.milenage import Milenage
from rspfed.crypto.testalg import TestAlgorithm
from rspfed.errors import UsageError
from rspfed.network.errors import NetworkRefusedError, RefusalReason
from rspfed.network.service import DeviceClass, Service, ServicePolicy

if TYPE_CHECKING:
    from rspfed.network.store import SubscriberStore

__all__ = [
    "IND_BITS",
    "Algorithm",
    "Auc",
    "AuthenticationVector",
    "NetworkRefusedError",
    "RefusalReason",
    "Subscriber",
    "SubscriberState",
]

IND_BITS = 5
"""IND length, as the USIM's default (SAIP ``sqnInit`` has 32 entries)."""
_SEQ_MAX = (1 << (48 - IND_BITS)) - 1


class SubscriberState(enum.Enum):
    """A subscriber's state in the AuC."""

    ACTIVE = "active"
    BARRED = "barred"
    REMOVED = "removed"
    PENDING = "pending"
    """Provisioned, not yet in service (a device change's new IMSI before the switch)."""


class Algorithm(enum.Enum):
    """The AKA algorithm of a subscriber (SAIP ``AlgoParameter.algorithmID``)."""

    MILENAGE = "milenage"
    TEST = "test"
    """The TS 34.108 §8.1.2 test algorithm."""


def _imsi(value: str) -> str:
    if not (isinstance(value, str) and value.isdigit() and 6 <= len(value) <= 15):
        raise UsageError("IMSI must be 6 to 15 decimal digits")
    return value


def _key(value: bytes) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview) or len(value) != 16:
        raise UsageError("K and OPc must be 16 octets")
    return bytes(value)


def _amf(value: bytes) -> bytes:
    if not isinstance(value, bytes | bytearray | memoryview) or len(value) != 2:
        raise UsageError("AMF must be 2 octets")
    return bytes(value)


@attrs.frozen
class Subscriber:
    """One subscriber: keys, AMF, SQN state, lifecycle state and service policy.

    ``seq_he`` is the highest SEQ issued (or accepted by resynchronisation),
    ``ind`` the IND of the next vector.
    """

    imsi: str = attrs.field(converter=_imsi)
    k: bytes = attrs.field(repr=False, converter=_key)
    opc: bytes = attrs.field(default=bytes(16), repr=False, converter=_key)
    algorithm: Algorithm = attrs.field(default=Algorithm.MILENAGE, converter=Algorithm)
    amf: bytes = attrs.field(default=b"\x80\x00", converter=_amf)
    res_length: int = 16
    state: SubscriberState = attrs.field(default=SubscriberState.ACTIVE, converter=SubscriberState)
    seq_he: int = 0
    ind: int = 0
    policy: ServicePolicy = attrs.field(factory=lambda: ServicePolicy(DeviceClass.PHONE))

    def __attrs_post_init__(self) -> None:
        if not 0 <= self.seq_he <= _SEQ_MAX:
            raise UsageError("SEQ_HE out of range")
        if not 0 <= self.ind < 1 << IND_BITS:
            raise UsageError("IND out of range")
        if not 4 <= self.res_length <= 16:
            raise UsageError("RES length must be 4 to 16 octets")

    def aka(self) -> AkaAlgorithm:
        """The subscriber's AKA algorithm bound to its keys."""
        if self.algorithm is Algorithm.MILENAGE:
            return Milenage(self.k, self.opc)
        return TestAlgorithm(self.k, res_length=self.res_length)


@attrs.frozen
class AuthenticationVector:
    """A 3G authentication vector (TS 33.102 §6.3.2): RAND, AUTN, XRES, CK, IK.

    ``sqn_xor_ak`` is AUTN's first six octets (what an EAP-AKA' server needs
    for its key derivation).
    """

    rand: bytes
    autn: bytes
    xres: bytes = attrs.field(repr=False)
    ck: bytes = attrs.field(repr=False)
    ik: bytes = attrs.field(repr=False)
    sqn_xor_ak: bytes


class Auc:
    """The authentication centre over a :class:`~rspfed.network.store.SubscriberStore`.

    ``rand`` (like :func:`os.urandom`) supplies RAND.  Every change is one
    store write.
    """

    __slots__ = ("_rand", "_store")

    def __init__(self, store: SubscriberStore, rand: Callable[[int], bytes]) -> None:
        self._store = store
        self._rand = rand

    def __repr__(self) -> str:
        return f"Auc({self._store!r})"

    # -- provisioning ---------------------------------------------------

    def provision(self, subscriber: Subscriber) -> None:
        """Add a subscriber; :class:`~rspfed.errors.UsageError` if the IMSI exists.

        A subscriber provisioned with ``state=SubscriberState.PENDING`` is
        refused (``pending``) until :meth:`switch` activates it.
        """
        if subscriber.state is SubscriberState.REMOVED:
            raise UsageError("a new subscriber cannot be removed already")
        if self._store.get(subscriber.imsi) is not None:
            raise UsageError("IMSI already provisioned")
        self._store.put(subscriber)

    def subscriber(self, imsi: str) -> Subscriber:
        """The subscriber for ``imsi``; :class:`NetworkRefusedError` (unknown) if none."""
        sub = self._store.get(imsi)
        if sub is None:
            raise NetworkRefusedError(RefusalReason.UNKNOWN_SUBSCRIBER)
        return sub

    def _set_state(self, imsi: str, state: SubscriberState) -> None:
        sub = self.subscriber(imsi)
        if sub.state is SubscriberState.REMOVED and state is not SubscriberState.REMOVED:
            raise NetworkRefusedError(RefusalReason.REMOVED, "a removed subscriber stays removed")
        if sub.state is SubscriberState.PENDING and state is not SubscriberState.REMOVED:
            raise NetworkRefusedError(
                RefusalReason.PENDING, "a pending subscriber is put in service only by a switch"
            )
        self._store.put(attrs.evolve(sub, state=state))

    def bar(self, imsi: str) -> None:
        """Bar the subscriber (attach and services refused until :meth:`unbar`)."""
        self._set_state(imsi, SubscriberState.BARRED)

    def unbar(self, imsi: str) -> None:
        """Lift a bar."""
        self._set_state(imsi, SubscriberState.ACTIVE)

    def remove(self, imsi: str) -> None:
        """Remove the subscriber for good (its record and SQN are kept, refused forever)."""
        self._set_state(imsi, SubscriberState.REMOVED)

    def switch(self, old_imsi: str, new_imsi: str, *, also_remove: Sequence[str] = ()) -> None:
        """Device change: ``new_imsi`` pending -> in service, ``old_imsi`` -> removed, at once.

        One store transaction (:meth:`SubscriberStore.put_many`), so at every
        instant exactly one of the two is served.  The new subscriber takes a
        bar the old one had.  ``also_remove`` (a linked device the new eUICC
        held) is removed in the same transaction.  Idempotent: a switch already
        made (``new_imsi`` in service or barred, ``old_imsi`` removed) changes
        nothing.  :class:`NetworkRefusedError` (``unknown-subscriber``,
        ``removed``) if the new IMSI is unknown or removed (a cancelled
        change), or the old one is unknown; ``pending`` if the old one is
        pending.
        """
        if old_imsi == new_imsi or new_imsi in also_remove or old_imsi in also_remove:
            raise UsageError("the switch names one IMSI twice")
        old = self.subscriber(old_imsi)
        new = self.subscriber(new_imsi)
        if new.state is SubscriberState.REMOVED:
            raise NetworkRefusedError(RefusalReason.REMOVED, "the new subscriber was removed")
        if old.state is SubscriberState.PENDING:
            raise NetworkRefusedError(RefusalReason.PENDING, "the old subscriber is not in service")
        changed: list[Subscriber] = []
        if new.state is SubscriberState.PENDING:
            served = (
                SubscriberState.BARRED
                if old.state is SubscriberState.BARRED
                else SubscriberState.ACTIVE
            )
            changed.append(attrs.evolve(new, state=served))
        if old.state is not SubscriberState.REMOVED:
            changed.append(attrs.evolve(old, state=SubscriberState.REMOVED))
        for imsi in dict.fromkeys(also_remove):
            other = self._store.get(imsi)
            if other is not None and other.state is not SubscriberState.REMOVED:
                changed.append(attrs.evolve(other, state=SubscriberState.REMOVED))
        if changed:
            self._store.put_many(changed)

    def set_policy(self, imsi: str, policy: ServicePolicy) -> None:
        """Replace the subscriber's service policy."""
        self._store.put(attrs.evolve(self.subscriber(imsi), policy=policy))

    def _active(self, imsi: str) -> Subscriber:
        sub = self.subscriber(imsi)
        if sub.state is SubscriberState.BARRED:
            raise NetworkRefusedError(RefusalReason.BARRED)
        if sub.state is SubscriberState.REMOVED:
            raise NetworkRefusedError(RefusalReason.REMOVED)
        if sub.state is SubscriberState.PENDING:
            raise NetworkRefusedError(
                RefusalReason.PENDING, "the profile is not yet in service (device change)"
            )
        return sub

    # -- AKA ---------------------------------------------------------------

    def generate_vector(self, imsi: str) -> AuthenticationVector:
        """A fresh vector for an active subscriber; SEQ_HE and IND advance (one write)."""
        sub = self._active(imsi)
        if sub.seq_he >= _SEQ_MAX:
            raise NetworkRefusedError(RefusalReason.SYNCH_FAILURE, "SEQ exhausted")
        seq = sub.seq_he + 1
        sqn = ((seq << IND_BITS) | sub.ind).to_bytes(6, "big")
        rand = bytes(self._rand(16))
        if len(rand) != 16:
            raise UsageError("the randomness source returned the wrong length")
        autn, out = build_autn(sub.aka(), rand, sqn, sub.amf)
        self._store.put(attrs.evolve(sub, seq_he=seq, ind=(sub.ind + 1) % (1 << IND_BITS)))
        return AuthenticationVector(rand, autn.to_bytes(), out.res, out.ck, out.ik, autn.sqn_xor_ak)

    def resynchronise(self, imsi: str, rand: bytes, auts: bytes) -> None:
        """Check AUTS's MAC-S and move SEQ_HE up to SEQ_MS (never down).

        :class:`~rspfed.errors.IntegrityError` when MAC-S does not verify,
        :class:`~rspfed.errors.DecodeError` for a malformed AUTS.
        """
        sub = self._active(imsi)
        sqn_ms = int.from_bytes(check_auts(sub.aka(), rand, auts), "big")
        seq_ms = sqn_ms >> IND_BITS
        if seq_ms > sub.seq_he:
            self._store.put(attrs.evolve(sub, seq_he=seq_ms))

    # -- services ------------------------------------------------------------

    def check_service(self, imsi: str, service: Service) -> None:
        """Return if an active ``imsi`` may use ``service``; else :class:`NetworkRefusedError`."""
        self._active(imsi).policy.check(service)
