"""The clients cli_devops is measured against, as whole processes on the standard library.

    python bench/baselines.py original URL      # 5 threads, a new connection per request
    python bench/baselines.py sequential URL    # one request after the other

`original` is the tool's first design (a pool of 5 threads, no connection reuse); `sequential`
is the simplest client there is, and near-best against a single-threaded server. Both read
`/servers`, then every instance, and print the answers as a JSON list, so they do the same
work as `cli_devops services -o json` minus the validation and health rule.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from concurrent.futures import ThreadPoolExecutor

TIMEOUT = 10.0


def get_json(url: str) -> object:
    """GET with a new connection (urllib sends `Connection: close`)."""
    with urllib.request.urlopen(url, timeout=TIMEOUT) as response:
        return json.loads(response.read())


def fetch(base_url: str, workers: int) -> list[object]:
    ips = get_json(base_url + "/servers")
    assert isinstance(ips, list)
    urls = [f"{base_url}/{ip}" for ip in ips]
    if workers == 1:
        return [get_json(url) for url in urls]
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(get_json, urls))


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] not in ("original", "sequential"):
        print(__doc__, file=sys.stderr)
        return 2
    workers = 5 if argv[0] == "original" else 1
    json.dump(fetch(argv[1].rstrip("/"), workers), sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
