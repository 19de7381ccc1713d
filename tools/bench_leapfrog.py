"""LeapfrogLayers vs its untrained start, HMC of equal length and the best-tuned HMC, per CPU-second.

    python tools/bench_leapfrog.py RUN [--out DIR] [--set KEY=VALUE ...]
    python tools/bench_leapfrog.py --untrained models/leapfrog.toml [--model-set lattice_size=8]  # no training

Every sampler side by side in one run, with the rules of ``tfphys/leapfrog/evaluate.py`` (the same
computation as ``tfphys-eval RUN``): each run extended until it is ≥ 50 τ_int(Q_Z) long, up to a
cap (then τ is printed as a bound ``≳`` and ESS/CPU-s as ``≤``; no ratio is formed from a bound),
errors from the independent chains, ESS(Q_Z) per CPU-second of sampling (process CPU time), the
training CPU time and break-even apart, ⟨cos x_P⟩ and ⟨Q_Z²⟩ against the exact finite-torus values
at every β of the Figure 4 scan. Sizes: the run's ``[eval]`` table, then ``--set KEY=VALUE`` (keys of
``tfphys.leapfrog.evaluate.DEFAULTS``). One TensorFlow thread (``--threads``).
"""

from __future__ import annotations

import argparse
import ast
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _row(cells, widths):
    return "  ".join(f"{c:<{w}}" for c, w in zip(cells, widths))


def _value(text):
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", nargs="?", help="a tfphys-train leapfrog run dir")
    p.add_argument("--untrained", metavar="CONFIG", help="no run: the untrained sampler of this config")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override an [eval] size")
    p.add_argument("--model-set", action="append", default=[], metavar="KEY=VALUE",
                   help="--untrained: override a [model] key (e.g. lattice_size=4)")
    p.add_argument("--out", help="also write report.md and the figures here")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--cost-rounds", type=int, default=6, help="interleaved rounds of the cost measurement")
    args = p.parse_args(argv)
    if bool(args.run) == bool(args.untrained):
        p.error("give a run dir or --untrained CONFIG")

    from tfphys.cli import _import_tensorflow_quietly

    _import_tensorflow_quietly(threads=args.threads)

    from tfphys import config as configs
    from tfphys import registry
    from tfphys.leapfrog import evaluate as E
    from tfphys.training import read_history

    if args.run:
        cfg = configs.load(Path(args.run) / "config.toml")
        model = E.load_sampler(args.run)
        history = read_history(Path(args.run) / "history.csv")
    else:
        spec = registry.get("leapfrog")
        raw = configs.load(args.untrained)
        for item in args.model_set:
            key, _, value = item.partition("=")
            raw.setdefault("model", {})[key.strip()] = _value(value.strip())
        cfg = configs.resolve(spec, raw)
        model = registry.build(spec, configs.build_kwargs(spec, {"model_name": "leapfrog", **cfg}))
        history = []
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        overrides[key.strip()] = _value(value.strip())
    settings = E._settings(cfg, overrides)

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}; {args.threads} TF thread(s)")
    cpu0 = time.process_time()
    r = E.compute(model, settings=settings, seed=args.seed, progress=False, source=args.run or args.untrained,
                  history=history)
    size = r.lattice_size
    print(f"\n{size}×{size}, β = {r.beta:g}, {r.chains} chains per sampler; runs ≥ {E.TOL:g} τ_int(Q_Z) "
          f"(from {settings['trajectories']}, capped at {E._caps(settings)}; ≳ / ≤: bounds)")
    results = list(r.main.values())
    widths = (24, *(19,) * len(results))
    print(_row(["", *(x.name for x in results)], widths))
    for label, fn in (
        ("N_LF, Σε", lambda x: f"{x.n_leapfrog}, {x.trajectory_length:.3f}"),
        ("acceptance", lambda x: f"{x.acceptance[0]:.3f}"),
        ("⟨cos x_P⟩ pull", lambda x: f"{x.plaquette[0]:.5f} {x.pulls()[0]:+.1f}σ"),
        ("⟨Q_Z²⟩ pull", lambda x: f"{x.charge_squared[0]:.3f} {x.pulls()[1]:+.1f}σ"),
        ("τ_int(Q_Z)", lambda x: x.tau_text()),
        ("trajectories", lambda x: f"{x.chains.n_trajectories}"),
        ("CPU ms / trajectory", lambda x: f"{x.cpu_per_traj_ms:.1f}"),
        ("ESS(Q_Z) / CPU-s", lambda x: x.ess_text()),
    ):
        print(_row([label, *(fn(x) for x in results)], widths))
    print(f"best-tuned HMC: {r.best_hmc.name}")
    print("goals:")
    for goal, text, ok in r.goals():
        print(f"  [{'met' if ok else 'NOT met' if ok is False else 'undecided'}] {goal}: {text}")
    if r.train_cpu_s:
        be = r.break_even()
        print(f"training CPU time {r.train_cpu_s:.0f} s; break-even (effective Q_Z samples): vs best-tuned HMC "
              f"{be['best-tuned HMC']}, vs untrained start {be.get('untrained start', 'n/a')}")

    print(f"\nFigure 4 scan and exact checks ({r.chains} chains, from {settings['scan_trajectories']} trajectories, "
          f"capped at {E._caps(settings, 'scan_')} per sampler):")
    widths = (5, 18, 7, 21, 21, 14, 14, 7)
    print(_row(["β", "sampler", "acc.", "⟨cos x_P⟩ (pull)", "⟨Q_Z²⟩ (pull)", "τ_int(Q_Z)", "ESS/CPU-s", "traj."],
               widths))
    for b in r.betas:
        for name, x in r.scan[b].items():
            pp, pq = x.pulls()
            print(_row([f"{b:g}", name, f"{x.acceptance[0]:.3f}", f"{x.plaquette[0]:.5f} ({pp:+.1f}σ)",
                        f"{x.charge_squared[0]:.3f} ({pq:+.1f}σ)", x.tau_text(), x.ess_text(),
                        f"{x.chains.n_trajectories}"], widths))
    # cost per trajectory, interleaved (the runs above are sequential on a loaded machine)
    x = r.main["HMC equal length"].chains.x
    hmc = E.equal_length_hmc(model, r.beta)
    spent = {"LeapfrogLayers": 0.0, "HMC equal length": 0.0}
    model.sample(x, 2, seed=1)
    hmc.run(x, 2, seed=1)
    for i in range(args.cost_rounds):
        spent["LeapfrogLayers"] += model.sample(x, 50, seed=100 + i).cpu_s
        spent["HMC equal length"] += hmc.run(x, 50, seed=100 + i).cpu_s
    print(f"\ncost per trajectory, interleaved ({args.cost_rounds} × 50 trajectories each, {x.shape[0]} chains): "
          f"LeapfrogLayers {1e3 * spent['LeapfrogLayers'] / (50 * args.cost_rounds):.1f} ms, HMC of equal length "
          f"(N_LF {hmc.n_steps}) {1e3 * spent['HMC equal length'] / (50 * args.cost_rounds):.1f} ms: ratio "
          f"{spent['LeapfrogLayers'] / spent['HMC equal length']:.2f} (goal ≤ 1.5)")
    print(f"(benchmark CPU time {time.process_time() - cpu0:.0f} s)")
    if args.out:
        print(f"report: {E.write_report(r, args.out)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
