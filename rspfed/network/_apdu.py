"""The few USIM APDUs the network side sends to a card (TS 102 221, TS 31.102).

One place for what attach, identity reading and network selection share:
sending with ``61xx``/``6Cxx`` handling, SELECT of ADF.USIM with an optional
PIN1, SELECT of an EF by file id and READ BINARY of a transparent EF.
"""

from __future__ import annotations

from rspfed.errors import DecodeError, ProtocolError
from rspfed.euicc.card import Card

__all__: list[str] = []

USIM_AID_PREFIX = bytes.fromhex("A0000000871002")
"""RID + application code of a 3GPP USIM (TS 101 220 Annex E); SELECT by prefix."""

SW_OK = b"\x90\x00"
SW_NOT_FOUND = b"\x6a\x82"
SW_SECURITY = b"\x69\x82"


def send(card: Card, apdu: bytes) -> tuple[bytes, bytes]:
    """Send one APDU; follow ``61xx`` (GET RESPONSE) and ``6Cxx`` (resend with Le); data, SW."""
    resp = card.transmit(apdu)
    if len(resp) == 2 and resp[0] == 0x6C and len(apdu) in (4, 5):
        resp = card.transmit(apdu[:4] + bytes((resp[1],)))
    data = b""
    while len(resp) >= 2 and resp[-2] == 0x61:
        data += resp[:-2]
        resp = card.transmit(bytes([0x00, 0xC0, 0x00, 0x00, resp[-1]]))
    if len(resp) < 2:
        raise ProtocolError("response APDU without status word")
    return data + resp[:-2], resp[-2:]


def select_usim(card: Card, pin: bytes | None) -> None:
    """SELECT ADF.USIM by its AID prefix; VERIFY PIN1 when ``pin`` is given."""
    aid = USIM_AID_PREFIX
    _, sw = send(card, bytes([0x00, 0xA4, 0x04, 0x0C, len(aid)]) + aid)
    if sw != SW_OK:
        raise ProtocolError("the USIM cannot be selected")
    if pin is not None:
        _, sw = send(card, bytes([0x00, 0x20, 0x00, 0x01, 8]) + bytes(pin).ljust(8, b"\xff"))
        if sw != SW_OK:
            raise ProtocolError("PIN1 verification failed")


def fcp_file_size(fcp: bytes, name: str) -> int:
    """File size (tag ``80``) of an FCP template (tag ``62``, TS 102 221 §11.1.1.3)."""

    def tlvs(data: bytes) -> dict[int, bytes]:
        out: dict[int, bytes] = {}
        pos = 0
        while pos < len(data):
            if pos + 2 > len(data):
                raise DecodeError("truncated FCP TLV", type_name=name, offset=pos)
            tag, n = data[pos], data[pos + 1]
            pos += 2
            if n == 0x81:
                if pos >= len(data):
                    raise DecodeError("truncated FCP length", type_name=name, offset=pos)
                n, pos = data[pos], pos + 1
            elif n > 0x7F:
                raise DecodeError("unsupported FCP length form", type_name=name, offset=pos - 1)
            if pos + n > len(data):
                raise DecodeError("FCP TLV runs past the end", type_name=name, offset=pos)
            out.setdefault(tag, data[pos : pos + n])
            pos += n
        return out

    outer = tlvs(fcp)
    if 0x62 not in outer:
        raise DecodeError("no FCP template", type_name=name)
    size = tlvs(outer[0x62]).get(0x80)
    if not size or len(size) > 2:
        raise DecodeError("FCP without a file size", type_name=name)
    return int.from_bytes(size, "big")


def select_ef(card: Card, fid: int, name: str) -> int | None:
    """SELECT an EF of the current ADF by file id; its size, ``None`` if it does not exist."""
    fcp, sw = send(card, bytes([0x00, 0xA4, 0x00, 0x04, 0x02]) + fid.to_bytes(2, "big") + b"\x00")
    if sw == SW_NOT_FOUND:
        return None
    if sw != SW_OK:
        raise ProtocolError(f"{name} cannot be selected: status {sw.hex().upper()}")
    return fcp_file_size(fcp, name)


def read_transparent(card: Card, fid: int, name: str) -> bytes | None:
    """The contents of a transparent EF (READ BINARY in chunks); ``None`` if it does not exist."""
    size = select_ef(card, fid, name)
    if size is None:
        return None
    out = b""
    while len(out) < size:
        chunk = min(size - len(out), 256)
        off = len(out)
        data, sw = send(card, bytes([0x00, 0xB0, off >> 8, off & 0xFF, chunk % 256]))
        if sw == SW_SECURITY:
            raise ProtocolError(f"{name} cannot be read: security status not satisfied (PIN1?)")
        if sw != SW_OK:
            raise ProtocolError(f"{name} cannot be read: status {sw.hex().upper()}")
        if len(data) != chunk:
            raise DecodeError(f"{name}: READ BINARY returned a wrong length", type_name=name)
        out += data
    return out
