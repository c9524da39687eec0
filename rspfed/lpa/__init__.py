"""The Local Profile Assistant (SGP.22 LPAd): activation codes, ES10 links, ES9+, downloads.

* :mod:`rspfed.lpa.activation`: :class:`ActivationCode` (parse, validate, QR);
* :mod:`rspfed.lpa.es10`: the :class:`Es10` link to the eUICC (in process,
  APDUs, PC/SC);
* :mod:`rspfed.lpa.es9`: :class:`Es9Client`, ES9+ over HTTPS with SGP.22 v2
  TLS trust;
* :mod:`rspfed.lpa.download`: :func:`download` (SGP.22 §3.1.3);
* :mod:`rspfed.lpa.lpa`: :class:`Lpa`, profile operations and notifications.

See ``docs/lpa.md``.
"""

from __future__ import annotations

from rspfed.lpa.activation import AC_PREFIX, ActivationCode
from rspfed.lpa.download import (
    CancelSessionReason,
    Consent,
    DeviceInfo,
    DownloadResult,
    DownloadStep,
    ProfileMetadata,
    download,
)
from rspfed.lpa.es9 import Es9, Es9Client, Es9Settings, check_server_certificate, tls_context
from rspfed.lpa.es10 import ISD_R_AID, ApduEs10, Es10, InProcessEs10, PcscEs10
from rspfed.lpa.lpa import Lpa, ProfileInfo, store_ci_certificates
from rspfed.lpa.notifications import Delivery, Notification

__all__ = [
    "AC_PREFIX",
    "ISD_R_AID",
    "ActivationCode",
    "ApduEs10",
    "CancelSessionReason",
    "Consent",
    "Delivery",
    "DeviceInfo",
    "DownloadResult",
    "DownloadStep",
    "Es9",
    "Es9Client",
    "Es9Settings",
    "Es10",
    "InProcessEs10",
    "Lpa",
    "Notification",
    "PcscEs10",
    "ProfileInfo",
    "ProfileMetadata",
    "check_server_certificate",
    "download",
    "store_ci_certificates",
    "tls_context",
]
