"""Sans-IO EAP-AKA' state machines: the authenticator (server) and the peer.

Theory (RFC 9048 §3, RFC 4187 §3), in the h11 manner: each side is an object
that is fed the octets the other side sent and answers with the octets to
send back; nothing here does I/O, reads a clock or draws global randomness.
The EAP identity is settled before these machines start (EAP-Response/
Identity or a TS.43 entitlement request); both sides are built with it,
because it enters MK.

Full authentication::

    server                                      peer
    start()  ── Request/AKA-Challenge ───────▶  receive()
             (AT_RAND, AT_AUTN, AT_KDF=1,        USIM: authenticate(RAND, AUTN)
              AT_KDF_INPUT, AT_MAC)             verify AT_MAC with K_aut
    receive() ◀── Response/AKA-Challenge ─────
             (AT_RES, [AT_RSPFED_FEDERATION_KEY], AT_MAC)
    check AT_MAC, then RES == XRES
             ── Success ──────────────────────▶  receive() → SUCCESS

Resynchronisation: the USIM answers AUTS; the peer sends
Synchronization-Failure (AT_AUTS, AT_KDF); the server hands AUTS to the AuC
(:meth:`AuC.resynchronise`), takes a fresh vector and challenges once more.
A second Synchronization-Failure ends in Failure.  A USIM that rejects AUTN
makes the peer send Authentication-Reject.

Server states: ``IDLE → CHALLENGE_SENT → SUCCESS | FAILURE``.
Peer states: ``WAIT_CHALLENGE → WAIT_RESULT → SUCCESS | FAILURE``.

Errors: a packet that does not decode, or whose Identifier does not match the
outstanding request, raises :class:`~rspfed.errors.DecodeError` /
:class:`~rspfed.errors.ProtocolError` and leaves the state unchanged (RFC 3748
says to discard it).  A response that decodes but fails AT_MAC or RES raises
:class:`~rspfed.errors.IntegrityError` and moves the server to ``FAILURE``;
send :meth:`EapAkaPrimeServer.failure_packet` then.  A replayed response (an
old RES for an old RAND) fails: the RAND and K_aut are fresh for every
challenge, so its AT_MAC or RES cannot verify.

Federation key (rspfed's extension): the peer may be given a P-256 public key
(65 octets, SEC1 uncompressed); it is sent in ``AT_RSPFED_FEDERATION_KEY``
(241, skippable, so other servers ignore it) inside the MAC-covered response.
The server exposes it as :attr:`EapAkaPrimeServer.federation_key` only once
the exchange has succeeded.

Persistence: a service running in several processes keeps the server between
messages with :meth:`EapAkaPrimeServer.snapshot` (versioned JSON holding the
current vector, so a secret to be stored like keys) and
:meth:`EapAkaPrimeServer.restore`.  An error from the AuC during
:meth:`~EapAkaPrimeServer.start` or a resynchronisation (an unknown, barred
or removed subscriber, a bad AUTS) moves the server to ``FAILURE`` and is
re-raised unchanged.
"""

from __future__ import annotations

import enum
import hmac
import json
import re
from collections.abc import Callable
from typing import Any, Protocol

import attrs
from cryptography.hazmat.primitives.asymmetric import ec

from rspfed.eap.akaprime import (
    AT_AUTN,
    AT_AUTS,
    AT_CLIENT_ERROR_CODE,
    AT_KDF,
    AT_KDF_INPUT,
    AT_MAC,
    AT_RAND,
    AT_RES,
    AT_RSPFED_FEDERATION_KEY,
    EAP_TYPE_AKA_PRIME,
    KDF_AKA_PRIME,
    Attribute,
    Code,
    EapPacket,
    Keys,
    Subtype,
    add_mac,
    decode,
    derive_keys,
    verify_mac,
)
from rspfed.errors import (
    DecodeError,
    IntegrityError,
    ProtocolError,
    RspfedError,
    StateError,
    UsageError,
)

