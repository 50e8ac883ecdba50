"""Data collection: fetch the providers' data endpoints on per-category schedules, keep the
latest point per provider and item, judge freshness and consensus, adapt polling to the
market, and record whether each planned run started on time.

`run` holds one collection run, `judgements` freshness and consensus, `adaptive` the
adaptive polling, `schedules` the schedules as the scheduler runs them, and `model` the
values they share.
"""

from apiwatch.collection.model import (
    DEFAULT_INTERVAL_S,
    CollectionConfig,
    Point,
    ScheduleState,
    data_endpoints,
    skip_reason,
    storage_item,
)
from apiwatch.collection.run import Collection
from apiwatch.collection.schedules import CollectionSchedules

__all__ = [
    "DEFAULT_INTERVAL_S",
    "Collection",
    "CollectionConfig",
    "CollectionSchedules",
    "Point",
    "ScheduleState",
    "data_endpoints",
    "skip_reason",
    "storage_item",
]
