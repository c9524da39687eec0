"""Software eUICC: ISD-R (ES10a/b/c), USIM file system, APDU front end, store, vpcd.

The entry point is :class:`~rspfed.euicc.euicc.Euicc`: a software eUICC and
its SQLite store; its ``isdr`` answers ES10 DER and its APDU front end
answers a card reader.  See ``docs/euicc.md``.  ``from rspfed.euicc import
Euicc`` loads it on first use, so importing a submodule (the store, the
file system) stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rspfed.euicc.euicc import Euicc

__all__ = ["Euicc"]


def __getattr__(name: str) -> object:
    if name == "Euicc":
        from rspfed.euicc.euicc import Euicc

        return Euicc
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
