"""The SGP.22 RSP PKI: certificate roles, chain validation, CRLs, EIDs and a test PKI.

See ``docs/pki.md``.
"""

from rspfed.crypto.curves import Curve
from rspfed.pki.eid import eid_in_range, generate_eid, is_valid_eid, validate_eid
from rspfed.pki.roles import CertificateRole
from rspfed.pki.validate import (
    RspCertificate,
    RspCrl,
    ValidatedChain,
    parse_certificate,
    parse_crl,
    verify_chain,
)

__all__ = [
    "CertificateRole",
    "Curve",
    "RspCertificate",
    "RspCrl",
    "ValidatedChain",
    "eid_in_range",
    "generate_eid",
    "is_valid_eid",
    "parse_certificate",
    "parse_crl",
    "validate_eid",
    "verify_chain",
]
