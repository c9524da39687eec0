"""The demo's QR "camera": read back a QR code from the text it was rendered as.

segno (which renders the demo's QR codes) only encodes, so the phone reads
the activation code back from the half-block text on the screen with this
small reader (ISO/IEC 18004, model 2, versions 1 to 40): the modules from the
characters, the format information (error correction level and mask, the
closest of the 32 BCH codewords), the function patterns left out, the mask
undone, the codewords taken in the zigzag order and de-interleaved, then the
segments (numeric, alphanumeric, byte) decoded.  There is no error correction:
the screen is read exactly as rendered (a wrong read fails, it is never
guessed).  Bad input raises :class:`~rspfed.errors.DecodeError`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Final

from rspfed.errors import DecodeError

__all__ = ["read_terminal_qr"]

# segno's compact terminal rendering: dark modules are unlit (a dark background).
# char -> (top module dark, bottom module dark)
_HALF_BLOCKS: Final = {" ": (1, 1), "\u2580": (0, 1), "\u2584": (1, 0), "\u2588": (0, 0)}

# ISO/IEC 18004 Table 9: ECC codewords per block and number of blocks, by level and
# version (index 0 unused).  Level order: L, M, Q, H.
_ECC_PER_BLOCK: Final = (
    (-1, 7, 10, 15, 20, 26, 18, 20, 24, 30, 18, 20, 24, 26, 30, 22, 24, 28, 30, 28, 28,
     28, 28, 30, 30, 26, 28, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30),
    (-1, 10, 16, 26, 18, 24, 16, 18, 22, 22, 26, 30, 22, 22, 24, 24, 28, 28, 26, 26, 26,
     26, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28, 28),
    (-1, 13, 22, 18, 26, 18, 24, 18, 22, 20, 24, 28, 26, 24, 20, 30, 24, 28, 28, 26, 30,
     28, 30, 30, 30, 30, 28, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30),
    (-1, 17, 28, 22, 16, 22, 28, 26, 26, 24, 28, 24, 28, 22, 24, 24, 30, 28, 28, 26, 28,
     30, 24, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30, 30),
)  # fmt: skip
_BLOCKS: Final = (
    (-1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 4, 4, 4, 4, 4, 6, 6, 6, 6, 7, 8, 8, 9, 9, 10, 12, 12,
     12, 13, 14, 15, 16, 17, 18, 19, 19, 20, 21, 22, 24, 25),
    (-1, 1, 1, 1, 2, 2, 4, 4, 4, 5, 5, 5, 8, 9, 9, 10, 10, 11, 13, 14, 16, 17, 17, 18, 20,
     21, 23, 25, 26, 28, 29, 31, 33, 35, 37, 38, 40, 43, 45, 47, 49),
    (-1, 1, 1, 2, 2, 4, 4, 6, 6, 8, 8, 8, 10, 12, 16, 12, 17, 16, 18, 21, 20, 23, 23, 25,
     27, 29, 34, 34, 35, 38, 40, 43, 45, 48, 51, 53, 56, 59, 62, 65, 68),
    (-1, 1, 1, 2, 4, 4, 4, 5, 6, 8, 8, 11, 11, 16, 16, 18, 16, 19, 21, 25, 25, 25, 34, 30,
     32, 35, 37, 40, 42, 45, 48, 51, 54, 57, 60, 63, 66, 70, 74, 77, 81),
)  # fmt: skip
# the 2-bit level indicator of the format information, in the order above
_LEVEL_BITS: Final = (0b01, 0b00, 0b11, 0b10)
_ALPHANUMERIC: Final = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"


def _fail(text: str) -> DecodeError:
    return DecodeError(text, type_name="QR code")


def _modules(text: str) -> list[list[int]]:
    """The module matrix (1 = dark) of a compact terminal rendering, quiet zone removed."""
    lines = [line for line in text.splitlines() if line.strip(" ")]
    if not lines or len({len(line) for line in lines}) != 1:
        raise _fail("not a rectangular block of half-block characters")
    rows: list[list[int]] = []
    for line in lines:
        try:
            pairs = [_HALF_BLOCKS[c] for c in line]
        except KeyError:
            raise _fail("a character that is not a half block") from None
        rows.append([p[0] for p in pairs])
        rows.append([p[1] for p in pairs])
    width = len(rows[0])
    border = next((r for r, row in enumerate(rows) if any(row)), None)
    if border is None:
        raise _fail("no dark module")
    size = width - 2 * border
    if size < 21 or (size - 17) % 4 or len(rows) < size + border:
        raise _fail("not the size of a QR code symbol")
    return [row[border : border + size] for row in rows[border : border + size]]


def _format_bits(level: int, mask: int) -> int:
    data = (_LEVEL_BITS[level] << 3) | mask
    remainder = data
    for _ in range(10):
        remainder = (remainder << 1) ^ ((remainder >> 9) * 0x537)
    return ((data << 10) | remainder) ^ 0x5412


def _read_format(m: list[list[int]]) -> tuple[int, int]:
    """(level index, mask) from the format information beside the top-left finder."""
    positions = [(i, 8) for i in range(6)] + [(7, 8), (8, 8), (8, 7)]
    positions += [(8, 14 - i) for i in range(9, 15)]
    read = sum(m[r][c] << i for i, (r, c) in enumerate(positions))
    best = min(
        (bin(read ^ _format_bits(lv, mk)).count("1"), lv, mk) for lv in range(4) for mk in range(8)
    )
    if best[0] > 3:
        raise _fail("unreadable format information")
    return best[1], best[2]


def _alignment_positions(version: int) -> list[int]:
    if version == 1:
        return []
    count = version // 7 + 2
    step = (version * 8 + count * 3 + 5) // (count * 4 - 4) * 2
    size = version * 4 + 17
    return [6, *sorted(size - 7 - i * step for i in range(count - 1))]


def _function_map(version: int) -> list[list[bool]]:
    size = version * 4 + 17
    f = [[False] * size for _ in range(size)]

    def fill(r0: int, c0: int, rows: int, cols: int) -> None:
        for r in range(max(r0, 0), min(r0 + rows, size)):
            for c in range(max(c0, 0), min(c0 + cols, size)):
                f[r][c] = True

    for i in range(size):  # timing patterns
        f[6][i] = f[i][6] = True
    fill(0, 0, 9, 9)  # finders, separators, format information
    fill(0, size - 8, 9, 8)
    fill(size - 8, 0, 8, 9)
    align = _alignment_positions(version)
    last = len(align) - 1
    for i, r in enumerate(align):
        for j, c in enumerate(align):
            if (i, j) not in ((0, 0), (0, last), (last, 0)):
                fill(r - 2, c - 2, 5, 5)
    if version >= 7:  # version information
        fill(0, size - 11, 6, 3)
        fill(size - 11, 0, 3, 6)
    return f


def _masked(mask: int, r: int, c: int) -> bool:
    x, y = c, r
    if mask == 0:
        return (x + y) % 2 == 0
    if mask == 1:
        return y % 2 == 0
    if mask == 2:
        return x % 3 == 0
    if mask == 3:
        return (x + y) % 3 == 0
    if mask == 4:
        return (x // 3 + y // 2) % 2 == 0
    if mask == 5:
        return x * y % 2 + x * y % 3 == 0
    if mask == 6:
        return (x * y % 2 + x * y % 3) % 2 == 0
    return ((x + y) % 2 + x * y % 3) % 2 == 0


def _zigzag(m: list[list[int]], function: list[list[bool]], mask: int) -> Iterator[int]:
    size = len(m)
    right = size - 1
    while right >= 1:
        if right == 6:
            right = 5
        upward = ((right + 1) & 2) == 0
        for vert in range(size):
            r = size - 1 - vert if upward else vert
            for c in (right, right - 1):
                if not function[r][c]:
                    yield m[r][c] ^ int(_masked(mask, r, c))
        right -= 2


def _data_codewords(m: list[list[int]], version: int, level: int, mask: int) -> bytes:
    bits = list(_zigzag(m, _function_map(version), mask))
    raw = [
        int("".join(map(str, bits[i : i + 8])), 2) for i in range(0, len(bits) - len(bits) % 8, 8)
    ]
    blocks = _BLOCKS[level][version]
    ecc = _ECC_PER_BLOCK[level][version]
    short_len = len(raw) // blocks
    shorts = blocks - len(raw) % blocks
    data_lens = [short_len - ecc + (0 if b < shorts else 1) for b in range(blocks)]
    out: list[list[int]] = [[] for _ in range(blocks)]
    it = iter(raw)
    for i in range(max(data_lens)):
        for b in range(blocks):
            if i < data_lens[b]:
                out[b].append(next(it))
    return bytes(x for block in out for x in block)


class _Bits:
    def __init__(self, data: bytes) -> None:
        self._bits = "".join(f"{b:08b}" for b in data)
        self._at = 0

    def left(self) -> int:
        return len(self._bits) - self._at

    def take(self, n: int) -> int:
        if n > self.left():
            raise _fail("a segment runs past the data")
        value = int(self._bits[self._at : self._at + n] or "0", 2)
        self._at += n
        return value


def _segments(data: bytes, version: int) -> str:
    bits = _Bits(data)
    group = 0 if version <= 9 else 1 if version <= 26 else 2
    text: list[str] = []
    while bits.left() >= 4:
        mode = bits.take(4)
        if mode == 0:
            break
        if mode == 0b0001:  # numeric
            count = bits.take((10, 12, 14)[group])
            digits = ""
            while len(digits) < count:
                n = min(3, count - len(digits))
                digits += f"{bits.take((4, 7, 10)[n - 1]):0{n}d}"
            text.append(digits)
        elif mode == 0b0010:  # alphanumeric
            count = bits.take((9, 11, 13)[group])
            chars = ""
            while len(chars) < count:
                if count - len(chars) >= 2:
                    pair = bits.take(11)
                    if pair >= 45 * 45:
                        raise _fail("an alphanumeric pair out of range")
                    chars += _ALPHANUMERIC[pair // 45] + _ALPHANUMERIC[pair % 45]
                else:
                    one = bits.take(6)
                    if one >= 45:
                        raise _fail("an alphanumeric character out of range")
                    chars += _ALPHANUMERIC[one]
            text.append(chars)
        elif mode == 0b0100:  # byte
            count = bits.take((8, 16, 16)[group])
            octets = bytes(bits.take(8) for _ in range(count))
            try:
                text.append(octets.decode("utf-8"))
            except UnicodeDecodeError:
                text.append(octets.decode("latin-1"))
        else:
            raise _fail(f"segment mode {mode:04b} is not read here")
    return "".join(text)


def read_terminal_qr(rendered: str) -> str:
    """The text a QR code holds, read from segno's compact terminal rendering."""
    m = _modules(rendered)
    version = (len(m) - 17) // 4
    if not 1 <= version <= 40:
        raise _fail("not the size of a QR code symbol")
    level, mask = _read_format(m)
    return _segments(_data_codewords(m, version, level, mask), version)
