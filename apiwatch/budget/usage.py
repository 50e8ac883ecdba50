"""Usage that providers report in a body, from their own usage endpoints.

CoinMarketCap `/v1/key/info`, CoinGecko `/key` (Pro) and Etherscan `getapilimit` say how
much of each window a key has used; what they say wins over what we counted. A catalogue
endpoint opts in with `usage: <parser name>`. Any shape surprise yields no report rather than
an error: a usage figure is a refinement, never a reason for a probe to fail.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apiwatch.budget.headers import UsageReport


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _get(document: Any, *path: str) -> Any:
    for part in path:
        document = document.get(part) if isinstance(document, dict) else None
    return document


def coinmarketcap_key_info(document: Any) -> list[UsageReport]:
    plan, usage = _get(document, "data", "plan"), _get(document, "data", "usage")
    reports = []
    minute = _int(_get(usage, "current_minute", "requests_made"))
    if minute is not None:
        reports.append(UsageReport("minute", minute, _int(_get(plan, "rate_limit_minute"))))
    month = _int(_get(usage, "current_month", "credits_used"))
    if month is not None:
        reports.append(UsageReport("month", month, _int(_get(plan, "credit_limit_monthly"))))
    return reports


def coingecko_key(document: Any) -> list[UsageReport]:
    used = _int(_get(document, "current_total_monthly_calls"))
    if used is None:
        return []
    return [UsageReport("month", used, _int(_get(document, "monthly_call_credit")))]


def etherscan_apilimit(document: Any) -> list[UsageReport]:
    result = _get(document, "result")
    used = _int(_get(result, "creditsUsed"))
    if used is None or _get(result, "limitInterval") != "daily":
        return []
    return [UsageReport("day", used, _int(_get(result, "creditLimit")))]


PARSERS: dict[str, Callable[[Any], list[UsageReport]]] = {
    "coinmarketcap_key_info": coinmarketcap_key_info,
    "coingecko_key": coingecko_key,
    "etherscan_apilimit": etherscan_apilimit,
}


def usage_from_body(parser: str, document: Any) -> list[UsageReport]:
    return PARSERS[parser](document)
