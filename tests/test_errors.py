"""The exception family: whose fault, and what the message says."""

from __future__ import annotations

import inspect

import pytest

from rspfed import errors
from rspfed.errors import (
    CertificateError,
    CertificateExpiredError,
    CertificateRevokedError,
    CertificateRoleError,
    DecodeError,
    EncodeError,
    LocalError,
    RemoteError,
    RspfedError,
    UntrustedCertificateError,
)


def test_every_public_exception_is_an_rspfed_error() -> None:
    exported = [getattr(errors, name) for name in errors.__all__]
    classes = [obj for obj in exported if inspect.isclass(obj)]
    assert len(classes) == len(errors.__all__)
    assert all(issubclass(cls, RspfedError) for cls in classes)
    # every class defined in the module is exported
    defined = {
        name for name, obj in vars(errors).items()
        if inspect.isclass(obj) and obj.__module__ == errors.__name__
    }
    assert defined == set(errors.__all__)


def test_local_and_remote_are_disjoint() -> None:
    for name in errors.__all__:
        cls = getattr(errors, name)
        assert not (issubclass(cls, LocalError) and issubclass(cls, RemoteError)), name


@pytest.mark.parametrize(
    "cls",
    [UntrustedCertificateError, CertificateExpiredError, CertificateRevokedError,
     CertificateRoleError],
)
def test_certificate_reasons_are_certificate_errors(cls: type[CertificateError]) -> None:
    exc = cls("EUM certificate expired on 2026-08-02")
    assert isinstance(exc, CertificateError)
    assert isinstance(exc, RemoteError)
    assert exc.reason == "EUM certificate expired on 2026-08-02"


def test_decode_error_names_type_and_offset() -> None:
    exc = DecodeError("non-minimal length", type_name="EUICCInfo1", offset=17)
    assert (exc.type_name, exc.offset) == ("EUICCInfo1", 17)
    assert str(exc) == "EUICCInfo1 at byte 17: non-minimal length"
    assert str(DecodeError("truncated")) == "truncated"
    assert str(DecodeError("truncated", offset=0)) == "at byte 0: truncated"


def test_encode_error_is_the_callers_fault() -> None:
    exc = EncodeError("SIZE(16) violated", type_name="Octet16")
    assert isinstance(exc, LocalError)
    assert str(exc) == "Octet16: SIZE(16) violated"
