"""ASO benchmark: ``deepsig.aso`` vs ``tfphys.metrics.aso`` on the same inputs, side by side.

    python tools/bench_aso.py            # --sizes 200,1000 --iterations 1000

Both get two distributions of n AUROC-like values (the paper's Table 3 feeds 1000 bootstrapped
AUROCs per score and mass point) and the same seed; the table shows the seconds per comparison,
the speed-up and that ε_min is identical. deepsig runs single-job (num_jobs=1) — the eval runs
its comparisons one after the other.
"""

from __future__ import annotations

import argparse
import os
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="200,1000")
    parser.add_argument("--iterations", type=int, default=1000)
    args = parser.parse_args(argv)
    from deepsig import aso as deepsig_aso

    from tfphys.metrics import aso

    rows = []
    for n in map(int, args.sizes.split(",")):
        rng = np.random.default_rng(n)
        a, b = rng.normal(0.800, 0.01, n), rng.normal(0.798, 0.01, n)
        t0 = time.perf_counter()
        theirs = deepsig_aso(a, b, num_bootstrap_iterations=args.iterations, num_jobs=1,
                             show_progress=False, seed=7)
        t1 = time.perf_counter()
        ours = aso(a, b, num_bootstrap_iterations=args.iterations, seed=7)
        t2 = time.perf_counter()
        rows.append((n, t1 - t0, t2 - t1, theirs, ours))
    print("| n per distribution | deepsig s | tfphys s | speed-up | ε_min deepsig | ε_min tfphys |")
    print("|---|---|---|---|---|---|")
    for n, td, tt, e1, e2 in rows:
        print(f"| {n} | {td:.2f} | {tt:.3f} | {td / tt:.0f}× | {e1:.6f} | {e2:.6f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
