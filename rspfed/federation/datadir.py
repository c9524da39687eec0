"""The operator service's data directory: an SM-DP+ data directory plus two stores.

:func:`init_operator_dir` (``rspfed operator init``) does everything
:func:`rspfed.smdp.datadir.init_data_dir` does, in the same layout (so
``rspfed smdp template add`` works on it), and adds::

    operator.sqlite     the operator's store (subscriptions, devices, tokens,
                        join requests, EAP sessions, nonces), mode 0600
    network.sqlite      the simulated network's subscribers (IMSI, K/OPc, SQN,
                        state, service policy), mode 0600

and an ``operator_service`` member in ``config.json``::

    "operator_service": {
      "network_name": "WLAN",           EAP-AKA' AT_KDF_INPUT (ASCII)
      "order_ttl_seconds": 1800,        a secondary's order waits this long
      "join_ttl_seconds": 86400,        a join request lives this long
      "request_window_seconds": 300,    clock skew allowed on signed requests
      "eap_ttl_seconds": 300,           an EAP-AKA' exchange may take this long
      "requester": "rspfed-operator",   ES2+ requester of the operator's orders
      "max_pending_joins": 16,
      "sync_interval_seconds": 5        how often the server reconciles with the SM-DP+
    }

Members may be edited by hand; absent ones take :class:`OperatorConfig`'s
defaults.  :func:`open_operator` builds the :class:`Operator` of a
directory (SM-DP+ core, both stores, AuC, wall clock, :func:`os.urandom`).
"""

from __future__ import annotations

import json
import os
import weakref
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from rspfed._keyfiles import write_atomic
from rspfed.crypto.curves import Curve
from rspfed.errors import StorageError, UsageError
from rspfed.federation.operator import Operator
from rspfed.federation.store import SqliteOperatorStore
from rspfed.federation.types import OperatorConfig
from rspfed.network import Auc, SqliteSubscriberStore
from rspfed.pki.testpki import TestPki
from rspfed.smdp import Smdp
from rspfed.smdp.datadir import (
    CONFIG_NAME,
    DEFAULT_SMDP_OID,
    init_data_dir,
    load_config,
    open_store,
    read_settings,
)

__all__ = [
    "NETWORK_STORE_NAME",
    "OPERATOR_STORE_NAME",
    "SETTINGS_KEY",
    "close_operator",
    "init_operator_dir",
    "open_network_store",
    "open_operator",
    "open_operator_store",
    "operator_config",
    "sync_interval",
]

#: The operator's store in the data directory.
OPERATOR_STORE_NAME: Final = "operator.sqlite"
#: The simulated network's subscriber store in the data directory.
NETWORK_STORE_NAME: Final = "network.sqlite"
#: The ``config.json`` member holding the operator settings.
SETTINGS_KEY: Final = "operator_service"
_DEFAULT_SYNC: Final = 5.0

_SECONDS: Final = (
    ("order_ttl_seconds", "order_ttl"),
    ("join_ttl_seconds", "join_ttl"),
    ("request_window_seconds", "request_window"),
    ("eap_ttl_seconds", "eap_ttl"),
)


def _settings_json(config: OperatorConfig, sync_seconds: float) -> dict[str, Any]:
    out: dict[str, Any] = {"network_name": config.network_name.decode("ascii")}
    for key, attr in _SECONDS:
        out[key] = int(getattr(config, attr).total_seconds())
    out["requester"] = config.requester
    out["max_pending_joins"] = config.max_pending_joins
    out["sync_interval_seconds"] = sync_seconds
    return out


def _check_config(config: OperatorConfig, sync_seconds: float) -> None:
    name = config.network_name
    if not name or len(name) > 255 or not name.isascii() or not name.decode().isprintable():
        raise UsageError("the network name must be 1 to 255 printable ASCII characters")
    for _key, attr in _SECONDS:
        value: timedelta = getattr(config, attr)
        if value.total_seconds() < 1 or value.total_seconds() != int(value.total_seconds()):
            raise UsageError(f"{attr} must be a whole number of seconds, at least 1")
    if not 0 < sync_seconds <= 3600:
        raise UsageError("the sync interval must be more than 0 and at most 3600 seconds")


def init_operator_dir(
    data: str | os.PathLike[str],
    *,
    pki: TestPki,
    address: str,
    config: OperatorConfig | None = None,
    sync_seconds: float = _DEFAULT_SYNC,
    passphrase: bytes | None = None,
    curves: Iterable[Curve] = (Curve.NIST, Curve.BRAINPOOL),
    operator: str = "rspfed test operator",
    smdp_oid: str = DEFAULT_SMDP_OID,
    now: datetime | None = None,
    rand: Callable[[int], bytes] = os.urandom,
    progress_callback_url: str | None = None,
) -> None:
    """Create the operator's data directory ``data`` (new or empty).

    :func:`~rspfed.smdp.datadir.init_data_dir` with ``pki``, ``address``,
    ``passphrase``, ``curves``, ``operator``, ``smdp_oid``, ``now``,
    ``rand`` and ``progress_callback_url``; then the two stores (mode 0600)
    and the ``operator_service`` settings from ``config`` and
    ``sync_seconds``.  :class:`UsageError` for bad settings (checked before
    anything is written), a bad address or a non-empty directory.
    """
    settings = config or OperatorConfig()
    _check_config(settings, sync_seconds)
    root = Path(data)
    init_data_dir(
        root,
        pki,
        address=address,
        passphrase=passphrase,
        curves=curves,
        operator=operator,
        smdp_oid=smdp_oid,
        now=now,
        rand=rand,
        progress_callback_url=progress_callback_url,
    )
    raw = read_settings(root)
    raw[SETTINGS_KEY] = _settings_json(settings, sync_seconds)
    try:
        write_atomic(root / CONFIG_NAME, json.dumps(raw, indent=2).encode() + b"\n")
    except OSError as exc:
        raise StorageError(f"cannot write {CONFIG_NAME}: {exc.strerror or exc}") from None
    open_operator_store(root).close()
    open_network_store(root).close()


