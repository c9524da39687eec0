# Minimal stubs for spake2 0.9 (only what rspfed.crypto.pake uses); see README.md.

from spake2.spake2 import SPAKE2_A as SPAKE2_A
from spake2.spake2 import SPAKE2_B as SPAKE2_B
from spake2.spake2 import SPAKE2_Symmetric as SPAKE2_Symmetric
from spake2.spake2 import SPAKEError as SPAKEError

__version__: str

