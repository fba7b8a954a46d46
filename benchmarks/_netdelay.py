"""A loopback TCP proxy that delays every byte by a fixed time in each direction (a slow network).

    python -m benchmarks._netdelay --upstream 127.0.0.1:8545 --delay-ms 80     # prints "listening PORT"

It needs nothing but loopback TCP: no root, no network namespace, no ``tc`` (``tc qdisc add dev lo
root netem delay 80ms`` would need CAP_NET_ADMIN and would slow every other process on the machine).
Each chunk read from one side is written to the other ``delay`` seconds after it arrived, in order, so
a request/answer exchange costs two delays (one round trip) on top of the node's own time, for HTTP
and WebSocket alike. It runs in its own process, so the benchmark's event loop does not time it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import subprocess
import sys
from collections import deque


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delay: float) -> None:
    """Copy ``reader`` to ``writer``, each chunk ``delay`` seconds after it was read, in order.

    Writes are timer callbacks on the loop (no task switch per chunk), so the proxy adds next to
    nothing beyond ``delay`` itself."""
    loop = asyncio.get_running_loop()
    queue: deque[tuple[float, bytes]] = deque()
    done = loop.create_future()

    def flush() -> None:
        now = loop.time()
        while queue and queue[0][0] <= now:
            _due, data = queue.popleft()
            if not data:
                with contextlib.suppress(OSError, RuntimeError):
                    writer.close()
                if not done.done():
                    done.set_result(None)
                return
            with contextlib.suppress(OSError, RuntimeError):
                writer.write(data)
        if queue:
            loop.call_at(queue[0][0], flush)

    try:
        while True:
            try:
                data = await reader.read(65536)
            except OSError:
                data = b""
            if delay <= 0 and not queue:
                if data:
                    writer.write(data)
                    continue
                queue.append((loop.time(), data))
                flush()
                break
            queue.append((loop.time() + delay, data))
            if len(queue) == 1:
                loop.call_at(queue[0][0], flush)
            if not data:
                break
        await done
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            writer.close()


async def serve(upstream: tuple[str, int], delay: float, port: int = 0) -> None:
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        try:
            node_r, node_w = await asyncio.open_connection(*upstream)
        except OSError:
            client_w.close()
            return
        await asyncio.gather(_pump(client_r, node_w, delay), _pump(node_r, client_w, delay))

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    print(f"listening {server.sockets[0].getsockname()[1]}", flush=True)
    async with server:
        await server.serve_forever()


class DelayProxy:
    """The proxy as a child process: ``with DelayProxy(node_port, 0.08) as port: ...``."""

    def __init__(self, upstream_port: int, delay_s: float) -> None:
        self.upstream_port = upstream_port
        self.delay_s = delay_s
        self._proc: subprocess.Popen[str] | None = None
        self.port = 0

    def __enter__(self) -> int:
        self._proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "benchmarks._netdelay",
                "--upstream",
                f"127.0.0.1:{self.upstream_port}",
                "--delay-ms",
                str(self.delay_s * 1000),
            ],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()
        if not line.startswith("listening "):
            self._proc.kill()
            raise RuntimeError(f"delay proxy did not start: {line!r}")
        self.port = int(line.split()[1])
        return self.port

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(5)
            if self._proc.poll() is None:
                self._proc.kill()
                self._proc.wait()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--upstream", required=True, help="host:port of the node")
    parser.add_argument("--delay-ms", type=float, required=True, help="added one-way delay")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    host, port = args.upstream.rsplit(":", 1)
    with contextlib.suppress(OSError):  # the network should not queue behind a loaded machine's CPU
        os.nice(-10)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve((host, int(port)), args.delay_ms / 1000, args.port))


if __name__ == "__main__":
    main()
