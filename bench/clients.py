"""HTTP client choice: aiohttp vs httpx, same asyncio program, many small requests.

    python bench/clients.py URL CONCURRENCY

Reads `/servers` and every instance with each client (an `asyncio.Semaphore` bounding the
requests in flight, one pooled session each) and prints one line per client:
`NAME SECONDS` (the fetch only, imports excluded; best of 3). A client that is not installed
prints `NAME -`; httpx comes with `pip install -e '.[bench]'`.
"""

from __future__ import annotations

import asyncio
import sys
import time
from collections.abc import Awaitable, Callable

Fetch = Callable[[str, int], Awaitable[int]]


async def with_aiohttp(base_url: str, concurrency: int) -> int:
    import aiohttp

    slots = asyncio.Semaphore(concurrency)
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:

        async def get(path: str) -> object:
            async with slots, session.get(base_url + path) as response:
                return await response.json()

        ips = await get("/servers")
        assert isinstance(ips, list)
        return len(await asyncio.gather(*(get(f"/{ip}") for ip in ips)))


async def with_httpx(base_url: str, concurrency: int) -> int:
    import httpx

    slots = asyncio.Semaphore(concurrency)
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits) as client:

        async def get(path: str) -> object:
            async with slots:
                return (await client.get(base_url + path)).json()

        ips = await get("/servers")
        assert isinstance(ips, list)
        return len(await asyncio.gather(*(get(f"/{ip}") for ip in ips)))


def best_of(fetch: Fetch, base_url: str, concurrency: int, runs: int = 3) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        asyncio.run(fetch(base_url, concurrency))
        times.append(time.perf_counter() - started)
    return min(times)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    base_url, concurrency = argv[0].rstrip("/"), int(argv[1])
    clients: list[tuple[str, str, Fetch]] = [
        ("aiohttp", "aiohttp", with_aiohttp),
        ("httpx", "httpx", with_httpx),
    ]
    for name, module, fetch in clients:
        try:
            __import__(module)
        except ImportError:
            print(f"{name} -")
            continue
        print(f"{name} {best_of(fetch, base_url, concurrency):.4f}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
