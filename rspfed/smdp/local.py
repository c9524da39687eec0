"""The SM-DP+ core as the LPA's ES9+ in one process (no HTTP, no TLS).

:class:`InProcessEs9` adapts a :class:`~rspfed.smdp.Smdp` to the
:class:`rspfed.lpa.Es9` protocol, so :func:`rspfed.lpa.download` can run
against an SM-DP+ core directly: for examples, tests, benchmarks and apps
that embed both ends.  Errors are the core's own
(:class:`~rspfed.errors.RspfedError` subclasses carrying the SGP.22 status),
exactly as the HTTPS client raises them.

Example::

    es9 = InProcessEs9(smdp)
    result = await download(InProcessEs10(euicc.isdr), activation_code, es9=es9)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rspfed.es9p import messages as es9p
    from rspfed.smdp.core import Smdp

__all__ = ["InProcessEs9"]


class InProcessEs9:
    """ES9+ straight into an :class:`~rspfed.smdp.Smdp` core (the :class:`rspfed.lpa.Es9`
    protocol); each call runs the core synchronously on the caller's thread."""

    def __init__(self, smdp: Smdp) -> None:
        self.smdp = smdp

    def __repr__(self) -> str:
        return f"InProcessEs9({self.smdp.config.address})"

    async def initiate_authentication(
        self, request: es9p.InitiateAuthenticationRequest
    ) -> es9p.InitiateAuthenticationResponse:
        """ES9+.InitiateAuthentication."""
        return self.smdp.initiate_authentication(request)

    async def authenticate_client(
        self, request: es9p.AuthenticateClientRequest
    ) -> es9p.AuthenticateClientResponse:
        """ES9+.AuthenticateClient."""
        return self.smdp.authenticate_client(request)

    async def get_bound_profile_package(
        self, request: es9p.GetBoundProfilePackageRequest
    ) -> es9p.GetBoundProfilePackageResponse:
        """ES9+.GetBoundProfilePackage."""
        return self.smdp.get_bound_profile_package(request)

    async def cancel_session(
        self, request: es9p.CancelSessionRequest
    ) -> es9p.CancelSessionResponse:
        """ES9+.CancelSession."""
        return self.smdp.cancel_session(request)

    async def handle_notification(self, request: es9p.HandleNotificationRequest) -> None:
        """ES9+.HandleNotification."""
        self.smdp.handle_notification(request)
