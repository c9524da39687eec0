"""ES8+: the Bound Profile Package (SGP.22 §2.5.4–2.5.6, §3.1.3, §5.5, §5.7.6), sans-IO.

Layout of a BPP (``BoundProfilePackage``, tag ``BF36``)::

    BF36 L
      BF23 L  InitialiseSecureChannelRequest   (plain, signed: smdpSign)
      A0 L    firstSequenceOf87:  one '87'  ConfigureISDPRequest    (encrypted + MAC)
      A1 L    sequenceOf88:       '88' …    StoreMetadataRequest    (MAC only, split by size)
      A2 L    secondSequenceOf87: one '87'  ReplaceSessionKeysRequest (optional; encrypted + MAC)
      A3 L    sequenceOf86:       '86' …    the profile package     (encrypted + MAC, split by size)

``smdpSign`` is the ECDSA (TR-03111 ``r || s``) signature by SK.DPpb.ECDSA
over ``remoteOpId || transactionId || controlRefTemplate || smdpOtpk`` (the
data objects of the request, tags included) followed by ``'5F49' L
euiccOtpk``.  Session keys come from ECKA-DH(otSK, otPK) and the X9.63 KDF
over hostId and EID (:mod:`rspfed.crypto.kdf`); segments are protected with
BSP (:mod:`rspfed.crypto.bsp`), one MAC chain across all of them; a
``ReplaceSessionKeysRequest`` restarts it under the PPKs.

The profile package is cut by size (at most 1007 plaintext octets per
``'86'``), not on ProfileElement boundaries: SGP.22 does not require
alignment and the eUICC reassembles (as pySim's SM-DP+ and the
third-party SM-DP+ trace in pySim's test data do).

Stable API (used by the ISD-R's ES10b.LoadBoundProfilePackage)
--------------------------------------------------------------

SM-DP+ side (:mod:`rspfed.es8p.build`)::

    build_bound_profile_package(*, transaction_id, euicc_otpk, smdp_ot_key, dp_pb_key,
                                eid, host_id, metadata, profile,
                                configure_isdp=DEFAULT_CONFIGURE_ISDP,
                                deterministic_signature=False) -> bytes
    protect_profile_package(package, ppk) -> ProtectedProfilePackage   # once per profile
    generate_ppk(rand) -> SessionKeys
    protect_bpp_segments(keys, configure_isdp_der, metadata_der, profile) -> BppSegments
    assemble_bound_profile_package(isc_der, segments) -> bytes
    store_metadata_request(iccid, service_provider_name, profile_name, *, ...) -> bytes

LPA (:mod:`rspfed.es8p.segment`)::

    segment_bpp_for_es10b(bpp_der) -> list[bytes]

eUICC side (:mod:`rspfed.es8p.unbind`)::

    u = BppUnbinder(euicc_ot_key=otSK, smdp_public_key=PK_DPpb, transaction_id=tid, eid=eid)
    for block in blocks:                 # one ES10b LoadBoundProfilePackage block each
        events = u.feed(block)           # raises BppError(bpp_command_id, error_reason)
        # SecureChannelInitialised, IsdpConfigured, MetadataStored, SessionKeysReplaced,
        # ProfileElementReceived (each whole PE TLV), BppComplete (whole package)
    err = u.fail(ErrorReason.installFailedDueToIccidAlreadyExistsOnEuicc)  # ISD-R checks

Results (:mod:`rspfed.es8p.result`)::

    build_profile_installation_result(*, transaction_id, notification_metadata,
                                      final_result, euicc_key, smdp_oid=None) -> bytes
    profile_installation_result_data_der(*, transaction_id, seq_number, notification_address,
                                         final_result, iccid=None, smdp_oid=None) -> bytes
    sign_profile_installation_result(data_der, euicc_key) -> bytes  # the eUICC's path
    verify_profile_installation_result(der, euicc_public_key, *, transaction_id=None)
    InstallationSuccess(aid, sima_response=b""), InstallationFailure.from_error(err)

Codes (:mod:`rspfed.es8p.codes`): ``BppCommandId``, ``ErrorReason`` (members named
as in ASN.1), ``BppError`` (a ``ProtocolError``), ``ERROR_REASONS``,
``FAILURE_REASONS``.  See ``docs/es8p.md``.
"""

from __future__ import annotations

from rspfed.es8p.build import (
    DEFAULT_CONFIGURE_ISDP,
    REMOTE_OP_INSTALL_BPP,
    BppSegments,
    ProtectedProfilePackage,
    assemble_bound_profile_package,
    build_bound_profile_package,
    generate_ppk,
    initialise_secure_channel_signed_data,
    protect_bpp_segments,
    protect_profile_package,
    replace_session_keys_request,
    store_metadata_request,
)
from rspfed.es8p.codes import (
    ERROR_REASONS,
    FAILURE_REASONS,
    BppCommandId,
    BppError,
    ErrorReason,
)
from rspfed.es8p.result import (
    InstallationFailure,
    InstallationSuccess,
    build_profile_installation_result,
    profile_installation_result_data_der,
    sign_profile_installation_result,
    verify_profile_installation_result,
)
from rspfed.es8p.segment import segment_bpp_for_es10b
from rspfed.es8p.unbind import (
    BppComplete,
    BppEvent,
    BppUnbinder,
    IsdpConfigured,
    MetadataStored,
    ProfileElementReceived,
    SecureChannelInitialised,
    SessionKeysReplaced,
    UnbinderState,
)

__all__ = [
    "DEFAULT_CONFIGURE_ISDP",
    "ERROR_REASONS",
    "FAILURE_REASONS",
    "REMOTE_OP_INSTALL_BPP",
    "BppCommandId",
    "BppComplete",
    "BppError",
    "BppEvent",
    "BppSegments",
    "BppUnbinder",
    "ErrorReason",
    "InstallationFailure",
    "InstallationSuccess",
    "IsdpConfigured",
    "MetadataStored",
    "ProfileElementReceived",
    "ProtectedProfilePackage",
    "SecureChannelInitialised",
    "SessionKeysReplaced",
    "UnbinderState",
    "assemble_bound_profile_package",
    "build_bound_profile_package",
    "build_profile_installation_result",
    "generate_ppk",
    "initialise_secure_channel_signed_data",
    "profile_installation_result_data_der",
    "protect_bpp_segments",
    "protect_profile_package",
    "replace_session_keys_request",
    "segment_bpp_for_es10b",
    "sign_profile_installation_result",
    "store_metadata_request",
    "verify_profile_installation_result",
]
