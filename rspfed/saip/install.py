"""Install a SAIP profile package into the software eUICC's file system (sans-IO).

:func:`install_package` (DER) / :func:`install_elements` (decoded elements)
turn a profile package into an :class:`InstalledProfile`: the file system
(:class:`rspfed.euicc.fs.FileSystemSpec`), the PINs and PUKs
(:class:`rspfed.euicc.uicc.PinSpec`) and the AKA parameters
(:class:`rspfed.euicc.usim.AkaSpec`) of each USIM/ISIM.
:meth:`InstalledProfile.uicc_state` gives the card state the eUICC loads when
the profile is enabled; :func:`load_profile` has the signature of
:data:`rspfed.euicc.euicc.ProfileLoader`.

A malformed or unsupported package raises :class:`~rspfed.errors.DecodeError`
(malformed DER, inconsistent file contents) or
:class:`~rspfed.errors.ProtocolError` (unsupported feature, e.g. TUAK); the
message names the profile element (its ``identification`` number).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import attrs

from rspfed.errors import UsageError
from rspfed.euicc.fs import FileSystemSpec
from rspfed.euicc.uicc import PinSpec, UiccState
from rspfed.euicc.usim import AkaSpec

__all__ = ["InstalledProfile", "install_elements", "install_package", "load_profile"]


def _tuple(values: Any) -> tuple[Any, ...]:
    return tuple(values)


@attrs.frozen
class InstalledProfile:
    """What installing a package produces: files, PINs/PUKs, AKA parameters, identity."""

    iccid: str
    """The ICCID from the ProfileHeader (digits)."""
    fs: FileSystemSpec
    pins: tuple[PinSpec, ...] = attrs.field(default=(), converter=_tuple, repr=False)
    aka: tuple[AkaSpec, ...] = attrs.field(default=(), converter=_tuple, repr=False)

    def uicc_state(self) -> UiccState:
        """The card state the UICC front end runs (:class:`rspfed.euicc.uicc.UiccState`)."""
        return UiccState(self.fs, self.pins, self.aka)


def install_elements(elements: Sequence[Any]) -> InstalledProfile:
    """Install decoded profile elements (``list[saip.ProfileElement]``)."""
    raise UsageError("not implemented yet")


def install_package(package: bytes) -> InstalledProfile:
    """Decode (strict DER) and install an unprotected profile package."""
    raise UsageError("not implemented yet")


def load_profile(profile: object, content: bytes) -> UiccState:
    """A :data:`rspfed.euicc.euicc.ProfileLoader`: the installed package → card state."""
    return install_package(content).uicc_state()
