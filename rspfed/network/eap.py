"""The network's AuC as the EAP-AKA' authenticator's :class:`rspfed.eap.machines.AuC`.

:class:`NetworkEapAuc` maps the EAP identity to an IMSI with
:func:`rspfed.network.nai.imsi_from_identity` (TS 23.003 §19.3.2 permanent
NAI) and asks :class:`rspfed.network.auc.Auc` for vectors and
resynchronisation, so one AuC (one SQN per subscriber) serves both network
attach and EAP-AKA' registration.

Errors, all :class:`~rspfed.errors.RspfedError`:

- an identity that is not a permanent NAI: :class:`~rspfed.errors.DecodeError`;
- an unknown, barred or removed IMSI:
  :class:`~rspfed.network.errors.NetworkRefusedError` (reason
  ``unknown-subscriber``, ``barred``, ``removed``);
- a bad AUTS (MAC-S): :class:`~rspfed.errors.IntegrityError`.

:class:`~rspfed.eap.machines.EapAkaPrimeServer` turns any of them raised
during :meth:`~rspfed.eap.machines.EapAkaPrimeServer.start` or a
resynchronisation into its ``FAILURE`` state and re-raises the same error.
"""

from __future__ import annotations

from rspfed.network.auc import Auc, AuthenticationVector
from rspfed.network.nai import imsi_from_identity

__all__ = ["NetworkEapAuc"]


class NetworkEapAuc:
    """:class:`rspfed.eap.machines.AuC` over a :class:`rspfed.network.auc.Auc`."""

    __slots__ = ("_auc",)

    def __init__(self, auc: Auc) -> None:
        self._auc = auc

    def __repr__(self) -> str:
        return f"NetworkEapAuc({self._auc!r})"

    @property
    def auc(self) -> Auc:
        """The underlying AuC."""
        return self._auc

    def vector(self, identity: bytes) -> AuthenticationVector:
        """A fresh vector (:meth:`Auc.generate_vector`) for the IMSI in ``identity``."""
        return self._auc.generate_vector(imsi_from_identity(identity))

    def resynchronise(self, identity: bytes, rand: bytes, auts: bytes) -> None:
        """:meth:`Auc.resynchronise` for the IMSI in ``identity``."""
        self._auc.resynchronise(imsi_from_identity(identity), rand, auts)
