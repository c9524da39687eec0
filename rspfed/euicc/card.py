"""The contact interface of a (software) card, as a reader sees it.

:class:`Card` is what a card reader adapter drives: the vsmartcard ``vpcd``
bridge (:mod:`rspfed.euicc.vpcd`), an in-process LPA, or a test.  It models
ISO/IEC 7816-3 power handling and ISO/IEC 7816-4 APDU exchange:

- :meth:`Card.power_on` is a cold reset and returns the ATR;
- :meth:`Card.reset` is a warm reset (volatile state cleared: logical
  channels, selected files, verified PINs, open RSP sessions) and returns the ATR;
- :meth:`Card.power_off` drops volatile state;
- :meth:`Card.transmit` takes one command APDU and returns the response APDU
  (data followed by SW1 SW2).  It never raises for a malformed or unsupported
  APDU: the card answers with a status word, as a real card does.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

__all__ = ["Card"]


@runtime_checkable
class Card(Protocol):
    """A card behind a reader: power control and APDU exchange."""

    def power_on(self) -> bytes:
        """Cold reset; return the ATR."""
        ...

    def reset(self) -> bytes:
        """Warm reset; return the ATR."""
        ...

    def power_off(self) -> None:
        """Remove power; volatile state is lost."""
        ...

    def transmit(self, apdu: bytes) -> bytes:
        """Process one command APDU and return the response APDU (data + SW1 SW2)."""
        ...
