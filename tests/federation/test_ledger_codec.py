"""The ledger's DER messages against asn1tools, an independent DER codec.

asn1tools compiles ``rspfed/asn1/modules/ledger.asn``; over hypothesis states
and batches, it decodes what rspfed encodes to the expected values, and
rspfed decodes what asn1tools encodes (and re-encodes the same octets).
ICCIDs and PLMNs are converted to octets here, without rspfed.  Then: random
bytes and mutations of valid messages give only ``DecodeError`` (or, for an
unsigned state, another canonical state); non-canonical order, duplicates,
out-of-range values, unknown enumeration values and the batch size limit are
refused; extension additions are skipped.
"""

from __future__ import annotations

import contextlib
import hashlib
from functools import cache
from typing import Any

import asn1tools
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from hypothesis import given
from hypothesis import strategies as st

from rspfed.errors import AuthorizationError, DecodeError, SignatureError, UsageError
from rspfed.federation.alerts import alert_id
from rspfed.federation.ledger import (
    MAX_BATCH_RECORDS,
    MAX_OCTETS,
    AlertKey,
    EpochReason,
    LedgerState,
    PoolEpoch,
    SourceKind,
    UsageRecord,
    decode_state,
    encode_state,
    parse_device_batch,
    sign_device_batch,
    verify_device_batch,
)
from rspfed.federation.token import primary_key_id
from tests.federation.ledger_strategies import states as small_states
from tests.paths import ASN1_MODULES

MODULE = ASN1_MODULES / "ledger.asn"
KEY = ec.derive_private_key(0x1234_5678_9ABC_DEF0, ec.SECP256R1())
SUB = "sub-codec"
DEV = "dev-1"
P = 1_764_000_000
A = "8949000000000000001"

Value = dict[str, Any]


@cache
def _spec(text: str | None = None) -> Any:
    if text is None:
        return asn1tools.compile_files(str(MODULE), "der")
    return asn1tools.compile_string(text, "der")


def _extended(old: str, new: str) -> Any:
    text = MODULE.read_text(encoding="utf-8")
    assert old in text
    return _spec(text.replace(old, new))


# -- independent conversions ---------------------------------------------------------


def _iccid_octets(iccid: str) -> bytes:
    digits = iccid.ljust(20, "f")
    return bytes(int(digits[i + 1] + digits[i], 16) for i in range(0, 20, 2))


def _plmn_octets(plmn: str) -> bytes:
    d = plmn
    mnc3 = d[5] if len(d) == 6 else "f"
    return bytes.fromhex(d[1] + d[0] + mnc3 + d[2] + d[4] + d[3])


def _entry(key: tuple[int, str, str, int, int, str], octets: int) -> Value:
    kind, source, iccid, period, epoch, plmn = key
    out: Value = {
        "sourceKind": "network" if kind == 0 else "device",
        "sourceId": source,
        "iccid": _iccid_octets(iccid),
        "period": period,
        "counterEpoch": epoch,
        "octets": octets,
    }
    if plmn:
        out["visitedPlmn"] = _plmn_octets(plmn)
    return out


def _epoch(e: PoolEpoch) -> Value:
    return {
        "period": e.period,
        "index": e.index,
        "reason": e.reason.value,
        "limit": e.limit,
        "openingUsed": e.opening_used,
        "openingDeviceUsed": [
            {"iccid": _iccid_octets(i), "octets": o} for i, o in e.opening_device_used
        ],
    }


def _alert(k: AlertKey) -> Value:
    out: Value = {"threshold": k.threshold, "period": k.period, "poolEpoch": k.pool_epoch}
    if k.device is not None:
        out["device"] = _iccid_octets(k.device)
    return out


