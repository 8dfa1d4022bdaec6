#!/usr/bin/python3
"""An independent Modbus peer for the integration tests: Debian's python3-pymodbus serving a
register layout written by the test.

Usage: pymodbus_peer.py LAYOUT.json PORT {socket|rtu}
LAYOUT.json: {"UNIT": {"hr": {"ADDR": VALUE, ...}, "ir": {...}, "co": {...}, "di": {...}}},
optionally with "identity": {"VendorName": ..., "ProductCode": ..., ...}: the Read Device
Identification (function 43/14) objects the server answers (pymodbus's own implementation).
`socket` is Modbus TCP (MBAP); `rtu` is RTU framing over TCP (a serial gateway). Prints
"ready" when it listens; runs until killed.
"""
import asyncio
import json
import logging
import sys

from pymodbus.device import ModbusDeviceIdentification
from pymodbus.datastore import (ModbusSequentialDataBlock, ModbusServerContext,
                                ModbusSlaveContext)
from pymodbus.framer.rtu_framer import ModbusRtuFramer
from pymodbus.framer.socket_framer import ModbusSocketFramer
from pymodbus.server import StartAsyncTcpServer


def block(table):
    """A zero-based data block covering 0..max address of the table (gaps read as 0)."""
    size = max((int(a) for a in table), default=0) + 1
    values = [0] * size
    for addr, v in table.items():
        values[int(addr)] = int(v)
    return ModbusSequentialDataBlock(0, values)


async def main():
    layout_path, port, framing = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    with open(layout_path) as f:
        layout = json.load(f)
    identity = None
    if "identity" in layout:
        identity = ModbusDeviceIdentification(info_name=layout.pop("identity"))
    slaves = {}
    for unit, tables in layout.items():
        # zero_mode: address N in a request is element N (no 1-based shift).
        slaves[int(unit)] = ModbusSlaveContext(
            hr=block(tables.get("hr", {})), ir=block(tables.get("ir", {})),
            co=block(tables.get("co", {})), di=block(tables.get("di", {})), zero_mode=True)
    context = ModbusServerContext(slaves=slaves, single=False)
    framer = ModbusRtuFramer if framing == "rtu" else ModbusSocketFramer
    server = await StartAsyncTcpServer(context=context, identity=identity, address=("127.0.0.1", port),
                                       framer=framer, allow_reuse_address=True, defer_start=True)
    print("ready", flush=True)
    await server.serve_forever()


if __name__ == "__main__":
    logging.basicConfig(level=logging.ERROR)
    asyncio.run(main())
