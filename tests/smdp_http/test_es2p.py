"""ES2+ JSON messages: SGP.22 field names, round trips, strict decoding."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rspfed import es2p, es9p
from rspfed.errors import DecodeError, EncodeError, ProfileError

HEADER = es2p.RequestHeader("operator-1", "call-42")

iccids = st.from_regex(r"89[0-9]{17}[0-9F]?", fullmatch=True)
eids = st.from_regex(r"[0-9]{32}", fullmatch=True)
idents = st.text(
    alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), min_size=1, max_size=40
)
opt = st.none


def _requests() -> st.SearchStrategy[es2p.Es2Message]:
    status = st.builds(
        es2p.NotificationPointStatus,
        status=st.sampled_from(["Executed-Success", "Failed"]),
        subject_code=st.sampled_from(["8.1", "8.2.6"]),
        reason_code=st.sampled_from(["3.8", "6.1"]),
        subject_identifier=opt() | idents,
        message=opt() | st.text(max_size=30),
    )
    stamps = st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2099, 1, 1), timezones=st.just(UTC)
    ).map(es2p.format_timestamp)
    return st.one_of(
        st.builds(
            es2p.DownloadOrderRequest,
            eid=opt() | eids,
            iccid=opt() | iccids,
            profile_type=opt() | idents,
        ),
        st.builds(
            es2p.ConfirmOrderRequest,
            iccid=iccids,
            release_flag=st.booleans(),
            eid=opt() | eids,
            matching_id=opt() | idents,
            confirmation_code=opt() | idents,
            smds_address=opt() | idents,
        ),
        st.builds(
            es2p.CancelOrderRequest,
            iccid=iccids,
            final_profile_status_indicator=st.sampled_from(["Available", "Unavailable"]),
            eid=opt() | eids,
            matching_id=opt() | idents,
        ),
        st.builds(es2p.ReleaseProfileRequest, iccid=iccids),
        st.builds(
            es2p.HandleDownloadProgressInfoRequest,
            iccid=iccids,
            profile_type=idents,
            timestamp=stamps,
            notification_point_id=st.integers(1, 200),
            notification_point_status=status,
            eid=opt() | eids,
            result_data=opt() | st.binary(max_size=100),
        ),
    )


@given(message=_requests(), header=st.builds(es2p.RequestHeader, idents, idents))
def test_request_round_trip(message: es2p.Es2Message, header: es2p.RequestHeader) -> None:
    body = es2p.encode_es2_request(message, header)
    got_header, got = es2p.decode_es2_request(type(message), body)
    assert got_header == header
    assert got == message


def test_field_names_as_sgp22() -> None:
    """Member names of SGP.22 v2.2.2 §6.5.2 (checked against Osmocom pySim's es2p.py)."""
    body = json.loads(
        es2p.encode_es2_request(
            es2p.ConfirmOrderRequest(
                iccid="8900000000000000001",
                release_flag=True,
                eid="89049032123451234512345678901235",
                matching_id="ABC-123",
                confirmation_code="1234",
                smds_address="smds.example",
            ),
            HEADER,
        )
    )
    assert body == {
        "header": {
            "functionRequesterIdentifier": "operator-1",
            "functionCallIdentifier": "call-42",
        },
        "iccid": "8900000000000000001",
        "releaseFlag": True,
        "eid": "89049032123451234512345678901235",
        "matchingId": "ABC-123",
        "confirmationCode": "1234",
        "smdsAddress": "smds.example",
    }
    body = json.loads(
        es2p.encode_es2_request(
            es2p.HandleDownloadProgressInfoRequest(
                iccid="8900000000000000001",
                profile_type="test",
                timestamp="2026-11-28T12:00:00Z",
                notification_point_id=3,
                notification_point_status=es2p.NotificationPointStatus("Failed", "8.1", "6.1"),
                result_data=b"\x01",
            ),
            HEADER,
        )
    )
    assert set(body) == {
        "header",
        "iccid",
        "profileType",
        "timestamp",
        "notificationPointId",
        "notificationPointStatus",
        "resultData",
    }
    assert body["notificationPointStatus"] == {
        "status": "Failed",
        "statusCodeData": {"subjectCode": "8.1", "reasonCode": "6.1"},
    }
    assert body["resultData"] == "AQ=="
    assert es2p.FUNCTIONS["downloadOrder"].path == "/gsma/rsp2/es2plus/downloadOrder"
    assert set(es2p.FUNCTIONS) == {
        "downloadOrder",
        "confirmOrder",
        "cancelOrder",
        "releaseProfile",
        "handleDownloadProgressInfo",
    }


def _body(**members: object) -> bytes:
    obj: dict[str, object] = {
        "header": {"functionRequesterIdentifier": "op", "functionCallIdentifier": "1"}
    }
    obj.update(members)
    return json.dumps(obj).encode()


@pytest.mark.parametrize(
    ("cls", "body", "where"),
    [
        (es2p.ReleaseProfileRequest, b'{"iccid": "8900000000000000001"}', "header"),
        (
            es2p.ReleaseProfileRequest,
            b'{"header": {"functionRequesterIdentifier": "", "functionCallIdentifier": "1"},'
            b' "iccid": "8900000000000000001"}',
            "header",
        ),
        (es2p.ReleaseProfileRequest, _body(), "iccid"),
        (es2p.ReleaseProfileRequest, _body(iccid="12345"), "iccid"),
        (es2p.ReleaseProfileRequest, _body(iccid="890000000000000000X"), "iccid"),
        (es2p.ReleaseProfileRequest, _body(iccid=8900000000000000001), "iccid"),
        (es2p.DownloadOrderRequest, _body(eid="1234"), "eid"),
        (es2p.DownloadOrderRequest, _body(profileType="x" * 300), "profileType"),
        (es2p.ConfirmOrderRequest, _body(iccid="8900000000000000001"), "releaseFlag"),
        (
            es2p.ConfirmOrderRequest,
            _body(iccid="8900000000000000001", releaseFlag="true"),
            "releaseFlag",
        ),
        (
            es2p.CancelOrderRequest,
            _body(iccid="8900000000000000001", finalProfileStatusIndicator="Gone"),
            "finalProfileStatusIndicator",
        ),
        (
            es2p.HandleDownloadProgressInfoRequest,
            _body(
                iccid="8900000000000000001",
                profileType="t",
                timestamp="yesterday",
                notificationPointId=1,
                notificationPointStatus={"status": "Executed-Success"},
            ),
            "timestamp",
        ),
        (
            es2p.HandleDownloadProgressInfoRequest,
            _body(
                iccid="8900000000000000001",
                profileType="t",
                timestamp="2026-11-28T12:00:00Z",
                notificationPointId=1,
                notificationPointStatus="Executed-Success",
            ),
            "notificationPointStatus",
        ),
        (es2p.ReleaseProfileRequest, b"[]", "ReleaseProfileRequest"),
        (es2p.ReleaseProfileRequest, b"", "ReleaseProfileRequest"),
    ],
)
def test_strict_decoding(cls: type[es2p.Es2Message], body: bytes, where: str) -> None:
    with pytest.raises(DecodeError) as info:
        es2p.decode_es2_request(cls, body)
    assert where in str(info.value)


def test_responses() -> None:
    ok = es9p.encode_response(
        es2p.ConfirmOrderResponse(matching_id="M-1", smdp_address="smdp.example:8443")
    )
    resp = es2p.decode_es2_response(es2p.ConfirmOrderResponse, ok)
    assert resp.activation_code == "LPA:1$smdp.example:8443$M-1"
    assert es2p.ConfirmOrderResponse(matching_id="M").activation_code is None
    assert resp.activation_code_for(confirmation_code_required=True) == (
        "LPA:1$smdp.example:8443$M-1$$1"
    )
    failed = es9p.encode_response(None, failure=es9p.Status.PROFILE_TYPE_UNKNOWN)
    with pytest.raises(ProfileError) as info:
        es2p.decode_es2_response(es2p.DownloadOrderResponse, failed)
    assert (info.value.subject_code, info.value.reason_code) == ("8.2.5", "3.9")
    assert info.value.function == "downloadOrder"
    assert es2p.decode_es2_response(es2p.ReleaseProfileResponse, es9p.encode_response(None)) == (
        es2p.ReleaseProfileResponse()
    )


def test_timestamps() -> None:
    when = datetime(2026, 11, 28, 13, 5, 9, tzinfo=timezone(timedelta(hours=2)))
    assert es2p.format_timestamp(when) == "2026-11-28T11:05:09Z"
    assert es2p.parse_timestamp("2026-11-28T11:05:09Z") == when
    assert es2p.parse_timestamp("2026-11-28T13:05:09+02:00") == when
    with pytest.raises(EncodeError):
        es2p.format_timestamp(datetime(2026, 1, 1))
    for bad in ("2026-13-28T11:05:09Z", "2026-11-28 11:05:09Z", "2026-11-28T11:05:09"):
        with pytest.raises(DecodeError):
            es2p.parse_timestamp(bad)
