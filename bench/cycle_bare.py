"""The bare anchor of the cycle benchmark: the first cycle's renders posted again by a bare client.

The fakes' process hands over the bodies of the ``dcr/sync-app`` calls the first cycle made;
a client of nothing but asyncio's streams posts them again to the same fake chart-repo, at
the same concurrency, one after another on each of its connections, reading each answer
whole. Its time is what the fake and this machine allow for those renders without a ledger:
what the first cycle takes beyond it is the pipeline's own cost (and the projector's, which
shares the machine's two cores with them).
"""

from __future__ import annotations

import asyncio
import time

PATH = "/chart-repo/api/v2/dcr/sync-app"


async def _post_all(host: str, port: int, bodies: list[bytes], concurrency: int) -> None:
    pending = list(reversed(bodies))

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while pending:
                body = pending.pop()
                head = (
                    f"POST {PATH} HTTP/1.1\r\nHost: {host}:{port}\r\n"
                    "Content-Type: application/json\r\n"
                    f"Content-Length: {len(body)}\r\n\r\n"
                )
                writer.write(head.encode() + body)
                answer = await reader.readuntil(b"\r\n\r\n")
                status = answer.split(b" ", 2)[1]
                length = next(
                    int(line.partition(b":")[2])
                    for line in answer.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                )
                await reader.readexactly(length)
                if status != b"200":
                    raise RuntimeError(f"the fake answered {status.decode()} to a replayed render")
        finally:
            writer.close()

    await asyncio.gather(*(worker() for _ in range(min(concurrency, len(bodies)))))


def bare_replay(host_port: str, bodies: list[bytes], concurrency: int) -> float:
    """Seconds a bare client takes to post ``bodies`` to chart-repo at ``host_port``."""
    host, _, port = host_port.rpartition(":")
    started = time.perf_counter()
    asyncio.run(_post_all(host, int(port), bodies, concurrency))
    return time.perf_counter() - started
