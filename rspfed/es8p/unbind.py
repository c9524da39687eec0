"""Taking a Bound Profile Package apart on the eUICC (ES10b.LoadBoundProfilePackage, sans-IO).

:class:`BppUnbinder` is fed the BPP block by block, each block being one
ES10b segment as the LPA cuts it (:func:`rspfed.es8p.segment.segment_bpp_for_es10b`,
SGP.22 §2.5.5), and returns the events each block completes.  Any failure
raises :class:`~rspfed.es8p.codes.BppError` (``bpp_command_id``,
``error_reason``) and poisons the object: every later call raises
:class:`~rspfed.errors.StateError`.  Nothing is returned for the failing
block, so the caller has seen exactly the events of the blocks before it.
"""

from __future__ import annotations

import enum
import hmac
from typing import TypeVar

import attrs
from cryptography.hazmat.primitives.asymmetric import ec

from rspfed import asn1
from rspfed.asn1 import rsp
from rspfed.crypto import bsp, ecka, signature
from rspfed.crypto.curves import Curve
from rspfed.crypto.kdf import EID_SIZE, SessionKeys, derive_session_keys
from rspfed.errors import (
    DecodeError,
    IntegrityError,
    ProtocolError,
    RspfedError,
    SignatureError,
    StateError,
    UsageError,
)
from rspfed.es8p._tlv import children, read_header, tlv
from rspfed.es8p.build import REMOTE_OP_INSTALL_BPP
from rspfed.es8p.codes import BppCommandId, BppError, ErrorReason

__all__ = [
    "BppComplete",
    "BppEvent",
    "BppUnbinder",
    "IsdpConfigured",
    "MetadataStored",
    "ProfileElementReceived",
    "SecureChannelInitialised",
    "SessionKeysReplaced",
    "UnbinderState",
]

_C = BppCommandId
_R = ErrorReason
_T = TypeVar("_T", bound=asn1.Asn1Value)
_MAX_SEQUENCE_HEADER = 4
_MAX_PE_HEADER = 3 + 4  # read_header: up to 3 tag octets, up to 1 + 3 length octets


@attrs.frozen
class SecureChannelInitialised:
    """The InitialiseSecureChannelRequest verified; session keys derived."""

    request: rsp.InitialiseSecureChannelRequest = attrs.field(repr=False, eq=False)
    transaction_id: bytes
    host_id: bytes


@attrs.frozen
class IsdpConfigured:
    """The ``ConfigureISDPRequest`` (``firstSequenceOf87``) verified and decrypted."""

    request: rsp.ConfigureISDPRequest = attrs.field(repr=False, eq=False)
    der: bytes = attrs.field(repr=False)


@attrs.frozen
class MetadataStored:
    """The whole ``StoreMetadataRequest`` (all ``'88'`` segments) verified."""

    request: rsp.StoreMetadataRequest = attrs.field(repr=False, eq=False)
    der: bytes = attrs.field(repr=False)


@attrs.frozen
class SessionKeysReplaced:
    """A ``ReplaceSessionKeysRequest`` was verified; the PPKs are now in use."""


@attrs.frozen
class ProfileElementReceived:
    """One whole ProfileElement TLV of the profile package (DER, not yet decoded)."""

    der: bytes = attrs.field(repr=False)


@attrs.frozen
class BppComplete:
    """The last ``'86'`` segment was verified; ``profile_package`` is the whole package."""

    profile_package: bytes = attrs.field(repr=False)


BppEvent = (
    SecureChannelInitialised
    | IsdpConfigured
    | MetadataStored
    | SessionKeysReplaced
    | ProfileElementReceived
    | BppComplete
)
"""Anything :meth:`BppUnbinder.feed` returns."""


