"""News and sentiment: NewsAPI, CryptoPanic and the Alternative.me Fear & Greed index,
with the response shapes their public API docs give.

Article times are spread back from "now" so the newest item is minutes old, the way a busy
crypto feed looks; the `stale` scenario shifts them all.
"""

from __future__ import annotations

from typing import Any

from apiwatch.simulator.market import ASSETS, fake_hash
from apiwatch.simulator.providers.base import HTML, Ctx, Provider, Reply, reason, status_page

HEADLINES = [
    ("Bitcoin holds near $67K as ETF inflows continue", ["BTC"]),
    ("Ethereum developers schedule next network upgrade", ["ETH"]),
    ("BNB Chain activity climbs to a monthly high", ["BNB"]),
    ("Stablecoin supply reaches a new record", ["USDT"]),
    ("Analysts weigh the macro outlook for crypto markets", ["BTC", "ETH"]),
    ("Solana fees drop after client update", ["SOL"]),
    ("TRON network processes record stablecoin transfers", ["TRX", "USDT"]),
    ("Bitcoin miners diversify into AI data centres", ["BTC"]),
]
SOURCES = [
    ("coindesk", "CoinDesk", "coindesk.com"),
    ("cointelegraph", "Cointelegraph", "cointelegraph.com"),
    ("the-block", "The Block", "theblock.co"),
    ("decrypt", "Decrypt", "decrypt.co"),
]
ARTICLE_SPACING_S = 7 * 60  # one article every seven minutes, the newest 90 s old
NEWEST_AGE_S = 90


def _slug(title: str) -> str:
    return "-".join("".join(c for c in word if c.isalnum()) for word in title.split()).strip("-")


class NewsAPI(Provider):
    routes = {
        "/v2/top-headlines/sources": "sources",
        "/v2/everything": "everything",
        "/v2/top-headlines": "top_headlines",
    }
    key_sources = (
        ("header", "X-Api-Key", ""),
        ("query", "apiKey", ""),
        ("header", "Authorization", "Bearer "),
    )
    default_key_required = True
    server = "cloudflare"

    def _error(self, status: int, code: str, message: str) -> Reply:
        return Reply(status, {"status": "error", "code": code, "message": message})

    def sources(self, ctx: Ctx) -> Reply:
        language = ctx.arg("language")
        rows = [
            {
                "id": source_id,
                "name": name,
                "description": f"{name}: news about bitcoin, ethereum and digital assets.",
                "url": f"https://www.{domain}",
                "category": "business" if source_id != "decrypt" else "technology",
                "language": "en",
                "country": "us",
            }
            for source_id, name, domain in SOURCES
        ]
        if language and language != "en":
            rows = []
        return Reply(200, {"status": "ok", "sources": rows})

    def _articles(self, ctx: Ctx, count: int) -> list[dict[str, Any]]:
        articles = []
        for i in range(count):
            title, _ = HEADLINES[i % len(HEADLINES)]
            source_id, name, domain = SOURCES[i % len(SOURCES)]
            articles.append(
                {
                    "source": {"id": source_id, "name": name},
                    "author": "Staff Reporter",
                    "title": title,
                    "description": f"{title}. Markets reacted calmly.",
                    "url": f"https://www.{domain}/markets/{_slug(title).lower()}-{i}",
                    "urlToImage": f"https://www.{domain}/images/{fake_hash(i, 12)}.jpg",
                    "publishedAt": ctx.view.iso_s(NEWEST_AGE_S + i * ARTICLE_SPACING_S),
                    "content": f"{title}. Markets reacted calmly to the news... [+2637 chars]",
                }
            )
        return articles

    def everything(self, ctx: Ctx) -> Reply:
        if not any(ctx.arg(p) for p in ("q", "qInTitle", "sources", "domains")):
            return self._error(
                400,
                "parametersMissing",
                "Required parameters are missing, the scope of your search is too broad. "
                "Please set any of the following required parameters and try again: "
                "q, qInTitle, sources, domains.",
            )
        return self._page(ctx, total=4620)

    def top_headlines(self, ctx: Ctx) -> Reply:
        if not any(ctx.arg(p) for p in ("q", "sources", "country", "category")):
            return self._error(
                400,
                "parametersMissing",
                "Required parameters are missing. Please set any of the following parameters "
                "and try again: sources, q, language, country, category.",
            )
        return self._page(ctx, total=38)

    def _page(self, ctx: Ctx, *, total: int) -> Reply:
        size = ctx.int_arg("pageSize", 100, low=1, high=100)
        page = ctx.int_arg("page", 1, low=1, high=1000)
        if page * size > 100:
            return self._error(
                426,
                "maximumResultsReached",
                "You have requested too many results. Developer accounts are limited to a max "
                "of 100 results. You are trying to request results 100 to 120. Please upgrade "
                "to a paid plan if you need more results.",
            )
        return Reply(
            200, {"status": "ok", "totalResults": total, "articles": self._articles(ctx, size)}
        )

    def not_found(self, ctx: Ctx) -> Reply:
        return self._error(
            404, "routeNotFound", "The route you requested does not exist. See newsapi.org/docs."
        )

    def missing_key(self, ctx: Ctx) -> Reply:
        return self._error(
            401,
            "apiKeyMissing",
            "Your API key is missing. Append this to the URL with the apiKey param, or use the "
            "x-api-key HTTP header.",
        )

    def auth_failure(self, ctx: Ctx) -> Reply:
        return self._error(
            401,
            "apiKeyInvalid",
            "Your API key is invalid or incorrect. Check your key, or go to "
            "https://newsapi.org to create a free API key.",
        )

    def rate_limited(self, ctx: Ctx) -> Reply:
        return self._error(
            429,
            "rateLimited",
            "You have been rate limited. Back off for a while before trying the request again.",
        )

    def server_error(self, ctx: Ctx, status: int) -> Reply:
        return self._error(status, "unexpectedError", f"{reason(status)}. Please try again later.")

    def extra_headers(self, ctx: Ctx, reply: Reply) -> dict[str, str]:
        return {"X-Cached-Result": "false", "CF-Cache-Status": "DYNAMIC"}


