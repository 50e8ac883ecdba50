"""Collectors turn provider payloads into normalized data points, one module per category
(market, exchange, explorers, news, sentiment, onchain); `registry.COLLECTORS` names them for the
catalogue. The contract every collector keeps is in `base.py`."""
