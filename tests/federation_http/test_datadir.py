"""The operator data directory: the SM-DP+ layout plus two stores and operator settings."""

from __future__ import annotations

import json
import stat
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from rspfed.cli import main
from rspfed.crypto.curves import Curve
from rspfed.errors import StorageError, UsageError
from rspfed.federation.datadir import (
    NETWORK_STORE_NAME,
    OPERATOR_STORE_NAME,
    SETTINGS_KEY,
    close_operator,
    init_operator_dir,
    open_operator,
    operator_config,
    sync_interval,
)
from rspfed.federation.types import OperatorConfig
from rspfed.pki.testpki import TestPki
from rspfed.smdp.datadir import CONFIG_NAME, load_config, open_store, read_settings
from tests.federation_http.conftest import PLAN, TEMPLATE, _metadata

CONFIG = OperatorConfig(
    network_name=b"rspfed.example",
    order_ttl=timedelta(minutes=5),
    join_ttl=timedelta(hours=2),
    request_window=timedelta(seconds=90),
    eap_ttl=timedelta(seconds=60),
    requester="example-op",
    max_pending_joins=3,
)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_layout_settings_and_core(tmp_path: Path, pki: TestPki) -> None:
    data = tmp_path / "op"
    init_operator_dir(
        data, pki=pki, address="localhost:8443", config=CONFIG, sync_seconds=2.5,
        curves=(Curve.NIST,),
    )  # fmt: skip
    # everything smdp init makes, and the two stores, private
    for name in ("keys/dptls.key.pem", "tls/server.pem", "operator/operator.pem", "smdp.sqlite"):
        assert (data / name).is_file(), name
    assert mode(data / OPERATOR_STORE_NAME) == 0o600
    assert mode(data / NETWORK_STORE_NAME) == 0o600
    assert mode(data / "keys") == 0o700
    settings = read_settings(data)[SETTINGS_KEY]
    assert settings["network_name"] == "rspfed.example"
    assert settings["order_ttl_seconds"] == 300
    assert operator_config(data) == CONFIG
    assert sync_interval(data) == 2.5
    assert load_config(data).address == "localhost:8443"
    # the SM-DP+ CLI works on it: a template, then the operator core orders from it
    meta = tmp_path / "meta.json"
    meta.write_text(json.dumps(_metadata("localhost:8443")))
    package = tmp_path / "p.der"
    package.write_bytes(TEMPLATE)
    add = ["smdp", "template", "add", "--data", str(data), "ts48", str(package), "--metadata"]
    result = CliRunner().invoke(main, [*add, str(meta)])
    assert result.exit_code == 0, result.output
    op = open_operator(data)
    try:
        assert op.config == CONFIG
        sub, enrolment = op.subscribe("ts48", PLAN)
        assert enrolment.activation_code.startswith("LPA:1$localhost:8443$")
        assert op.subscription(sub.id).plan == PLAN
        item = op.smdp.item(enrolment.iccid)
        assert item is not None
        assert item.requester == "example-op"
    finally:
        close_operator(op)
    close_operator(op)  # idempotent
    # a second opening sees the same state (everything was written to the files)
    op = open_operator(data)
    try:
        assert op.subscription(sub.id).id == sub.id
    finally:
        close_operator(op)
    store = open_store(data)
    store.close()


def test_defaults(tmp_path: Path, pki: TestPki) -> None:
    data = tmp_path / "op"
    init_operator_dir(data, pki=pki, address="localhost", curves=(Curve.NIST,))
    assert operator_config(data) == OperatorConfig()
    assert sync_interval(data) == 5.0
    # absent members take the defaults
    raw = read_settings(data)
    raw[SETTINGS_KEY] = {"requester": "x"}
    (data / CONFIG_NAME).write_text(json.dumps(raw))
    assert operator_config(data) == OperatorConfig(requester="x")


@pytest.mark.parametrize(
    "config",
    [
        OperatorConfig(network_name=b""),
        OperatorConfig(network_name=b"caf\xc3\xa9"),
        OperatorConfig(order_ttl=timedelta(milliseconds=1500)),
        OperatorConfig(join_ttl=timedelta(0)),
    ],
)
def test_bad_settings_write_nothing(tmp_path: Path, pki: TestPki, config: OperatorConfig) -> None:
    with pytest.raises(UsageError):
        init_operator_dir(tmp_path / "op", pki=pki, address="localhost", config=config)
    assert not (tmp_path / "op").exists()
    with pytest.raises(UsageError):
        init_operator_dir(tmp_path / "op", pki=pki, address="localhost", sync_seconds=0)


@pytest.mark.parametrize(
    "section",
    [
        None,
        "x",
        {"network_name": 5},
        {"order_ttl_seconds": -1},
        {"eap_ttl_seconds": True},
        {"max_pending_joins": 0},
        {"requester": ""},
        {"sync_interval_seconds": "5"},
    ],
)
def test_edited_settings_refused(tmp_path: Path, pki: TestPki, section: object) -> None:
    data = tmp_path / "op"
    init_operator_dir(data, pki=pki, address="localhost", curves=(Curve.NIST,))
    raw = read_settings(data)
    raw[SETTINGS_KEY] = section
    (data / CONFIG_NAME).write_text(json.dumps(raw))
    if isinstance(section, dict) and "sync_interval_seconds" in section:
        with pytest.raises(StorageError):
            sync_interval(data)
        return  # only the server needs it, not the core
    with pytest.raises(StorageError):
        operator_config(data)
    with pytest.raises(StorageError):
        open_operator(data)


def test_not_an_operator_dir(tmp_path: Path, pki: TestPki) -> None:
    with pytest.raises(StorageError):
        open_operator(tmp_path / "missing")
    data = tmp_path / "op"
    init_operator_dir(data, pki=pki, address="localhost", curves=(Curve.NIST,))
    with pytest.raises(UsageError):  # not empty any more
        init_operator_dir(data, pki=pki, address="localhost", curves=(Curve.NIST,))
