"""Which services an IMSI gets: the plan's services intersected with the device class's.

:data:`DEVICE_CLASS_SERVICES` is the one place the per-class table lives:

========  ====  =====  ===  =========
class     data  voice  sms  tethering
========  ====  =====  ===  =========
phone     yes   yes    yes  yes
tablet    yes   yes    yes  yes
laptop    yes   no     no   no
hotspot   yes   no     no   yes
watch     yes   yes    yes  no
========  ====  =====  ===  =========

(phone and tablet: everything the plan allows.)
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

import attrs

# one definition of the device classes and services: the federation token's
# (a token names them, the network grants them)
from rspfed.federation.token import DeviceClass, Service
from rspfed.network.errors import NetworkRefusedError, RefusalReason

__all__ = ["DEVICE_CLASS_SERVICES", "DeviceClass", "Service", "ServicePolicy"]


_ALL = frozenset(Service)

DEVICE_CLASS_SERVICES: Mapping[DeviceClass, frozenset[Service]] = MappingProxyType(
    {
        DeviceClass.PHONE: _ALL,
        DeviceClass.TABLET: _ALL,
        DeviceClass.LAPTOP: frozenset({Service.DATA}),
        DeviceClass.HOTSPOT: frozenset({Service.DATA, Service.TETHERING}),
        DeviceClass.WATCH: frozenset({Service.DATA, Service.VOICE, Service.SMS}),
    }
)
"""The most each device class may get; the plan can only narrow it."""


def _services(values: Iterable[Service]) -> frozenset[Service]:
    return frozenset(Service(v) for v in values)


@attrs.frozen
class ServicePolicy:
    """A subscription plan's services and the device class of the IMSI's device."""

    device_class: DeviceClass = attrs.field(converter=DeviceClass)
    plan_services: frozenset[Service] = attrs.field(default=_ALL, converter=_services)

    @property
    def allowed(self) -> frozenset[Service]:
        """The services granted: the plan's, within :data:`DEVICE_CLASS_SERVICES`."""
        return self.plan_services & DEVICE_CLASS_SERVICES[self.device_class]

    def check(self, service: Service) -> None:
        """Return if ``service`` is granted; else :class:`NetworkRefusedError`."""
        if Service(service) not in self.allowed:
            raise NetworkRefusedError(
                RefusalReason.SERVICE_NOT_ALLOWED,
                f"{Service(service).value} for a {self.device_class.value}",
            )
