"""The Meta Graph API's own conventions, for the ads source (reads) and Custom Audiences (writes):
where it is, how it says "slow down", and how it words an error."""

from __future__ import annotations

import json
from typing import Any

from requests import Response

DEFAULT_BASE_URL = "https://graph.facebook.com"
DEFAULT_API_VERSION = "v21.0"

# Graph error codes that mean "slow down": app (4), user/account (17), page (32), custom (613),
# and the Business Use Case limits (80000-80014, e.g. 80000 ads insights, 80004 ads management).
RATE_LIMIT_CODES = frozenset({4, 17, 32, 613, *range(80000, 80015)})
# An expired or invalid token (190, subcode 463 when expired) or none at all (104).
TOKEN_ERROR_CODES = frozenset({190, 104})


def versioned_root(base_url: str, api_version: str) -> str:
    return f"{base_url.rstrip('/')}/{api_version.strip('/')}"


def graph_error(response: Response) -> dict[str, Any]:
    """The `error` object of a Graph error body ({} if the body is not one)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    error = body.get("error") if isinstance(body, dict) else None
    return error if isinstance(error, dict) else {}


def is_rate_limited(response: Response | None, exception: BaseException | None) -> bool:
    """Meta throttles with HTTP 400 and a rate-limit code; the retry condition for a session."""
    return (
        response is not None
        and response.status_code == 400
        and graph_error(response).get("code") in RATE_LIMIT_CODES
    )


def minutes_to_regain_access(response: Response) -> int | None:
    """Meta's own estimate, from `x-business-use-case-usage`, of when throttling lifts."""
    try:
        usage = json.loads(response.headers.get("x-business-use-case-usage", "{}"))
        waits = [
            int(entry.get("estimated_time_to_regain_access", 0))
            for entries in usage.values()
            for entry in entries
        ]
    except (ValueError, TypeError, AttributeError):
        return None
    return max(waits, default=0) or None
