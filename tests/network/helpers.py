"""Test helpers: a USIM from rspfed.euicc.usim answering directly (no APDU transport)."""

from __future__ import annotations

from rspfed.crypto.aka import AUTS_SIZE
from rspfed.errors import IntegrityError
from rspfed.euicc.apdu import SW_AUTH_MAC_FAILURE, StatusError
from rspfed.euicc.usim import AkaAlgorithmId, AkaSpec, Usim
from rspfed.network import AuthenticateResult

__all__ = ["SoftUsim"]


class SoftUsim:
    """The eUICC's USIM object (real SQN checking), called without APDUs."""

    def __init__(self, k: bytes, opc: bytes) -> None:
        spec = AkaSpec(
            adf_aid=bytes.fromhex("A0000000871002"), algorithm=AkaAlgorithmId.MILENAGE, k=k, opc=opc
        )
        self.usim = Usim(spec)

    def __call__(self, rand: bytes, autn: bytes) -> AuthenticateResult:
        try:
            data = self.usim.authenticate(0, 0x81, b"\x10" + rand + b"\x10" + autn)
        except StatusError as exc:
            if exc.sw == SW_AUTH_MAC_FAILURE:
                raise IntegrityError("MAC failure") from exc
            raise
        if data[0] == 0xDC:
            assert data[1] == AUTS_SIZE
            return AuthenticateResult(auts=data[2:])
        body = data[1:]
        res = body[1 : 1 + body[0]]
        rest = body[1 + body[0] :]
        ck = rest[1:17]
        ik = rest[18:34]
        return AuthenticateResult(res=res, ck=ck, ik=ik)

    @property
    def highest_seq(self) -> int:
        return max(self.usim.snapshot().sqn_array)
