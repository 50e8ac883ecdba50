"""Protection for an ASGI API, apiwatch's own or any other: API keys, per-key minute/hour/day
limits (memory or Redis through `limits`), failed-auth throttling and per-request usage
records, as one pure ASGI middleware. Storage-free: the app supplies the keys and decides
where usage records go.

    from apiwatch.inbound import ApiKeyMiddleware, InboundLimiter, MemoryKeyStore

    app.add_middleware(ApiKeyMiddleware, keys=store, limiter=InboundLimiter(), record=queue)
"""

from apiwatch.inbound.keys import (
    ApiKeyRecord,
    KeyLookupUnavailable,
    KeyStore,
    MemoryKeyStore,
    generate_key,
    hash_key,
    key_prefix,
)
from apiwatch.inbound.limiter import InboundLimiter, LimitDecision, WindowState, headers
from apiwatch.inbound.middleware import ApiKeyMiddleware
from apiwatch.inbound.policy import Access, default_policy
from apiwatch.inbound.usage import UNMATCHED, UsageRecord

__all__ = [
    "UNMATCHED",
    "Access",
    "ApiKeyMiddleware",
    "ApiKeyRecord",
    "InboundLimiter",
    "KeyLookupUnavailable",
    "KeyStore",
    "LimitDecision",
    "MemoryKeyStore",
    "UsageRecord",
    "WindowState",
    "default_policy",
    "generate_key",
    "hash_key",
    "headers",
    "key_prefix",
]
