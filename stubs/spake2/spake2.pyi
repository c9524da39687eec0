from collections.abc import Callable
from typing import Self

from spake2.params import _Params

DefaultParams: _Params
SideA: bytes
SideB: bytes
SideSymmetric: bytes

class SPAKEError(Exception): ...
class OnlyCallStartOnce(SPAKEError): ...
class OnlyCallFinishOnce(SPAKEError): ...
class OffSides(SPAKEError): ...
class SerializedTooEarly(SPAKEError): ...
class WrongSideSerialized(SPAKEError): ...
class WrongGroupError(SPAKEError): ...
class ReflectionThwarted(SPAKEError): ...

class _SPAKE2_Base:
    side: bytes
    pw: bytes
    params: _Params
    entropy_f: Callable[[int], bytes]
    outbound_message: bytes
    inbound_message: bytes
    def start(self) -> bytes: ...
    def finish(self, inbound_side_and_message: bytes) -> bytes: ...
    def serialize(self) -> bytes: ...
    @classmethod
    def from_serialized(cls, data: bytes, params: _Params = ...) -> Self: ...
    def hash_params(self) -> str: ...

class _SPAKE2_Asymmetric(_SPAKE2_Base):
    idA: bytes
    idB: bytes
    def __init__(
        self,
        password: bytes,
        idA: bytes = b"",
        idB: bytes = b"",
        params: _Params = ...,
        entropy_f: Callable[[int], bytes] = ...,
    ) -> None: ...

class SPAKE2_A(_SPAKE2_Asymmetric): ...
class SPAKE2_B(_SPAKE2_Asymmetric): ...

class SPAKE2_Symmetric(_SPAKE2_Base):
    idSymmetric: bytes
    def __init__(
        self,
        password: bytes,
        idSymmetric: bytes = b"",
        params: _Params = ...,
        entropy_f: Callable[[int], bytes] = ...,
    ) -> None: ...
