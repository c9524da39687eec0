"""The ES9+ JSON codec: round trips, SGP.22 field names, strict decoding."""

from __future__ import annotations

import base64
import json

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from rspfed import es9p
from rspfed.errors import (
    ConfirmationCodeError,
    DecodeError,
    FunctionExecutionError,
    MatchingIdError,
    TransactionIdError,
)

REQUESTS = [f.request for f in es9p.FUNCTIONS.values()]
RESPONSES = [f.response for f in es9p.FUNCTIONS.values() if f.response is not None]


def _strategy(cls: type[attrs.AttrsInstance]) -> st.SearchStrategy[attrs.AttrsInstance]:
    kinds = {
        "b64": st.binary(max_size=300),
        "hex": st.binary(min_size=1, max_size=16),
        "str": st.text(max_size=40),
    }
    return st.builds(cls, **{f.name: kinds[f.metadata["kind"]] for f in attrs.fields(cls)})


@pytest.mark.parametrize("cls", REQUESTS + RESPONSES, ids=lambda c: c.__name__)
@given(data=st.data())
def test_round_trip(cls: type[attrs.AttrsInstance], data: st.DataObject) -> None:
    message = data.draw(_strategy(cls))
    if cls in REQUESTS:
        assert es9p.decode_request(cls, es9p.encode_request(message)) == message
    body = es9p.encode_response(message)
    assert es9p.decode_response(cls, body) == message
    header = json.loads(body)["header"]
    assert header == {"functionExecutionStatus": {"status": "Executed-Success"}}


def test_field_names_are_sgp22() -> None:
    """The JSON members as SGP.22 §6.5.2 spells them (written out by hand here)."""
    expected = {
        "initiateAuthentication": (
            {"euiccChallenge", "euiccInfo1", "smdpAddress"},
            {
                "transactionId",
                "serverSigned1",
                "serverSignature1",
                "euiccCiPKIdToBeUsed",
                "serverCertificate",
            },
        ),
        "authenticateClient": (
            {"transactionId", "authenticateServerResponse"},
            {
                "transactionId",
                "profileMetadata",
                "smdpSigned2",
                "smdpSignature2",
                "smdpCertificate",
            },
        ),
        "getBoundProfilePackage": (
            {"transactionId", "prepareDownloadResponse"},
            {"transactionId", "boundProfilePackage"},
        ),
        "handleNotification": ({"pendingNotification"}, None),
        "cancelSession": ({"transactionId", "cancelSessionResponse"}, set()),
    }
    assert set(es9p.FUNCTIONS) == set(expected)
    for name, (req, resp) in expected.items():
        f = es9p.FUNCTIONS[name]
        assert f.path == f"/gsma/rsp2/es9plus/{name}"
        assert {a.metadata["json"] for a in attrs.fields(f.request)} == req
        if resp is None:
            assert f.response is None
        else:
            assert f.response is not None
            assert {a.metadata["json"] for a in attrs.fields(f.response)} == resp


def test_transaction_id_is_upper_hex() -> None:
    msg = es9p.AuthenticateClientRequest(bytes.fromhex("0a1b"), b"\x30\x00")
    obj = json.loads(es9p.encode_request(msg))
    assert obj["transactionId"] == "0A1B"
    assert obj["authenticateServerResponse"] == base64.b64encode(b"\x30\x00").decode()
    obj["transactionId"] = "0a1b"
    again = es9p.decode_request(es9p.AuthenticateClientRequest, json.dumps(obj).encode())
    assert again == msg


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\xff\xfe",
        b"[]",
        b'"x"',
        b"{",
        b"[" * 10000 + b"]" * 10000,
        b'{"a":' * 50 + b"1" + b"}" * 50,
        b'{"transactionId":"0A"}',
        b'{"transactionId":"0A","authenticateServerResponse":1}',
        b'{"transactionId":"0A","authenticateServerResponse":"MAA"}',
        b'{"transactionId":"0A","authenticateServerResponse":"MA A="}',
        b'{"transactionId":"0A","authenticateServerResponse":"MAB="}',
        b'{"transactionId":"0","authenticateServerResponse":"MAA="}',
        b'{"transactionId":"ZZ","authenticateServerResponse":"MAA="}',
        b'{"transactionId":"' + b"00" * 17 + b'","authenticateServerResponse":"MAA="}',
        b'{"transactionId":"","authenticateServerResponse":"MAA="}',
    ],
)
def test_malformed_requests_are_decode_errors(body: bytes) -> None:
    with pytest.raises(DecodeError):
        es9p.decode_request(es9p.AuthenticateClientRequest, body)


def test_size_limit() -> None:
    msg = es9p.HandleNotificationRequest(b"\x00" * 1000)
    body = es9p.encode_request(msg)
    assert es9p.decode_request(es9p.HandleNotificationRequest, body) == msg
    with pytest.raises(DecodeError):
        es9p.decode_request(es9p.HandleNotificationRequest, body, max_size=len(body) - 1)


@given(st.binary(max_size=200))
def test_random_bodies_raise_only_decode_error(body: bytes) -> None:
    for cls in REQUESTS:
        try:
            message = es9p.decode_request(cls, body)
        except DecodeError:
            continue
        # whatever decodes re-encodes to an equal message
        assert es9p.decode_request(cls, es9p.encode_request(message)) == message


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (es9p.Status.MATCHING_ID_REFUSED, MatchingIdError),
        (es9p.Status.CONFIRMATION_CODE_RETRIES_EXCEEDED, ConfirmationCodeError),
        (es9p.Status.TRANSACTION_ID_UNKNOWN, TransactionIdError),
        (es9p.StatusCodeData("9.9", "9.9"), FunctionExecutionError),
    ],
)
def test_failed_status_raises_by_subject(
    status: es9p.StatusCodeData, cls: type[FunctionExecutionError]
) -> None:
    body = es9p.encode_response(None, failure=status)
    obj = json.loads(body)
    assert obj == {
        "header": {
            "functionExecutionStatus": {
                "status": "Failed",
                "statusCodeData": {
                    "subjectCode": status.subject_code,
                    "reasonCode": status.reason_code,
                },
            }
        }
    }
    with pytest.raises(cls) as info:
        es9p.decode_response(
            es9p.GetBoundProfilePackageResponse, body, function="getBoundProfilePackage"
        )
    assert type(info.value) is cls
    assert info.value.subject_code == status.subject_code
    assert info.value.reason_code == status.reason_code
    assert info.value.function == "getBoundProfilePackage"


def test_peer_message_not_in_exception_text() -> None:
    data = es9p.StatusCodeData("8.2.6", "3.8", message="secret-ish peer text")
    with pytest.raises(MatchingIdError) as info:
        es9p.decode_response(
            es9p.AuthenticateClientResponse, es9p.encode_response(None, failure=data)
        )
    assert "peer text" not in str(info.value)


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        b'{"header":{}}',
        b'{"header":{"functionExecutionStatus":{"status":"Weird"}}}',
        b'{"header":{"functionExecutionStatus":{"status":"Failed","statusCodeData":3}}}',
    ],
)
def test_malformed_responses(body: bytes) -> None:
    with pytest.raises(DecodeError):
        es9p.decode_response(es9p.CancelSessionResponse, body)
