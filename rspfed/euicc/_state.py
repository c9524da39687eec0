"""The profile state machine of the eUICC (SGP.22 §2.9, §3.2, §5.7.16–5.7.22), as a table.

Rules (SGP.22)
--------------
- A profile is either absent (never installed, or deleted), **disabled** or
  **enabled**.  A successful installation leaves it disabled (§3.1.3; the
  transient "installing" phase lives in the volatile RSP session, never here).
- At most one profile is enabled at a time (§2.9.1).  Enabling a profile
  while another one is enabled first disables that one (§3.2.1), so the
  other's disable rules apply to it, and both notifications are produced.
- Deleting the enabled profile is refused: it must be disabled first
  (DeleteProfileResponse ``profileNotInDisabledState``).
- Profile Policy Rules (§2.9.2): ``ppr1`` "disabling of this profile is not
  allowed", ``ppr2`` "deletion of this profile is not allowed".  A refusal is
  ``disallowedByPolicy(3)``.  A profile may carry a PPR only if the Rules
  Authorisation Table (RAT) has a rule listing that PPR for the profile's
  owner (``allowedOperators``, with ``E`` as a wildcard digit of ``mccMnc``
  and ``gid1``/``gid2`` matched when the rule has them); otherwise the
  installation fails with ``ErrorReason.pprNotAllowed(15)``.
  ``pprUpdateControl`` governs later PPR updates (UpdateMetadata over ES6),
  which this eUICC does not implement, so it is stored and reported only.
  The RAT's ``consentRequired`` flag is the LPA's business.
- Notifications (§2.6.2.x, §3.5): a disable, enable or delete produces a
  pending notification only if the profile's ``notificationConfigurationInfo``
  lists the event, sent to the address given there; an installation always
  produces one, the signed ProfileInstallationResult (§3.1.3.3).  Every
  notification takes the next ``seqNumber`` of the eUICC's counter and stays
  pending until RemoveNotificationFromList.
- eUICC Memory Reset (§3.3.3) deletes the profiles of the selected classes
  (operational; field-loaded test) *whatever their PPRs*, disabling the
  enabled one, and produces no notifications (the profiles' owners are not
  told; pending notifications stay until removed).  This is this
  implementation's reading of the specification.
- SetNickname changes the nickname only; it needs the profile to exist.
- ``wrongProfileReenabling(4)`` (re-enabling a profile whose disable-by-enable
  is still pending a REFRESH) cannot occur here: profile switches complete
  atomically, so the code is never produced.

Theory of operation
-------------------
:data:`TRANSITIONS` maps ``(Operation, ProfileStatus)`` to a
:class:`Transition`: either a refusal with the SGP.22 result code of that
operation's response, or the status the profile moves to, the PPR that
guards the move and the notification event it produces.  Every pair is in
the table (a test checks it).  The functions at the bottom (:func:`install`,
:func:`enable`, :func:`disable`, :func:`delete`, :func:`set_nickname`,
:func:`memory_reset`, :func:`remove_notification`) look the pair up and
apply it to an immutable :class:`EuiccState`, returning an :class:`Outcome`
with the result code and the new state (the old one when refused).  The few
rules the table cannot hold are code: the implicit disable of the currently
enabled profile in :func:`enable`, the RAT check in :func:`install` and the
class filter of :func:`memory_reset`.

Signing is injected: a :data:`NotificationSigner` turns a new notification's
metadata into its ``PendingNotification`` DER (``otherSignedNotification``,
signed with the eUICC key by the ISD-R); the install notification's DER is
the ProfileInstallationResult the caller built.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterable, Mapping

import attrs

from rspfed.errors import UsageError

__all__ = [
    "ISDP_AID_PREFIX",
    "TRANSITIONS",
    "EuiccState",
    "Notification",
    "NotificationConfig",
    "NotificationSigner",
    "Operation",
    "OperatorId",
    "Outcome",
    "Profile",
    "ProfileRef",
    "ProfileStatus",
    "RatRule",
    "Transition",
    "delete",
    "disable",
    "enable",
    "install",
    "lookup",
    "memory_reset",
    "next_isdp_aid",
    "operator_matches",
    "ppr_allowed",
    "remove_notification",
    "set_nickname",
]


class ProfileStatus(enum.Enum):
    """Where a profile is in its life (SGP.22 ``ProfileState`` plus absence)."""

    ABSENT = "absent"
    DISABLED = "disabled"
    ENABLED = "enabled"


class Operation(enum.Enum):
    """The operations of the state machine (ES10b install, ES10c management)."""

    INSTALL = "install"
    ENABLE = "enable"
    DISABLE = "disable"
    DELETE = "delete"
    SET_NICKNAME = "setNickname"


# Notification events as NotificationEvent bit names.
EVENT_INSTALL = "notificationInstall"
EVENT_ENABLE = "notificationEnable"
EVENT_DISABLE = "notificationDisable"
EVENT_DELETE = "notificationDelete"

OK = 0
NOT_FOUND = 1
WRONG_STATE = 2
DISALLOWED_BY_POLICY = 3
ICCID_ALREADY_EXISTS = 9
"""``ErrorReason.installFailedDueToIccidAlreadyExistsOnEuicc``."""
PPR_NOT_ALLOWED = 15
"""``ErrorReason.pprNotAllowed``."""


@attrs.frozen
class Transition:
    """One cell of :data:`TRANSITIONS`.

    ``result`` is the code the operation's response carries (``0`` = ok);
    ``result_name`` its ASN.1 name.  ``target`` is the new status (``None``
    for a refusal).  ``guard`` names the PPR (``"ppr1"``/``"ppr2"``) whose
    presence on the profile turns the move into ``disallowedByPolicy(3)``;
    ``event`` the notification event the move may produce.
    """

    result: int
    result_name: str
    target: ProfileStatus | None = None
    guard: str | None = None
    event: str | None = None

    @property
    def allowed(self) -> bool:
        """Whether the cell is a move (not a refusal)."""
        return self.target is not None


_A, _D, _E = ProfileStatus.ABSENT, ProfileStatus.DISABLED, ProfileStatus.ENABLED
_EXISTS = "installFailedDueToIccidAlreadyExistsOnEuicc"


def _refuse(code: int, name: str) -> Transition:
    return Transition(code, name)


TRANSITIONS: Mapping[tuple[Operation, ProfileStatus], Transition] = {
    # ES10b LoadBoundProfilePackage (result: ErrorReason of the PIR)
    (Operation.INSTALL, _A): Transition(OK, "ok", _D, None, EVENT_INSTALL),
    (Operation.INSTALL, _D): _refuse(ICCID_ALREADY_EXISTS, _EXISTS),
    (Operation.INSTALL, _E): _refuse(ICCID_ALREADY_EXISTS, _EXISTS),
    # ES10c.EnableProfile (EnableProfileResponse.enableResult)
    (Operation.ENABLE, _A): _refuse(NOT_FOUND, "iccidOrAidNotFound"),
    (Operation.ENABLE, _D): Transition(OK, "ok", _E, None, EVENT_ENABLE),
    (Operation.ENABLE, _E): _refuse(WRONG_STATE, "profileNotInDisabledState"),
    # ES10c.DisableProfile (DisableProfileResponse.disableResult)
    (Operation.DISABLE, _A): _refuse(NOT_FOUND, "iccidOrAidNotFound"),
    (Operation.DISABLE, _D): _refuse(WRONG_STATE, "profileNotInEnabledState"),
    (Operation.DISABLE, _E): Transition(OK, "ok", _D, "ppr1", EVENT_DISABLE),
    # ES10c.DeleteProfile (DeleteProfileResponse.deleteResult)
    (Operation.DELETE, _A): _refuse(NOT_FOUND, "iccidOrAidNotFound"),
    (Operation.DELETE, _D): Transition(OK, "ok", _A, "ppr2", EVENT_DELETE),
    (Operation.DELETE, _E): _refuse(WRONG_STATE, "profileNotInDisabledState"),
    # ES10c.SetNickname (SetNicknameResponse.setNicknameResult)
    (Operation.SET_NICKNAME, _A): _refuse(NOT_FOUND, "iccidNotFound"),
    (Operation.SET_NICKNAME, _D): Transition(OK, "ok", _D),
    (Operation.SET_NICKNAME, _E): Transition(OK, "ok", _E),
}
"""The transition table: ``(operation, status) -> Transition`` for every pair."""


def lookup(operation: Operation, status: ProfileStatus) -> Transition:
    """The table cell for ``operation`` on a profile in ``status``."""
    return TRANSITIONS[(operation, status)]


# --------------------------------------------------------------------------
# Values


@attrs.frozen
class NotificationConfig:
    """One ``NotificationConfigurationInformation``: events and where to send them."""

    events: frozenset[str]
    address: str


@attrs.frozen
class OperatorId:
    """SGP.22 ``OperatorID``: ``mcc_mnc`` (3 octets, TS 24.008 coding), optional GIDs."""

    mcc_mnc: bytes
    gid1: bytes | None = None
    gid2: bytes | None = None


@attrs.frozen
class RatRule:
    """One ``ProfilePolicyAuthorisationRule`` of the RAT."""

    ppr_ids: frozenset[str]
    allowed_operators: tuple[OperatorId, ...]
    consent_required: bool = False


@attrs.frozen
class Profile:
    """An installed profile's metadata and status (content is kept by the store)."""

    iccid: bytes
    isdp_aid: bytes
    status: ProfileStatus = ProfileStatus.DISABLED
    service_provider_name: str = ""
    profile_name: str = ""
    nickname: str | None = None
    icon_type: int | None = None
    icon: bytes | None = None
    profile_class: int = 2
    """``ProfileClass``: 0 test, 1 provisioning, 2 operational."""
    notification_config: tuple[NotificationConfig, ...] = ()
    profile_owner: OperatorId | None = None
    ppr: frozenset[str] = frozenset()
    """Set PprIds bit names (``pprUpdateControl``, ``ppr1``, ``ppr2``)."""
    dp_oid: str | None = None

    def address_for(self, event: str) -> str | None:
        """The notification address configured for ``event`` (``None``: no notification)."""
        for config in self.notification_config:
            if event in config.events:
                return config.address
        return None


