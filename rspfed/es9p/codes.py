"""SGP.22 status codes: ``functionExecutionStatus`` and subject/reason codes.

SGP.22 (v2.2.2 and later) reports an application failure of an ES9+ or ES2+
function in the response header::

    "header": {"functionExecutionStatus": {
        "status": "Failed",
        "statusCodeData": {"subjectCode": "8.2.6", "reasonCode": "3.8",
                           "subjectIdentifier": "...", "message": "..."}}}

Subject codes name *what* failed (8.1 eUICC, 8.2.6 Matching ID, ...);
reason codes *why* (3.8 Refused, 6.4 Maximum number of retries exceeded, ...).
The tables below carry the codes SGP.22 §5.6 and §5.3 name for the functions
rspfed implements; :class:`Status` bundles the pairs servers raise so both the
SM-DP+ and the LPA spell them one way.
"""

from __future__ import annotations

from typing import Final

import attrs

from rspfed.errors import (
    ConfirmationCodeError,
    DownloadOrderError,
    EidError,
    EuiccVerificationError,
    FunctionExecutionError,
    MatchingIdError,
    ProfileError,
    ServerConfigurationError,
    TransactionIdError,
)

__all__ = [
    "EXECUTED_SUCCESS",
    "EXECUTED_WITH_WARNING",
    "EXPIRED",
    "FAILED",
    "REASON_CODES",
    "SUBJECT_CODES",
    "Status",
    "StatusCodeData",
    "function_execution_error",
]

EXECUTED_SUCCESS: Final = "Executed-Success"
EXECUTED_WITH_WARNING: Final = "Executed-WithWarning"
FAILED: Final = "Failed"
EXPIRED: Final = "Expired"

#: Subject codes (SGP.22 §5.2.6 / ES2+ and ES9+ function tables).
SUBJECT_CODES: Final[dict[str, str]] = {
    "1.1": "Function Requester",
    "1.2": "Function Provider",
    "1.6": "Function",
    "8.1": "eUICC",
    "8.1.1": "EID",
    "8.1.2": "EUM Certificate",
    "8.1.3": "eUICC Certificate",
    "8.2": "Profile",
    "8.2.1": "Profile ICCID",
    "8.2.5": "Profile Type",
    "8.2.6": "Matching ID",
    "8.2.7": "Confirmation Code",
    "8.8": "SM-DP+",
    "8.8.1": "SM-DP+ Address",
    "8.8.2": "Security configuration",
    "8.8.3": "Specification Version Number",
    "8.8.4": "SM-DP+ Certificate",
    "8.8.5": "Download order",
    "8.9": "SM-DS",
    "8.10.1": "TransactionId",
    "8.11.1": "CI Public Key",
}

#: Reason codes (SGP.22 §5.2.6).
REASON_CODES: Final[dict[str, str]] = {
    "1.1": "Unknown (authentication error)",
    "1.2": "Not allowed (authorisation error)",
    "2.1": "Invalid format",
    "2.2": "Mandatory element missing",
    "2.3": "Conditional element missing",
    "2.4": "Single use conflict",
    "3.1": "Unsupported",
    "3.3": "Already in use",
    "3.5": "Invalid destination",
    "3.7": "Unavailable",
    "3.8": "Refused",
    "3.9": "Unknown",
    "3.10": "Invalid association",
    "4.2": "Execution error",
    "4.3": "Stopped on warning",
    "4.8": "Insufficient memory",
    "4.10": "Time to live expired",
    "5.1": "Inaccessible",
    "5.2": "Timeout",
    "6.1": "Verification failed",
    "6.3": "Expired",
    "6.4": "Maximum number of retries exceeded",
}


@attrs.frozen
class StatusCodeData:
    """``statusCodeData`` of a failed function: subject and reason codes."""

    subject_code: str
    reason_code: str
    subject_identifier: str | None = None
    message: str | None = None

    def describe(self) -> str:
        """``"Matching ID - Refused"`` style text from the code tables."""
        subject = SUBJECT_CODES.get(self.subject_code, self.subject_code)
        reason = REASON_CODES.get(self.reason_code, self.reason_code)
        return f"{subject} - {reason}"