def _asn1tools_state(state: LedgerState) -> Value:
    """The asn1tools value of a state, lists in the documented canonical order."""
    return {
        "version": 1,
        "subscriptionId": state.subscription_id,
        "entries": [_entry(k, state.counters[k]) for k in sorted(state.counters)],
        "poolEpochs": [_epoch(state.epochs[s]) for s in sorted(state.epochs)],
        "firedAlerts": [
            _alert(k)
            for k in sorted(
                state.fired, key=lambda k: (k.period, k.pool_epoch, k.device or "", k.threshold)
            )
        ],
    }


def _record_value(r: UsageRecord) -> Value:
    out: Value = {
        "iccid": _iccid_octets(r.iccid),
        "period": r.period,
        "counterEpoch": r.counter_epoch,
        "octets": r.octets,
    }
    if r.visited_plmn:
        out["visitedPlmn"] = _plmn_octets(r.visited_plmn)
    return out


def _asn1tools_batch(
    records: list[UsageRecord], *, sequence: int = 1, spec: Any = None, extra: Value | None = None
) -> bytes:
    """A batch encoded by asn1tools and signed with cryptography directly."""
    spec = spec or _spec()
    tbs: Value = {
        "version": 1,
        "subscriptionId": SUB,
        "deviceId": DEV,
        "deviceKeyId": primary_key_id(KEY.public_key()),
        "sequence": sequence,
        "records": [_record_value(r) for r in records],
        **(extra or {}),
    }
    signature_input = b"\xa0" + spec.encode("TBSDeviceUsageBatch", tbs)[1:]
    r, s = decode_dss_signature(KEY.sign(signature_input, ec.ECDSA(hashes.SHA256())))
    signature = r.to_bytes(32, "big") + s.to_bytes(32, "big")
    der: bytes = spec.encode("DeviceUsageBatch", {"tbsBatch": tbs, "signature": signature})
    return der


def _verify(der: bytes, iccids: set[str]) -> tuple[UsageRecord, ...]:
    batch = verify_device_batch(
        der, device_public_key=KEY.public_key(), subscription_id=SUB, device_id=DEV, iccids=iccids
    )
    return batch.records


# -- strategies: wide domains -----------------------------------------------------------

ids = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=64)
iccids = st.from_regex(r"\A[0-9]{18,20}\Z")
plmns = st.just("") | st.from_regex(r"\A[0-9]{5,6}\Z")
uint63 = st.integers(0, 300) | st.integers(0, MAX_OCTETS)
records = st.builds(
    UsageRecord,
    kind=st.sampled_from(SourceKind),
    source_id=ids,
    iccid=iccids,
    period=uint63,
    counter_epoch=uint63,
    octets=uint63,
    visited_plmn=plmns,
)
epochs = st.builds(
    PoolEpoch,
    period=uint63,
    index=uint63,
    reason=st.sampled_from(EpochReason),
    limit=st.integers(1, MAX_OCTETS),
    opening_used=uint63,
    opening_device_used=st.dictionaries(iccids, uint63, max_size=3),
)
alerts = st.builds(
    AlertKey,
    device=st.none() | iccids,
    threshold=st.integers(1, 1000),
    period=uint63,
    pool_epoch=uint63,
)


@st.composite
def wide_states(draw: st.DrawFn) -> LedgerState:
    state = LedgerState(draw(ids))
    state.add_records(draw(st.lists(records, max_size=6)))
    for epoch in draw(st.lists(epochs, max_size=3)):
        state.add_epoch(epoch)
    state.add_fired(draw(st.lists(alerts, max_size=4)))
    return state


any_state = wide_states() | small_states()

# -- LedgerState both ways ------------------------------------------------------------------


@given(any_state)
def test_asn1tools_decodes_what_rspfed_encodes(state: LedgerState) -> None:
    der = encode_state(state)
    spec = _spec()
    assert spec.decode("LedgerState", der) == _asn1tools_state(state)
    assert spec.encode("LedgerState", spec.decode("LedgerState", der)) == der


@given(any_state)
def test_rspfed_decodes_what_asn1tools_encodes(state: LedgerState) -> None:
    der = _spec().encode("LedgerState", _asn1tools_state(state))
    decoded = decode_state(der)
    assert decoded == state
    assert encode_state(decoded) == der