@attrs.frozen
class Notification:
    """A pending notification: its metadata and the signed ``PendingNotification`` DER."""

    seq_number: int
    event: str
    address: str
    iccid: bytes | None
    pending: bytes


NotificationSigner = Callable[[int, str, str, "bytes | None"], bytes]
"""``(seqNumber, event, notificationAddress, iccid) -> PendingNotification DER``."""


@attrs.frozen
class ProfileRef:
    """A profile named by ICCID or by ISD-P AID (``profileIdentifier``)."""

    iccid: bytes | None = None
    isdp_aid: bytes | None = None

    def __attrs_post_init__(self) -> None:
        if (self.iccid is None) == (self.isdp_aid is None):
            raise UsageError("ProfileRef needs exactly one of iccid, isdp_aid")

    def matches(self, profile: Profile) -> bool:
        """Whether ``profile`` is the one named."""
        if self.iccid is not None:
            return profile.iccid == self.iccid
        return profile.isdp_aid == self.isdp_aid


@attrs.frozen
class EuiccState:
    """The durable state of an eUICC's profile management (what the store keeps).

    ``profiles`` in installation order; ``notifications`` pending, by
    ``seq_number``; ``next_seq`` the notification counter.
    """

    profiles: tuple[Profile, ...] = ()
    notifications: tuple[Notification, ...] = ()
    next_seq: int = 1
    rat: tuple[RatRule, ...] = ()
    default_dp_address: str | None = None
    root_ds_address: str | None = None

    def find(self, ref: ProfileRef) -> Profile | None:
        """The profile ``ref`` names, or ``None``."""
        for profile in self.profiles:
            if ref.matches(profile):
                return profile
        return None

    @property
    def enabled(self) -> Profile | None:
        """The enabled profile, if any."""
        for profile in self.profiles:
            if profile.status is ProfileStatus.ENABLED:
                return profile
        return None

    def status_of(self, ref: ProfileRef) -> ProfileStatus:
        """The status of the profile ``ref`` names (``ABSENT`` if none)."""
        profile = self.find(ref)
        return ProfileStatus.ABSENT if profile is None else profile.status


