"""The collectors by name, as catalogue endpoints cite them:
`collector: market.coingecko_simple_price`.

One line per collector. A test checks that every `collector:` in the default catalogue is
here (the catalogue may import only the domain, so it cannot check at load time).
"""

from __future__ import annotations

from apiwatch.collectors import exchange, explorers, market, news, onchain, sentiment
from apiwatch.collectors.base import Collector

COLLECTORS: dict[str, Collector] = {
    "market.coingecko_simple_price": market.coingecko_simple_price,
    "market.coinmarketcap_quotes": market.coinmarketcap_quotes,
    "market.cryptocompare_pricemultifull": market.cryptocompare_pricemultifull,
    "market.binance_ticker_24hr": market.binance_ticker_24hr,
    "exchange.binance_depth": exchange.binance_depth,
    "exchange.bybit_orderbook": exchange.bybit_orderbook,
    "exchange.bybit_tickers": exchange.bybit_tickers,
    "exchange.okx_books": exchange.okx_books,
    "exchange.okx_ticker": exchange.okx_ticker,
    "explorers.eth_gas_oracle": explorers.eth_gas_oracle,
    "explorers.bsc_gas_oracle": explorers.bsc_gas_oracle,
    "explorers.eth_price": explorers.eth_price,
    "explorers.bnb_price": explorers.bnb_price,
    "explorers.eth_supply": explorers.eth_supply,
    "explorers.tronscan_latest_block": explorers.tronscan_latest_block,
    "news.cryptopanic_posts": news.cryptopanic_posts,
    "news.newsapi_articles": news.newsapi_articles,
    "sentiment.fear_greed": sentiment.fear_greed,
    "onchain.thegraph_meta": onchain.thegraph_meta,
    "onchain.blockchair_bitcoin_stats": onchain.blockchair_bitcoin_stats,
    "onchain.glassnode_btc_price_close": onchain.glassnode_btc_price_close,
}


def get_collector(name: str) -> Collector:
    """The collector a catalogue endpoint names; KeyError listing the known names if none."""
    try:
        return COLLECTORS[name]
    except KeyError:
        known = ", ".join(sorted(COLLECTORS))
        raise KeyError(f"unknown collector {name!r}; known: {known}") from None
