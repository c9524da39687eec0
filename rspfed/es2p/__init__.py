"""ES2+ (Operator ↔ SM-DP+, SGP.22 §5.3, JSON binding §6.5.2).

* :mod:`rspfed.es2p.messages`: DownloadOrder, ConfirmOrder, CancelOrder,
  ReleaseProfile and HandleDownloadProgressInfo as ``attrs`` value types,
  the request :class:`RequestHeader` and the URL paths
  (``/gsma/rsp2/es2plus/<function>``);
* :mod:`rspfed.es2p.codec`: strict JSON encode/decode on top of
  :mod:`rspfed.es9p.codec` (header, identifiers, ``notificationPointStatus``);
* :mod:`rspfed.es2p.client`: :class:`Es2Client`, an asynchronous operator
  client over HTTPS with a TLS client certificate (mutual TLS).

The ``X-Admin-Protocol`` header and the status codes are ES9+'s
(:data:`rspfed.es9p.ADMIN_PROTOCOL`, :class:`rspfed.es9p.Status`).
"""

from __future__ import annotations

from rspfed.es2p.client import Es2Client, client_ssl_context
from rspfed.es2p.codec import (
    MAX_IDENTIFIER,
    decode_es2_request,
    decode_es2_response,
    encode_es2_request,
    format_timestamp,
    parse_timestamp,
)
from rspfed.es2p.messages import (
    FINAL_PROFILE_STATUS_INDICATORS,
    FUNCTIONS,
    NOTIFICATION_POINTS,
    PATH_PREFIX,
    CancelOrderRequest,
    CancelOrderResponse,
    ConfirmOrderRequest,
    ConfirmOrderResponse,
    DownloadOrderRequest,
    DownloadOrderResponse,
    Es2Function,
    Es2Message,
    HandleDownloadProgressInfoRequest,
    HeaderOnlyResponse,
    NotificationPointStatus,
    ReleaseProfileRequest,
    ReleaseProfileResponse,
    RequestHeader,
)

__all__ = [
    "FINAL_PROFILE_STATUS_INDICATORS",
    "FUNCTIONS",
    "MAX_IDENTIFIER",
    "NOTIFICATION_POINTS",
    "PATH_PREFIX",
    "CancelOrderRequest",
    "CancelOrderResponse",
    "ConfirmOrderRequest",
    "ConfirmOrderResponse",
    "DownloadOrderRequest",
    "DownloadOrderResponse",
    "Es2Client",
    "Es2Function",
    "Es2Message",
    "HandleDownloadProgressInfoRequest",
    "HeaderOnlyResponse",
    "NotificationPointStatus",
    "ReleaseProfileRequest",
    "ReleaseProfileResponse",
    "RequestHeader",
    "client_ssl_context",
    "decode_es2_request",
    "decode_es2_response",
    "encode_es2_request",
    "format_timestamp",
    "parse_timestamp",
]