@attrs.frozen
class Outcome:
    """Result of an operation: SGP.22 result code and name, and the new state."""

    result: int
    result_name: str
    state: EuiccState

    @property
    def ok(self) -> bool:
        """Whether the operation succeeded (result ``0``)."""
        return self.result == OK


# --------------------------------------------------------------------------
# The code that does not fit in the table

ISDP_AID_PREFIX = bytes.fromhex("A0000005591010FFFFFFFF8900")
"""ISD-P AIDs are this prefix followed by ``'1000'``, ``'1100'``, … (SGP.02 §2.2.3 numbering)."""


def _replace(state: EuiccState, old: Profile, new: Profile | None) -> tuple[Profile, ...]:
    out: list[Profile] = []
    for profile in state.profiles:
        if profile is old:
            if new is not None:
                out.append(new)
        else:
            out.append(profile)
    return tuple(out)


def _notify(
    state: EuiccState, profile: Profile, event: str | None, signer: NotificationSigner
) -> EuiccState:
    if event is None:
        return state
    address = profile.address_for(event)
    if address is None:
        return state
    seq = state.next_seq
    pending = signer(seq, event, address, profile.iccid)
    note = Notification(seq, event, address, profile.iccid, pending)
    return attrs.evolve(state, notifications=(*state.notifications, note), next_seq=seq + 1)