@given(any_state, st.data())
def test_non_canonical_order_and_duplicates_are_refused(
    state: LedgerState, data: st.DataObject
) -> None:
    value = _asn1tools_state(state)
    field = data.draw(st.sampled_from(["entries", "poolEpochs", "firedAlerts"]))
    items = value[field]
    if not items:
        return
    if data.draw(st.booleans()):
        items.append(items[data.draw(st.integers(0, len(items) - 1))])  # a duplicate
    else:
        shuffled = data.draw(st.permutations(items))
        if shuffled == items:
            return
        value[field] = shuffled
    with pytest.raises(DecodeError):
        decode_state(_spec().encode("LedgerState", value))


@given(ids, st.lists(alerts, max_size=4))
def test_alert_ids_hash_the_asn1tools_encoding(subscription_id: str, keys: list[AlertKey]) -> None:
    for key in keys:
        der = _spec().encode(
            "AlertIdInput", {"subscriptionId": subscription_id, "key": _alert(key)}
        )
        assert alert_id(subscription_id, key) == hashlib.sha256(der).digest()[:16]


# -- DeviceUsageBatch both ways ---------------------------------------------------------

device_records = st.builds(
    UsageRecord,
    kind=st.just(SourceKind.DEVICE),
    source_id=st.just(DEV),
    iccid=st.sampled_from([A, "89490000000000000027"]),
    period=st.sampled_from([0, P, MAX_OCTETS]),
    counter_epoch=st.integers(0, 3),
    octets=uint63,
    visited_plmn=st.sampled_from(["", "26201", "310260"]),
)


def _canonical(batch: list[UsageRecord]) -> list[UsageRecord]:
    best: dict[tuple[str, int, int, str], UsageRecord] = {}
    for r in batch:
        slot = (r.iccid, r.period, r.counter_epoch, r.visited_plmn)
        if slot not in best or best[slot].octets < r.octets:
            best[slot] = r
    return [best[s] for s in sorted(best)]


@given(st.lists(device_records, max_size=12), st.integers(0, MAX_OCTETS))
def test_batches_both_ways(batch: list[UsageRecord], sequence: int) -> None:
    expected = _canonical(batch)
    spec = _spec()
    der = sign_device_batch(
        device_key=KEY, subscription_id=SUB, device_id=DEV, sequence=sequence, records=batch
    )
    decoded = spec.decode("DeviceUsageBatch", der)
    assert spec.encode("DeviceUsageBatch", decoded) == der
    assert decoded["tbsBatch"]["sequence"] == sequence
    assert decoded["tbsBatch"]["records"] == [_record_value(r) for r in expected]
    theirs = _asn1tools_batch(expected, sequence=sequence)
    iccids = {r.iccid for r in batch}
    assert _verify(theirs, iccids) == tuple(expected) == _verify(der, iccids)
    assert parse_device_batch(theirs).sequence == sequence


# -- hostile input -------------------------------------------------------------------


def _decoded_or_refused(der: bytes) -> None:
    try:
        state = decode_state(der)
    except DecodeError:
        pass
    else:
        assert encode_state(state) == der  # what decodes is canonical
    with contextlib.suppress(DecodeError):
        parse_device_batch(der)


@given(st.binary(max_size=400))
def test_random_bytes_give_only_decode_error(data: bytes) -> None:
    _decoded_or_refused(data)
    _decoded_or_refused(b"\x30" + bytes([len(data)]) + data if len(data) < 128 else data)


@st.composite
def mutated(draw: st.DrawFn) -> bytes:
    if draw(st.booleans()):
        der = bytearray(encode_state(draw(small_states())))
    else:
        der = bytearray(
            sign_device_batch(
                device_key=KEY,
                subscription_id=SUB,
                device_id=DEV,
                sequence=1,
                records=draw(st.lists(device_records, max_size=4)),
            )
        )
    for _ in range(draw(st.integers(1, 3))):
        how = draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, max(0, len(der) - 1)))
        if how == "flip" and der:
            der[at] ^= 1 << draw(st.integers(0, 7))
        elif how == "set" and der:
            der[at] = draw(st.integers(0, 255))
        elif how == "insert":
            der[at:at] = draw(st.binary(min_size=1, max_size=3))
        elif how == "delete" and der:
            del der[at]
        elif how == "truncate":
            del der[at:]
    return bytes(der)