__all__ = [
    "AkaVector",
    "AuC",
    "AuthenticationVector",
    "EapAkaPrimePeer",
    "EapAkaPrimeServer",
    "PeerState",
    "ServerState",
    "UsimAuthenticate",
    "UsimResult",
]


@attrs.frozen
class AuthenticationVector:
    """One AKA authentication vector from the AuC (TS 33.102 §6.3.2); secrets hidden in repr."""

    rand: bytes
    autn: bytes
    xres: bytes = attrs.field(repr=False)
    ck: bytes = attrs.field(repr=False)
    ik: bytes = attrs.field(repr=False)

    def __attrs_post_init__(self) -> None:
        if len(self.rand) != 16 or len(self.autn) != 16:
            raise UsageError("RAND and AUTN must be 16 octets")
        if not 4 <= len(self.xres) <= 16:
            raise UsageError("XRES must be 4 to 16 octets")
        if len(self.ck) != 16 or len(self.ik) != 16:
            raise UsageError("CK and IK must be 16 octets")

    @property
    def sqn_xor_ak(self) -> bytes:
        """``SQN ⊕ AK``, the first 6 octets of AUTN (the KDF input of CK'/IK')."""
        return self.autn[:6]


class AkaVector(Protocol):
    """Any authentication vector shape (e.g. ``rspfed.network.auc.AuthenticationVector``)."""

    @property
    def rand(self) -> bytes:
        """RAND (16 octets)."""
        ...

    @property
    def autn(self) -> bytes:
        """AUTN (16 octets)."""
        ...

    @property
    def xres(self) -> bytes:
        """XRES (4 to 16 octets)."""
        ...

    @property
    def ck(self) -> bytes:
        """CK (16 octets)."""
        ...

    @property
    def ik(self) -> bytes:
        """IK (16 octets)."""
        ...


class AuC(Protocol):
    """What the authenticator needs from the authentication centre (it owns SQN)."""

    def vector(self, identity: bytes) -> AkaVector:
        """A fresh authentication vector for the subscriber behind ``identity``."""
        ...

    def resynchronise(self, identity: bytes, rand: bytes, auts: bytes) -> None:
        """Check AUTS for RAND and move SQN on; IntegrityError if MAC-S is wrong."""
        ...


UsimResult = tuple[bytes, bytes, bytes] | bytes
"""What a USIM AUTHENTICATE gives: ``(RES, CK, IK)``, or AUTS (14 octets) on a sync failure."""

UsimAuthenticate = Callable[[bytes, bytes], UsimResult]
"""``authenticate(rand, autn)``; raises IntegrityError when AUTN's MAC-A is wrong."""


class ServerState(enum.Enum):
    """Authenticator states."""

    IDLE = "idle"
    CHALLENGE_SENT = "challenge-sent"
    SUCCESS = "success"
    FAILURE = "failure"


class PeerState(enum.Enum):
    """Peer states."""

    WAIT_CHALLENGE = "wait-challenge"
    WAIT_RESULT = "wait-result"
    SUCCESS = "success"
    FAILURE = "failure"


def _check_federation_key(key: bytes) -> bytes:
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), bytes(key))
    except ValueError:
        raise DecodeError("not a P-256 point", type_name="AT_RSPFED_FEDERATION_KEY") from None
    if len(key) != 65:
        raise DecodeError(
            "P-256 key must be SEC1 uncompressed", type_name="AT_RSPFED_FEDERATION_KEY"
        )
    return bytes(key)


_SNAPSHOT_VERSION = 1
_SNAPSHOT_KEYS = frozenset(
    {"v", "identity", "network_name", "identifier", "state", "vector", "resynced", "federation_key"}
)
_VECTOR_KEYS = frozenset({"rand", "autn", "xres", "ck", "ik"})
_HEX = re.compile(r"(?:[0-9a-f]{2})*")


