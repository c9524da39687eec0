"""RSP crypto building blocks, on ``cryptography`` only.

* :mod:`~rspfed.crypto.curves`: NIST P-256 and brainpoolP256r1, OIDs.
* :mod:`~rspfed.crypto.signature`: ECDSA/SHA-256 in SGP.22's plain ``r || s``
  form (BSI TR-03111), DER conversion.
* :mod:`~rspfed.crypto.ecka`: one-time key pairs from injected randomness,
  ECKA-DH (``ShS``), uncompressed point coding (``5F49``).
* :mod:`~rspfed.crypto.kdf`: X9.63 KDF and the BPP session keys (SGP.22 Annex G).
* :mod:`~rspfed.crypto.bsp`: BSP / SCP03t segment protection of a BPP.
* :mod:`~rspfed.crypto.milenage`, :mod:`~rspfed.crypto.testalg`,
  :mod:`~rspfed.crypto.aka`: MILENAGE, the TS 34.108 test algorithm, and
  AUTN / AUTS helpers over the shared :class:`AkaAlgorithm` interface.
"""

from rspfed.crypto.aka import (
    AkaAlgorithm,
    AkaOutputs,
    Autn,
    build_autn,
    build_auts,
    c2,
    c3,
    check_autn,
    check_auts,
)
from rspfed.crypto.bsp import (
    MAX_ENCRYPTED_DATA_SIZE,
    MAX_MAC_ONLY_DATA_SIZE,
    MAX_SEGMENT_SIZE,
    BspDecryptor,
    BspEncryptor,
)
from rspfed.crypto.curves import Curve
from rspfed.crypto.ecka import decode_public_key, ecka_dh, encode_public_key, generate_key_pair
from rspfed.crypto.kdf import SessionKeys, derive_session_keys, session_shared_info, x963_kdf
from rspfed.crypto.milenage import Milenage, MilenageF1, compute_opc
from rspfed.crypto.signature import der_to_raw, raw_to_der, sign, verify
from rspfed.crypto.testalg import TestAlgorithm

__all__ = [
    "MAX_ENCRYPTED_DATA_SIZE",
    "MAX_MAC_ONLY_DATA_SIZE",
    "MAX_SEGMENT_SIZE",
    "AkaAlgorithm",
    "AkaOutputs",
    "Autn",
    "BspDecryptor",
    "BspEncryptor",
    "Curve",
    "Milenage",
    "MilenageF1",
    "SessionKeys",
    "TestAlgorithm",
    "build_autn",
    "build_auts",
    "c2",
    "c3",
    "check_autn",
    "check_auts",
    "compute_opc",
    "decode_public_key",
    "der_to_raw",
    "derive_session_keys",
    "ecka_dh",
    "encode_public_key",
    "generate_key_pair",
    "raw_to_der",
    "session_shared_info",
    "sign",
    "verify",
    "x963_kdf",
]
