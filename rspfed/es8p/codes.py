"""``BppCommandId``, ``ErrorReason`` and the error raised while loading a BPP.

The eUICC reports a failed Bound Profile Package load in
``ProfileInstallationResultData.finalResult.errorResult`` (SGP.22 §5.7.6,
ES10b.LoadBoundProfilePackage) as the pair (``bppCommandId``,
``errorReason``): which ES8+ command of the BPP failed and why.
:class:`BppError` carries that pair; :data:`ERROR_REASONS` lists, per command,
the reasons SGP.22 lets it report, and :data:`FAILURE_REASONS` how each kind
of failure found by :class:`~rspfed.es8p.unbind.BppUnbinder` maps onto them.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from types import MappingProxyType

from rspfed.errors import ProtocolError

__all__ = [
    "ERROR_REASONS",
    "FAILURE_REASONS",
    "BppCommandId",
    "BppError",
    "ErrorReason",
]


class BppCommandId(enum.IntEnum):
    """SGP.22 ``BppCommandId``: the ES8+ command of a BPP that failed.

    Member names are the ASN.1 identifiers, so ``member.name`` is the value
    asn1crypto accepts and ``.native`` returns.
    """

    initialiseSecureChannel = 0
    configureISDP = 1
    storeMetadata = 2
    storeMetadata2 = 3
    replaceSessionKeys = 4
    loadProfileElements = 5


class ErrorReason(enum.IntEnum):
    """SGP.22 ``ErrorReason`` of a ``ProfileInstallationResult`` ``errorResult``."""

    incorrectInputValues = 1
    invalidSignature = 2
    invalidTransactionId = 3
    unsupportedCrtValues = 4
    unsupportedRemoteOperationType = 5
    unsupportedProfileClass = 6
    scp03tStructureError = 7
    scp03tSecurityError = 8
    installFailedDueToIccidAlreadyExistsOnEuicc = 9
    installFailedDueToInsufficientMemoryForProfile = 10
    installFailedDueToInterruption = 11
    installFailedDueToPEProcessingError = 12
    installFailedDueToIccidMismatch = 13
    testProfileInstallFailedDueToInvalidNaaKey = 14
    pprNotAllowed = 15
    installFailedDueToUnknownError = 127


_C = BppCommandId
_R = ErrorReason
_COMMON = frozenset(
    {
        _R.incorrectInputValues,
        _R.scp03tStructureError,
        _R.scp03tSecurityError,
        _R.installFailedDueToInsufficientMemoryForProfile,
        _R.installFailedDueToInterruption,
        _R.installFailedDueToUnknownError,
    }
)

ERROR_REASONS: Mapping[BppCommandId, frozenset[ErrorReason]] = MappingProxyType(
    {
        _C.initialiseSecureChannel: frozenset(
            {
                _R.incorrectInputValues,
                _R.invalidSignature,
                _R.invalidTransactionId,
                _R.unsupportedCrtValues,
                _R.unsupportedRemoteOperationType,
                _R.installFailedDueToInsufficientMemoryForProfile,
                _R.installFailedDueToInterruption,
                _R.installFailedDueToUnknownError,
            }
        ),
        _C.configureISDP: _COMMON,
        _C.storeMetadata: _COMMON
        | {
            _R.unsupportedProfileClass,
            _R.installFailedDueToIccidAlreadyExistsOnEuicc,
            _R.pprNotAllowed,
        },
        _C.storeMetadata2: _COMMON
        | {
            _R.unsupportedProfileClass,
            _R.installFailedDueToIccidAlreadyExistsOnEuicc,
            _R.pprNotAllowed,
        },
        _C.replaceSessionKeys: _COMMON,
        _C.loadProfileElements: _COMMON
        | {
            _R.installFailedDueToPEProcessingError,
            _R.installFailedDueToIccidMismatch,
            _R.testProfileInstallFailedDueToInvalidNaaKey,
        },
    }
)
"""Per BPP command, the ``errorReason`` values it may report (SGP.22 §2.5.6, §5.5, §5.7.6).

Informative: the tests check that every error :class:`~rspfed.es8p.unbind.BppUnbinder`
raises is in this table; :class:`BppError` itself accepts any pair.
"""

FAILURE_REASONS: Mapping[str, ErrorReason] = MappingProxyType(
    {
        # InitialiseSecureChannelRequest (command 0), checked in this order
        "malformed": _R.incorrectInputValues,
        "remoteOpId": _R.unsupportedRemoteOperationType,
        "transactionId": _R.invalidTransactionId,
        "controlRefTemplate": _R.unsupportedCrtValues,
        "smdpSign": _R.invalidSignature,
        "smdpOtpk": _R.incorrectInputValues,
        # BSP segments and their enclosing sequences (commands 1-5)
        "segment-structure": _R.scp03tStructureError,
        "segment-mac": _R.scp03tSecurityError,
        "content": _R.incorrectInputValues,
        "profile-elements": _R.installFailedDueToPEProcessingError,
    }
)
"""How each check of :class:`~rspfed.es8p.unbind.BppUnbinder` maps to an ``errorReason``.

``malformed``: a TLV or DER error in the InitialiseSecureChannelRequest block;
``remoteOpId`` ≠ installBoundProfilePackage(1); ``transactionId`` ≠ the
session's; ``controlRefTemplate`` other than keyType '88' / keyLen '10';
``smdpSign`` not verifying under PK.DPpb.ECDSA; ``smdpOtpk`` not a point on
the eUICC's curve.  ``segment-structure``: a block that is not the expected
TLV(s), a length that does not match its enclosing sequence, a wrong tag, a
segment over 1020 octets or not a multiple of the block size;
``segment-mac``: a C-MAC that does not verify (tampering, reordering, replay,
a dropped segment); ``content``: a verified command whose plaintext is not
the DER of its request type (ConfigureISDPRequest, StoreMetadataRequest,
ReplaceSessionKeysRequest); ``profile-elements``: plaintext of the '86'
segments that does not end on a whole TLV.
"""


class BppError(ProtocolError):
    """Loading a Bound Profile Package failed at ``bpp_command_id`` for ``error_reason``.

    A :class:`~rspfed.errors.ProtocolError` (the BPP or the peer is bad).  The
    underlying :class:`~rspfed.errors.IntegrityError`,
    :class:`~rspfed.errors.SignatureError` or
    :class:`~rspfed.errors.DecodeError`, if any, is its ``__cause__``.  The
    message never contains key material or MAC values.
    """

    def __init__(
        self, bpp_command_id: BppCommandId, error_reason: ErrorReason, detail: str = ""
    ) -> None:
        bpp_command_id = BppCommandId(bpp_command_id)
        error_reason = ErrorReason(error_reason)
        self.bpp_command_id = bpp_command_id
        self.error_reason = error_reason
        self.detail = detail
        text = f"{bpp_command_id.name}: {error_reason.name}"
        super().__init__(f"{text}: {detail}" if detail else text)
