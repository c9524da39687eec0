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
injected ``loader`` (profile + installed content → :class:`UiccState`, the
SAIP installer's job); without a loader, or with no profile enabled, it is a
bare MF with EF.DIR (and EF.ICCID of the enabled profile, if any).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from rspfed.crypto.curves import Curve
from rspfed.crypto.ecka import generate_key_pair
from rspfed.errors import RspfedError, StorageError, UsageError
from rspfed.euicc._state import Profile, ProfileRef
from rspfed.euicc.apdu import SW_MEMORY_PROBLEM
from rspfed.euicc.fs import AccessCondition, AccessRules, FileSpec, FileStructure, FileSystemSpec
from rspfed.euicc.isdr import EuiccCredential, IsdR, PackageInstaller
from rspfed.euicc.store import Store
from rspfed.euicc.uicc import Transmission, Uicc, UiccState
from rspfed.pki.eid import generate_eid, validate_eid
from rspfed.pki.testpki import TestPki
from rspfed.pki.validate import parse_certificate

__all__ = ["PERSISTENT_INS", "Euicc", "PersistentCard", "ProfileLoader", "bare_state"]

PERSISTENT_INS = frozenset({0xD6, 0xDC, 0x20, 0x24, 0x26, 0x28, 0x2C, 0x88, 0x89, 0x04, 0x44})
"""Instructions after which the card state is compared and saved."""

_log = logging.getLogger(__name__)

ProfileLoader = Callable[[Profile, bytes], UiccState]
"""Builds the card state of an enabled profile from its installed content."""


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
        loader: ProfileLoader | None = None,
        transmission: Transmission = Transmission.T1,
        installer: PackageInstaller | None = None,
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
        loader: ProfileLoader | None = None,
        installer: PackageInstaller | None = None,
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
        loader: ProfileLoader | None = None,
        transmission: Transmission = Transmission.T1,
        installer: PackageInstaller | None = None,
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
            return UiccState.from_dict(json.loads(kept))
        if self._loader is not None:
            try:
                return self._loader(profile, self._store.content(profile.iccid))
            except RspfedError as exc:
                # the profile stays enabled; the card shows its ICCID only
                _log.warning("profile content cannot be loaded: %s", type(exc).__name__)
        return bare_state(profile.iccid)

    def save_card_state(self) -> None:
        """Write the enabled profile's card state to the store if it changed."""
        if self._shown is None:
            return
        snapshot = self._uicc.snapshot()
        if snapshot == self._saved:
            return
        self._store.put_card_state(self._shown.iccid, json.dumps(snapshot.to_dict()))
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
