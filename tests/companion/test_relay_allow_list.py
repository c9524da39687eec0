"""The watch's relay allow-list (:mod:`rspfed.transfer.relay`) in front of a real eUICC.

Allowed requests reach the software eUICC and come back as its answer;
eUICCMemoryReset, SetDefaultDpAddress and LoadCRL are refused without the eUICC
seeing them (its state is read back to prove it); malformed input is refused,
never raised.  Whole downloads and management through the responder run in
``tests/companion_cli``.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rspfed.crypto.curves import Curve
from rspfed.euicc.euicc import Euicc
from rspfed.lpa import InProcessEs10
from rspfed.pki.testpki import TestPki
from rspfed.transfer.messages import Es10Refusal, Es10RefusalReason, Es10Request, Es10Response
from rspfed.transfer.relay import ES10_RELAY_TAGS, CompanionResponder, request_tag
from tests.federation_http.conftest import make_euicc

GET_EUICC_INFO1 = bytes.fromhex("BF2000")
GET_CONFIGURED_ADDRESSES = bytes.fromhex("BF3C00")
GET_PROFILES_INFO = bytes.fromhex("BF2D00")
MEMORY_RESET = bytes.fromhex("BF340482020780")  # resetOptions: delete operational profiles
SET_DEFAULT_DP = bytes.fromhex("BF3F0F800D736D64702E6576696C2E74657374")  # smdp.evil.test


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> TestPki:
    return TestPki.create(
        tmp_path_factory.mktemp("relay-pki") / "pki", curves=[Curve.NIST], now=datetime.now(UTC)
    )


@pytest.fixture
def euicc(tmp_path: Path, pki: TestPki) -> Iterator[Euicc]:
    card = make_euicc(tmp_path, pki, "watch")
    yield card
    card.close()


def test_allowed_requests_reach_the_euicc(euicc: Euicc) -> None:
    es10 = InProcessEs10(euicc.isdr)
    responder = CompanionResponder(es10)
    for request in (GET_EUICC_INFO1, GET_PROFILES_INFO, GET_CONFIGURED_ADDRESSES):
        answer = responder.answer(Es10Request(request))
        assert isinstance(answer, Es10Response)
        assert answer.der == es10.transceive(request)  # passed through unchanged
        assert answer.der[:2] == request[:2]  # the eUICC's answer to that function
    assert responder.refused == 0


@pytest.mark.parametrize("request_der", [MEMORY_RESET, SET_DEFAULT_DP, bytes.fromhex("BF3500")])
def test_owner_only_functions_never_reach_the_euicc(euicc: Euicc, request_der: bytes) -> None:
    es10 = InProcessEs10(euicc.isdr)
    before = es10.transceive(GET_CONFIGURED_ADDRESSES)
    responder = CompanionResponder(es10)
    answer = responder.answer(Es10Request(request_der))
    assert answer == Es10Refusal(Es10RefusalReason.NOT_ALLOWED)
    assert responder.refused == 1
    assert es10.transceive(GET_CONFIGURED_ADDRESSES) == before
    # the same request sent directly would have been carried out: the refusal is the relay's
    assert request_tag(request_der) not in ES10_RELAY_TAGS


def test_malformed_allowed_request_is_refused_not_raised(euicc: Euicc) -> None:
    responder = CompanionResponder(InProcessEs10(euicc.isdr))
    answer = responder.answer(Es10Request(bytes.fromhex("BF2D05A0")))  # length past the end
    assert answer == Es10Refusal(Es10RefusalReason.ERROR)


@given(st.binary(min_size=1, max_size=64))
def test_any_request_gets_an_answer_or_a_refusal(data: bytes) -> None:
    seen: list[bytes] = []

    class Recorder:
        def transceive(self, request_der: bytes) -> bytes:
            seen.append(request_der)
            return b""

    answer = CompanionResponder(Recorder()).answer(Es10Request(data))
    allowed = request_tag(data) in ES10_RELAY_TAGS
    assert isinstance(answer, Es10Response) == allowed
    assert seen == ([data] if allowed else [])


def test_request_tag() -> None:
    assert request_tag(b"") == b""
    assert request_tag(b"\xbf") == b""
    assert request_tag(b"\xbf\x2d\x00") == b"\xbf\x2d"
    assert request_tag(b"\xa0\x00") == b"\xa0"
