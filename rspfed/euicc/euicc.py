"""The assembled software eUICC: store, keys and certificates, ISD-R and the UICC front end.

:meth:`Euicc.create` makes a new eUICC in a store file: key pairs per curve
(from the injected randomness), certificates issued by a test PKI's EUM
(:class:`~rspfed.pki.testpki.TestPki`), the trusted CI certificates (the
PKI's own plus any extra, e.g. the GSMA SGP.26 test CI).  :meth:`Euicc.open`
loads it again.  :attr:`Euicc.card` is a :class:`~rspfed.euicc.card.Card`
(a :class:`~rspfed.euicc.uicc.Uicc` with the ISD-R registered) to plug into
a reader (:func:`rspfed.euicc.vpcd.serve_vpcd`) or drive directly.

Store layout (see :mod:`rspfed.euicc.store`): private keys ``euicc-<curve>``,
certificates ``euicc-<curve>`` and ``eum-<curve>``, trusted CIs ``ci-<n>``.

The file system the card shows is the enabled profile's, built by the
``loader`` (profile + installed content → :class:`UiccState`; by default
:func:`saip_loader`, the SAIP installer); with ``loader=None``, or with no
profile enabled, it is a bare MF with EF.DIR (and EF.ICCID of the enabled
profile, if any).  Downloaded packages are checked by ``installer`` (by
default :func:`saip_installer`: a package the SAIP installer refuses is not
installed; ``installer=None`` accepts any package).

Card state at rest: when a profile is first shown its whole
:class:`UiccState` is stored as JSON (:meth:`Store.put_card_state
<rspfed.euicc.store.Store.put_card_state>`).  After each state-changing
APDU (:data:`PERSISTENT_INS`) only the items that changed are written, in
one transaction (:func:`card_state_delta`, :meth:`Store.put_card_delta
<rspfed.euicc.store.Store.put_card_delta>`); loading applies them to the
JSON (:func:`apply_card_delta`).  Items: ``file:<path>`` (path ``3F00/...``
from the MF, or ``<ADF AID in hex>/...``; value: the life cycle status octet,
then the content, or the records one after the other), ``pin:<key
reference, 2 hex digits>`` and ``aka:<ADF AID in hex>`` (value: the JSON of
:meth:`PinSpec.to_dict <rspfed.euicc.uicc.PinSpec.to_dict>` /
:meth:`AkaSpec.to_dict <rspfed.euicc.usim.AkaSpec.to_dict>`).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from rspfed.crypto.curves import Curve
from rspfed.crypto.ecka import generate_key_pair
from rspfed.errors import RspfedError, StorageError, UsageError
from rspfed.euicc._state import Profile, ProfileRef
from rspfed.euicc.apdu import SW_MEMORY_PROBLEM
from rspfed.euicc.fs import (
    AccessCondition,
    AccessRules,
    FileSpec,
    FileStructure,
    FileSystemSpec,
    Lcsi,
)
from rspfed.euicc.isdr import EuiccCredential, IsdR, PackageInstaller
from rspfed.euicc.store import Store
from rspfed.euicc.uicc import PinSpec, Transmission, Uicc, UiccState
from rspfed.euicc.usim import AkaSpec
from rspfed.pki.eid import generate_eid, validate_eid
from rspfed.pki.testpki import TestPki
from rspfed.pki.validate import parse_certificate

__all__ = [
    "PERSISTENT_INS",
    "Euicc",
    "PersistentCard",
    "ProfileLoader",
    "apply_card_delta",
    "bare_state",
    "card_state_delta",
    "saip_installer",
    "saip_loader",
]

PERSISTENT_INS = frozenset({0xD6, 0xDC, 0x20, 0x24, 0x26, 0x28, 0x2C, 0x88, 0x89, 0x04, 0x44})
"""Instructions after which the card state is compared and saved."""

_log = logging.getLogger(__name__)

ProfileLoader = Callable[[Profile, bytes], UiccState]
"""Builds the card state of an enabled profile from its installed content."""


def saip_loader(profile: Profile, content: bytes) -> UiccState:
    """The default :data:`ProfileLoader`: the SAIP installer (:mod:`rspfed.saip.install`)."""
    from rspfed.saip.install import load_profile  # saip builds on euicc's file system

    return load_profile(profile, content)


def saip_installer(package: bytes) -> str:
    """The default package check of the ISD-R: install with :mod:`rspfed.saip.install`
    (a package it refuses is not installed); the ICCID it installs."""
    from rspfed.saip.install import install_package

    return install_package(package).iccid


def _utcnow() -> datetime:
    return datetime.now(UTC)


def bare_state(iccid: bytes | None = None) -> UiccState:
    """A UICC with only an MF: EF.DIR (one empty record) and EF.ICCID when ``iccid`` is given."""
    alw = AccessCondition.ALW
    children = [
        FileSpec(
            0x2F00,
            FileStructure.LINEAR_FIXED,
            "EF.DIR",
            records=(b"\xff" * 32,),
            access=AccessRules(read=alw, update=AccessCondition.ADM1),
            sfi=0x1E,
        )
    ]
    if iccid is not None:
        children.append(
            FileSpec(
                0x2FE2,
                FileStructure.TRANSPARENT,
                "EF.ICCID",
                content=iccid,
                access=AccessRules(read=alw, update=AccessCondition.NEV),
                sfi=0x02,
            )
        )
    mf = FileSpec(0x3F00, FileStructure.DF, "MF", children=tuple(children))
    return UiccState(FileSystemSpec(mf))


_FILE = "file:"
_PIN = "pin:"
_AKA = "aka:"


def _static(spec: FileSpec) -> tuple[object, ...]:
    """What APDUs cannot change in a file (its changeable parts: contents and LCSI)."""
    return (
        spec.fid, spec.structure, spec.name, spec.sfi, spec.access, spec.arr, spec.shareable,
        spec.aid, spec.pin_refs, len(spec.children), len(spec.records), spec.record_length,
    )  # fmt: skip


def _file_value(spec: FileSpec) -> bytes:
    body = b"".join(spec.records) if spec.structure.is_record else spec.content
    return bytes((int(spec.lcsi),)) + body


def _files_delta(old: FileSpec, new: FileSpec, path: str, out: dict[str, bytes]) -> bool:
    if old is new:
        return True
    if _static(old) != _static(new):
        return False
    if old.lcsi != new.lcsi or old.content != new.content or old.records != new.records:
        out[_FILE + path] = _file_value(new)
    for a, b in zip(old.children, new.children, strict=True):
        if not _files_delta(a, b, f"{path}/{b.fid:04X}", out):
            return False
    return True


def _root_path(spec: FileSpec) -> str:
    return "3F00" if spec.aid is None else spec.aid.hex().upper()


def _json_item(data: dict[str, Any]) -> bytes:
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode()


def card_state_delta(old: UiccState, new: UiccState) -> dict[str, bytes] | None:
    """The items of ``new`` that differ from ``old`` (see the module doc), by name.

    ``None`` when the two differ in more than contents, life cycle states,
    PIN and AKA values (other files, file attributes, PIN references or AKA
    applications): then the whole state is to be written.  Unchanged files
    that are the same objects in both (see :meth:`FileNode.snapshot
    <rspfed.euicc.fs.FileNode.snapshot>`) are skipped without comparing.
    """
    out: dict[str, bytes] = {}
    roots_old = (old.fs.mf, *old.fs.adfs)
    roots_new = (new.fs.mf, *new.fs.adfs)
    if len(roots_old) != len(roots_new):
        return None
    for a, b in zip(roots_old, roots_new, strict=True):
        if _root_path(a) != _root_path(b) or not _files_delta(a, b, _root_path(b), out):
            return None
    pins_old = {p.key_ref: p for p in old.pins}
    pins_new = {p.key_ref: p for p in new.pins}
    if pins_old.keys() != pins_new.keys():
        return None
    for ref, pin in pins_new.items():
        if pins_old[ref] != pin:
            out[f"{_PIN}{ref:02X}"] = _json_item(pin.to_dict())
    aka_old = {a.adf_aid: a for a in old.aka}
    aka_new = {a.adf_aid: a for a in new.aka}
    if aka_old.keys() != aka_new.keys() or len(aka_new) != len(new.aka):
        return None
    for aid, aka in aka_new.items():
        if aka_old[aid] != aka:
            out[_AKA + aid.hex().upper()] = _json_item(aka.to_dict())
    return out


def apply_card_delta(state: UiccState, delta: Mapping[str, bytes]) -> UiccState:
    """``state`` with the changed items ``delta`` (from :func:`card_state_delta`) applied.

    :class:`~rspfed.errors.StorageError` when an item names nothing in
    ``state`` or its value does not fit.
    """
    pending = dict(delta)

    def walk(spec: FileSpec, path: str) -> FileSpec:
        children = tuple([walk(c, f"{path}/{c.fid:04X}") for c in spec.children])
        value = pending.pop(_FILE + path, None)
        changes: dict[str, Any] = {}
        if value is not None:
            if not value:
                raise StorageError(f"empty card state item for {path}")
            changes["lcsi"] = Lcsi(value[0])
            body = value[1:]
            if spec.structure.is_record:
                n = spec.record_length
                if len(body) != n * len(spec.records):
                    raise StorageError(f"card state item for {path} has the wrong size")
                changes["records"] = tuple(body[i : i + n] for i in range(0, len(body), n))
            elif spec.structure.is_df:
                if body:
                    raise StorageError(f"card state item for DF {path} has content")
            else:
                changes["content"] = body
        if changes or any(a is not b for a, b in zip(children, spec.children, strict=True)):
            return attrs.evolve(spec, children=children, **changes)
        return spec

    try:
        fs = FileSystemSpec(
            walk(state.fs.mf, _root_path(state.fs.mf)),
            tuple(walk(a, _root_path(a)) for a in state.fs.adfs),
        )
        pins = []
        for pin in state.pins:
            value = pending.pop(f"{_PIN}{pin.key_ref:02X}", None)
            pins.append(pin if value is None else PinSpec.from_dict(json.loads(value)))
        akas = []
        for aka in state.aka:
            value = pending.pop(_AKA + aka.adf_aid.hex().upper(), None)
            akas.append(aka if value is None else AkaSpec.from_dict(json.loads(value)))
        result = UiccState(fs, tuple(pins), tuple(akas))
    except StorageError:
        raise
    except (ValueError, TypeError, UsageError) as exc:
        raise StorageError(f"malformed card state item: {exc}") from exc
    if pending:
        raise StorageError(f"card state items for unknown parts: {sorted(pending)[:3]}")
    return result


class PersistentCard:
    """The eUICC's :class:`~rspfed.euicc.card.Card`: the UICC, saving state changes to the store."""

    def __init__(self, euicc: Euicc) -> None:
        self._euicc = euicc

    def power_on(self) -> bytes:
        """Cold reset; the ATR."""
        return self._euicc.uicc.power_on()

    def reset(self) -> bytes:
        """Warm reset; the ATR."""
        return self._euicc.uicc.reset()

    def power_off(self) -> None:
        """Power off."""
        self._euicc.uicc.power_off()

    def transmit(self, apdu: bytes) -> bytes:
        """One APDU; the card state is saved after a state-changing instruction."""
        response = self._euicc.uicc.transmit(apdu)
        if len(apdu) >= 2 and apdu[1] in PERSISTENT_INS:
            try:
                self._euicc.save_card_state()
            except StorageError:
                # the change is not durable: answer as a card whose memory failed
                return SW_MEMORY_PROBLEM.to_bytes(2, "big")
        return response