class Status:
    """The subject/reason pairs the SM-DP+ raises (SGP.22 §5.6.1-5.6.5, §5.3)."""

    # generic, any function
    INVALID_FORMAT = StatusCodeData("1.6", "2.1")
    MANDATORY_ELEMENT_MISSING = StatusCodeData("1.6", "2.2")
    REQUESTER_UNKNOWN = StatusCodeData("1.1", "1.1")
    REQUESTER_NOT_ALLOWED = StatusCodeData("1.1", "1.2")
    EXECUTION_ERROR = StatusCodeData("1.2", "4.2")
    # InitiateAuthentication
    SMDP_ADDRESS_REFUSED = StatusCodeData("8.8.1", "3.8")
    SECURITY_CONFIGURATION_UNSUPPORTED = StatusCodeData("8.8.2", "3.1")
    SPECIFICATION_VERSION_UNSUPPORTED = StatusCodeData("8.8.3", "3.1")
    NO_CERTIFICATE_FOR_CI = StatusCodeData("8.8.4", "3.7")
    # AuthenticateClient / GetBoundProfilePackage / CancelSession
    EUICC_VERIFICATION_FAILED = StatusCodeData("8.1", "6.1")
    EUM_CERTIFICATE_INVALID = StatusCodeData("8.1.2", "6.1")
    EUM_CERTIFICATE_EXPIRED = StatusCodeData("8.1.2", "6.3")
    EUICC_CERTIFICATE_INVALID = StatusCodeData("8.1.3", "6.1")
    EUICC_CERTIFICATE_EXPIRED = StatusCodeData("8.1.3", "6.3")
    CI_PUBLIC_KEY_UNKNOWN = StatusCodeData("8.11.1", "3.9")
    EID_REFUSED = StatusCodeData("8.1.1", "3.8")
    MATCHING_ID_REFUSED = StatusCodeData("8.2.6", "3.8")
    PROFILE_NOT_RELEASED = StatusCodeData("8.2", "1.2")
    PROFILE_UNAVAILABLE = StatusCodeData("8.2", "3.7")
    PROFILE_TYPE_NO_ELIGIBLE = StatusCodeData("8.2.5", "4.3")
    CONFIRMATION_CODE_MISSING = StatusCodeData("8.2.7", "2.2")
    CONFIRMATION_CODE_REFUSED = StatusCodeData("8.2.7", "3.8")
    CONFIRMATION_CODE_RETRIES_EXCEEDED = StatusCodeData("8.2.7", "6.4")
    DOWNLOAD_ORDER_EXPIRED = StatusCodeData("8.8.5", "4.10")
    DOWNLOAD_ORDER_ATTEMPTS_EXCEEDED = StatusCodeData("8.8.5", "6.4")
    TRANSACTION_ID_UNKNOWN = StatusCodeData("8.10.1", "3.9")
    # CancelSession: the signed smdpOid is not this SM-DP+'s
    SMDP_OID_INVALID_ASSOCIATION = StatusCodeData("8.8", "3.10")
    # ES2+ (operator side)
    ICCID_UNKNOWN = StatusCodeData("8.2.1", "3.9")
    ICCID_ALREADY_IN_USE = StatusCodeData("8.2.1", "3.3")
    ICCID_INVALID_ASSOCIATION = StatusCodeData("8.2.1", "3.10")
    EID_INVALID_ASSOCIATION = StatusCodeData("8.1.1", "3.10")
    MATCHING_ID_ALREADY_IN_USE = StatusCodeData("8.2.6", "3.3")
    PROFILE_TYPE_UNKNOWN = StatusCodeData("8.2.5", "3.9")
    PROFILE_TYPE_UNAVAILABLE = StatusCodeData("8.2.5", "3.7")


_BY_SUBJECT: Final[dict[str, type[FunctionExecutionError]]] = {
    "8.1": EuiccVerificationError,
    "8.1.2": EuiccVerificationError,
    "8.1.3": EuiccVerificationError,
    "8.11.1": EuiccVerificationError,
    "8.1.1": EidError,
    "8.2": ProfileError,
    "8.2.1": ProfileError,
    "8.2.5": ProfileError,
    "8.2.6": MatchingIdError,
    "8.2.7": ConfirmationCodeError,
    "8.8": ServerConfigurationError,
    "8.8.1": ServerConfigurationError,
    "8.8.2": ServerConfigurationError,
    "8.8.3": ServerConfigurationError,
    "8.8.4": ServerConfigurationError,
    "8.8.5": DownloadOrderError,
    "8.10.1": TransactionIdError,
}


def function_execution_error(
    data: StatusCodeData, *, function: str | None = None, status: str = FAILED
) -> FunctionExecutionError:
    """The :class:`~rspfed.errors.FunctionExecutionError` (subclass by subject) for ``data``.

    The server's free-text ``message`` is not copied into the exception text
    (it is the peer's and may be anything); the code tables describe it.
    """
    cls = _BY_SUBJECT.get(data.subject_code, FunctionExecutionError)
    return cls(
        data.describe(),
        subject_code=data.subject_code,
        reason_code=data.reason_code,
        subject_identifier=data.subject_identifier,
        function=function,
        status=status,
    )
