"""EAP-AKA' (RFC 9048) for primary registration: key derivation, codec, sans-IO machines.

See :mod:`rspfed.eap.akaprime` (keys, packets, AT_MAC) and
:mod:`rspfed.eap.machines` (authenticator and peer).
"""

from __future__ import annotations

__all__: list[str] = []
