"""The ingest accept rates of two trees, measured in turns in one invocation, and their
ratio: does a change cost ingest speed? (The target: after ≥ 90 % of before.)

    python -m bench.ingest_ab --before /path/to/before --after . [--rounds 3]

The two figures are bench.run's production accept rates (`api --workers 2` + one
worker, on one PostgreSQL and Redis; each run on a stream of its own, once PostgreSQL
has vacuumed and checkpointed the previous run's rows): single-event
POST /event (wrk -t2 -c64 -d10s, req/s) and batch POST /events of 1,000 events (wrk -t1
-c8 -d10s, events/s). For each, ``rounds`` runs of each tree, in turns, the order swapped
every other round (bench.ab.pipeline); the ratio is of the medians, after / before. Each
tree is a checkout with its own ``.venv`` (``make venv``), whose `tapioca` is measured.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

from bench.ab import pipeline

FLOOR = 0.9  # after / before: at most 10 % slower


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--before", type=Path, required=True, help="the tree before the change")
    parser.add_argument("--after", type=Path, required=True, help="the tree with the change")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    trees = {"before": args.before.resolve(), "after": args.after.resolve()}
    lines = []
    for scenario, unit in (("single", "req/s"), ("batch", "events/s")):
        with tempfile.TemporaryDirectory(prefix=f"tapioca-ingest-ab-{scenario}-") as tmp:
            runs = pipeline(trees, args.rounds, Path(tmp), batch=scenario == "batch", swap=True)
        before, after = (statistics.median(runs[name]) for name in trees)
        ratio = after / before
        verdict = "ok" if ratio >= FLOOR else f"SLOWER than {FLOOR:.0%} of before"
        shown = {name: " / ".join(f"{v:,.0f}" for v in values) for name, values in runs.items()}
        lines.append(
            f"{scenario}: before {shown['before']} {unit} (median {before:,.0f}); "
            f"after {shown['after']} {unit} (median {after:,.0f}); "
            f"ratio after/before {ratio:.3f} {verdict}"
        )
        print(lines[-1], flush=True)
    print("\n".join(["", f"trees: before {trees['before']}, after {trees['after']}", *lines]))


if __name__ == "__main__":
    main()
