"""The SM-DP+ core, sans-IO: ES9+ for the LPA, ES2+ for the operator (SGP.22 §5.3, §5.6).

:class:`Smdp` takes decoded ES9+ messages (:mod:`rspfed.es9p`) and ES2+
arguments and answers them; every application error raises the
:class:`~rspfed.errors.FunctionExecutionError` subclass of its SGP.22
subject/reason code (:func:`rspfed.es9p.function_execution_error`), which the
HTTP layer writes into ``header.functionExecutionStatus``.  Time (``now``) and
randomness (``rand``) are injected; the only I/O is the
:class:`~rspfed.smdp.store.SmdpStore`, where RSP sessions live too, so any
worker process can serve any step of a session.

Download, step by step (SGP.22 §3.1.3)
--------------------------------------
InitiateAuthentication
    ``smdpAddress`` must be ours (8.8.1/3.8); EUICCInfo1 ``svn`` major 2
    (8.8.3/3.1); a credential whose CI is in ``euiccCiPKIdListForVerification``
    and a trusted CI in ``euiccCiPKIdListForSigning`` (8.8.2/3.1).  New
    ``transactionId`` and ``serverChallenge`` from ``rand``; ``serverSigned1``
    signed with SK.DPauth.  The session is stored.
AuthenticateClient
    Session known, not expired, at this step (8.10.1/3.9, which also answers a
    replayed transactionId); ``serverChallenge`` and ``transactionId`` echoed in
    ``euiccSigned1``; the eUICC → EUM → CI chain (:func:`rspfed.pki.verify_chain`:
    roles, validity at ``now``, CRLs, EID inside the EUM's range: 8.11.1/3.9
    unknown CI, 8.1.2 / 8.1.3 with 6.1 invalid or 6.3 expired);
    ``euiccSignature1`` (8.1/6.1).  The order: by ``matchingId`` (unknown or
    used: 8.2.6/3.8; not released: 8.2/1.2), or without one the oldest
    released order bound to the EID (the default SM-DP+ case); an EID-bound
    order for another EID: 8.1.1/3.8; too many download attempts: 8.8.5/6.4
    (the order goes to ``error``).  Answers ``StoreMetadataRequest`` built from
    the profile type, ``smdpSigned2`` (``ccRequiredFlag``; ``bppEuiccOtpk`` when a
    package is kept for a retry) and ``smdpSignature2`` over ``smdpSigned2 ||
    euiccSignature1`` (the ``5F37`` TLV included) with SK.DPpb.
GetBoundProfilePackage
    ``euiccSignature2`` over ``euiccSigned2 || smdpSignature2`` (8.1/6.1);
    ``hashCc`` = SHA256(SHA256(code) || transactionId) when a code is required
    (missing 8.2.7/2.2, wrong 8.2.7/3.8, the last allowed attempt 8.2.7/6.4 and
    the order goes to ``error``; the session ends in each case).  The package is
    personalised through the profile type's
    :class:`~rspfed.saip.PreparedTemplate` (prepared once per process) and
    bound with :func:`rspfed.es8p.build_bound_profile_package` to a fresh
    one-time key pair; the eUICC's otPK and our one-time private key are kept
    (:class:`~rspfed.smdp.types.KeptBinding`).  **Retry**: AuthenticateClient
    names the kept otPK in ``bppEuiccOtpk``; when the eUICC answers with that
    same otPK (it kept its one-time key), the package is bound again with the
    kept key pair, which gives the same session keys and byte-identical
    protected segments (BSP and personalisation are deterministic): the same
    Bound Profile Package, with only ``InitialiseSecureChannelRequest`` signed
    for the new transactionId.  Otherwise (the eUICC lost its key) the package
    is bound afresh.
HandleNotification
    The PIR is verified with the eUICC key of its session (kept on the
    item), other notifications with their eUICC/EUM chain; a success moves the
    item to ``installed``, an error result to ``error``; enable/disable are
    recorded, delete makes the item ``unavailable``.  All are recorded.
CancelSession
    The eUICC-signed ``CancelSessionResponse`` is verified; ``postponed`` and
    ``timeout`` keep the order downloadable, other reasons put it in ``error``.

HandleDownloadProgressInfo events are queued in the store for the HTTP layer
(:meth:`Smdp.take_progress_events`) when a callback URL is configured for the
order's requester.  The inventory moves are those of
:mod:`rspfed.smdp._inventory`.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Final

import attrs
from cryptography.hazmat.primitives.asymmetric import ec

from rspfed import asn1, es8p
from rspfed.asn1 import rsp
from rspfed.crypto import ecka, signature
from rspfed.crypto.curves import Curve
from rspfed.crypto.kdf import derive_session_keys
from rspfed.crypto.milenage import compute_opc
from rspfed.errors import (
    CertificateError,
    CertificateExpiredError,
    DecodeError,
    FunctionExecutionError,
    SignatureError,
    UsageError,
)
from rspfed.es9p import messages as es9p
from rspfed.es9p.codes import Status, StatusCodeData, function_execution_error
from rspfed.pki import CertificateRole, RspCertificate, RspCrl, parse_certificate, parse_crl
from rspfed.pki import verify_chain as _verify_chain
from rspfed.pki.eid import is_valid_eid
from rspfed.saip.identifiers import decode_iccid, encode_iccid
from rspfed.saip.personalise import Personalisation, PreparedTemplate, personalisable_files
from rspfed.smdp import _fields
from rspfed.smdp._inventory import ItemState, Trigger, allowed, move
from rspfed.smdp.store import SmdpStore
from rspfed.smdp.types import (
    NOTIFICATION_EVENTS,
    ConfirmedOrder,
    DownloadProgressEvent,
    InventoryItem,
    KeptBinding,
    NotificationPoint,
    NotificationRecord,
    ProfileType,
    RspSession,
    SessionStage,
    SmdpConfig,
    SmdpCredential,
)

__all__ = [
    "EID_INVALID_FORMAT",
    "MATCHING_ID_INVALID_ASSOCIATION",
    "PROFILE_FILE_CANDIDATES",
    "ProfileFiles",
    "Smdp",
]

EID_INVALID_FORMAT: Final = StatusCodeData("8.1.1", "2.1")
"""ES2+: an EID that is not 32 digits with valid check digits."""
MATCHING_ID_INVALID_ASSOCIATION: Final = StatusCodeData("8.2.6", "3.10")
"""ES2+.CancelOrder: the matchingId is not the order's."""
EUICC_EXECUTION_ERROR: Final = StatusCodeData("8.1", "4.2")
"""The eUICC answered an error instead of a signed response."""

