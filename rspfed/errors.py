"""The rspfed exception family.

Every error that rspfed raises on purpose is an :class:`RspfedError`.  The
family is split the way h11 splits ``LocalProtocolError`` from
``RemoteProtocolError``, so that a caller can tell *whose* fault a failure is:

``LocalError``
    The caller misused the API: a value that cannot be encoded, a missing
    argument, an operation asked for in a state that does not allow it.  Fix
    the calling code.

``RemoteError``
    The input or the peer is bad: malformed DER, a wrong MAC or signature, an
    untrusted, expired, revoked or wrong-role certificate, a message that the
    protocol does not allow at this point.  Reject the input; our own state is
    unchanged.

``PolicyError``
    A well-formed request that a rule refuses (a Profile Policy Rule, a device
    limit, a token's scope).  Neither side is broken; the answer is "no".

``TransportError``
    The link failed (connection cut, time-out).  A retry may succeed.

``StorageError``
    A store could not be read or written, or has a schema this version does
    not know.

Exception text never contains secrets (keys, MAC values, codes): messages name
the type, field, byte offset or reason, never the secret material.

Tree::

    RspfedError
    ├── LocalError
    │   ├── EncodeError
    │   ├── UsageError
    │   └── StateError
    ├── RemoteError
    │   ├── DecodeError
    │   ├── CertificateError
    │   │   ├── UntrustedCertificateError
    │   │   ├── CertificateExpiredError
    │   │   ├── CertificateRevokedError
    │   │   └── CertificateRoleError
    │   ├── SignatureError
    │   ├── IntegrityError
    │   ├── ProtocolError
    │   │   └── ReplayError              (a single-use value seen again)
    │   ├── NotFoundError                (an id the peer names is unknown)
    │   └── FunctionExecutionError      (a GSMA function answered "Failed")
    │       ├── EuiccVerificationError   (subjects 8.1, 8.1.2, 8.1.3, 8.11.1)
    │       ├── EidError                 (8.1.1)
    │       ├── ProfileError             (8.2, 8.2.1, 8.2.5)
    │       ├── MatchingIdError          (8.2.6)
    │       ├── ConfirmationCodeError    (8.2.7)
    │       ├── ServerConfigurationError (8.8, 8.8.1-8.8.4)
    │       ├── DownloadOrderError       (8.8.5)
    │       └── TransactionIdError       (8.10.1)
    ├── PolicyError
    │   ├── AuthorizationError           (the caller may not do this)
    │   ├── DeviceLimitError             (a subscription's device limit reached)
    │   └── TokenError                   (a federation token refused)
    │       ├── TokenExpiredError
    │       ├── TokenNotYetValidError
    │       ├── TokenEidMismatchError
    │       ├── TokenConsumedError
    │       ├── TokenRevokedError
    │       └── TokenScopeError
    ├── TransportError
    └── StorageError
"""

from __future__ import annotations

__all__ = [
    "AuthorizationError",
    "CertificateError",
    "CertificateExpiredError",
    "CertificateRevokedError",
    "CertificateRoleError",
    "ConfirmationCodeError",
    "DecodeError",
    "DeviceLimitError",
    "DownloadOrderError",
    "EidError",
    "EncodeError",
    "EuiccVerificationError",
    "FunctionExecutionError",
    "IntegrityError",
    "LocalError",
    "MatchingIdError",
    "NotFoundError",
    "PolicyError",
    "ProfileError",
    "ProtocolError",
    "RemoteError",
    "ReplayError",
    "RspfedError",
    "ServerConfigurationError",
    "SignatureError",
    "StateError",
    "StorageError",
    "TokenConsumedError",
    "TokenEidMismatchError",
    "TokenError",
    "TokenExpiredError",
    "TokenNotYetValidError",
    "TokenRevokedError",
    "TokenScopeError",
    "TransactionIdError",
    "TransportError",
    "UntrustedCertificateError",
    "UsageError",
]


class RspfedError(Exception):
    """Root of every exception rspfed raises on purpose."""


# --------------------------------------------------------------------------
# The caller's mistakes


class LocalError(RspfedError):
    """The caller misused the API (our side is at fault, not the peer)."""


class EncodeError(LocalError):
    """A value cannot be encoded: it does not fit its ASN.1 type or constraints.

    ``type_name`` names the ASN.1 type (or field path) that refused the value.
    """

    def __init__(self, message: str, *, type_name: str | None = None) -> None:
        self.type_name = type_name
        super().__init__(f"{type_name}: {message}" if type_name else message)


class UsageError(LocalError):
    """Bad arguments or configuration given to an rspfed function."""


class StateError(LocalError):
    """The operation is not allowed in the object's current state."""


# --------------------------------------------------------------------------
# Bad input, bad peers


class RemoteError(RspfedError):
    """The input or the peer is bad; our own state is left unchanged."""


