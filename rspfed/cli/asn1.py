"""``rspfed decode`` and ``rspfed encode``: DER <-> JSON for every rspfed ASN.1 type.

``rspfed decode [--type TYPE] [--hex|--base64] FILE|-`` prints the value as JSON
(bytes as lowercase hex, CHOICE alternatives named, see
:mod:`rspfed.asn1.jsonconv`).  ``rspfed encode TYPE FILE|-`` turns that JSON
back into the same DER.  ``--type ProfileElements`` is a SAIP package (a
stream of ProfileElement); ``--type Certificate`` an X.509 certificate (DER or
PEM).  Without ``--type`` the type is inferred from the outer tag only when
exactly one type has that tag; otherwise exit 2 lists the candidates.
"""

from __future__ import annotations

import base64
import json
import sys
from typing import Any

import click

from rspfed import asn1
from rspfed.cli._util import fail, read_input, reports_errors
from rspfed.errors import DecodeError

__all__ = ["decode_command", "encode_command"]

PROFILE_ELEMENTS = "ProfileElements"


def _unarmor(data: bytes) -> bytes:
    """Accept PEM where DER is expected (certificates, CRLs)."""
    if data.lstrip().startswith(b"-----BEGIN"):
        from asn1crypto import pem

        try:
            _, _, der = pem.unarmor(data.strip())
        except ValueError:
            raise DecodeError("malformed PEM armour") from None
        return der
    return data


def _infer_type(data: bytes) -> str:
    candidates = sorted(asn1.types_for_tag(data))
    if len(candidates) == 1:
        name = candidates[0]
        if name == "ProfileElement" and _more_than_one_tlv(data):
            return PROFILE_ELEMENTS
        return name
    if not candidates:
        fail("no known type has this outer tag; give --type")
    shown = ", ".join(candidates[:40]) + (" ..." if len(candidates) > 40 else "")
    fail(f"the outer tag belongs to {len(candidates)} types; give --type (candidates: {shown})")
    raise AssertionError("unreachable")  # pragma: no cover


def _more_than_one_tlv(data: bytes) -> bool:
    from rspfed.asn1 import bertlv

    try:
        return len(bertlv.split_top_level(data)) > 1
    except DecodeError:
        return False


@click.command("decode")
@click.option("--type", "type_name", metavar="TYPE", help="ASN.1 type name (inferred if unique).")
@click.option("--hex", "as_hex", is_flag=True, help="Input is hexadecimal text.")
@click.option("--base64", "as_base64", is_flag=True, help="Input is base64 text.")
@click.argument("source", metavar="FILE|-")
@reports_errors
def decode_command(type_name: str | None, as_hex: bool, as_base64: bool, source: str) -> None:
    """Decode DER from FILE (or - for stdin) and print it as JSON."""
    if as_hex and as_base64:
        fail("--hex and --base64 exclude each other")
    data = _unarmor(read_input(source, as_hex=as_hex, as_base64=as_base64))
    if not data:
        fail("empty input")
    from rspfed.asn1 import jsonconv

    name = type_name or _infer_type(data)
    document: Any
    if name == PROFILE_ELEMENTS:
        document = [jsonconv.to_json(pe) for pe in asn1.decode_profile_elements(data)]
    else:
        value = asn1.decode(asn1.find_type(name), data)
        document = jsonconv.to_json(value)
    click.echo(json.dumps({"type": name, "value": document}, indent=2))


@click.command("encode")
@click.option("--hex", "as_hex", is_flag=True, help="Write hexadecimal text instead of DER.")
@click.option("--base64", "as_base64", is_flag=True, help="Write base64 text instead of DER.")
@click.option("-o", "--output", type=click.Path(dir_okay=False, writable=True), help="Output file.")
@click.argument("type_name", metavar="TYPE")
@click.argument("source", metavar="FILE|-")
@reports_errors
def encode_command(
    as_hex: bool, as_base64: bool, output: str | None, type_name: str, source: str
) -> None:
    """Encode the JSON in FILE (or -) as TYPE and write DER.

    The JSON is what ``rspfed decode`` prints: either the whole document
    (``{"type": ..., "value": ...}``) or just its ``value``.
    """
    if as_hex and as_base64:
        fail("--hex and --base64 exclude each other")
    from rspfed.asn1 import jsonconv

    raw = read_input(source)
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise DecodeError(f"input is not JSON ({exc.__class__.__name__})") from None
    if isinstance(document, dict) and set(document) == {"type", "value"}:
        if document["type"] != type_name:
            fail(f"the JSON holds a {document['type']}, not a {type_name}")
        document = document["value"]
    if type_name == PROFILE_ELEMENTS:
        if not isinstance(document, list):
            raise DecodeError("a ProfileElements document is a JSON list")
        pe_type = asn1.find_type("ProfileElement")
        der = asn1.encode_profile_elements([jsonconv.from_json(pe_type, pe) for pe in document])
    else:
        der = asn1.encode(jsonconv.from_json(asn1.find_type(type_name), document))
    out: bytes
    if as_hex:
        out = der.hex().encode() + b"\n"
    elif as_base64:
        out = base64.b64encode(der) + b"\n"
    else:
        out = der
    if output:
        with open(output, "wb") as handle:
            handle.write(out)
    else:
        sys.stdout.buffer.write(out)
        sys.stdout.buffer.flush()
