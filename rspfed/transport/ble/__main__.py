"""``python -m rspfed.transport.ble``: run two linked virtual BLE controllers.

Prints the two ``--ble-hci`` specs and runs until interrupted (see
:class:`rspfed.transport.ble.radio.ControllerProcess`).
"""

from __future__ import annotations

from rspfed.transport.ble.radio import main

main()
