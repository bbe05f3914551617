"""A TCP proxy on loopback that delays every byte by a fixed time in each direction.

    .venv/bin/python bench/delay_proxy.py TARGET_PORT [--delay 0.010]

Prints the port it listens on (127.0.0.1, chosen by the kernel), then forwards each connection
to 127.0.0.1:TARGET_PORT. Each chunk read is written out `delay` seconds after it was read, in
order (a per-direction queue with absolute deadlines, so delays never add up): 10 ms each way
is a 20 ms round trip, like a relay in another data centre. The kernel here has no `netem`.
It runs in its own process so that its CPU is not the client's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections import deque


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    loop = asyncio.get_running_loop()
    queue: deque[tuple[float, bytes]] = deque()
    ready = asyncio.Event()
    done = False

    async def forward() -> None:
        while True:
            while not queue:
                if done:
                    return
                ready.clear()
                await ready.wait()
            due, chunk = queue.popleft()
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            writer.write(chunk)
            await writer.drain()

    task = asyncio.create_task(forward())
    try:
        while chunk := await reader.read(65536):
            queue.append((loop.time() + delay, chunk))
            ready.set()
    except ConnectionError:
        pass
    done = True
    ready.set()
    try:
        await task
        if writer.can_write_eof():
            writer.write_eof()
    except OSError:  # the other side is gone already
        writer.transport.abort()


async def _main(target: int, delay: float) -> None:
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            server_r, server_w = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            client_w.transport.abort()
            return
        await asyncio.gather(_pump(client_r, server_w, delay), _pump(server_r, client_w, delay))
        client_w.close()
        server_w.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    print(server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", type=int)
    parser.add_argument("--delay", type=float, default=0.010, help="seconds, each direction")
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_main(args.target, args.delay))
    return 0


if __name__ == "__main__":
    sys.exit(main())
