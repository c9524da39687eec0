"""rspfed: one eSIM subscription that follows its owner across devices.

GSMA SGP.22 remote SIM provisioning (a software eUICC, an LPA and an SM-DP+),
federation tokens that let a primary device authorise its secondaries, and
device-to-device transfer.  See ``docs/architecture.md``.
"""

from rspfed.errors import RspfedError

__all__ = ["RspfedError", "__version__"]

__version__ = "0.1.0.dev0"