def _snapshot_error(message: str) -> DecodeError:
    return DecodeError(message, type_name="EapAkaPrimeServer snapshot")


def _load_snapshot(data: bytes) -> dict[str, Any]:
    if not isinstance(data, bytes | bytearray | memoryview):
        raise _snapshot_error("not octets")
    try:
        doc = json.loads(bytes(data).decode("utf-8"))
    except (ValueError, RecursionError):
        raise _snapshot_error("not JSON") from None
    if not isinstance(doc, dict):
        raise _snapshot_error("not a JSON object")
    version = doc.get("v")
    if type(version) is not int or version != _SNAPSHOT_VERSION:
        raise _snapshot_error("unknown snapshot version")
    if set(doc) != _SNAPSHOT_KEYS:
        raise _snapshot_error("wrong set of fields")
    return doc


def _hex(doc: dict[str, Any], key: str) -> bytes:
    value = doc[key]
    if not isinstance(value, str) or _HEX.fullmatch(value) is None:
        raise _snapshot_error(f"{key} must be lowercase hex")
    return bytes.fromhex(value)


def _load_vector(value: object) -> AuthenticationVector | None:
    if value is None:
        return None
    if not isinstance(value, dict) or set(value) != _VECTOR_KEYS:
        raise _snapshot_error("malformed vector")
    f = {k: _hex(value, k) for k in _VECTOR_KEYS}
    try:
        return AuthenticationVector(f["rand"], f["autn"], f["xres"], f["ck"], f["ik"])
    except UsageError:
        raise _snapshot_error("vector field of the wrong length") from None