class UnbinderState(enum.Enum):
    """Which ES10b block :class:`BppUnbinder` expects next."""

    INITIALISE_SECURE_CHANNEL = "BF36 header + InitialiseSecureChannelRequest"
    FIRST_SEQUENCE_OF_87 = "firstSequenceOf87 (A0 + one '87')"
    SEQUENCE_OF_88_HEADER = "sequenceOf88 header (A1)"
    SEQUENCE_OF_88 = "an '88' segment"
    SECOND_87_OR_86_HEADER = "secondSequenceOf87 (A2 + one '87') or sequenceOf86 header (A3)"
    SEQUENCE_OF_86_HEADER = "sequenceOf86 header (A3)"
    SEQUENCE_OF_86 = "an '86' segment"
    COMPLETE = "nothing (complete)"
    FAILED = "nothing (failed)"


class BppUnbinder:
    """The eUICC side of a BPP: verify, decrypt and take apart, block by block.

    ``euicc_ot_key``
        otSK.EUICC.ECKA, the one-time key pair generated for PrepareDownload.
    ``smdp_public_key``
        PK.DPpb.ECDSA from the CERT.DPpb.ECDSA verified at PrepareDownload.
    ``transaction_id``
        the TransactionId of the session.
    ``eid``
        the eUICC's EID (16 octets), an input of the session key derivation.

    The InitialiseSecureChannelRequest is checked in the order remoteOpId,
    transactionId, controlRefTemplate, smdpSign, smdpOtpk (see
    :data:`~rspfed.es8p.codes.FAILURE_REASONS`).  Checks that depend on the
    eUICC's state (ICCID already present, profile class, PPRs, memory) belong
    to the ISD-R: it inspects the events and reports with :meth:`fail`.
    """

    def __init__(
        self,
        *,
        euicc_ot_key: ec.EllipticCurvePrivateKey,
        smdp_public_key: ec.EllipticCurvePublicKey,
        transaction_id: bytes,
        eid: bytes,
    ) -> None:
        if len(eid) != EID_SIZE:
            raise UsageError(f"EID must be {EID_SIZE} octets")
        if not 1 <= len(transaction_id) <= 16:
            raise UsageError("transactionId must be 1 to 16 octets")
        self._curve = Curve.of_key(euicc_ot_key)
        Curve.of_key(smdp_public_key)
        self._ot_key = euicc_ot_key
        self._euicc_otpk = ecka.encode_public_key(euicc_ot_key.public_key())
        self._dp_pb = smdp_public_key
        self._transaction_id = bytes(transaction_id)
        self._eid = bytes(eid)
        self._state = UnbinderState.INITIALISE_SECURE_CHANNEL
        self._command = _C.initialiseSecureChannel
        self._bsp: bsp.BspDecryptor | None = None
        self._bpp_remaining = 0
        self._seq_remaining = 0
        self._metadata = bytearray()
        self._n88 = 0
        self._profile = bytearray()
        self._pe_start = 0

    def __repr__(self) -> str:
        return f"BppUnbinder(state={self._state.name})"

    # ---- public state

    @property
    def state(self) -> UnbinderState:
        """The block expected next (or COMPLETE / FAILED)."""
        return self._state

    @property
    def bpp_command_id(self) -> BppCommandId:
        """The BPP command of the last block processed (or being processed)."""
        return self._command

    def fail(self, error_reason: ErrorReason, detail: str = "") -> BppError:
        """Abandon the BPP for a reason found by the caller (ICCID exists, profile class…).

        The error carries the command of the last block processed (for a
        MetadataStored event, ``storeMetadata`` or ``storeMetadata2``).  The
        unbinder is poisoned; the error is returned for the caller to raise
        or report.
        """
        self._poison()
        return BppError(self._command, error_reason, detail)

    # ---- feeding

    def feed(self, block: bytes) -> list[BppEvent]:
        """Process one ES10b block; the events it completes (possibly none)."""
        if self._state is UnbinderState.FAILED:
            raise StateError("the BPP was abandoned after an error")
        if self._state is UnbinderState.COMPLETE:
            raise StateError("the BPP is complete")
        data = bytes(block)
        try:
            return self._dispatch(data)
        except BppError:
            self._poison()
            raise
        except RspfedError as exc:  # not expected: every check maps to a BppError
            self._poison()
            raise BppError(self._command, _R.installFailedDueToUnknownError) from exc

    def _poison(self) -> None:
        self._state = UnbinderState.FAILED
        self._bsp = None
        self._profile.clear()
        self._metadata.clear()

    def _dispatch(self, data: bytes) -> list[BppEvent]:
        state = self._state
        if state is UnbinderState.INITIALISE_SECURE_CHANNEL:
            return self._initialise_secure_channel(data)
        if state is UnbinderState.FIRST_SEQUENCE_OF_87:
            return self._configure_isdp(data)
        if state is UnbinderState.SEQUENCE_OF_88_HEADER:
            return self._sequence_header(data, b"\xa1", _C.storeMetadata)
        if state is UnbinderState.SEQUENCE_OF_88:
            return self._store_metadata(data)
        if state is UnbinderState.SECOND_87_OR_86_HEADER:
            # Told apart by size, not by the tag octet, so that a damaged tag is reported
            # against the right command: the sequenceOf86 header is at most 4 octets
            # ('A3 82 xx xx'), a secondSequenceOf87 block at least 2 + 26.
            if len(data) > _MAX_SEQUENCE_HEADER:
                return self._replace_session_keys(data)
            return self._sequence_header(data, b"\xa3", _C.loadProfileElements)
        if state is UnbinderState.SEQUENCE_OF_86_HEADER:
            return self._sequence_header(data, b"\xa3", _C.loadProfileElements)
        return self._load_profile_elements(data)

    # ---- helpers

    def _structure(self, detail: str) -> BppError:
        if self._command is _C.initialiseSecureChannel:
            return BppError(self._command, _R.incorrectInputValues, detail)
        return BppError(self._command, _R.scp03tStructureError, detail)

    def _consume_bpp(self, n: int) -> None:
        if n > self._bpp_remaining:
            raise self._structure("block goes past the end of the BoundProfilePackage")
        self._bpp_remaining -= n

    def _one_tlv(self, data: bytes, offset: int, tag: bytes, what: str) -> int:
        """Check that ``data[offset:]`` is exactly one TLV with ``tag``; its value offset."""
        try:
            got, value_at, length = read_header(data, offset, what)
        except DecodeError as exc:
            raise self._structure(f"bad {what} TLV") from exc
        if got != tag:
            raise self._structure(f"expected {what} (tag {tag.hex().upper()})")
        if value_at + length != len(data):
            raise self._structure(f"{what} length does not match the block")
        return value_at

    def _unprotect(self, segment: bytes, tag: int, *, encrypted: bool) -> bytes:
        assert self._bsp is not None
        try:
            if encrypted:
                return self._bsp.unprotect(segment, tag=tag)
            return self._bsp.unprotect_mac_only(segment, tag=tag)
        except IntegrityError as exc:
            raise BppError(self._command, _R.scp03tSecurityError, "C-MAC check failed") from exc
        except (DecodeError, ProtocolError) as exc:
            raise self._structure("malformed BSP segment") from exc

    def _content(self, cls: type[_T], der: bytes) -> _T:
        try:
            return asn1.decode(cls, der)
        except DecodeError as exc:
            raise BppError(
                self._command, _R.incorrectInputValues, f"not a valid {asn1.type_name(cls)}"
            ) from exc

    # ---- command 0: InitialiseSecureChannel

    def _initialise_secure_channel(self, data: bytes) -> list[BppEvent]:
        self._command = _C.initialiseSecureChannel
        try:
            tag, isc_at, bpp_length = read_header(data, 0, "BoundProfilePackage")
            if tag != b"\xbf\x36":
                raise DecodeError("not a BoundProfilePackage", type_name="BoundProfilePackage")
            isc = data[isc_at:]
            request = asn1.decode(rsp.InitialiseSecureChannelRequest, isc)
            # [35] { remoteOpId, transactionId, controlRefTemplate, smdpOtpk, smdpSign, ... }
            # read from the checked DER: all mandatory, so the first five components
            # (extension additions can only follow); the CRT likewise { keyType, keyLen,
            # hostId, ... }
            _, at, length = read_header(isc, 0, "InitialiseSecureChannelRequest")
            op, tid, crt, otpk, sign = children(isc, at, at + length, "ISC")[:5]
            key_type, key_len, host = children(isc, crt[2], crt[3], "ControlRefTemplate")[:3]
        except DecodeError as exc:
            raise BppError(
                self._command, _R.incorrectInputValues, "malformed InitialiseSecureChannelRequest"
            ) from exc
        self._bpp_remaining = bpp_length
        self._consume_bpp(len(data) - isc_at)

        if int.from_bytes(isc[op[2] : op[3]], "big", signed=True) != REMOTE_OP_INSTALL_BPP:
            raise BppError(self._command, _R.unsupportedRemoteOperationType)
        transaction_id = isc[tid[2] : tid[3]]
        if not hmac.compare_digest(transaction_id, self._transaction_id):
            raise BppError(self._command, _R.invalidTransactionId)
        if isc[key_type[2] : key_type[3]] != b"\x88" or isc[key_len[2] : key_len[3]] != b"\x10":
            raise BppError(self._command, _R.unsupportedCrtValues)
        host_id = isc[host[2] : host[3]]

        # remoteOpId .. smdpOtpk as received (contiguous: the first four root components)
        signed = isc[op[1] : otpk[3]] + tlv(b"\x5f\x49", self._euicc_otpk)
        try:
            signature.verify(self._dp_pb, signed, isc[sign[2] : sign[3]])
        except (SignatureError, DecodeError) as exc:
            raise BppError(self._command, _R.invalidSignature) from exc
        try:
            smdp_otpk = ecka.decode_public_key(self._curve, isc[otpk[2] : otpk[3]])
        except DecodeError as exc:
            raise BppError(
                self._command, _R.incorrectInputValues, "smdpOtpk is not a point on the curve"
            ) from exc
        try:
            keys = derive_session_keys(ecka.ecka_dh(self._ot_key, smdp_otpk), host_id, self._eid)
        except UsageError as exc:  # cannot happen after the checks above; keep the family
            raise BppError(self._command, _R.unsupportedCrtValues) from exc
        self._bsp = bsp.BspDecryptor(keys)
        self._state = UnbinderState.FIRST_SEQUENCE_OF_87
        return [SecureChannelInitialised(request, transaction_id, host_id)]

    # ---- command 1: ConfigureISDP

    def _configure_isdp(self, data: bytes) -> list[BppEvent]:
        self._command = _C.configureISDP
        self._consume_bpp(len(data))
        segment_at = self._one_tlv(data, 0, b"\xa0", "firstSequenceOf87")
        plain = self._single_87(data, segment_at, "firstSequenceOf87")
        request = self._content(rsp.ConfigureISDPRequest, plain)
        self._state = UnbinderState.SEQUENCE_OF_88_HEADER
        return [IsdpConfigured(request, plain)]

    def _single_87(self, data: bytes, segment_at: int, what: str) -> bytes:
        segment = data[segment_at:]
        self._one_tlv(segment, 0, b"\x87", f"'87' segment of {what}")
        return self._unprotect(segment, bsp.TAG_CONFIGURE_ISDP, encrypted=True)

    # ---- sequence headers (A1, A3)

    def _sequence_header(self, data: bytes, tag: bytes, command: BppCommandId) -> list[BppEvent]:
        self._command = command
        self._consume_bpp(len(data))
        name = "sequenceOf88" if tag == b"\xa1" else "sequenceOf86"
        try:
            got, value_at, length = read_header(data, 0, name)
        except DecodeError as exc:
            raise self._structure(f"bad {name} header") from exc
        if got != tag:
            raise self._structure(f"expected the {name} header (tag {tag.hex().upper()})")
        if value_at != len(data):
            raise self._structure(f"the {name} header block carries more than the header")
        if length == 0:
            raise self._structure(f"empty {name}")
        if tag == b"\xa3":
            if length != self._bpp_remaining:
                raise self._structure("sequenceOf86 does not end the BoundProfilePackage")
            self._state = UnbinderState.SEQUENCE_OF_86
        else:
            if length > self._bpp_remaining:
                raise self._structure("sequenceOf88 goes past the end of the BoundProfilePackage")
            self._state = UnbinderState.SEQUENCE_OF_88
        self._seq_remaining = length
        return []

    # ---- commands 2/3: StoreMetadata

    def _store_metadata(self, data: bytes) -> list[BppEvent]:
        self._command = _C.storeMetadata if self._n88 == 0 else _C.storeMetadata2
        self._n88 += 1
        self._consume_bpp(len(data))
        if len(data) > self._seq_remaining:
            raise self._structure("'88' segment goes past the end of sequenceOf88")
        self._one_tlv(data, 0, b"\x88", "'88' segment")
        self._metadata += self._unprotect(data, bsp.TAG_STORE_METADATA, encrypted=False)
        self._seq_remaining -= len(data)
        if self._seq_remaining:
            return []
        der = bytes(self._metadata)
        self._metadata.clear()
        request = self._content(rsp.StoreMetadataRequest, der)
        self._state = UnbinderState.SECOND_87_OR_86_HEADER
        return [MetadataStored(request, der)]

    # ---- command 4: ReplaceSessionKeys

    def _replace_session_keys(self, data: bytes) -> list[BppEvent]:
        self._command = _C.replaceSessionKeys
        self._consume_bpp(len(data))
        segment_at = self._one_tlv(data, 0, b"\xa2", "secondSequenceOf87")
        plain = self._single_87(data, segment_at, "secondSequenceOf87")
        request = self._content(rsp.ReplaceSessionKeysRequest, plain)
        try:
            keys = SessionKeys.from_replace_session_keys(
                bytes(request["initialMacChainingValue"].native),
                bytes(request["ppkEnc"].native),
                bytes(request["ppkCmac"].native),
            )
        except UsageError as exc:
            raise BppError(
                self._command, _R.incorrectInputValues, "PPK values must be 16 octets"
            ) from exc
        assert self._bsp is not None
        self._bsp.replace_session_keys(keys)
        self._state = UnbinderState.SEQUENCE_OF_86_HEADER
        return [SessionKeysReplaced()]

    # ---- command 5: LoadProfileElements

    def _load_profile_elements(self, data: bytes) -> list[BppEvent]:
        self._command = _C.loadProfileElements
        self._consume_bpp(len(data))
        if len(data) > self._seq_remaining:
            raise self._structure("'86' segment goes past the end of sequenceOf86")
        self._one_tlv(data, 0, b"\x86", "'86' segment")
        self._profile += self._unprotect(data, bsp.TAG_PROFILE_ELEMENT, encrypted=True)
        self._seq_remaining -= len(data)
        events: list[BppEvent] = list(self._complete_elements())
        if self._seq_remaining:
            return events
        if self._pe_start != len(self._profile):
            raise BppError(
                self._command,
                _R.installFailedDueToPEProcessingError,
                "the profile package does not end on a whole ProfileElement",
            )
        events.append(BppComplete(bytes(self._profile)))
        self._profile.clear()
        self._bsp = None
        self._state = UnbinderState.COMPLETE
        return events

    def _complete_elements(self) -> list[ProfileElementReceived]:
        out: list[ProfileElementReceived] = []
        data = self._profile
        size = len(data)
        start = self._pe_start
        try:
            while start < size:
                try:
                    _, value_at, length = read_header(data, start, "ProfileElement")
                except DecodeError:
                    if size - start < _MAX_PE_HEADER:  # cut by the segment end
                        break
                    raise
                end = value_at + length
                if end > size:
                    break
                out.append(ProfileElementReceived(bytes(data[start:end])))
                start = end
        except RspfedError as exc:
            raise BppError(
                self._command,
                _R.installFailedDueToPEProcessingError,
                "malformed ProfileElement TLV",
            ) from exc
        self._pe_start = start
        return out
