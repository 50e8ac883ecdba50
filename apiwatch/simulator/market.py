"""The simulated world every provider reports on: assets, prices, chain heights, the clock.

One price table is shared by all providers so their prices agree within a fraction of a
percent (consensus checks compare them); the `divergent` scenario skews one provider only.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class Asset:
    symbol: str
    name: str
    coingecko_id: str
    cmc_id: int
    price_usd: float
    circulating_supply: float
    max_supply: float | None
    volume_24h_usd: float
    change_24h_pct: float


ASSETS: dict[str, Asset] = {
    a.symbol: a
    for a in (
        Asset("BTC", "Bitcoin", "bitcoin", 1, 67_000.0, 19_720_000, 21_000_000, 31.2e9, 1.84),
        Asset("ETH", "Ethereum", "ethereum", 1027, 3_500.0, 120_400_000, None, 15.6e9, 2.31),
        Asset("BNB", "BNB", "binancecoin", 1839, 600.0, 145_900_000, 200_000_000, 1.9e9, -0.72),
        Asset("SOL", "Solana", "solana", 5426, 150.0, 468_000_000, None, 2.7e9, 3.05),
        Asset("USDT", "Tether USDt", "tether", 825, 1.0, 118_000_000_000, None, 52.0e9, 0.01),
        Asset("TRX", "TRON", "tron", 1958, 0.125, 87_500_000_000, None, 0.4e9, 0.42),
    )
}
BY_COINGECKO_ID = {a.coingecko_id: a for a in ASSETS.values()}
BY_CMC_ID = {a.cmc_id: a for a in ASSETS.values()}

# Jitter stays well under 0.1 % so any two providers agree within 0.2 %.
JITTER = 0.0004

# Anchors for block heights that grow with the wall clock (height, unix s, seconds per block).
_CHAINS = {
    "ethereum": (21_000_000, 1_729_800_000, 12.0),
    "bsc": (43_000_000, 1_729_800_000, 3.0),
    "tron": (66_000_000, 1_729_800_000, 3.0),
    "bitcoin": (867_000, 1_729_800_000, 600.0),
}


@dataclass(frozen=True)
class View:
    """What one response sees: the time its data claims and its price skew.

    `now` is the real clock; `data_time` is what timestamps inside bodies say (behind `now`
    in the `stale` scenario).
    """

    now: float
    data_time: float
    price_factor: float = 1.0

    @classmethod
    def current(cls, *, age_s: float = 0.0, skew_pct: float = 0.0) -> View:
        now = time.time()
        return cls(now=now, data_time=now - age_s, price_factor=1.0 + skew_pct / 100.0)

    def price(self, symbol: str) -> float:
        base = ASSETS[symbol].price_usd
        return base * self.price_factor * (1.0 + random.uniform(-JITTER, JITTER))

    def price_in(self, symbol: str, quote: str) -> float | None:
        """Price of `symbol` in `quote` (USD, USDT, EUR, BTC, ETH, ...); None if unknown."""
        quote = quote.upper()
        if quote in ("USD", "USDT", "USDC", "BUSD"):
            return self.price(symbol) if symbol != quote else 1.0
        if quote == "EUR":
            return self.price(symbol) * 0.92
        if quote in ASSETS:
            return self.price(symbol) / ASSETS[quote].price_usd
        return None

    def block_height(self, chain: str) -> int:
        height, anchor, spacing = _CHAINS[chain]
        return height + int((self.data_time - anchor) / spacing)

    # Timestamp renderings in each provider's own unit and type: the vendors disagree (Unix
    # seconds, Unix milliseconds, ISO 8601 with milliseconds, numbers or strings), and the
    # collectors must read each one as its vendor writes it.
    def unix_s(self, offset_s: float = 0.0) -> int:
        return int(self.data_time - offset_s)

    def unix_ms(self, offset_s: float = 0.0) -> int:
        return int((self.data_time - offset_s) * 1000)

    def iso_ms(self, offset_s: float = 0.0) -> str:
        """`2024-05-01T12:00:00.123Z`, as CoinMarketCap writes it."""
        moment = datetime.fromtimestamp(self.data_time - offset_s, UTC)
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"

    def iso_us(self, offset_s: float = 0.0) -> str:
        """`2024-05-01T12:00:00.123456Z`, as CryptoPanic writes it."""
        return datetime.fromtimestamp(self.data_time - offset_s, UTC).strftime(
            "%Y-%m-%dT%H:%M:%S.%fZ"
        )

    def iso_s(self, offset_s: float = 0.0) -> str:
        """`2024-05-01T12:00:00Z`, as NewsAPI writes it."""
        return datetime.fromtimestamp(self.data_time - offset_s, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def sql_time(self, offset_s: float = 0.0) -> str:
        """`2024-05-01 12:00:00`, UTC without a zone, as Blockchair writes it."""
        return datetime.fromtimestamp(self.data_time - offset_s, UTC).strftime("%Y-%m-%d %H:%M:%S")


def fake_hash(seed: object, length: int = 64) -> str:
    """A stable hex string for ids and block hashes; stable so repeated calls agree."""
    rng = random.Random(str(seed))
    return "".join(rng.choice("0123456789abcdef") for _ in range(length))