def _nibbles(value: bytes) -> list[int]:
    out: list[int] = []
    for octet in value:
        out.extend((octet & 0x0F, octet >> 4))
    return out


def operator_matches(rule: OperatorId, owner: OperatorId) -> bool:
    """Whether ``owner`` matches ``rule`` (``E`` digits in the rule's mccMnc match any digit)."""
    if len(rule.mcc_mnc) != len(owner.mcc_mnc):
        return False
    for r, o in zip(_nibbles(rule.mcc_mnc), _nibbles(owner.mcc_mnc), strict=True):
        if r != 0xE and r != o:
            return False
    if rule.gid1 is not None and rule.gid1 != owner.gid1:
        return False
    return not (rule.gid2 is not None and rule.gid2 != owner.gid2)


def ppr_allowed(rat: Iterable[RatRule], ppr: str, owner: OperatorId | None) -> bool:
    """Whether the RAT authorises ``ppr`` (``"ppr1"``/``"ppr2"``) for a profile of ``owner``."""
    if owner is None:
        return False
    return any(
        ppr in rule.ppr_ids and any(operator_matches(op, owner) for op in rule.allowed_operators)
        for rule in rat
    )


def next_isdp_aid(state: EuiccState) -> bytes:
    """The lowest free ISD-P AID."""
    used = {p.isdp_aid for p in state.profiles}
    n = 0x10
    while True:
        aid = ISDP_AID_PREFIX + bytes([n, 0x00])
        if aid not in used:
            return aid
        n += 1
        if n > 0xFF:
            raise UsageError("no free ISD-P AID")


def install(state: EuiccState, profile: Profile, *, address: str, pending: bytes) -> Outcome:
    """Install ``profile`` (disabled) with its install notification.

    ``address`` and ``pending`` are the notification address and the signed
    ProfileInstallationResult DER (its ``seqNumber`` must be ``state.next_seq``).
    The result is an ``ErrorReason`` (``0`` = success): ICCID already
    present (9), a PPR the RAT does not allow (15).
    """
    cell = lookup(Operation.INSTALL, state.status_of(ProfileRef(iccid=profile.iccid)))
    if not cell.allowed:
        return Outcome(cell.result, cell.result_name, state)
    for ppr in ("ppr1", "ppr2"):
        if ppr in profile.ppr and not ppr_allowed(state.rat, ppr, profile.profile_owner):
            return Outcome(PPR_NOT_ALLOWED, "pprNotAllowed", state)
    new = attrs.evolve(profile, status=ProfileStatus.DISABLED)
    seq = state.next_seq
    note = Notification(seq, EVENT_INSTALL, address, profile.iccid, pending)
    return Outcome(
        OK,
        "ok",
        attrs.evolve(
            state,
            profiles=(*state.profiles, new),
            notifications=(*state.notifications, note),
            next_seq=seq + 1,
        ),
    )


