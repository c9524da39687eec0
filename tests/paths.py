"""Paths of the reference data the tests use (copied into the repository)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
SGP26 = DATA / "sgp26-certs"
VECTORS = DATA / "vectors"
TS48 = REPO / "rspfed" / "data" / "ts48"
ASN1_MODULES = REPO / "rspfed" / "asn1" / "modules"
