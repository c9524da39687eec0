"""ES9+ (LPA ↔ SM-DP+) and the JSON binding of GSMA functions (SGP.22 §5.6, §6.5).

Shared by the SM-DP+ server (:mod:`rspfed.smdp`) and the LPA's client
(:mod:`rspfed.lpa`), so both spell every field and status code one way:

* :mod:`rspfed.es9p.messages`: the request/response value types, the URL paths
  (``/gsma/rsp2/es9plus/<function>``) and ``X-Admin-Protocol``;
* :mod:`rspfed.es9p.codec`: strict JSON encode/decode (base64 DER fields, hex
  ``transactionId``, ``header.functionExecutionStatus``);
* :mod:`rspfed.es9p.codes`: subject/reason codes and the mapping of a
  ``Failed`` status onto :class:`rspfed.errors.FunctionExecutionError` subclasses.

Example::

    body = encode_request(InitiateAuthenticationRequest(challenge, info1, "smdp.example"))
    # ... POST to FUNCTIONS["initiateAuthentication"].path ...
    resp = decode_response(InitiateAuthenticationResponse, answer)  # or MatchingIdError...
"""

from __future__ import annotations

from rspfed.es9p.codec import (
    DEFAULT_MAX_SIZE,
    MAX_DEPTH,
    decode_fields,
    decode_request,
    decode_response,
    encode_fields,
    encode_request,
    encode_response,
    execution_status_json,
    parse_body,
    parse_execution_status,
    status_body,
)
from rspfed.es9p.codes import (
    EXECUTED_SUCCESS,
    EXECUTED_WITH_WARNING,
    EXPIRED,
    FAILED,
    REASON_CODES,
    SUBJECT_CODES,
    Status,
    StatusCodeData,
    function_execution_error,
)
from rspfed.es9p.messages import (
    ADMIN_PROTOCOL,
    FUNCTIONS,
    PATH_PREFIX,
    AuthenticateClientRequest,
    AuthenticateClientResponse,
    CancelSessionRequest,
    CancelSessionResponse,
    Es9Function,
    GetBoundProfilePackageRequest,
    GetBoundProfilePackageResponse,
    HandleNotificationRequest,
    InitiateAuthenticationRequest,
    InitiateAuthenticationResponse,
    Message,
)

__all__ = [
    "ADMIN_PROTOCOL",
    "DEFAULT_MAX_SIZE",
    "EXECUTED_SUCCESS",
    "EXECUTED_WITH_WARNING",
    "EXPIRED",
    "FAILED",
    "FUNCTIONS",
    "MAX_DEPTH",
    "PATH_PREFIX",
    "REASON_CODES",
    "SUBJECT_CODES",
    "AuthenticateClientRequest",
    "AuthenticateClientResponse",
    "CancelSessionRequest",
    "CancelSessionResponse",
    "Es9Function",
    "GetBoundProfilePackageRequest",
    "GetBoundProfilePackageResponse",
    "HandleNotificationRequest",
    "InitiateAuthenticationRequest",
    "InitiateAuthenticationResponse",
    "Message",
    "Status",
    "StatusCodeData",
    "decode_fields",
    "decode_request",
    "decode_response",
    "encode_fields",
    "encode_request",
    "encode_response",
    "execution_status_json",
    "function_execution_error",
    "parse_body",
    "parse_execution_status",
    "status_body",
]