class CryptoPanic(Provider):
    routes = {
        "/api/developer/v2/posts/": "posts_v2",
        "/api/v1/posts/": "posts_v1",
        "/api/free/v1/posts/": "posts_v1",
    }
    key_sources = (("query", "auth_token", ""),)
    default_key_required = True
    server = "cloudflare"
    page_size = 20

    def _post(self, ctx: Ctx, i: int, *, v2: bool) -> dict[str, Any]:
        title, symbols = HEADLINES[i % len(HEADLINES)]
        _, name, domain = SOURCES[i % len(SOURCES)]
        post_id = 21_000_000 - i
        slug = _slug(title)
        published = ctx.view.iso_us(NEWEST_AGE_S + i * ARTICLE_SPACING_S)
        coins = [
            {
                "code": s,
                "title": ASSETS[s].name,
                "slug": ASSETS[s].coingecko_id,
                "url": f"https://cryptopanic.com/news/{ASSETS[s].coingecko_id}/",
            }
            for s in symbols
        ]
        post: dict[str, Any] = {
            "kind": "news",
            "domain": domain,
            "source": {"title": name, "region": "en", "domain": domain, "path": None},
            "title": title,
            "published_at": published,
            "slug": slug,
            "id": post_id,
            "url": f"https://cryptopanic.com/news/{post_id}/{slug}",
            "created_at": published,
            "votes": {
                "negative": 0,
                "positive": 4 + i % 5,
                "important": i % 3,
                "liked": 2,
                "disliked": 0,
                "lol": 0,
                "toxic": 0,
                "saved": 1,
                "comments": 0,
            },
        }
        if v2:
            post["instruments"] = coins
            post["original_url"] = f"https://{domain}/markets/{slug.lower()}"
            post["description"] = f"{title}. Markets reacted calmly."
            post["panic_score"] = 40 + i * 7 % 50
        else:
            post["currencies"] = coins
        return post

    def _filtered(self, ctx: Ctx) -> range | Reply:
        kind = ctx.arg("kind", "all")
        if kind not in ("news", "media", "all"):
            return Reply(400, {"status": "Incomplete", "info": f"Invalid kind: {kind}"})
        return range(0 if kind == "media" else self.page_size)

    def posts_v2(self, ctx: Ctx) -> Reply:
        items = self._filtered(ctx)
        if isinstance(items, Reply):
            return items
        base = "https://cryptopanic.com/api/developer/v2/posts/"
        return Reply(
            200,
            {
                "next": f"{base}?cursor={fake_hash(ctx.view.unix_s(), 16)}" if items else None,
                "previous": None,
                "results": [self._post(ctx, i, v2=True) for i in items],
            },
        )

    def posts_v1(self, ctx: Ctx) -> Reply:
        items = self._filtered(ctx)
        if isinstance(items, Reply):
            return items
        return Reply(
            200,
            {
                "count": 200 if items else 0,
                "next": f"https://cryptopanic.com{ctx.path}?page=2" if items else None,
                "previous": None,
                "results": [self._post(ctx, i, v2=False) for i in items],
            },
        )

    def not_found(self, ctx: Ctx) -> Reply:
        return Reply(
            404,
            text='<!doctype html>\n<html lang="en">\n<head>\n  <title>Not Found</title>\n'
            "</head>\n<body>\n  <h1>Not Found</h1><p>The requested resource was not found on "
            "this server.</p>\n</body>\n</html>\n",
            content_type=HTML,
        )

    def missing_key(self, ctx: Ctx) -> Reply:
        return Reply(401, {"status": "Incomplete", "info": "Missing auth_token parameter"})

    def auth_failure(self, ctx: Ctx) -> Reply:
        return Reply(401, {"status": "Incomplete", "info": "Token not found"})

    def rate_limited(self, ctx: Ctx) -> Reply:
        retry = ctx.scenario.params.get("retry_after", 60)
        return Reply(
            429,
            {
                "status": "Incomplete",
                "info": "Rate limit exceeded",
                "detail": f"Request was throttled. Expected available in {retry} seconds.",
            },
            headers={"Retry-After": str(retry)},
        )

    def server_error(self, ctx: Ctx, status: int) -> Reply:
        return Reply(status, text=status_page(status, "cloudflare"), content_type=HTML)


