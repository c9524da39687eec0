"""The eUICC identifier (EID), GSMA SGP.29.

An EID is 32 decimal digits: the EUM Identification Number (EIN, variable
length, assigned through the GSMA's EID Range Holder Identifiers), the
EUM-specific identification number, and two check digits.  The check digits
follow ISO/IEC 7064 MOD 97-10 (the IBAN scheme): the 32-digit number taken as
an integer is congruent to 1 modulo 97.  They are computed by setting them to
``00`` and taking ``98 - (n mod 97)``.

SGP.22 §4.5.2.1.0.2: an EUM certificate's ``NameConstraints`` permit the
directoryName whose ``serialNumber`` is the leading digits of its EIDs (the
IIN, 8 digits); the eUICC certificate's subject ``serialNumber`` is its EID.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from rspfed.errors import UsageError

__all__ = [
    "EID_LENGTH",
    "eid_check_digits",
    "eid_in_range",
    "generate_eid",
    "is_valid_eid",
    "validate_eid",
]

#: Number of decimal digits in an EID.
EID_LENGTH = 32


def _is_digits(text: str) -> bool:
    return text.isascii() and text.isdigit()


def eid_check_digits(first30: str) -> str:
    """The two ISO 7064 MOD 97-10 check digits for the first 30 digits of an EID.

    Raises :class:`rspfed.errors.UsageError` unless ``first30`` is 30 decimal digits.
    """
    if len(first30) != EID_LENGTH - 2 or not _is_digits(first30):
        raise UsageError("the EID body must be 30 decimal digits")
    return f"{98 - (int(first30 + '00') % 97):02d}"


def is_valid_eid(eid: str) -> bool:
    """Whether ``eid`` is 32 decimal digits with correct check digits."""
    return len(eid) == EID_LENGTH and _is_digits(eid) and int(eid) % 97 == 1


def validate_eid(eid: str) -> str:
    """Return ``eid`` if it is a well-formed EID (SGP.29), else raise.

    Raises :class:`rspfed.errors.UsageError` naming what is wrong (length,
    non-digit characters or check digits).  Callers that receive an EID from a
    peer convert this into their own remote error.
    """
    if len(eid) != EID_LENGTH:
        raise UsageError(f"an EID has {EID_LENGTH} digits, got {len(eid)} characters")
    if not _is_digits(eid):
        raise UsageError("an EID has decimal digits only")
    if int(eid) % 97 != 1:
        raise UsageError("EID check digits are wrong (ISO 7064 MOD 97-10)")
    return eid


def generate_eid(ein: str, rand: Callable[[int], bytes]) -> str:
    """A random EID that starts with ``ein`` (the EIN or any longer prefix).

    ``rand`` is an ``os.urandom``-like source; the remaining digits are drawn
    uniformly from it (rejection sampling) and the check digits appended.
    """
    if not _is_digits(ein) or not 1 <= len(ein) <= EID_LENGTH - 2:
        raise UsageError("the EIN must be 1 to 30 decimal digits")
    digits = [ein]
    missing = EID_LENGTH - 2 - len(ein)
    while missing:
        for byte in rand(missing + 4):
            if byte < 250 and missing:
                digits.append(str(byte % 10))
                missing -= 1
    body = "".join(digits)
    return body + eid_check_digits(body)


def eid_in_range(eid: str, permitted: str | Iterable[str]) -> bool:
    """Whether ``eid`` starts with the permitted prefix (or one of several prefixes).

    A prefix is the digits of an EUM's ``NameConstraints`` ``serialNumber``
    (SGP.22 §4.5.2.1.0.2: the IIN, digits 1 to 8 of the EID).  An empty
    prefix never matches.
    """
    prefixes = [permitted] if isinstance(permitted, str) else list(permitted)
    return any(prefix and eid.startswith(prefix) for prefix in prefixes)
