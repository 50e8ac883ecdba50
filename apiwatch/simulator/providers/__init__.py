"""The registry of simulated providers: catalogue id → the class that plays that provider.

A provider id the registry does not know (a user's own catalogue entry) gets the quirk-free
`Provider`, which answers 404 in a generic JSON style; add a class here to give it shapes.
"""

from __future__ import annotations

from apiwatch.simulator.providers.aggregators import CoinMarketCap, CryptoCompare
from apiwatch.simulator.providers.base import Ctx, Provider, Reply
from apiwatch.simulator.providers.binance import Binance
from apiwatch.simulator.providers.coingecko import CoinGecko
from apiwatch.simulator.providers.exchanges import OKX, Bybit
from apiwatch.simulator.providers.explorers import EtherscanV2, TronScan
from apiwatch.simulator.providers.news import AlternativeMe, CryptoPanic, NewsAPI
from apiwatch.simulator.providers.onchain import Blockchair, Glassnode, TheGraph

REGISTRY: dict[str, type[Provider]] = {
    "coingecko": CoinGecko,
    "coinmarketcap": CoinMarketCap,
    "cryptocompare": CryptoCompare,
    "binance": Binance,
    "bybit": Bybit,
    "okx": OKX,
    "etherscan": EtherscanV2,
    "bscscan": EtherscanV2,
    "tronscan": TronScan,
    "newsapi": NewsAPI,
    "cryptopanic": CryptoPanic,
    "alternative_me": AlternativeMe,
    "thegraph": TheGraph,
    "blockchair": Blockchair,
    "glassnode": Glassnode,
}


def build_provider(provider_id: str, *, key_required: bool | None = None) -> Provider:
    cls = REGISTRY.get(provider_id, Provider)
    return cls(provider_id, key_required=key_required)


__all__ = ["REGISTRY", "Ctx", "Provider", "Reply", "build_provider"]