def _curve_name(curve: Curve) -> str:
    return curve.value


class Euicc:
    """A software eUICC over its store (see the module doc)."""

    def __init__(
        self,
        store: Store,
        *,
        rand: Callable[[int], bytes] = os.urandom,
        now: Callable[[], datetime] = _utcnow,
        loader: ProfileLoader | None = saip_loader,
        transmission: Transmission = Transmission.T1,
        installer: PackageInstaller | None = saip_installer,
    ) -> None:
        self._store = store
        self._loader = loader
        credentials: list[EuiccCredential] = []
        for curve in Curve:
            name = f"euicc-{_curve_name(curve)}"
            if name not in store.key_names():
                continue
            cert = store.certificate(name)
            eum = store.certificate(f"eum-{_curve_name(curve)}")
            if cert is None or eum is None:
                raise StorageError(f"store lacks the certificates of {name}")
            credentials.append(EuiccCredential(store.private_key(name), cert, eum))
        if not credentials:
            raise StorageError("store holds no eUICC key")
        cis = [
            der
            for name in store.certificate_names()
            if name.startswith("ci-") and (der := store.certificate(name)) is not None
        ]
        self._isdr = IsdR(
            store=store,
            credentials=credentials,
            rand=rand,
            now=now,
            on_switch=self._switch,
            ci_certificates=cis,
            installer=installer,
        )
        self._shown: Profile | None = store.state.enabled
        self._uicc = Uicc(
            self._card_state(self._shown), transmission=transmission, applets=[self._isdr]
        )
        self._saved = self._uicc.snapshot()
        self._card = PersistentCard(self)

    # -- lifecycle -----------------------------------------------------------

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        pki: TestPki,
        *,
        eid: str | None = None,
        curves: Sequence[Curve] = (Curve.NIST,),
        extra_cis: Iterable[bytes] = (),
        passphrase: bytes | None = None,
        rand: Callable[[int], bytes] = os.urandom,
        now: datetime | None = None,
        loader: ProfileLoader | None = saip_loader,
        installer: PackageInstaller | None = saip_installer,
    ) -> Euicc:
        """Create a new eUICC and its store at ``path``.

        Key pairs for each of ``curves`` come from ``rand``; the EUM of ``pki``
        certifies them for ``eid`` (random within the EUM's EIN range when
        ``None``).  ``extra_cis`` (DER) are trusted besides ``pki``'s CIs.
        """
        if not curves:
            raise UsageError("at least one curve")
        if eid is None:
            eid = generate_eid(pki.ein, rand)
        validate_eid(eid)
        certs_extra = [bytes(c) for c in extra_cis]
        for der in certs_extra:
            parse_certificate(der)
        store = Store.create(path, eid=bytes.fromhex(eid), passphrase=passphrase)
        try:
            n = 0
            for curve in dict.fromkeys(curves):
                material = pki.material(curve)
                key = generate_key_pair(curve, rand)
                cert = pki.issue_euicc_certificate(eid, key.public_key(), curve, now=now, rand=rand)
                name = _curve_name(curve)
                store.put_private_key(f"euicc-{name}", key)
                store.put_certificate(f"euicc-{name}", cert.public_bytes(Encoding.DER))
                store.put_certificate(f"eum-{name}", material.eum.public_bytes(Encoding.DER))
                store.put_certificate(f"ci-{n}", material.ci.public_bytes(Encoding.DER))
                n += 1
            for der in certs_extra:
                store.put_certificate(f"ci-{n}", der)
                n += 1
        except BaseException:
            store.close()
            Path(path).unlink(missing_ok=True)
            raise
        return cls(store, rand=rand, loader=loader, installer=installer)

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        passphrase: bytes | None = None,
        rand: Callable[[int], bytes] = os.urandom,
        now: Callable[[], datetime] = _utcnow,
        loader: ProfileLoader | None = saip_loader,
        transmission: Transmission = Transmission.T1,
        installer: PackageInstaller | None = saip_installer,
    ) -> Euicc:
        """Open an existing eUICC store."""
        store = Store.open(path, passphrase=passphrase)
        try:
            return cls(
                store,
                rand=rand,
                now=now,
                loader=loader,
                transmission=transmission,
                installer=installer,
            )
        except BaseException:
            store.close()
            raise

    def close(self) -> None:
        """Close the store."""
        self._store.close()

    def __enter__(self) -> Euicc:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- parts ---------------------------------------------------------------

    @property
    def card(self) -> PersistentCard:
        """The card to put into a reader (state changes are saved)."""
        return self._card

    @property
    def uicc(self) -> Uicc:
        """The UICC front end itself (with the ISD-R registered); changes are not saved."""
        return self._uicc

    @property
    def isdr(self) -> IsdR:
        """The ISD-R (ES10 functions, DER in/out)."""
        return self._isdr

    @property
    def store(self) -> Store:
        """The store."""
        return self._store

    @property
    def eid(self) -> str:
        """The EID (32 decimal digits)."""
        return self._store.eid.hex()

    def _card_state(self, profile: Profile | None) -> UiccState:
        if profile is None:
            return bare_state()
        kept = self._store.card_state(profile.iccid)
        if kept is not None:
            state = UiccState.from_dict(json.loads(kept))
            delta = self._store.card_delta(profile.iccid)
            return apply_card_delta(state, delta) if delta else state
        if self._loader is not None:
            try:
                return self._loader(profile, self._store.content(profile.iccid))
            except RspfedError as exc:
                # the profile stays enabled; the card shows its ICCID only
                _log.warning("profile content cannot be loaded: %s", type(exc).__name__)
        return bare_state(profile.iccid)

    def save_card_state(self) -> None:
        """Write what changed in the enabled profile's card state (one transaction).

        Only the changed items (:func:`card_state_delta`) are written; the
        whole state when the store has none for the profile yet or the change
        is more than contents, life cycle states, PINs and SQNs.
        """
        if self._shown is None:
            return
        snapshot = self._uicc.snapshot()
        if snapshot == self._saved:
            return
        iccid = self._shown.iccid
        delta = card_state_delta(self._saved, snapshot)
        try:
            if delta is None:
                raise UsageError("a structural change")
            self._store.put_card_delta(iccid, delta)
        except UsageError:  # no whole state kept yet, or not expressible as items
            self._store.put_card_state(iccid, json.dumps(snapshot.to_dict()))
        self._saved = snapshot

    def _switch(self, profile: Profile | None) -> None:
        try:
            if self._shown is not None and self._store.state.find(
                ProfileRef(iccid=self._shown.iccid)
            ):
                self.save_card_state()
        except StorageError:
            _log.warning("card state of the previous profile not saved")
        self._shown = profile
        self._uicc.replace_state(self._card_state(profile))
        self._saved = self._uicc.snapshot()
        if profile is not None and self._store.card_state(profile.iccid) is None:
            # keep the freshly installed state: later enables skip the installer
            try:
                self._store.put_card_state(profile.iccid, json.dumps(self._saved.to_dict()))
            except StorageError:
                _log.warning("card state of the enabled profile not saved")

    def info(self) -> dict[str, Any]:
        """A JSON-safe summary: EID, certificates, CIs, profiles, pending notifications."""
        certs = []
        for name in self._store.certificate_names():
            der = self._store.certificate(name)
            if der is None:
                continue
            cert = x509.load_der_x509_certificate(der)
            certs.append({"name": name, "subject": cert.subject.rfc4514_string()})
        state = self._store.state
        return {
            "eid": self.eid,
            "certificates": certs,
            "profiles": [
                {
                    "iccid": p.iccid.hex().upper(),
                    "isdpAid": p.isdp_aid.hex().upper(),
                    "state": p.status.value,
                    "name": p.profile_name,
                    "serviceProvider": p.service_provider_name,
                    "nickname": p.nickname,
                    "class": p.profile_class,
                }
                for p in state.profiles
            ],
            "notifications": [
                {"seqNumber": n.seq_number, "event": n.event, "address": n.address}
                for n in state.notifications
            ],
            "defaultDpAddress": state.default_dp_address,
        }
