"""A full attach against a real software eUICC with a personalised TS.48 profile.

The profile (TS.48 template, MILENAGE with TS 35.208 set 1 K/OPc) is
downloaded and enabled over APDUs as in :mod:`tests.euicc.test_isdr_end_to_end`;
the network side talks to it only through :class:`rspfed.network.UsimOverApdus`.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from rspfed.crypto.curves import Curve
from rspfed.euicc.euicc import Euicc
from rspfed.network import (
    Attachment,
    Auc,
    AuthenticateResult,
    DeviceClass,
    MemorySubscriberStore,
    NetworkRefusedError,
    RefusalReason,
    Service,
    ServicePolicy,
    Subscriber,
    UsimOverApdus,
    attach,
)
from rspfed.saip.identifiers import encode_iccid
from tests.euicc import test_isdr_download as dl
from tests.euicc.rsp_helpers import ICCID_DIGITS, IMSI, PIN1, SET1, milenage_package
from tests.euicc.test_isdr_end_to_end import download_and_enable

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
K, OPC = bytes.fromhex(SET1["K"]), bytes.fromhex(SET1["OPc"])


@pytest.fixture(scope="module")
def euicc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Euicc]:
    world = dl.make_world(tmp_path_factory.mktemp("pki") / "pki", Curve.NIST)
    e = download_and_enable(
        tmp_path_factory.mktemp("euicc"), world, milenage_package(), encode_iccid(ICCID_DIGITS)
    )
    yield e
    e.close()


def _auc(seed: int, policy: ServicePolicy | None = None) -> Auc:
    auc = Auc(MemorySubscriberStore(), rand=random.Random(seed).randbytes)
    auc.provision(Subscriber(IMSI, k=K, opc=OPC, policy=policy or ServicePolicy(DeviceClass.PHONE)))
    return auc


def test_attach_then_resync_when_usim_is_ahead(euicc: Euicc) -> None:
    usim = UsimOverApdus(euicc.card, pin=PIN1)
    first = _auc(1)
    for _ in range(3):
        got = attach(first, IMSI, usim, now=NOW)
        assert isinstance(got, Attachment)
        assert got.imsi == IMSI
        assert got.when == NOW
        assert len(got.ck) == 16
        assert len(got.ik) == 16
    ahead = first.subscriber(IMSI).seq_he

    # a second AuC that restarted its SQN: its first vector is stale for the USIM
    restarted = _auc(2)
    calls: list[AuthenticateResult] = []

    def recording(rand: bytes, autn: bytes) -> AuthenticateResult:
        calls.append(usim(rand, autn))
        return calls[-1]

    got = attach(restarted, IMSI, recording, now=NOW)
    assert [c.auts is not None for c in calls] == [True, False]
    assert restarted.subscriber(IMSI).seq_he == ahead + 1
    assert got.imsi == IMSI


def test_ck_ik_are_the_published_ones_for_the_published_rand(euicc: Euicc) -> None:
    rand = bytes.fromhex(SET1["RAND"])
    auc = Auc(MemorySubscriberStore(), rand=lambda n: rand)
    auc.provision(Subscriber(IMSI, k=K, opc=OPC))
    got = attach(auc, IMSI, UsimOverApdus(euicc.card, pin=PIN1), now=NOW)
    assert got.ck == bytes.fromhex(SET1["f3"])
    assert got.ik == bytes.fromhex(SET1["f4"])


@pytest.mark.parametrize(
    ("action", "reason"),
    [("bar", RefusalReason.BARRED), ("remove", RefusalReason.REMOVED)],
)
def test_barred_and_removed_refused(euicc: Euicc, action: str, reason: RefusalReason) -> None:
    auc = _auc(3)
    getattr(auc, action)(IMSI)
    with pytest.raises(NetworkRefusedError) as info:
        attach(auc, IMSI, UsimOverApdus(euicc.card, pin=PIN1), now=NOW)
    assert info.value.reason is reason


def test_unknown_refused(euicc: Euicc) -> None:
    auc = _auc(4)
    with pytest.raises(NetworkRefusedError) as info:
        attach(auc, "001019999999999", UsimOverApdus(euicc.card, pin=PIN1), now=NOW)
    assert info.value.reason is RefusalReason.UNKNOWN_SUBSCRIBER


def test_wrong_key_refused_by_the_usim(euicc: Euicc) -> None:
    auc = Auc(MemorySubscriberStore(), rand=random.Random(5).randbytes)
    auc.provision(Subscriber(IMSI, k=bytes(16), opc=OPC))
    with pytest.raises(NetworkRefusedError) as info:
        attach(auc, IMSI, UsimOverApdus(euicc.card, pin=PIN1), now=NOW)
    assert info.value.reason is RefusalReason.AUTHENTICATION_FAILED


def test_wrong_res_refused(euicc: Euicc) -> None:
    auc = _auc(6)
    usim = UsimOverApdus(euicc.card, pin=PIN1)

    def tampered(rand: bytes, autn: bytes) -> AuthenticateResult:
        ok = usim(rand, autn)
        if ok.res is None:  # a resynchronisation round (the card's SQN is ahead): pass it on
            return ok
        return AuthenticateResult(res=bytes(b ^ 1 for b in ok.res), ck=ok.ck, ik=ok.ik)

    with pytest.raises(NetworkRefusedError) as info:
        attach(auc, IMSI, tampered, now=NOW)
    assert info.value.reason is RefusalReason.AUTHENTICATION_FAILED


def test_laptop_gets_data_only_and_secrets_stay_out_of_errors(euicc: Euicc) -> None:
    auc = _auc(7, policy=ServicePolicy(DeviceClass.LAPTOP))
    attach(auc, IMSI, UsimOverApdus(euicc.card, pin=PIN1), now=NOW)
    auc.check_service(IMSI, Service.DATA)
    for service in (Service.VOICE, Service.SMS, Service.TETHERING):
        with pytest.raises(NetworkRefusedError) as info:
            auc.check_service(IMSI, service)
        assert info.value.reason is RefusalReason.SERVICE_NOT_ALLOWED
        assert K.hex() not in str(info.value)
        assert OPC.hex() not in str(info.value)


def test_service_table() -> None:
    expect = {
        DeviceClass.PHONE: {"data", "voice", "sms", "tethering"},
        DeviceClass.TABLET: {"data", "voice", "sms", "tethering"},
        DeviceClass.LAPTOP: {"data"},
        DeviceClass.HOTSPOT: {"data", "tethering"},
        DeviceClass.WATCH: {"data", "voice", "sms"},
    }
    for cls, names in expect.items():
        assert {s.value for s in ServicePolicy(cls).allowed} == names
        # the plan narrows
        for plan in itertools.combinations(Service, 2):
            got = ServicePolicy(cls, frozenset(plan)).allowed
            assert {s.value for s in got} == names & {s.value for s in plan}
