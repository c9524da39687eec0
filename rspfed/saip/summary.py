"""A readable summary of a SAIP profile package (for the CLI, the demo and logs).

The summary holds no secret: keys and PIN values are never copied into it,
only which algorithm a profile uses.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from typing import Any

import attrs
from asn1crypto import core

from rspfed import asn1
from rspfed.asn1 import saip
from rspfed.errors import DecodeError
from rspfed.saip.identifiers import decode_iccid, decode_imsi

__all__ = ["ProfileSummary", "summarise"]


@attrs.frozen
class ProfileSummary:
    """What a profile package is: version, identity, contents."""

    size: int
    """Package size in octets."""
    saip_version: str
    """``major.minor`` of the SAIP format the header declares."""
    profile_type: str | None
    iccid: str
    imsis: tuple[str, ...]
    """IMSIs found in EF_IMSI of the package's USIM(s), in order."""
    aka_algorithms: tuple[str, ...]
    """The ``algorithmID`` of each AKA parameter element, in order."""
    element_counts: tuple[tuple[str, int], ...]
    """How many elements of each kind, in order of first appearance."""
    mandatory_services: tuple[str, ...]
    """The eUICC services the header declares mandatory."""

    @property
    def element_total(self) -> int:
        """The number of profile elements."""
        return sum(count for _, count in self.element_counts)


def _imsi_from_usim(usim: Any) -> str | None:
    """EF_IMSI contents are the last ``fillFileContent`` of the ``ef-imsi`` element."""
    if "ef-imsi" not in usim or usim["ef-imsi"].native is None:
        return None
    content = b"".join(
        element.chosen.native
        for element in usim["ef-imsi"]
        if element.name == "fillFileContent"
    )
    return decode_imsi(content) if content else None


def summarise(
    package: bytes | Sequence[saip.ProfileElement],
) -> ProfileSummary:
    """Summarise a package given as DER bytes or as decoded ProfileElements.

    Raises :class:`~rspfed.errors.DecodeError` if the package is malformed or
    does not start with a ProfileHeader.
    """
    if isinstance(package, bytes):
        size = len(package)
        elements = asn1.decode_profile_elements(package)
    else:
        elements = list(package)
        size = sum(len(asn1.encode(element)) for element in elements)
    if not elements or elements[0].name != "header":
        raise DecodeError(
            "a profile package starts with a ProfileHeader", type_name="ProfileElement"
        )
    header = elements[0].chosen
    counts: Counter[str] = Counter(element.name for element in elements)
    order = list(dict.fromkeys(element.name for element in elements))
    imsis: list[str] = []
    algorithms: list[str] = []
    for element in elements:
        if element.name == "usim":
            imsi = _imsi_from_usim(element.chosen)
            if imsi:
                imsis.append(imsi)
        elif element.name == "akaParameter":
            algorithms.append(str(element.chosen["algoConfiguration"].chosen["algorithmID"].native))
    services_list = header["eUICC-Mandatory-services"]
    # ServicesList is a SEQUENCE of ``NULL OPTIONAL``: a service is listed when present
    services = [
        name for name, _spec, _options in services_list._fields
        if not isinstance(services_list[name], core.Void)
    ]
    profile_type = header["profileType"].native if "profileType" in header else None
    return ProfileSummary(
        size=size,
        saip_version=f"{header['major-version'].native}.{header['minor-version'].native}",
        profile_type=profile_type,
        iccid=decode_iccid(header["iccid"].native, swapped=False),
        imsis=tuple(imsis),
        aka_algorithms=tuple(algorithms),
        element_counts=tuple((name, counts[name]) for name in order),
        mandatory_services=tuple(services),
    )
