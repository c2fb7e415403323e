"""Tiny timing and table helpers shared by the benchmark scripts."""

import gc
import statistics
import time
from collections.abc import Callable, Sequence


def best_of(fn: Callable[[], object], repeat: int = 5) -> float:
    """Best wall-clock time of ``repeat`` calls, in seconds: the least noisy single number."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - started)
    return best


def median_of(fn: Callable[[], object], repeat: int = 25, warmup: int = 3) -> float:
    """Median wall-clock time of ``repeat`` calls after ``warmup`` untimed ones, in seconds."""
    for _ in range(warmup):
        fn()
    gc.collect()  # start clean: garbage of the set-up is not the measured code's cost
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def print_table(title: str, rows: Sequence[Sequence[object]]) -> None:
    """Print ``rows`` (the first one is the header) as an aligned plain-text table."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(row[column]) for row in cells) for column in range(len(cells[0]))]
    print(title)
    for number, row in enumerate(cells):
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)))
        if number == 0:
            print("  ".join("-" * width for width in widths))