def _section(data: str | os.PathLike[str]) -> dict[str, Any]:
    raw = read_settings(data).get(SETTINGS_KEY)
    if not isinstance(raw, dict):
        raise StorageError(f"{CONFIG_NAME} has no {SETTINGS_KEY} (run rspfed operator init)")
    return raw


def _positive(section: dict[str, Any], key: str, default: float) -> float:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise StorageError(f"{CONFIG_NAME}: {SETTINGS_KEY}.{key} must be a positive number")
    return float(value)


def operator_config(data: str | os.PathLike[str]) -> OperatorConfig:
    """The :class:`OperatorConfig` of a data directory (:class:`StorageError` if malformed)."""
    section = _section(data)
    defaults = OperatorConfig()
    name = section.get("network_name", defaults.network_name.decode("ascii"))
    requester = section.get("requester", defaults.requester)
    if not isinstance(name, str) or not name or not name.isascii() or len(name) > 255:
        raise StorageError(f"{CONFIG_NAME}: {SETTINGS_KEY}.network_name must be ASCII text")
    if not isinstance(requester, str) or not requester:
        raise StorageError(f"{CONFIG_NAME}: {SETTINGS_KEY}.requester must be text")
    spans = {
        attr: timedelta(seconds=_positive(section, key, getattr(defaults, attr).total_seconds()))
        for key, attr in _SECONDS
    }
    joins = section.get("max_pending_joins", defaults.max_pending_joins)
    if isinstance(joins, bool) or not isinstance(joins, int) or joins < 1:
        raise StorageError(f"{CONFIG_NAME}: {SETTINGS_KEY}.max_pending_joins must be >= 1")
    return OperatorConfig(
        network_name=name.encode("ascii"),
        requester=requester,
        max_pending_joins=joins,
        **spans,
    )


def sync_interval(data: str | os.PathLike[str]) -> float:
    """Seconds between two background reconciliations (``sync_interval_seconds``)."""
    return _positive(_section(data), "sync_interval_seconds", _DEFAULT_SYNC)


def open_operator_store(data: str | os.PathLike[str]) -> SqliteOperatorStore:
    """Open (or create, mode 0600) the operator's store of a data directory.

    Uses ``config.json``'s ``store_synchronous`` like the SM-DP+ store."""
    synchronous = read_settings(data).get("store_synchronous", "NORMAL")
    if synchronous not in ("NORMAL", "FULL"):
        raise StorageError(f'{CONFIG_NAME}: store_synchronous must be "NORMAL" or "FULL"')
    return SqliteOperatorStore(Path(data) / OPERATOR_STORE_NAME, synchronous=synchronous)


def open_network_store(data: str | os.PathLike[str]) -> SqliteSubscriberStore:
    """Open (or create, mode 0600) the network's subscriber store of a data directory."""
    path = Path(data) / NETWORK_STORE_NAME
    store = SqliteSubscriberStore(path)
    try:
        os.chmod(path, 0o600)
    except OSError as exc:  # pragma: no cover - we just created or opened it
        store.close()
        raise StorageError(f"cannot protect {NETWORK_STORE_NAME}: {exc.strerror}") from None
    return store


_NETWORK_STORES: weakref.WeakKeyDictionary[Operator, SqliteSubscriberStore] = (
    weakref.WeakKeyDictionary()
)


def close_operator(op: Operator) -> None:
    """Close the stores of an operator made by :func:`open_operator` (idempotent)."""
    subscribers = _NETWORK_STORES.pop(op, None)
    if subscribers is not None:
        subscribers.close()
    op.store.close()
    close = getattr(op.smdp.store, "close", None)
    if callable(close):
        close()


def _utcnow() -> datetime:
    return datetime.now(UTC)


def open_operator(
    data: str | os.PathLike[str],
    *,
    passphrase: bytes | None = None,
    now: Callable[[], datetime] | None = None,
) -> Operator:
    """The :class:`Operator` of data directory ``data``.

    Its SM-DP+ core (keys decrypted with ``passphrase``), the operator and
    network stores, an :class:`~rspfed.network.Auc`, the clock ``now``
    (default: the wall clock, UTC) and :func:`os.urandom`.  Close its three
    stores with :func:`close_operator`.
    """
    root = Path(data)
    clock = now or _utcnow
    config = operator_config(root)
    smdp_config = load_config(root, passphrase=passphrase)  # a wrong passphrase fails here
    store = open_operator_store(root)
    subscribers: SqliteSubscriberStore | None = None
    smdp_store = None
    try:
        subscribers = open_network_store(root)
        smdp_store = open_store(root)
        smdp = Smdp(smdp_config, smdp_store, now=clock)
        auc = Auc(subscribers, rand=os.urandom)
        op = Operator(store, smdp, auc, config=config, now=clock, rand=os.urandom)
        _NETWORK_STORES[op] = subscribers
        return op
    except BaseException:
        store.close()
        if subscribers is not None:
            subscribers.close()
        if smdp_store is not None:
            smdp_store.close()
        raise