def _move(
    state: EuiccState,
    operation: Operation,
    ref: ProfileRef,
    signer: NotificationSigner,
) -> Outcome:
    profile = state.find(ref)
    status = ProfileStatus.ABSENT if profile is None else profile.status
    cell = lookup(operation, status)
    if not cell.allowed or profile is None:
        return Outcome(cell.result, cell.result_name, state)
    if cell.guard is not None and cell.guard in profile.ppr:
        return Outcome(DISALLOWED_BY_POLICY, "disallowedByPolicy", state)
    target = cell.target
    assert target is not None
    new = None if target is ProfileStatus.ABSENT else attrs.evolve(profile, status=target)
    after = attrs.evolve(state, profiles=_replace(state, profile, new))
    return Outcome(OK, "ok", _notify(after, profile, cell.event, signer))


def enable(state: EuiccState, ref: ProfileRef, signer: NotificationSigner) -> Outcome:
    """ES10c.EnableProfile: disable the enabled profile (its PPR1 applies), enable ``ref``."""
    cell = lookup(Operation.ENABLE, state.status_of(ref))
    if not cell.allowed:
        return Outcome(cell.result, cell.result_name, state)
    current = state.enabled
    if current is not None:
        off = _move(state, Operation.DISABLE, ProfileRef(iccid=current.iccid), signer)
        if not off.ok:
            return Outcome(off.result, off.result_name, state)
        state_after_off = off.state
    else:
        state_after_off = state
    on = _move(state_after_off, Operation.ENABLE, ref, signer)
    return on if on.ok else Outcome(on.result, on.result_name, state)


def disable(state: EuiccState, ref: ProfileRef, signer: NotificationSigner) -> Outcome:
    """ES10c.DisableProfile."""
    return _move(state, Operation.DISABLE, ref, signer)


def delete(state: EuiccState, ref: ProfileRef, signer: NotificationSigner) -> Outcome:
    """ES10c.DeleteProfile."""
    return _move(state, Operation.DELETE, ref, signer)


def set_nickname(state: EuiccState, iccid: bytes, nickname: str) -> Outcome:
    """ES10c.SetNickname (an empty nickname clears it)."""
    ref = ProfileRef(iccid=iccid)
    profile = state.find(ref)
    cell = lookup(Operation.SET_NICKNAME, state.status_of(ref))
    if not cell.allowed or profile is None:
        return Outcome(cell.result, cell.result_name, state)
    new = attrs.evolve(profile, nickname=nickname or None)
    return Outcome(OK, "ok", attrs.evolve(state, profiles=_replace(state, profile, new)))


def memory_reset(
    state: EuiccState,
    *,
    operational: bool,
    test: bool,
    default_dp_address: bool,
) -> Outcome:
    """ES10c.eUICCMemoryReset: delete operational and/or test profiles, reset the default SM-DP+.

    PPRs do not apply and no notification is produced.  Result ``1``
    (``nothingToDelete``) when nothing changed.
    """
    classes = set()
    if operational:
        classes.add(2)
    if test:
        classes.add(0)
    kept = tuple(p for p in state.profiles if p.profile_class not in classes)
    after = attrs.evolve(state, profiles=kept)
    if default_dp_address:
        after = attrs.evolve(after, default_dp_address=None)
    if after == state:
        return Outcome(1, "nothingToDelete", state)
    return Outcome(OK, "ok", after)


def remove_notification(state: EuiccState, seq_number: int) -> Outcome:
    """ES10b.RemoveNotificationFromList (``1`` = ``nothingToDelete``)."""
    kept = tuple(n for n in state.notifications if n.seq_number != seq_number)
    if len(kept) == len(state.notifications):
        return Outcome(1, "nothingToDelete", state)
    return Outcome(OK, "ok", attrs.evolve(state, notifications=kept))