@given(mutated())
def test_mutations_give_only_decode_error(der: bytes) -> None:
    _decoded_or_refused(der)
    with contextlib.suppress(DecodeError, SignatureError, AuthorizationError):
        _verify(der, {A, "89490000000000000027"})


def _state_value(**changes: Any) -> Value:
    value: Value = {
        "version": 1,
        "subscriptionId": SUB,
        "entries": [_entry((0, "pgw-1", A, P, 0, ""), 5)],
        "poolEpochs": [_epoch(PoolEpoch(P, 0, EpochReason.PERIOD, 100))],
        "firedAlerts": [_alert(AlertKey(A, 50, P, 0))],
    }
    for path, new in changes.items():
        target = value
        *parents, last = path.split("__")
        for part in parents:
            target = target[part][0] if isinstance(target[part], list) else target[part]
        target[last] = new
    return value


def test_the_base_value_decodes() -> None:
    assert encode_state(decode_state(_spec().encode("LedgerState", _state_value())))


@pytest.mark.parametrize(
    "changes",
    [
        {"version": 2},
        {"subscriptionId": ""},
        {"subscriptionId": "x" * 65},
        {"entries__octets": MAX_OCTETS + 1},
        {"entries__octets": -1},
        {"entries__period": MAX_OCTETS + 1},
        {"entries__counterEpoch": -1},
        {"entries__sourceId": ""},
        {"entries__sourceId": "é" * 65},
        {"entries__iccid": b"\xff" * 10},  # no digits
        {"entries__iccid": _iccid_octets("89490000000000001")},  # 17 digits
        {"entries__iccid": bytes.fromhex("98940000000000001f00")},  # digits after padding
        {"entries__iccid": b"\x98" * 9},  # 9 octets
        {"entries__visitedPlmn": bytes.fromhex("6af210")},  # not BCD
        {"entries__visitedPlmn": bytes.fromhex("62f2")},
        {"poolEpochs__limit": 0},
        {"poolEpochs__index": MAX_OCTETS + 1},
        {"poolEpochs__openingDeviceUsed": [{"iccid": _iccid_octets(A), "octets": 0}]},
        {
            "poolEpochs__openingDeviceUsed": [
                {"iccid": _iccid_octets(A), "octets": 1},
                {"iccid": _iccid_octets(A), "octets": 2},
            ]
        },
        {"firedAlerts__threshold": 0},
        {"firedAlerts__threshold": 1001},
        {"firedAlerts__poolEpoch": MAX_OCTETS + 1},
    ],
    ids=repr,
)
def test_out_of_range_values_are_refused(changes: dict[str, Any]) -> None:
    der = _spec().encode("LedgerState", _state_value(**changes))
    with pytest.raises(DecodeError):
        decode_state(der)


def test_unknown_enumeration_values_are_refused() -> None:
    kinds = _extended(
        "SourceKind ::= ENUMERATED { network(0), device(1), ... }",
        "SourceKind ::= ENUMERATED { network(0), device(1), ..., relay(2) }",
    )
    with pytest.raises(DecodeError):
        decode_state(kinds.encode("LedgerState", _state_value(entries__sourceKind="relay")))
    reasons = _extended(
        "EpochReason ::= ENUMERATED { period(0), topUp(1), autoTopUp(2), planChange(3), ... }",
        "EpochReason ::= ENUMERATED { period(0), topUp(1), autoTopUp(2), planChange(3), ...,"
        " gift(4) }",
    )
    with pytest.raises(DecodeError):
        decode_state(reasons.encode("LedgerState", _state_value(poolEpochs__reason="gift")))


