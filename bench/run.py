"""Run the benchmarks: every ``bench/bench_*.py`` in turn, or the ones named on the command line.

    python bench/run.py                  # all of them (what `make bench` does)
    python bench/run.py match process    # bench_match.py and bench_process.py only

Each script runs in its own Python process (its own Django set-up, database and caches) and
prints its own tables. Benchmarks measure and print; they never fail on a timing. The exit status
is non-zero when a script crashed.
"""

import subprocess
import sys
import time
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent


def available() -> dict[str, Path]:
    return {path.stem.removeprefix("bench_"): path for path in sorted(BENCH_DIR.glob("bench_*.py"))}


def selected(names: list[str]) -> list[Path]:
    scripts = available()
    if not names:
        return list(scripts.values())
    chosen = []
    for name in names:
        key = Path(name).stem.removeprefix("bench_")
        if key not in scripts:
            raise SystemExit(f"unknown benchmark {name!r}; available: {', '.join(scripts)}")
        chosen.append(scripts[key])
    return chosen


def main(argv: list[str]) -> int:
    if any(arg in ("-h", "--help") for arg in argv):
        print(__doc__.strip())
        print(f"\navailable: {', '.join(available())}")
        return 0
    failed = []
    for script in selected(argv):
        print(f"=== {script.name} ===", flush=True)
        started = time.perf_counter()
        # The interpreter running us (the project's venv under `make bench`), repository as cwd.
        command = [sys.executable, str(script)]  # only our own bench_*.py files, never input
        result = subprocess.run(command, cwd=BENCH_DIR.parent, check=False)  # noqa: S603
        took = time.perf_counter() - started
        status = "ok" if result.returncode == 0 else f"FAILED (exit {result.returncode})"
        print(f"--- {script.name}: {status} in {took:.0f} s\n", flush=True)
        if result.returncode != 0:
            failed.append(script.name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
