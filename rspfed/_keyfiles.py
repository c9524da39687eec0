"""Files that hold keys and certificates: atomic writes with the mode set first,
PKCS#8 PEM private keys with optional passphrase encryption.

Shared by the test PKI (:mod:`rspfed.pki.testpki`) and the SM-DP+ data
directory (:mod:`rspfed.smdp.datadir`).  Private keys are written mode 0600
before any byte reaches the file; a crash leaves the old file or the new one.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from rspfed.errors import StorageError, UsageError

__all__ = ["load_private_key_pem", "private_key_pem", "write_atomic"]


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, rename), with
    ``mode`` set before any byte is written."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def private_key_pem(key: ec.EllipticCurvePrivateKey, passphrase: bytes | None) -> bytes:
    """PKCS#8 PEM of ``key``, encrypted (``BestAvailableEncryption``) when a passphrase is given."""
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase)
        if passphrase
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def load_private_key_pem(
    data: bytes,
    passphrase: bytes | None,
    what: str,
    *,
    needs_passphrase: str = "a passphrase is needed",  # noqa: S107 - a message, not a secret
) -> ec.EllipticCurvePrivateKey:
    """The EC private key in the PEM ``data`` (``what`` names it in errors).

    :class:`UsageError` for a missing or wrong passphrase (``needs_passphrase``
    says how to give one), :class:`StorageError` for a key that is not EC.
    """
    try:
        key = serialization.load_pem_private_key(data, passphrase or None)
    except TypeError:
        if passphrase:
            raise UsageError(f"{what} is not encrypted but a passphrase was given") from None
        raise UsageError(f"{what} is encrypted: {needs_passphrase}") from None
    except ValueError:
        raise UsageError(f"{what}: wrong passphrase or corrupt key file") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise StorageError(f"{what} is not an EC private key")
    return key