def test_extension_additions_are_skipped() -> None:
    spec = _extended(
        "  firedAlerts SEQUENCE OF AlertKey,\n  ...\n}",
        "  firedAlerts SEQUENCE OF AlertKey,\n  ...,\n  note UTF8String OPTIONAL\n}",
    )
    value = _state_value()
    plain = _spec().encode("LedgerState", value)
    assert decode_state(spec.encode("LedgerState", {**value, "note": "later"})) == decode_state(
        plain
    )
    # a batch's extension is covered by the signature and skipped by the reader
    batch_spec = _extended(
        "  records SEQUENCE OF DeviceUsageRecord,\n  ...\n}",
        "  records SEQUENCE OF DeviceUsageRecord,\n  ...,\n  note UTF8String OPTIONAL\n}",
    )
    record = UsageRecord(SourceKind.DEVICE, DEV, A, P, 0, 7)
    der = _asn1tools_batch([record], spec=batch_spec, extra={"note": "later"})
    assert _verify(der, {A}) == (record,)


# -- size limits ----------------------------------------------------------------------


def _many(n: int) -> list[UsageRecord]:
    return [UsageRecord(SourceKind.DEVICE, DEV, A, P, epoch, 1) for epoch in range(n)]


def test_batch_size_limit() -> None:
    full = _many(MAX_BATCH_RECORDS)
    der = sign_device_batch(
        device_key=KEY, subscription_id=SUB, device_id=DEV, sequence=1, records=full
    )
    assert len(_verify(der, {A})) == MAX_BATCH_RECORDS
    # repeats of one counter count once
    sign_device_batch(
        device_key=KEY, subscription_id=SUB, device_id=DEV, sequence=1, records=full[:10] * 500
    )
    with pytest.raises(UsageError):
        sign_device_batch(
            device_key=KEY,
            subscription_id=SUB,
            device_id=DEV,
            sequence=1,
            records=_many(MAX_BATCH_RECORDS + 1),
        )
    over = _asn1tools_batch(_many(MAX_BATCH_RECORDS + 1))
    with pytest.raises(DecodeError):
        _verify(over, {A})


@pytest.mark.parametrize(
    "extra",
    [
        {"version": 2},
        {"subscriptionId": "x" * 65},
        {"deviceId": ""},
        {"sequence": MAX_OCTETS + 1},
        {"deviceKeyId": b"\x00" * 19},
    ],
    ids=repr,
)
def test_bad_batch_fields_are_refused(extra: Value) -> None:
    der = _asn1tools_batch([UsageRecord(SourceKind.DEVICE, DEV, A, P, 0, 1)], extra=extra)
    with pytest.raises(DecodeError):
        parse_device_batch(der)


def test_batch_records_out_of_order_or_repeated_are_refused() -> None:
    one, two = _many(2)
    for order in ([two, one], [one, one]):
        with pytest.raises(DecodeError):
            _verify(_asn1tools_batch(order), {A})


@pytest.mark.parametrize(
    "sid",
    ["\ud800", "a\udfffb"],
)
def test_ids_that_are_not_unicode_text_are_refused_up_front(sid: str) -> None:
    with pytest.raises(UsageError):
        LedgerState(sid)
    with pytest.raises(UsageError):
        UsageRecord(SourceKind.NETWORK, sid, A, P, 0, 1)
    with pytest.raises(UsageError):
        sign_device_batch(
            device_key=KEY, subscription_id=sid, device_id=DEV, sequence=1, records=[]
        )
    with pytest.raises(UsageError):
        alert_id(sid, AlertKey(None, 50, P, 0))


@pytest.mark.parametrize("opening", [{A: "5"}, {A: 1.5}, {A: -1}, {"123": 1}])
def test_opening_device_usage_is_checked(opening: dict[str, Any]) -> None:
    with pytest.raises(UsageError):
        PoolEpoch(P, 1, EpochReason.TOP_UP, 100, 0, opening)
