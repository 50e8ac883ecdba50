"""News collectors: CryptoPanic posts and NewsAPI articles, one point per article.

Item `news:<url>`, text the title, `values` the url, source, published time and (where the
provider says) the coins it is about; the data timestamp is the article's published time.
Articles are de-duplicated by url within one payload (the first, i.e. newest, wins); across
runs the storage layer drops urls it already holds.

The url is the article's own where the provider gives it (CryptoPanic v2 `original_url`,
NewsAPI `url`), so the same story from both providers is one item; CryptoPanic v1 only has
its own post link (`url`), which is then used, and is kept as `post_url` either way.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from apiwatch.collectors import parse
from apiwatch.collectors.base import CollectorError, DataPoint, collector

# More than any page size the providers allow (CryptoPanic 20-50, NewsAPI 100).
MAX_ARTICLES = 500
# NewsAPI replaces withdrawn articles with a placeholder rather than dropping them.
_NEWSAPI_REMOVED = "https://removed.com"


def _published(value: Any, where: str) -> datetime | None:
    return None if value is None else parse.iso_time(value, where)


def _optional_text(value: Any, where: str, max_chars: int = 200) -> str | None:
    return None if value is None else parse.text(value, where, max_chars=max_chars)


def _article(
    *,
    provider: str,
    category: str,
    link: str,
    title: str | None,
    values: dict[str, Any],
    published: datetime | None,
) -> DataPoint:
    values = {"url": link, **{k: v for k, v in values.items() if v not in (None, [])}}
    if published is not None:
        values["published_at"] = published.isoformat()
    return DataPoint(
        provider=provider,
        category=category,
        item=f"news:{link}",
        text=title,
        values=values,
        data_timestamp=published,
    )


def _unique(points: list[DataPoint]) -> list[DataPoint]:
    seen: set[str] = set()
    unique = []
    for point in points:
        if point.item not in seen:
            seen.add(point.item)
            unique.append(point)
    return unique


def _codes(value: Any, where: str) -> list[str]:
    """`[{"code": "BTC", …}, …]` → `["BTC", …]`; entries without a code are skipped."""
    if value is None:
        return []
    codes = []
    for i, coin in enumerate(parse.array(value, where)[:50]):
        code = coin.get("code") if isinstance(coin, dict) else None
        if code is not None:
            codes.append(parse.text(code, f"{where}[{i}].code", max_chars=20))
    return codes


@collector
def cryptopanic_posts(payload: Any, *, provider: str, category: str) -> list[DataPoint]:
    """`/api/developer/v2/posts/` (or v1): `{"next": …, "results": [{"kind": "news",
    "title": "…", "published_at": "2018-01-18T09:45:28.965353Z", "url": "https://cryptopanic
    .com/news/841770/…", "original_url": "https://…", "source": {"title": "CoinDesk",
    "domain": "coindesk.com"}, "instruments" (v2) or "currencies" (v1): [{"code": "BTC"}]}]}`.
    """
    body = parse.obj(payload, "$")
    posts = parse.array(parse.at(body, "results"), "$.results")
    if len(posts) > MAX_ARTICLES:
        raise CollectorError(f"$.results has {len(posts)} posts, more than any real page")
    points = []
    for index, entry in enumerate(posts):
        where = f"$.results[{index}]"
        post = parse.obj(entry, where)
        post_url = None if post.get("url") is None else parse.url(post["url"], f"{where}.url")
        original = post.get("original_url")
        link = post_url if original is None else parse.url(original, f"{where}.original_url")
        if link is None:
            raise CollectorError(f"{where} has neither url nor original_url")
        source = post.get("source")
        source = parse.obj(source, f"{where}.source") if source is not None else {}
        coins_key = "instruments" if "instruments" in post else "currencies"
        points.append(
            _article(
                provider=provider,
                category=category,
                link=link,
                title=parse.text(parse.at(post, "title", where=where), f"{where}.title"),
                values={
                    "post_url": post_url,
                    "source": _optional_text(source.get("title"), f"{where}.source.title"),
                    "source_domain": _optional_text(source.get("domain"), f"{where}.source.domain"),
                    "kind": _optional_text(post.get("kind"), f"{where}.kind", 20),
                    "currencies": _codes(post.get(coins_key), f"{where}.{coins_key}"),
                },
                published=_published(post.get("published_at"), f"{where}.published_at"),
            )
        )
    return _unique(points)


@collector
def newsapi_articles(payload: Any, *, provider: str, category: str) -> list[DataPoint]:
    """`/v2/everything`: `{"status": "ok", "totalResults": 4620, "articles": [{"source":
    {"id": null, "name": "newsBTC"}, "author": "…", "title": "…", "url": "https://…",
    "publishedAt": "2020-06-06T01:00:58Z", …}]}`. Withdrawn articles (url
    `https://removed.com`, title `[Removed]`) are skipped."""
    body = parse.obj(payload, "$")
    if body.get("status") != "ok":
        raise CollectorError("$.status is not 'ok': the payload is an error")
    articles = parse.array(parse.at(body, "articles"), "$.articles")
    if len(articles) > MAX_ARTICLES:
        raise CollectorError(f"$.articles has {len(articles)} articles, more than any real page")
    points = []
    for index, entry in enumerate(articles):
        where = f"$.articles[{index}]"
        article = parse.obj(entry, where)
        link = parse.url(parse.at(article, "url", where=where), f"{where}.url")
        if link.rstrip("/") == _NEWSAPI_REMOVED:
            continue
        source = article.get("source")
        source = parse.obj(source, f"{where}.source") if source is not None else {}
        points.append(
            _article(
                provider=provider,
                category=category,
                link=link,
                title=_optional_text(article.get("title"), f"{where}.title", parse.MAX_TEXT_CHARS),
                values={
                    "source": _optional_text(source.get("name"), f"{where}.source.name"),
                    "author": _optional_text(article.get("author"), f"{where}.author"),
                },
                published=_published(article.get("publishedAt"), f"{where}.publishedAt"),
            )
        )
    return _unique(points)
