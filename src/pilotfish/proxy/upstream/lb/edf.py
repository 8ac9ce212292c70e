"""Earliest-deadline-first scheduling, Envoy's EdfScheduler: each entry is due 1/weight after
the current time; a pick takes the earliest (ties by insertion order) and re-adds it with the
weight it has now, so weights that change between picks (LEAST_REQUEST) take effect lazily."""

from __future__ import annotations

import heapq
from typing import Callable, Generic, TypeVar

T = TypeVar("T")


class EdfScheduler(Generic[T]):
    __slots__ = ("queue", "now", "order")

    def __init__(self) -> None:
        self.queue: list[tuple[float, int, T]] = []
        self.now = 0.0
        self.order = 0

    def add(self, weight: float, item: T) -> None:
        heapq.heappush(self.queue, (self.now + 1.0 / weight, self.order, item))
        self.order += 1

    def pick_and_add(self, weight_of: Callable[[T], float]) -> T | None:
        if not self.queue:
            return None
        deadline, _, item = heapq.heappop(self.queue)
        self.now = deadline
        self.add(weight_of(item), item)
        return item

    def __len__(self) -> int:
        return len(self.queue)