class EapAkaPrimeServer:
    """The EAP-AKA' authenticator for one subscriber identity.

    ``random`` (like :func:`os.urandom`) draws the first EAP Identifier.
    """

    def __init__(
        self,
        *,
        identity: bytes,
        network_name: bytes,
        auc: AuC,
        random: Callable[[int], bytes],
    ) -> None:
        self._identity = bytes(identity)
        self._network_name = bytes(network_name)
        self._auc = auc
        drawn = random(1)
        if len(drawn) != 1:
            raise UsageError("random(1) must return one octet")
        self._identifier = drawn[0]
        self._state = ServerState.IDLE
        self._vector: AuthenticationVector | None = None
        self._keys: Keys | None = None
        self._resynced = False
        self._federation_key: bytes | None = None

    @property
    def state(self) -> ServerState:
        """The current state."""
        return self._state

    def start(self) -> bytes:
        """The first EAP-Request/AKA-Challenge.

        An error from the AuC (e.g. :class:`rspfed.network.NetworkRefusedError`
        for an unknown, barred or removed subscriber) moves the server to
        ``FAILURE`` and is re-raised.
        """
        if self._state is not ServerState.IDLE:
            raise StateError("server already started")
        try:
            return self._challenge()
        except RspfedError as e:
            raise self._fail(e) from None

    def _challenge(self) -> bytes:
        got = self._auc.vector(self._identity)
        av = AuthenticationVector(got.rand, got.autn, got.xres, got.ck, got.ik)
        self._identifier = (self._identifier + 1) % 256
        self._vector = av
        self._keys = derive_keys(self._identity, av.ck, av.ik, self._network_name, av.sqn_xor_ak)
        self._state = ServerState.CHALLENGE_SENT
        packet = EapPacket(
            Code.REQUEST,
            self._identifier,
            EAP_TYPE_AKA_PRIME,
            Subtype.AKA_CHALLENGE,
            (
                Attribute(AT_RAND, av.rand),
                Attribute(AT_AUTN, av.autn),
                Attribute(AT_KDF, KDF_AKA_PRIME.to_bytes(2, "big")),
                Attribute(AT_KDF_INPUT, self._network_name),
                Attribute(AT_MAC, bytes(16)),
            ),
        )
        return add_mac(self._keys.k_aut, packet)

    def _fail(self, error: Exception) -> Exception:
        self._state = ServerState.FAILURE
        self._keys = None
        return error

    def receive(self, data: bytes) -> bytes:
        """Process the peer's response; the next packet to send (Challenge, Success or Failure)."""
        if self._state is not ServerState.CHALLENGE_SENT:
            raise StateError(f"no response expected in state {self._state.value}")
        packet = decode(data)
        if packet.code is not Code.RESPONSE or packet.type != EAP_TYPE_AKA_PRIME:
            raise ProtocolError("expected an EAP-Response/AKA'")
        if packet.identifier != self._identifier:
            raise ProtocolError("EAP Identifier does not match the outstanding request")
        if self._vector is None or self._keys is None:  # pragma: no cover - set with the state
            raise StateError("no outstanding challenge")
        if packet.subtype is Subtype.AKA_CHALLENGE:
            try:
                verify_mac(self._keys.k_aut, data)
            except IntegrityError as e:
                raise self._fail(e) from None
            try:
                res = packet.require(AT_RES)
            except DecodeError as e:
                raise self._fail(e) from None
            if not hmac.compare_digest(res, self._vector.xres):
                raise self._fail(IntegrityError("RES does not match XRES"))
            fk = packet.get(AT_RSPFED_FEDERATION_KEY)
            if fk is not None:
                try:
                    self._federation_key = _check_federation_key(fk.value)
                except DecodeError as e:
                    raise self._fail(e) from None
            self._state = ServerState.SUCCESS
            return EapPacket(Code.SUCCESS, self._identifier).encode()
        if packet.subtype is Subtype.SYNCHRONIZATION_FAILURE:
            auts = packet.require(AT_AUTS)
            if self._resynced:
                raise self._fail(ProtocolError("second Synchronization-Failure"))
            self._resynced = True
            try:
                self._auc.resynchronise(self._identity, self._vector.rand, auts)
                return self._challenge()
            except RspfedError as e:  # bad MAC-S, or the subscriber barred meanwhile
                raise self._fail(e) from None
        if packet.subtype in (Subtype.AUTHENTICATION_REJECT, Subtype.CLIENT_ERROR):
            self._fail(ProtocolError("peer refused the challenge"))
            return self.failure_packet()
        raise ProtocolError(f"unexpected subtype {packet.subtype}")

    def failure_packet(self) -> bytes:
        """EAP-Failure for the outstanding Identifier (send it after a failure)."""
        return EapPacket(Code.FAILURE, self._identifier).encode()

    # -- persistence ---------------------------------------------------------

    def snapshot(self) -> bytes:
        """The server's state as compact JSON (format ``v`` = 1), to store between messages.

        A multi-process service keeps this between HTTP requests and
        :meth:`restore` s it for the next message.  Layout (UTF-8 JSON, keys
        sorted, no spaces; octet strings as lowercase hex)::

            {"federation_key": hex | null, "identifier": 0..255,
             "identity": hex, "network_name": hex, "resynced": bool,
             "state": "idle" | "challenge-sent" | "success" | "failure",
             "v": 1,
             "vector": {"autn": hex, "ck": hex, "ik": hex, "rand": hex, "xres": hex} | null}

        **It holds secrets** (XRES, CK, IK, from which K_aut, MSK and EMSK
        follow): store it like keys (encrypted or access-controlled, never
        logged), and delete it when the exchange ends.  Single use is the
        store's job: replace the stored snapshot with the new one (or delete
        it) atomically *before* sending the answer, so that the same
        response cannot be fed twice to one restored state.
        """
        vector = None
        if self._vector is not None:
            av = self._vector
            vector = {
                "rand": av.rand.hex(),
                "autn": av.autn.hex(),
                "xres": av.xres.hex(),
                "ck": av.ck.hex(),
                "ik": av.ik.hex(),
            }
        fk = self._federation_key
        doc = {
            "v": _SNAPSHOT_VERSION,
            "identity": self._identity.hex(),
            "network_name": self._network_name.hex(),
            "identifier": self._identifier,
            "state": self._state.value,
            "vector": vector,
            "resynced": self._resynced,
            "federation_key": None if fk is None else fk.hex(),
        }
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("ascii")

    @classmethod
    def restore(cls, data: bytes, *, auc: AuC, random: Callable[[int], bytes]) -> EapAkaPrimeServer:
        """The server a :meth:`snapshot` describes, bound to ``auc``.

        K_aut, MSK and EMSK are derived again from the stored vector.
        ``random`` is accepted for symmetry with the constructor (the server
        draws randomness only for its first Identifier, already in the
        snapshot).  :class:`~rspfed.errors.DecodeError` for anything that is
        not a well-formed version-1 snapshot with a consistent state.
        """
        del random
        doc = _load_snapshot(data)
        server = cls.__new__(cls)
        server._identity = _hex(doc, "identity")
        server._network_name = _hex(doc, "network_name")
        server._auc = auc
        ident = doc["identifier"]
        if type(ident) is not int or not 0 <= ident <= 255:
            raise _snapshot_error("identifier must be 0..255")
        server._identifier = ident
        try:
            state = ServerState(doc["state"])
        except (ValueError, TypeError):
            raise _snapshot_error("unknown state") from None
        server._state = state
        resynced = doc["resynced"]
        if type(resynced) is not bool:
            raise _snapshot_error("resynced must be a boolean")
        server._resynced = resynced
        server._vector = _load_vector(doc["vector"])
        server._keys = None
        server._federation_key = None
        if doc["federation_key"] is not None:
            if state is not ServerState.SUCCESS:
                raise _snapshot_error("a federation key before success")
            server._federation_key = _check_federation_key(_hex(doc, "federation_key"))
        if state is ServerState.IDLE and (server._vector is not None or resynced):
            raise _snapshot_error("an idle server has no vector")
        if state in (ServerState.CHALLENGE_SENT, ServerState.SUCCESS):
            av = server._vector
            if av is None:
                raise _snapshot_error(f"no vector in state {state.value}")
            try:
                server._keys = derive_keys(
                    server._identity, av.ck, av.ik, server._network_name, av.sqn_xor_ak
                )
            except RspfedError:
                raise _snapshot_error("keys cannot be derived") from None
        return server

    @property
    def msk(self) -> bytes:
        """The MSK (64 octets), after success."""
        return self._done_keys().msk

    @property
    def emsk(self) -> bytes:
        """The EMSK (64 octets), after success."""
        return self._done_keys().emsk

    @property
    def federation_key(self) -> bytes | None:
        """The peer's P-256 federation key (SEC1, 65 octets) if it sent one; after success only."""
        self._done_keys()
        return self._federation_key

    def _done_keys(self) -> Keys:
        if self._state is not ServerState.SUCCESS or self._keys is None:
            raise StateError("authentication has not succeeded")
        return self._keys


