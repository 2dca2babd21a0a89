"""The CPX API client, found by file name:

* `settings.py`: `ClientSettings` and the checked base URL (`normalize_base_url`);
* `network.py`: origin, TLS, proxies, redirects, which origin gets the token, failure reasons;
* `http.py`: `HttpSession`, the one HTTP layer (pool, TLS, token, redirects, size caps, the one
  retry loop) for the CPX API, Prometheus and anything that posts;
* `budget.py`: the retry budget and deadline of ONE read (`ReadBudget`, one per read);
* `concurrency.py`: how many requests are in flight at once (adaptive, or fixed);
* `fanout.py`: every instance read through the concurrency limiter;
* `session.py`: `CpxClient`, the listing and the instances read through the limiter.
"""

from cli_devops.client.budget import (
    BACKOFF_CAP,
    BACKOFF_FIRST,
    RETRY_AFTER_LIMIT,
    RETRY_BUDGET_MIN,
    RETRY_BUDGET_RATIO,
    ReadBudget,
    ReadProgress,
    parse_retry_after,
)
from cli_devops.client.fanout import FanoutResult
from cli_devops.client.http import HttpSession, RetryHooks, Send
from cli_devops.client.network import MAX_REDIRECTS, HttpFailure
from cli_devops.client.session import (
    MAX_INSTANCE_BODY,
    MAX_SERVERS_BODY,
    CpxClient,
)
from cli_devops.client.settings import DEFAULT_RETRIES, ClientSettings, normalize_base_url
from cli_devops.model import Snapshot  # re-exported: what a read of the fleet gives

__all__ = [
    "BACKOFF_CAP",
    "BACKOFF_FIRST",
    "DEFAULT_RETRIES",
    "MAX_INSTANCE_BODY",
    "MAX_REDIRECTS",
    "MAX_SERVERS_BODY",
    "RETRY_AFTER_LIMIT",
    "RETRY_BUDGET_MIN",
    "RETRY_BUDGET_RATIO",
    "ClientSettings",
    "CpxClient",
    "FanoutResult",
    "HttpFailure",
    "HttpSession",
    "ReadBudget",
    "ReadProgress",
    "RetryHooks",
    "Send",
    "Snapshot",
    "normalize_base_url",
    "parse_retry_after",
]