class DecodeError(RemoteError):
    """Malformed or non-DER input.

    ``type_name`` is the ASN.1 type being decoded (the innermost one known) and
    ``offset`` the byte offset in the input where the problem was found.
    """

    def __init__(
        self,
        message: str,
        *,
        type_name: str | None = None,
        offset: int | None = None,
    ) -> None:
        self.type_name = type_name
        self.offset = offset
        where = []
        if type_name:
            where.append(type_name)
        if offset is not None:
            where.append(f"at byte {offset}")
        prefix = " ".join(where)
        super().__init__(f"{prefix}: {message}" if prefix else message)


class CertificateError(RemoteError):
    """A certificate or its chain is not acceptable; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


class UntrustedCertificateError(CertificateError):
    """The chain does not lead to a trusted CI, or a signature in it is wrong."""


class CertificateExpiredError(CertificateError):
    """A certificate (or CRL) is outside its validity period at the given time."""


class CertificateRevokedError(CertificateError):
    """A certificate in the chain is listed on a CRL."""


class CertificateRoleError(CertificateError):
    """A certificate is used in a role it was not issued for (policy, key usage)."""


class SignatureError(RemoteError):
    """A signature over a message does not verify."""


class IntegrityError(RemoteError):
    """A MAC or other integrity check failed."""


class ProtocolError(RemoteError):
    """The peer sent a well-formed message that the protocol does not allow here
    (wrong state, wrong transaction id, unexpected or replayed message)."""


class ReplayError(ProtocolError):
    """A single-use value (request nonce, EAP answer, join secret) was presented again."""


class NotFoundError(RemoteError):
    """The request names a subscription, device, request or session that is unknown."""


class FunctionExecutionError(RemoteError):
    """A GSMA function (ES9+, ES2+, ...) answered ``functionExecutionStatus``
    ``Failed`` (or ``Expired``).

    ``subject_code`` and ``reason_code`` are the SGP.22 codes as sent (for
    example ``"8.2.6"`` and ``"3.8"``: Matching ID refused);
    ``subject_identifier`` is optional and ``function`` names the function that
    failed.  The subclasses group the subjects a caller typically handles;
    :func:`rspfed.es9p.function_execution_error` picks the right one.
    """

    def __init__(
        self,
        message: str,
        *,
        subject_code: str,
        reason_code: str,
        subject_identifier: str | None = None,
        function: str | None = None,
        status: str = "Failed",
    ) -> None:
        self.subject_code = subject_code
        self.reason_code = reason_code
        self.subject_identifier = subject_identifier
        self.function = function
        self.status = status
        where = f"{function}: " if function else ""
        super().__init__(f"{where}{subject_code}/{reason_code} {message}".rstrip())


class EuiccVerificationError(FunctionExecutionError):
    """The server refused the eUICC: signature, certificates or CI (8.1, 8.1.2, 8.1.3, 8.11.1)."""


class EidError(FunctionExecutionError):
    """The EID is refused, e.g. not the one an EID-bound order names (8.1.1)."""


class ProfileError(FunctionExecutionError):
    """No profile for this request: not released, unavailable, none eligible (8.2, 8.2.1, 8.2.5)."""


class MatchingIdError(FunctionExecutionError):
    """The matchingId is unknown, already used or refused (8.2.6)."""


class ConfirmationCodeError(FunctionExecutionError):
    """The confirmation code is missing, wrong, or was tried too often (8.2.7)."""


class ServerConfigurationError(FunctionExecutionError):
    """The server cannot serve this eUICC or address: SM-DP+ address, security
    configuration, specification version, certificate (8.8, 8.8.1-8.8.4)."""


class DownloadOrderError(FunctionExecutionError):
    """The download order expired or ran out of attempts (8.8.5)."""


class TransactionIdError(FunctionExecutionError):
    """The RSP session (transactionId) is unknown or expired (8.10.1)."""


# --------------------------------------------------------------------------
# Refusals and the environment


class PolicyError(RspfedError):
    """A rule refuses an otherwise valid request (PPR, device limit, scope)."""


class TokenError(PolicyError):
    """A federation token with a valid signature is refused (window, EID)."""


class TokenExpiredError(TokenError):
    """The federation token's ``notAfter`` has passed."""


class TokenNotYetValidError(TokenError):
    """The federation token's ``notBefore`` is still in the future."""


class TokenEidMismatchError(TokenError):
    """The federation token names another EID than the presenting eUICC's."""


class TokenConsumedError(TokenError):
    """The federation token was already used (tokens are single-use)."""


class TokenRevokedError(TokenError):
    """The federation token, or the key that signed it, was revoked."""


class TokenScopeError(TokenError):
    """The token asks for a class, service or quota its subscription's plan does not allow."""


class DeviceLimitError(PolicyError):
    """The subscription already has as many devices as its plan allows."""


class AuthorizationError(PolicyError):
    """The authenticated caller may not do this (e.g. a secondary managing devices)."""


class TransportError(RspfedError):
    """The transport failed: connection refused or cut, time-out."""


class StorageError(RspfedError):
    """A store cannot be read or written, or has an unknown schema version."""