class EapAkaPrimePeer:
    """The EAP-AKA' peer: answers with the USIM's ``authenticate(rand, autn)``.

    ``network_name``: when given, the AT_KDF_INPUT of a challenge must equal
    it, or the peer answers Authentication-Reject (RFC 9048 §3.1 leaves the
    comparison to local policy).  ``federation_key``: a P-256 public key
    (SEC1 uncompressed) to send in AT_RSPFED_FEDERATION_KEY.
    """

    def __init__(
        self,
        *,
        identity: bytes,
        usim: UsimAuthenticate,
        network_name: bytes | None = None,
        federation_key: bytes | None = None,
    ) -> None:
        self._identity = bytes(identity)
        self._usim = usim
        self._network_name = network_name
        if federation_key is not None:
            try:
                federation_key = _check_federation_key(federation_key)
            except DecodeError:
                raise UsageError("federation_key must be an uncompressed P-256 point") from None
        self._federation_key = federation_key
        self._state = PeerState.WAIT_CHALLENGE
        self._keys: Keys | None = None
        self._identifier: int | None = None

    @property
    def state(self) -> PeerState:
        """The current state."""
        return self._state

    def _answer(self, identifier: int, subtype: Subtype, *attrs_: Attribute) -> bytes:
        self._identifier = identifier  # an EAP-Failure for this Identifier is now expected
        return EapPacket(Code.RESPONSE, identifier, EAP_TYPE_AKA_PRIME, subtype, attrs_).encode()

    def receive(self, data: bytes) -> bytes | None:
        """Process a server packet; the response to send, or None after Success/Failure."""
        if self._state in (PeerState.SUCCESS, PeerState.FAILURE):
            raise StateError(f"exchange finished ({self._state.value})")
        packet = decode(data)
        if packet.code in (Code.SUCCESS, Code.FAILURE):
            if packet.identifier != self._identifier or (
                packet.code is Code.SUCCESS and self._state is not PeerState.WAIT_RESULT
            ):
                raise ProtocolError("unexpected EAP Success/Failure")
            if packet.code is Code.SUCCESS:
                self._state = PeerState.SUCCESS
            else:
                self._state = PeerState.FAILURE
                self._keys = None
            return None
        if packet.code is not Code.REQUEST or packet.type != EAP_TYPE_AKA_PRIME:
            raise ProtocolError("expected an EAP-Request/AKA'")
        if packet.subtype is not Subtype.AKA_CHALLENGE:
            raise ProtocolError(f"unsupported request subtype {packet.subtype}")
        rand = packet.require(AT_RAND)
        autn = packet.require(AT_AUTN)
        packet.require(AT_MAC)
        kdfs = packet.get_all(AT_KDF)
        name = packet.require(AT_KDF_INPUT)
        ident = packet.identifier
        if not kdfs or kdfs[0].int_value != KDF_AKA_PRIME or not name:
            return self._answer(ident, Subtype.AUTHENTICATION_REJECT)
        if self._network_name is not None and name != self._network_name:
            return self._answer(ident, Subtype.AUTHENTICATION_REJECT)
        try:
            result = self._usim(rand, autn)
        except IntegrityError:
            return self._answer(ident, Subtype.AUTHENTICATION_REJECT)
        if isinstance(result, bytes):
            self._identifier = ident
            return self._answer(
                ident,
                Subtype.SYNCHRONIZATION_FAILURE,
                Attribute(AT_AUTS, result),
                Attribute(AT_KDF, KDF_AKA_PRIME.to_bytes(2, "big")),
            )
        res, ck, ik = result
        keys = derive_keys(self._identity, ck, ik, name, autn[:6])
        try:
            verify_mac(keys.k_aut, data)
        except IntegrityError:
            # RFC 4187 §6.3.1: Client-Error "unable to process packet" (0)
            return self._answer(
                ident, Subtype.CLIENT_ERROR, Attribute(AT_CLIENT_ERROR_CODE, bytes(2))
            )
        self._keys = keys
        self._identifier = ident
        self._state = PeerState.WAIT_RESULT
        answer: list[Attribute] = [Attribute(AT_RES, res)]
        if self._federation_key is not None:
            answer.append(Attribute(AT_RSPFED_FEDERATION_KEY, self._federation_key))
        answer.append(Attribute(AT_MAC, bytes(16)))
        out = EapPacket(
            Code.RESPONSE, ident, EAP_TYPE_AKA_PRIME, Subtype.AKA_CHALLENGE, tuple(answer)
        )
        return add_mac(keys.k_aut, out)

    @property
    def msk(self) -> bytes:
        """The MSK (64 octets), after EAP-Success."""
        return self._done_keys().msk

    @property
    def emsk(self) -> bytes:
        """The EMSK (64 octets), after EAP-Success."""
        return self._done_keys().emsk

    def _done_keys(self) -> Keys:
        if self._state is not PeerState.SUCCESS or self._keys is None:
            raise StateError("authentication has not succeeded")
        return self._keys
