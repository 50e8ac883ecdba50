"""Where budget counters live: one interface (`base.BudgetStore`), two implementations.

`MemoryBudgetStore` is the default (one process); `RedisBudgetStore` shares one budget
between processes through the Redis server that `REDIS_URL` names.
"""

from apiwatch.budget.stores.base import AcquireResult, BudgetStore, Crossing, Slot, WindowState
from apiwatch.budget.stores.memory import MemoryBudgetStore
from apiwatch.budget.stores.redis import RedisBudgetStore

__all__ = [
    "AcquireResult",
    "BudgetStore",
    "Crossing",
    "MemoryBudgetStore",
    "RedisBudgetStore",
    "Slot",
    "WindowState",
]
