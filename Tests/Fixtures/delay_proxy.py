#!/usr/bin/env python3
"""A delaying TCP proxy: a WAN link on loopback, since this kernel has no netem.

Usage: delay_proxy.py LISTEN_PORT TARGET_PORT ONE_WAY_DELAY_MS [BANDWIDTH_MBIT]   (prints "ready" once listening)

Every byte is held ONE_WAY_DELAY_MS in each direction before it is passed on (so a round trip takes twice that),
in order, without limiting how much is in flight (a long fat pipe, as a WAN link is); with BANDWIDTH_MBIT, each
direction of each connection is also paced to that rate. Connections are accepted on 127.0.0.1:LISTEN_PORT and
made to 127.0.0.1:TARGET_PORT.
"""
import asyncio
import sys
import time

LISTEN, TARGET, DELAY = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]) / 1000
RATE = float(sys.argv[4]) * 1e6 / 8 if len(sys.argv) > 4 else None


async def pipe(reader, writer):
    queue = asyncio.Queue()

    async def receive():
        while True:
            data = await reader.read(256 * 1024)
            queue.put_nowait((time.monotonic() + DELAY, data))
            if not data:
                return

    async def send():
        paced = time.monotonic()
        while True:
            due, data = await queue.get()
            wait = due - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            if not data:
                if writer.can_write_eof():
                    writer.write_eof()
                return
            if RATE:
                paced = max(paced, time.monotonic()) + len(data) / RATE
                if paced > time.monotonic():
                    await asyncio.sleep(paced - time.monotonic())
            writer.write(data)
            await writer.drain()

    try:
        await asyncio.gather(receive(), send())
    except (ConnectionError, asyncio.CancelledError):
        pass


async def handle(client_reader, client_writer):
    try:
        server_reader, server_writer = await asyncio.open_connection("127.0.0.1", TARGET)
    except OSError:
        client_writer.close()
        return
    await asyncio.gather(pipe(client_reader, server_writer), pipe(server_reader, client_writer), return_exceptions=True)
    for writer in (client_writer, server_writer):
        writer.close()


async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", LISTEN, limit=1 << 20)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