_SIG_HEADER: Final = b"\x5f\x37\x40"
_CURVE_BYTE: Final = {Curve.NIST: 1, Curve.BRAINPOOL: 2}
_CURVE_OF: Final = {v: k for k, v in _CURVE_BYTE.items()}
_MATCHING_ID = re.compile(r"[\x21-\x23\x25-\x7e]{1,255}")  # printable ASCII without '$'
_MATCHING_ID_ALPHABET: Final = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford: unbiased b % 32
_EVENT_BITS: Final = {v: k for k, v in NOTIFICATION_EVENTS.items()}
_PURGE_EVERY: Final = 256
"""Every this many InitiateAuthentication calls (per process) expired sessions are purged."""


def _len(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    if n < 0x100:
        return bytes((0x81, n))
    if n < 0x10000:
        return bytes((0x82, n >> 8, n & 0xFF))
    return bytes((0x83, n >> 16, (n >> 8) & 0xFF, n & 0xFF))


def _tlv(tag: bytes, value: bytes) -> bytes:
    return tag + _len(len(value)) + value


def _luhn(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2 == 0:
            d *= 2
            if d > 9:
                d -= 9
        total += d
    return str((10 - total % 10) % 10)


def _plmn(digits: str) -> bytes:
    """MCC+MNC digits as the 3-octet PLMN of TS 24.008 (``mccMnc``)."""
    mcc, mnc = digits[:3], digits[3:]
    mnc3 = int(mnc[2]) if len(mnc) == 3 else 0xF
    return bytes(
        (
            (int(mcc[1]) << 4) | int(mcc[0]),
            (mnc3 << 4) | int(mcc[2]),
            (int(mnc[1]) << 4) | int(mnc[0]),
        )
    )


def _dump_ot_key(key: ec.EllipticCurvePrivateKey, curve: Curve) -> bytes:
    return bytes((_CURVE_BYTE[curve],)) + key.private_numbers().private_value.to_bytes(32, "big")


def _load_ot_key(data: bytes, curve: Curve) -> ec.EllipticCurvePrivateKey | None:
    """The kept one-time key if it is on ``curve`` (else ``None``: bind afresh)."""
    if len(data) != 33 or _CURVE_OF.get(data[0]) is not curve:
        return None
    try:
        return ec.derive_private_key(int.from_bytes(data[1:], "big"), curve.ec_curve)
    except ValueError:
        return None


@attrs.frozen
class _Credential:
    index: int
    curve: Curve
    dp_auth_key: ec.EllipticCurvePrivateKey
    dp_auth_der: bytes
    dp_pb_key: ec.EllipticCurvePrivateKey
    dp_pb_der: bytes
    ci_pkid: bytes
    dp_auth_oid: str | None


def _credential(index: int, cred: SmdpCredential) -> _Credential:
    auth = parse_certificate(cred.dp_auth_certificate)
    pb = parse_certificate(cred.dp_pb_certificate)
    if auth.curve is not cred.curve or pb.curve is not cred.curve:
        raise UsageError(f"the DP certificates of credential {index} are not on {cred.curve}")
    top = parse_certificate(cred.intermediates[-1]) if cred.intermediates else auth
    if top.authority_key_id is None:
        raise UsageError(f"credential {index}: no AuthorityKeyIdentifier to name its CI")
    return _Credential(
        index,
        cred.curve,
        cred.dp_auth_key,
        bytes(cred.dp_auth_certificate),
        cred.dp_pb_key,
        bytes(cred.dp_pb_certificate),
        top.authority_key_id,
        auth.registered_id,
    )


class _LoadedType:
    """A profile type ready for the hot path: prepared template, metadata around the ICCID."""

    __slots__ = ("_meta_head", "_meta_tail", "prepared", "profile_type")

    def __init__(self, profile_type: ProfileType) -> None:
        self.profile_type = profile_type
        # prepared for every EF the template can personalise, so that an operator's
        # profile files (Smdp.set_profile_files) cost nothing on the download path
        package = profile_type.package
        self.prepared = _prepared(package, tuple(sorted(_file_sizes(package))))
        sentinel = encode_iccid("98765432109876543210")
        events: dict[str, set[str]] = {}
        for event, address in profile_type.notification_events:
            events.setdefault(address, set()).add(NOTIFICATION_EVENTS[event])
        pprs = {n for n, v in (("ppr1", profile_type.ppr1), ("ppr2", profile_type.ppr2)) if v}
        der = es8p.store_metadata_request(
            sentinel,
            profile_type.service_provider_name,
            profile_type.profile_name,
            profile_class=profile_type.profile_class,
            notification_configuration_info=[(bits, a) for a, bits in events.items()],
            profile_owner=(
                None
                if profile_type.profile_owner is None
                else {"mccMnc": _plmn(profile_type.profile_owner)}
            ),
            profile_policy_rules=pprs or None,
        )
        at = der.find(b"\x5a\x0a" + sentinel)
        if at < 0 or der.count(sentinel) != 1:  # pragma: no cover - the ICCID leads the SEQUENCE
            raise UsageError("cannot place the ICCID in StoreMetadataRequest")
        self._meta_head = der[: at + 2]
        self._meta_tail = der[at + 12 :]

    def metadata(self, iccid: str) -> bytes:
        """DER of the ``StoreMetadataRequest`` for the instance ``iccid``."""
        return self._meta_head + encode_iccid(iccid) + self._meta_tail


_PREPARED: dict[tuple[bytes, tuple[str, ...]], PreparedTemplate] = {}
_PREPARED_MAX = 64


def _prepared(package: bytes, files: tuple[str, ...] = ()) -> PreparedTemplate:
    """The :class:`PreparedTemplate` of ``package`` and EF ``files``, prepared once per process."""
    key = (hashlib.sha256(package).digest(), files)
    found = _PREPARED.get(key)
    if found is None:
        found = PreparedTemplate(package, files=files)
        if len(_PREPARED) >= _PREPARED_MAX:
            _PREPARED.clear()
        _PREPARED[key] = found
    return found


PROFILE_FILE_CANDIDATES: Final = (
    "ef-plmnwact",
    "ef-oplmnwact",
    "ef-hpplmn",
    "ef-fplmn",
    "ef-ehplmn",
)
"""The EFs :meth:`Smdp.set_profile_files` offers a hook (those a template can personalise)."""
_FILE_SIZES: dict[bytes, dict[str, int]] = {}
ProfileFiles = Callable[[ProfileType, Mapping[str, int]], Mapping[str, bytes]]
"""The hook of :meth:`Smdp.set_profile_files`: (profile type, EF sizes) → EF contents."""


def _file_sizes(package: bytes) -> dict[str, int]:
    """The personalisable EFs of :data:`PROFILE_FILE_CANDIDATES` in ``package``: name → size."""
    key = hashlib.sha256(package).digest()
    found = _FILE_SIZES.get(key)
    if found is None:
        found = personalisable_files(package, PROFILE_FILE_CANDIDATES)
        _FILE_SIZES[key] = found
    return found


def _fail(status: StatusCodeData, function: str) -> FunctionExecutionError:
    return function_execution_error(status, function=function)


def _same_address(a: str, b: str) -> bool:
    return a.strip().lower() == b.strip().lower()


class Smdp:
    """The SM-DP+ (see the module doc).

    ``now`` returns the current time (timezone-aware); ``rand(n)`` returns
    ``n`` random octets (transaction ids, challenges, one-time keys, K/OPc of
    generated instances, matchingIds).
    """

    def __init__(
        self,
        config: SmdpConfig,
        store: SmdpStore,
        *,
        now: Callable[[], datetime],
        rand: Callable[[int], bytes] = os.urandom,
    ) -> None:
        if not config.credentials:
            raise UsageError("an SM-DP+ needs at least one credential")
        if not 1 <= len(config.host_id) <= 16:
            raise UsageError("host_id must be 1 to 16 octets")
        self._config = config
        self._store = store
        self._now = now
        self._rand = rand
        self._credentials = tuple(_credential(i, c) for i, c in enumerate(config.credentials))
        self._cis: tuple[RspCertificate, ...] = tuple(
            parse_certificate(c) for c in config.trusted_cis
        )
        self._ci_pkids = frozenset(c.subject_key_id for c in self._cis if c.subject_key_id)
        self._crls: tuple[RspCrl, ...] = tuple(parse_crl(c) for c in config.crls)
        self._types: dict[str, _LoadedType] = {}
        self._eums: dict[bytes, RspCertificate] = {}
        self._callbacks = dict(config.callback_urls)
        self._initiated = 0
        self._profile_files: ProfileFiles | None = None

    def set_profile_files(self, hook: ProfileFiles | None) -> None:
        """Extra EF contents for every profile bound from now on (or ``None``: none).

        ``hook(profile_type, sizes)`` gets the profile type and the sizes of
        the EFs of :data:`PROFILE_FILE_CANDIDATES` its template can
        personalise (one ``fillFileContent`` each), and returns EF contents
        by name (:attr:`rspfed.saip.personalise.Personalisation.files`, each
        exactly its size).  The operator service sets it (its roaming
        partners in EF.OPLMNwAcT, see :mod:`rspfed.federation.cells`).
        """
        self._profile_files = hook

    @property
    def config(self) -> SmdpConfig:
        """The configuration."""
        return self._config

    @property
    def store(self) -> SmdpStore:
        """The store."""
        return self._store

    # -- helpers -------------------------------------------------------------

    def _loaded(self, name: str) -> _LoadedType:
        found = self._types.get(name)
        if found is None:
            profile_type = self._store.get_profile_type(name)
            if profile_type is None:
                raise _fail(Status.PROFILE_TYPE_UNKNOWN, "profileType")
            found = _LoadedType(profile_type)
            self._types[name] = found
        return found

    def _session(
        self, transaction_id: bytes, now: datetime, stages: tuple[SessionStage, ...], fn: str
    ) -> RspSession:
        session = self._store.get_session(transaction_id)
        if session is None or session.stage not in stages:
            raise _fail(Status.TRANSACTION_ID_UNKNOWN, fn)
        if now >= session.expires:
            self._store.delete_session(transaction_id)
            raise _fail(Status.TRANSACTION_ID_UNKNOWN, fn)
        return session

    def _eum(self, der: bytes) -> RspCertificate:
        found = self._eums.get(der)
        if found is None:
            found = parse_certificate(der)
            if len(self._eums) >= 256:
                self._eums.clear()
            self._eums[der] = found
        return found

    def _verify_euicc(
        self, euicc_der: bytes, eum_der: bytes, now: datetime, fn: str
    ) -> tuple[ec.EllipticCurvePublicKey, Curve, str]:
        """Validate CERT.EUICC / CERT.EUM; (PK.EUICC, curve, EID) or the SGP.22 error."""
        try:
            eum = self._eum(eum_der)
        except DecodeError:
            raise _fail(Status.EUM_CERTIFICATE_INVALID, fn) from None
        try:
            chain = _verify_chain(
                euicc_der,
                role=CertificateRole.EUICC,
                trust_anchors=self._cis,
                intermediates=(eum,),
                crls=self._crls,
                now=now,
            )
        except DecodeError:
            raise _fail(Status.EUICC_CERTIFICATE_INVALID, fn) from None
        except CertificateError as exc:
            raise self._chain_error(eum, exc, now, fn) from None
        assert chain.eid is not None
        return chain.public_key, chain.curve, chain.eid

    def _chain_error(
        self, eum: RspCertificate, exc: CertificateError, now: datetime, fn: str
    ) -> FunctionExecutionError:
        if eum.authority_key_id not in self._ci_pkids:
            return _fail(Status.CI_PUBLIC_KEY_UNKNOWN, fn)
        try:
            _verify_chain(
                eum, role=CertificateRole.EUM, trust_anchors=self._cis, crls=self._crls, now=now
            )
        except CertificateExpiredError:
            return _fail(Status.EUM_CERTIFICATE_EXPIRED, fn)
        except CertificateError:
            return _fail(Status.EUM_CERTIFICATE_INVALID, fn)
        if isinstance(exc, CertificateExpiredError):
            return _fail(Status.EUICC_CERTIFICATE_EXPIRED, fn)
        return _fail(Status.EUICC_CERTIFICATE_INVALID, fn)

    @staticmethod
    def _public_key(encoded: bytes | None, fn: str) -> ec.EllipticCurvePublicKey:
        if not encoded or encoded[0] not in _CURVE_OF:
            raise _fail(Status.EUICC_VERIFICATION_FAILED, fn)
        try:
            return ecka.decode_public_key(_CURVE_OF[encoded[0]], encoded[1:])
        except DecodeError:
            raise _fail(Status.EUICC_VERIFICATION_FAILED, fn) from None

    def _event(
        self,
        item: InventoryItem,
        point: NotificationPoint,
        now: datetime,
        *,
        status: StatusCodeData | None = None,
        result: bytes | None = None,
        eid: str | None = None,
    ) -> None:
        url = self._callbacks.get(item.requester or "", self._config.callback_url)
        if url is None:
            return
        self._store.add_progress_event(
            DownloadProgressEvent(
                eid=eid or item.eid,
                iccid=item.iccid,
                profile_type=item.profile_type,
                timestamp=now,
                notification_point_id=int(point),
                status=status,
                result_data=result,
                callback_url=url,
                requester=item.requester,
            )
        )

    # -- ES9+ ------------------------------------------------------------------

    def initiate_authentication(
        self, req: es9p.InitiateAuthenticationRequest
    ) -> es9p.InitiateAuthenticationResponse:
        """ES9+.InitiateAuthentication (SGP.22 §5.6.1)."""
        fn = "initiateAuthentication"
        now = self._now()
        if not _same_address(req.smdp_address, self._config.address):
            raise _fail(Status.SMDP_ADDRESS_REFUSED, fn)
        if len(req.euicc_challenge) != 16:
            raise _fail(Status.INVALID_FORMAT, fn)
        try:
            asn1.decode(rsp.EUICCInfo1, req.euicc_info1)
            svn, verification, signing = _fields.euicc_info1(req.euicc_info1)
        except DecodeError:
            raise _fail(Status.INVALID_FORMAT, fn) from None
        if svn[:1] != b"\x02":
            raise _fail(Status.SPECIFICATION_VERSION_UNSUPPORTED, fn)
        chosen: tuple[_Credential, bytes] | None = None
        for cred in self._credentials:
            if cred.ci_pkid not in verification:
                continue
            usable = [p for p in signing if p in self._ci_pkids]
            if cred.ci_pkid in usable:
                chosen = (cred, cred.ci_pkid)
                break
            if usable and chosen is None:
                chosen = (cred, usable[0])
        if chosen is None:
            raise _fail(Status.SECURITY_CONFIGURATION_UNSUPPORTED, fn)
        cred, signing_pkid = chosen
        self._initiated += 1
        if self._initiated % _PURGE_EVERY == 0:
            self._store.purge_sessions(now)  # abandoned sessions do not pile up
        challenge = self._rand(16)
        for _ in range(8):
            tid = self._rand(16)
            session = RspSession(
                transaction_id=tid,
                stage=SessionStage.INITIATED,
                expires=now + self._config.session_ttl,
                credential=cred.index,
                server_challenge=challenge,
                euicc_ci_pkid=signing_pkid,
                euicc_info1=req.euicc_info1,
            )
            if self._store.insert_session(session):
                break
        else:  # pragma: no cover - rand repeating itself
            raise _fail(Status.EXECUTION_ERROR, fn)
        signed1 = _tlv(
            b"\x30",
            _tlv(b"\x80", tid)
            + _tlv(b"\x81", req.euicc_challenge)
            + _tlv(b"\x83", req.smdp_address.encode("utf-8"))
            + _tlv(b"\x84", challenge),
        )
        sig1 = signature.sign(cred.dp_auth_key, signed1)
        return es9p.InitiateAuthenticationResponse(
            transaction_id=tid,
            server_signed1=signed1,
            server_signature1=_SIG_HEADER + sig1,
            euicc_ci_pkid_to_be_used=_tlv(b"\x04", signing_pkid),
            server_certificate=cred.dp_auth_der,
        )

    def authenticate_client(
        self, req: es9p.AuthenticateClientRequest
    ) -> es9p.AuthenticateClientResponse:
        """ES9+.AuthenticateClient (SGP.22 §5.6.3).

        A refusal ends the RSP session (SGP.22 §3.1.3: the SM-DP+ terminates
        it), so nothing of a refused session is left in the store.
        """
        fn = "authenticateClient"
        now = self._now()
        tid = req.transaction_id
        session = self._session(tid, now, (SessionStage.INITIATED,), fn)
        try:
            return self._authenticate_client(req, session, now)
        except FunctionExecutionError:
            self._store.delete_session(tid)
            raise

    def _authenticate_client(
        self, req: es9p.AuthenticateClientRequest, session: RspSession, now: datetime
    ) -> es9p.AuthenticateClientResponse:
        fn = "authenticateClient"
        tid = req.transaction_id
        try:
            asn1.decode(rsp.AuthenticateServerResponse, req.authenticate_server_response)
            ok = _fields.authenticate_response_ok(req.authenticate_server_response)
        except DecodeError:
            raise _fail(Status.INVALID_FORMAT, fn) from None
        if ok is None:  # authenticateResponseError
            raise _fail(EUICC_EXECUTION_ERROR, fn)
        if not hmac.compare_digest(ok.transaction_id, tid):
            raise _fail(Status.TRANSACTION_ID_UNKNOWN, fn)
        if not hmac.compare_digest(ok.server_challenge, session.server_challenge):
            raise _fail(Status.EUICC_VERIFICATION_FAILED, fn)
        public_key, curve, eid = self._verify_euicc(
            ok.euicc_certificate, ok.eum_certificate, now, fn
        )
        sig1 = ok.euicc_signature1
        try:
            signature.verify(public_key, ok.euicc_signed1, sig1)
        except SignatureError:
            raise _fail(Status.EUICC_VERIFICATION_FAILED, fn) from None
        matching_id = ok.matching_id
        encoded_pk = bytes((_CURVE_BYTE[curve],)) + ecka.encode_public_key(public_key)
        cred = self._credentials[session.credential]
        failure: StatusCodeData | None = None
        with self._store.transaction():
            if matching_id is not None:
                item = self._store.find_item(matching_id=matching_id)
            else:
                item = self._store.find_item(pending_eid=eid)
            if item is None:
                raise _fail(Status.MATCHING_ID_REFUSED, fn)
            move(Trigger.AUTHENTICATE_CLIENT, item.state, function=fn)
            if item.eid is not None and item.eid != eid:
                self._event(
                    item,
                    NotificationPoint.ELIGIBILITY_AND_RETRY_LIMIT_CHECK,
                    now,
                    status=Status.EID_REFUSED,
                    eid=eid,
                )
                failure = Status.EID_REFUSED
            elif item.download_attempts >= self._config.max_download_attempts:
                state = move(Trigger.ATTEMPTS_EXCEEDED, item.state, function=fn)
                self._store.put_item(attrs.evolve(item, state=state, updated=now))
                self._store.delete_binding(item.iccid)
                self._store.delete_session(tid)
                self._event(
                    item,
                    NotificationPoint.ELIGIBILITY_AND_RETRY_LIMIT_CHECK,
                    now,
                    status=Status.DOWNLOAD_ORDER_ATTEMPTS_EXCEEDED,
                    eid=eid,
                )
                failure = Status.DOWNLOAD_ORDER_ATTEMPTS_EXCEEDED
            else:
                retry_otpk = b""
                if item.state is ItemState.DOWNLOADED:
                    kept = self._store.get_binding(item.iccid)
                    if kept is not None:
                        retry_otpk = kept.euicc_otpk
                cc_required = item.cc_hash is not None
                signed2 = _tlv(
                    b"\x30",
                    _tlv(b"\x80", tid)
                    + (b"\x01\x01\xff" if cc_required else b"\x01\x01\x00")
                    + (_tlv(b"\x5f\x49", retry_otpk) if retry_otpk else b""),
                )
                sig2 = signature.sign(cred.dp_pb_key, signed2 + _SIG_HEADER + sig1)
                self._store.update_item(
                    attrs.evolve(
                        item,
                        eid=eid,
                        download_attempts=item.download_attempts + 1,
                        transaction_id=tid,
                        euicc_public_key=encoded_pk,
                        updated=now,
                    ),
                    item,
                )
                authenticated = self._store.update_session(
                    attrs.evolve(
                        session,
                        stage=SessionStage.AUTHENTICATED,
                        iccid=item.iccid,
                        eid=eid,
                        euicc_public_key=encoded_pk,
                        euicc_signature1=sig1,
                        smdp_signature2=sig2,
                        cc_required=cc_required,
                        retry_otpk=retry_otpk,
                    ),
                    SessionStage.INITIATED,
                )
                if not authenticated:  # another request of this session won
                    raise _fail(Status.TRANSACTION_ID_UNKNOWN, fn)
                if item.transaction_id is not None and item.transaction_id != tid:
                    # a new session for the order (the retry after a lost link)
                    # supersedes the previous one: one RSP session per order
                    self._store.delete_session(item.transaction_id)
        if failure is not None:
            raise _fail(failure, fn)
        metadata = self._loaded(item.profile_type).metadata(item.iccid)
        return es9p.AuthenticateClientResponse(
            transaction_id=tid,
            profile_metadata=metadata,
            smdp_signed2=signed2,
            smdp_signature2=_SIG_HEADER + sig2,
            smdp_certificate=cred.dp_pb_der,
        )

    def get_bound_profile_package(
        self, req: es9p.GetBoundProfilePackageRequest
    ) -> es9p.GetBoundProfilePackageResponse:
        """ES9+.GetBoundProfilePackage (SGP.22 §5.6.2), including the retry."""
        fn = "getBoundProfilePackage"
        now = self._now()
        tid = req.transaction_id
        session = self._session(tid, now, (SessionStage.AUTHENTICATED,), fn)
        try:
            asn1.decode(rsp.PrepareDownloadResponse, req.prepare_download_response)
            ok = _fields.prepare_download_ok(req.prepare_download_response)
        except DecodeError:
            raise _fail(Status.INVALID_FORMAT, fn) from None
        if ok is None:  # downloadResponseError
            self._store.delete_session(tid)
            raise _fail(EUICC_EXECUTION_ERROR, fn)
        if not hmac.compare_digest(ok.transaction_id, tid):
            raise _fail(Status.TRANSACTION_ID_UNKNOWN, fn)
        public_key = self._public_key(session.euicc_public_key, fn)
        try:
            signature.verify(
                public_key,
                ok.euicc_signed2 + _SIG_HEADER + session.smdp_signature2,
                ok.euicc_signature2,
            )
        except SignatureError:
            raise _fail(Status.EUICC_VERIFICATION_FAILED, fn) from None
        otpk = ok.euicc_otpk
        item = self._store.get_item(session.iccid)
        if item is None or item.transaction_id != tid:
            raise _fail(Status.PROFILE_UNAVAILABLE, fn)
        target = move(Trigger.GET_BOUND_PROFILE_PACKAGE, item.state, function=fn)
        if session.cc_required:
            self._check_cc(item, session, ok.hash_cc, now, fn)
        cred = self._credentials[session.credential]
        ot_key: ec.EllipticCurvePrivateKey | None = None
        if session.retry_otpk and otpk == session.retry_otpk:
            kept = self._store.get_binding(item.iccid)
            if kept is not None and kept.euicc_otpk == otpk:
                ot_key = _load_ot_key(kept.smdp_ot_key, cred.curve)
        fresh = ot_key is None
        if ot_key is None:
            ot_key = ecka.generate_key_pair(cred.curve, self._rand)
        bpp = self._bind(item, session, otpk, ot_key, cred, fn)
        with self._store.transaction():
            if not self._store.update_session(
                attrs.evolve(session, stage=SessionStage.BOUND), SessionStage.AUTHENTICATED
            ) or not self._store.update_item(attrs.evolve(item, state=target, updated=now), item):
                raise _fail(Status.TRANSACTION_ID_UNKNOWN, fn)  # replayed, or the order changed
            if fresh:
                self._store.put_binding(
                    KeptBinding(item.iccid, otpk, _dump_ot_key(ot_key, cred.curve), now)
                )
            self._event(item, NotificationPoint.BPP_DOWNLOAD, now)
        return es9p.GetBoundProfilePackageResponse(transaction_id=tid, bound_profile_package=bpp)

    def _check_cc(
        self,
        item: InventoryItem,
        session: RspSession,
        hash_cc: bytes | None,
        now: datetime,
        fn: str,
    ) -> None:
        assert item.cc_hash is not None
        expected = hashlib.sha256(item.cc_hash + session.transaction_id).digest()
        if hash_cc is not None and hmac.compare_digest(bytes(hash_cc), expected):
            return
        with self._store.transaction():
            self._store.delete_session(session.transaction_id)
            latest = self._store.get_item(item.iccid)
            if latest is None or latest.transaction_id != session.transaction_id:
                raise _fail(Status.TRANSACTION_ID_UNKNOWN, fn)
            if hash_cc is None:
                failure = Status.CONFIRMATION_CODE_MISSING
            else:
                attempts = latest.cc_attempts + 1
                failure = Status.CONFIRMATION_CODE_REFUSED
                state = latest.state
                if attempts >= self._config.max_confirmation_code_attempts:
                    failure = Status.CONFIRMATION_CODE_RETRIES_EXCEEDED
                    state = move(Trigger.ATTEMPTS_EXCEEDED, state, function=fn)
                    self._store.delete_binding(latest.iccid)
                self._store.put_item(
                    attrs.evolve(latest, cc_attempts=attempts, state=state, updated=now)
                )
            self._event(latest, NotificationPoint.CONFIRMATION_FAILURE, now, status=failure)
        raise _fail(failure, fn)

    def _bind(
        self,
        item: InventoryItem,
        session: RspSession,
        otpk: bytes,
        ot_key: ec.EllipticCurvePrivateKey,
        cred: _Credential,
        fn: str,
    ) -> bytes:
        loaded = self._loaded(item.profile_type)
        ptype = loaded.profile_type
        files: Mapping[str, bytes] = {}
        if self._profile_files is not None:
            files = self._profile_files(ptype, _file_sizes(ptype.package))
        values = Personalisation(
            iccid=item.iccid,
            imsi=item.imsi,
            k=item.k,
            opc=item.opc if ptype.algorithm == "milenage" else None,
            algorithm=ptype.algorithm,
            files=files,
        )
        package = loaded.prepared.personalise(values)
        try:
            euicc_public = ecka.decode_public_key(cred.curve, otpk)
        except DecodeError:  # euiccOtpk not a point on the session's curve
            raise _fail(Status.INVALID_FORMAT, fn) from None
        # es8p.build_bound_profile_package, step by step: our own metadata and
        # ConfigureISDP need no second strict check on the hot path
        host_id = self._config.host_id
        data_objects, signed = es8p.initialise_secure_channel_signed_data(
            transaction_id=session.transaction_id,
            host_id=host_id,
            smdp_otpk=ecka.encode_public_key(ot_key.public_key()),
            euicc_otpk=otpk,
        )
        isc = _tlv(b"\xbf\x23", data_objects + _SIG_HEADER + signature.sign(cred.dp_pb_key, signed))
        keys = derive_session_keys(
            ecka.ecka_dh(ot_key, euicc_public), host_id, bytes.fromhex(session.eid)
        )
        segments = es8p.protect_bpp_segments(
            keys, es8p.DEFAULT_CONFIGURE_ISDP, loaded.metadata(item.iccid), package
        )
        return es8p.assemble_bound_profile_package(isc, segments)

    def handle_notification(self, req: es9p.HandleNotificationRequest) -> None:
        """ES9+.HandleNotification (SGP.22 §5.6.4): verify, record, move the inventory.

        A notification already handled (the same PIR again) is recorded and
        changes nothing.
        """
        fn = "handleNotification"
        now = self._now()
        try:
            pending = asn1.decode(rsp.PendingNotification, req.pending_notification)
        except DecodeError:
            raise _fail(Status.INVALID_FORMAT, fn) from None
        if pending.name == "profileInstallationResult":
            try:
                pir = _fields.installation_result(req.pending_notification)
            except DecodeError:
                raise _fail(Status.INVALID_FORMAT, fn) from None
            self._handle_pir(pir, req.pending_notification, now, fn)
        elif pending.name == "otherSignedNotification":
            self._handle_other(pending.chosen, req.pending_notification, now, fn)
        else:
            raise _fail(Status.INVALID_FORMAT, fn)

    def _handle_pir(
        self, pir: _fields.InstallationResult, der: bytes, now: datetime, fn: str
    ) -> None:
        tid = pir.transaction_id
        item = self._store.find_item(transaction_id=tid)
        if item is None:
            raise _fail(Status.TRANSACTION_ID_UNKNOWN, fn)
        try:
            signature.verify(self._public_key(item.euicc_public_key, fn), pir.data, pir.signature)
        except SignatureError:
            raise _fail(Status.EUICC_VERIFICATION_FAILED, fn) from None
        success = pir.success
        seq = pir.seq_number
        trigger = Trigger.INSTALL_SUCCESS if success else Trigger.INSTALL_FAILURE
        with self._store.transaction():
            if allowed(trigger, item.state) and self._store.update_item(
                attrs.evolve(item, state=move(trigger, item.state, function=fn), updated=now), item
            ):
                self._store.delete_binding(item.iccid)
                self._store.delete_session(tid)
                self._event(
                    item,
                    NotificationPoint.BPP_INSTALLATION,
                    now,
                    status=None if success else Status.EXECUTION_ERROR,
                    result=der,
                )
            self._store.add_notification(
                NotificationRecord(
                    now,
                    "install" if success else "install-error",
                    item.iccid,
                    item.eid,
                    tid,
                    seq,
                    der,
                )
            )

    def _handle_other(
        self, note: rsp.OtherSignedNotification, der: bytes, now: datetime, fn: str
    ) -> None:
        public_key, _curve, eid = self._verify_euicc(
            asn1.received_der(note["euiccCertificate"]),
            asn1.received_der(note["eumCertificate"]),
            now,
            fn,
        )
        tbs = note["tbsOtherNotification"]
        try:
            signature.verify(
                public_key,
                asn1.received_der(tbs),
                bytes(note["euiccNotificationSignature"].native),
            )
        except SignatureError:
            raise _fail(Status.EUICC_VERIFICATION_FAILED, fn) from None
        bits = tbs["profileManagementOperation"].native
        events = [_EVENT_BITS[b] for b in sorted(bits) if b in _EVENT_BITS]
        event = events[0] if len(events) == 1 else "unknown"
        raw_iccid = tbs["iccid"].native
        iccid = None
        if raw_iccid is not None:
            try:
                iccid = decode_iccid(bytes(raw_iccid))
            except DecodeError:
                iccid = None
        seq = int(tbs["seqNumber"].native)
        with self._store.transaction():
            item = None if iccid is None else self._store.get_item(iccid)
            if item is not None and item.eid == eid:
                trigger = {
                    "enable": Trigger.PROFILE_ENABLED_OR_DISABLED,
                    "disable": Trigger.PROFILE_ENABLED_OR_DISABLED,
                    "delete": Trigger.PROFILE_DELETED,
                }.get(event)
                if trigger is not None and allowed(trigger, item.state):
                    state = move(trigger, item.state, function=fn)
                    self._store.put_item(attrs.evolve(item, state=state, updated=now))
                    self._event(item, NotificationPoint.HANDLE_NOTIFICATION, now, result=der)
            self._store.add_notification(NotificationRecord(now, event, iccid, eid, None, seq, der))

    def cancel_session(self, req: es9p.CancelSessionRequest) -> es9p.CancelSessionResponse:
        """ES9+.CancelSession (SGP.22 §5.6.5): verify the eUICC's signed answer, end the session."""
        fn = "cancelSession"
        now = self._now()
        tid = req.transaction_id
        session = self._session(tid, now, (SessionStage.AUTHENTICATED, SessionStage.BOUND), fn)
        try:
            resp = asn1.decode(rsp.CancelSessionResponse, req.cancel_session_response)
        except DecodeError:
            raise _fail(Status.INVALID_FORMAT, fn) from None
        if resp.name != "cancelSessionResponseOk":
            raise _fail(EUICC_EXECUTION_ERROR, fn)
        ok = resp.chosen
        signed = ok["euiccCancelSessionSigned"]
        if not hmac.compare_digest(bytes(signed["transactionId"].native), tid):
            raise _fail(Status.TRANSACTION_ID_UNKNOWN, fn)
        try:
            signature.verify(
                self._public_key(session.euicc_public_key, fn),
                asn1.received_der(signed),
                bytes(ok["euiccCancelSessionSignature"].native),
            )
        except SignatureError:
            raise _fail(Status.EUICC_VERIFICATION_FAILED, fn) from None
        # SGP.22 §5.6.5: smdpOid must be the one of our CERT.DPauth.ECDSA
        expected_oid = self._credentials[session.credential].dp_auth_oid
        if expected_oid is not None and signed["smdpOid"].dotted != expected_oid:
            raise _fail(Status.SMDP_OID_INVALID_ASSOCIATION, fn)
        reason = signed["reason"].native
        trigger = (
            Trigger.SESSION_POSTPONED
            if reason in ("postponed", "timeout")
            else Trigger.SESSION_CANCELLED
        )
        with self._store.transaction():
            self._store.delete_session(tid)
            item = self._store.get_item(session.iccid)
            if item is not None and item.transaction_id == tid and allowed(trigger, item.state):
                state = move(trigger, item.state, function=fn)
                if state is ItemState.ERROR:
                    self._store.delete_binding(item.iccid)
                self._store.put_item(attrs.evolve(item, state=state, updated=now))
                self._event(
                    item,
                    NotificationPoint.HANDLE_NOTIFICATION,
                    now,
                    status=StatusCodeData("8.1", "3.8", message=f"cancelled: {reason}"),
                    result=req.cancel_session_response,
                )
        return es9p.CancelSessionResponse()

    # -- ES2+ ------------------------------------------------------------------

    def add_profile_type(self, profile_type: ProfileType) -> None:
        """Register ``profile_type`` (prepares its template first: a bad template raises
        :class:`~rspfed.errors.UsageError`; an existing name :class:`~rspfed.errors.StateError`)."""
        loaded = _LoadedType(profile_type)
        self._store.put_profile_type(profile_type)
        self._types[profile_type.name] = loaded

    def prepare_profile_types(self) -> int:
        """Prepare every registered profile type now (template and metadata caches);
        how many.  A server calls it at start so that no download pays the
        preparation (about 0.3 s per TS.48 template)."""
        names = self._store.profile_type_names()
        for name in names:
            self._loaded(name)
        return len(names)

    def profile_types(self) -> list[str]:
        """Names of the registered profile types."""
        return self._store.profile_type_names()

    def add_inventory_item(
        self,
        profile_type: str,
        *,
        iccid: str,
        imsi: str,
        k: bytes,
        opc: bytes,
    ) -> InventoryItem:
        """Add a prepared instance (operator-supplied ICCID, IMSI, K, OPc) as available."""
        self._loaded(profile_type)
        Personalisation(iccid=iccid, imsi=imsi, k=k, opc=opc)  # validates the values
        now = self._now()
        item = InventoryItem(
            iccid=iccid,
            profile_type=profile_type,
            state=ItemState.AVAILABLE,
            imsi=imsi,
            k=bytes(k),
            opc=bytes(opc),
            created=now,
            updated=now,
        )
        with self._store.transaction():
            if self._store.get_item(iccid) is not None:
                raise _fail(Status.ICCID_ALREADY_IN_USE, "addInventoryItem")
            self._store.put_item(item)
        return item

    def _keys(self, ptype: ProfileType) -> tuple[bytes, bytes]:
        k = self._rand(16)
        opc = compute_opc(k, ptype.op) if ptype.op is not None else self._rand(16)
        return k, opc

    def _generate(self, ptype: ProfileType, now: datetime) -> InventoryItem:
        for _ in range(100):
            counter = self._store.next_counter(ptype.name)
            body = ptype.iccid_prefix + str(counter).zfill(19 - len(ptype.iccid_prefix))
            imsi = ptype.imsi_prefix + str(counter).zfill(15 - len(ptype.imsi_prefix))
            if len(body) != 19 or len(imsi) != 15:
                raise _fail(Status.PROFILE_TYPE_UNAVAILABLE, "downloadOrder")
            iccid = body + _luhn(body)
            if self._store.get_item(iccid) is None:
                k, opc = self._keys(ptype)
                return InventoryItem(
                    iccid=iccid,
                    profile_type=ptype.name,
                    state=ItemState.AVAILABLE,
                    imsi=imsi,
                    k=k,
                    opc=opc,
                    created=now,
                    updated=now,
                )
        raise _fail(Status.PROFILE_TYPE_UNAVAILABLE, "downloadOrder")  # pragma: no cover

    def download_order(
        self,
        *,
        profile_type: str | None = None,
        iccid: str | None = None,
        eid: str | None = None,
        requester: str | None = None,
    ) -> str:
        """ES2+.DownloadOrder (SGP.22 §5.3.1): reserve an instance; its ICCID.

        With ``iccid`` that available item; else the oldest available item of
        ``profile_type``, or a new one generated from the type (ICCID and
        IMSI numbered, K and OPc from ``rand``).  With ``eid`` the order is
        bound to that eUICC (state ``linked``), else ``allocated``.
        """
        fn = "downloadOrder"
        if profile_type is None and iccid is None:
            raise _fail(Status.MANDATORY_ELEMENT_MISSING, fn)
        if eid is not None and not is_valid_eid(eid):
            raise _fail(EID_INVALID_FORMAT, fn)
        trigger = Trigger.DOWNLOAD_ORDER if eid is None else Trigger.DOWNLOAD_ORDER_EID
        now = self._now()
        if profile_type is not None:
            self._loaded(profile_type)
        with self._store.transaction():
            if iccid is not None:
                item = self._store.get_item(iccid)
                if item is None:
                    raise _fail(Status.ICCID_UNKNOWN, fn)
                if profile_type is not None and item.profile_type != profile_type:
                    raise _fail(Status.ICCID_INVALID_ASSOCIATION, fn)
            else:
                assert profile_type is not None
                item = self._store.first_available(profile_type) or self._generate(
                    self._loaded(profile_type).profile_type, now
                )
            state = move(trigger, item.state, function=fn)
            self._store.put_item(
                attrs.evolve(item, state=state, eid=eid, requester=requester, updated=now)
            )
        return item.iccid

    def _new_matching_id(self) -> str:
        alphabet = _MATCHING_ID_ALPHABET
        for _ in range(16):
            raw = self._rand(20)
            text = "".join(alphabet[b % len(alphabet)] for b in raw)
            mid = "-".join(text[i : i + 5] for i in range(0, 20, 5))
            if not self._store.matching_id_known(mid):
                return mid
        raise _fail(Status.EXECUTION_ERROR, "confirmOrder")  # pragma: no cover

    def confirm_order(
        self,
        *,
        iccid: str,
        eid: str | None = None,
        matching_id: str | None = None,
        confirmation_code: str | None = None,
        smds_address: str | None = None,
        release_flag: bool = True,
        requester: str | None = None,
    ) -> ConfirmedOrder:
        """ES2+.ConfirmOrder (SGP.22 §5.3.2).

        ``matching_id`` ``None`` generates one (``XXXXX-XXXXX-XXXXX-XXXXX``);
        ``""`` means none: the order must be bound to an EID and is fetched
        through the eUICC's default SM-DP+ address.  A given matchingId must
        be new (matchingIds are single use: 8.2.6/3.3).  ``confirmation_code``
        is kept only as SHA256(code).  ``release_flag`` false leaves the order
        ``confirmed`` until :meth:`release_profile`.
        """
        fn = "confirmOrder"
        if eid is not None and not is_valid_eid(eid):
            raise _fail(EID_INVALID_FORMAT, fn)
        if matching_id and not _MATCHING_ID.fullmatch(matching_id):
            raise _fail(Status.INVALID_FORMAT, fn)
        if confirmation_code is not None and not 1 <= len(confirmation_code) <= 64:
            raise _fail(Status.INVALID_FORMAT, fn)
        trigger = Trigger.CONFIRM_ORDER_RELEASE if release_flag else Trigger.CONFIRM_ORDER
        now = self._now()
        with self._store.transaction():
            item = self._store.get_item(iccid)
            if item is None:
                raise _fail(Status.ICCID_UNKNOWN, fn)
            state = move(trigger, item.state, function=fn)
            if eid is not None and item.eid is not None and item.eid != eid:
                raise _fail(Status.EID_INVALID_ASSOCIATION, fn)
            bound_eid = item.eid or eid
            if matching_id is None:
                mid: str | None = self._new_matching_id()
            elif matching_id == "":
                if bound_eid is None:
                    raise _fail(Status.MANDATORY_ELEMENT_MISSING, fn)
                mid = None
            else:
                if self._store.matching_id_known(matching_id):
                    raise _fail(Status.MATCHING_ID_ALREADY_IN_USE, fn)
                mid = matching_id
            cc_hash = (
                None
                if confirmation_code is None
                else hashlib.sha256(confirmation_code.encode("utf-8")).digest()
            )
            self._store.put_item(
                attrs.evolve(
                    item,
                    state=state,
                    eid=bound_eid,
                    matching_id=mid,
                    cc_hash=cc_hash,
                    release_flag=release_flag,
                    smds_address=smds_address,
                    requester=requester or item.requester,
                    updated=now,
                )
            )
        return ConfirmedOrder(
            eid=bound_eid,
            matching_id=mid or "",
            smdp_address=self._config.address,
            confirmation_code_required=cc_hash is not None,
        )

    def cancel_order(
        self,
        *,
        iccid: str,
        eid: str | None = None,
        matching_id: str | None = None,
        final_profile_status_indicator: str = "Available",
        requester: str | None = None,
    ) -> None:
        """ES2+.CancelOrder (SGP.22 §5.3.3).

        ``final_profile_status_indicator`` ``"Available"`` returns the
        instance to the inventory with fresh K/OPc (a delivered package must
        not be installable later under the same keys) and retires its
        matchingId; ``"Unavailable"`` takes it out for good.
        """
        fn = "cancelOrder"
        if final_profile_status_indicator == "Available":
            trigger = Trigger.CANCEL_ORDER_AVAILABLE
        elif final_profile_status_indicator == "Unavailable":
            trigger = Trigger.CANCEL_ORDER_UNAVAILABLE
        else:
            raise _fail(Status.INVALID_FORMAT, fn)
        now = self._now()
        with self._store.transaction():
            item = self._store.get_item(iccid)
            if item is None:
                raise _fail(Status.ICCID_UNKNOWN, fn)
            state = move(trigger, item.state, function=fn)
            if eid is not None and item.eid != eid:
                raise _fail(Status.EID_INVALID_ASSOCIATION, fn)
            if matching_id is not None and item.matching_id != matching_id:
                raise _fail(MATCHING_ID_INVALID_ASSOCIATION, fn)
            if item.matching_id is not None:
                self._store.retire_matching_id(item.matching_id)
            if item.transaction_id is not None:
                self._store.delete_session(item.transaction_id)
            self._store.delete_binding(iccid)
            if state is ItemState.AVAILABLE:
                k, opc = self._keys(self._loaded(item.profile_type).profile_type)
                fresh = InventoryItem(
                    iccid=item.iccid,
                    profile_type=item.profile_type,
                    state=state,
                    imsi=item.imsi,
                    k=k,
                    opc=opc,
                    created=item.created,
                    updated=now,
                )
            else:
                fresh = attrs.evolve(item, state=state, matching_id=None, updated=now)
            self._store.put_item(fresh)

    def release_profile(self, *, iccid: str, requester: str | None = None) -> None:
        """ES2+.ReleaseProfile (SGP.22 §5.3.4): a confirmed order becomes downloadable."""
        fn = "releaseProfile"
        now = self._now()
        with self._store.transaction():
            item = self._store.get_item(iccid)
            if item is None:
                raise _fail(Status.ICCID_UNKNOWN, fn)
            state = move(Trigger.RELEASE_PROFILE, item.state, function=fn)
            self._store.put_item(attrs.evolve(item, state=state, release_flag=True, updated=now))

    # -- inventory and events ----------------------------------------------------

    def take_progress_events(self, limit: int = 100) -> list[DownloadProgressEvent]:
        """Remove and return up to ``limit`` queued HandleDownloadProgressInfo events."""
        return self._store.take_progress_events(limit)

    def inventory(self, profile_type: str | None = None) -> list[InventoryItem]:
        """The inventory (of one profile type), by ICCID."""
        return self._store.items(profile_type)

    def item(self, iccid: str) -> InventoryItem | None:
        """One inventory item."""
        return self._store.get_item(iccid)

    def notifications(self, iccid: str | None = None) -> list[NotificationRecord]:
        """Notifications received (for one ICCID)."""
        return self._store.notifications(iccid)

    def purge_expired_sessions(self) -> int:
        """Delete the sessions expired now; how many.

        InitiateAuthentication also does it every 256 calls per process, so
        sessions that clients abandon do not pile up.
        """
        return self._store.purge_sessions(self._now())
