"""HTTP sessions for the REST calls the adapters make without a cloud SDK (Cloud Monitoring,
Application Insights): throttling and server errors are retried with exponential backoff,
POST included, honouring `Retry-After`; what is still refused reaches the caller as a response.
"""

from __future__ import annotations

from typing import Any

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
ATTEMPTS = 5          # retries after the first try
BACKOFF_S = 1.0       # sleeps 0, 2, 4, 8, 16 s between tries (urllib3's backoff)


def retrying(session: Any, statuses: frozenset[int] = RETRY_STATUSES) -> Any:
    """`session` (a requests Session) with a retrying adapter mounted for http and https."""
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    retry = Retry(total=ATTEMPTS, backoff_factor=BACKOFF_S, status_forcelist=statuses,
                  allowed_methods=frozenset({"POST"}), respect_retry_after_header=True,
                  raise_on_status=False)
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    return session
