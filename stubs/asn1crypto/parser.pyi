from typing import Literal, overload

def emit(class_: int, method: int, tag: int, contents: bytes) -> bytes: ...

# Returns (class_, method, tag, header, contents, trailer).
def parse(contents: bytes, strict: bool = False) -> tuple[int, int, int, bytes, bytes, bytes]: ...

# Returns the length in bytes of the first encoded value (header + contents + trailer).
def peek(contents: bytes) -> int: ...

# Returns ((class_, method, tag, header, contents, trailer), end_pointer);
# with lengths_only=True returns (contents_start, end_pointer) instead.
@overload
def _parse(
    encoded_data: bytes, data_len: int, pointer: int = 0, lengths_only: Literal[False] = False, depth: int = 0
) -> tuple[tuple[int, int, int, bytes, bytes, bytes], int]: ...
@overload
def _parse(
    encoded_data: bytes, data_len: int, pointer: int, lengths_only: Literal[True], depth: int = 0
) -> tuple[int, int]: ...
@overload
def _parse(
    encoded_data: bytes, data_len: int, pointer: int = 0, *, lengths_only: Literal[True], depth: int = 0
) -> tuple[int, int]: ...
def _dump_header(class_: int, method: int, tag: int, contents: bytes) -> bytes: ...