_FNG_BANDS = (
    (24, "Extreme Fear"),
    (44, "Fear"),
    (55, "Neutral"),
    (75, "Greed"),
    (100, "Extreme Greed"),
)


def classify_fng(value: int) -> str:
    return next(label for top, label in _FNG_BANDS if value <= top)


class AlternativeMe(Provider):
    routes = {"/fng/": "fng", "/fng": "fng"}
    server = "cloudflare"

    def fng(self, ctx: Ctx) -> Reply:
        # limit=0 means the full history, which is years long; a year is plenty here.
        limit = ctx.int_arg("limit", 1, low=0, high=2000) or 365
        now = ctx.view.unix_s()
        until_update = 86_400 - int(ctx.view.data_time) % 86_400
        data = []
        for day in range(limit):
            value = 30 + int(fake_hash(now // 86_400 - day, 4), 16) % 50
            item = {
                "value": str(value),
                "value_classification": classify_fng(value),
                "timestamp": str(now - day * 86_400),
            }
            if day == 0:
                item["time_until_update"] = str(until_update)
            data.append(item)
        return Reply(
            200, {"name": "Fear and Greed Index", "data": data, "metadata": {"error": None}}
        )

    def _error(self, status: int, message: str) -> Reply:
        return Reply(
            status, {"name": "Fear and Greed Index", "data": [], "metadata": {"error": message}}
        )

    def not_found(self, ctx: Ctx) -> Reply:
        return Reply(404, text=status_page(404, "nginx"), content_type=HTML)

    def auth_failure(self, ctx: Ctx) -> Reply:
        return self._error(401, "Unauthorized: invalid or revoked API key.")

    def rate_limited(self, ctx: Ctx) -> Reply:
        reply = self._error(429, "Rate limit exceeded: too many requests, slow down.")
        reply.headers["Retry-After"] = str(ctx.scenario.params.get("retry_after", 60))
        return reply

    def server_error(self, ctx: Ctx, status: int) -> Reply:
        return self._error(status, reason(status))
