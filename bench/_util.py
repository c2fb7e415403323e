"""Tiny timing and table helpers shared by the benchmark scripts."""

import gc
import multiprocessing
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


def run_worker_processes(
    target: Callable, args: tuple, workers: int, *, setup_timeout: float, timeout: float
) -> tuple[float, list[dict]]:
    """Run ``target(*args, barrier, results)`` in ``workers`` spawned processes released together.

    Each worker waits on the barrier once it is set up and connected, then puts one dict holding
    at least ``started`` and ``finished`` (``time.perf_counter()``) into ``results``. Returns the
    wall time from the first start to the last finish, and every worker's dict.
    """
    from django.db import connections

    connections.close_all()  # a spawned child must not share the parent's connections
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(workers + 1)
    results = context.Queue()
    children = [
        context.Process(target=target, args=(*args, barrier, results), daemon=True)
        for _ in range(workers)
    ]
    for child in children:
        child.start()
    barrier.wait(timeout=setup_timeout)
    outcomes = [results.get(timeout=timeout) for _ in children]
    for child in children:
        child.join()
        if child.exitcode != 0:
            raise RuntimeError(f"a worker failed (exit {child.exitcode})")
    seconds = max(o["finished"] for o in outcomes) - min(o["started"] for o in outcomes)
    return seconds, outcomes
