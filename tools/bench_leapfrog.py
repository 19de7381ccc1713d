"""LeapfrogLayers vs plain HMC on 2D U(1), and both against the exact solution.

    python tools/bench_leapfrog.py RUN [--trajectories 1000] [--chains 64] [--betas 2 3 4 5 6 7]
    python tools/bench_leapfrog.py --hmc-only --size 16 --beta 6 --betas 1 2 3 4 6

With a trained run dir (``tfphys-train leapfrog``): at the sampler's β, lattice and trajectory
length, prints acceptance, τ_int(Q_Z), τ_int(Q_R), wall/CPU time per trajectory and effective
samples of Q per CPU-second side by side, then the goal ratios of issue 8. For every β in
``--betas``: ⟨cos x_P⟩ of both samplers vs the exact finite-volume value (pull in σ).
``--hmc-only``: the exact-solution check for plain HMC alone (no trained model needed).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _row(cells, widths):
    return "  ".join(f"{c:<{w}}" for c, w in zip(cells, widths))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("run", nargs="?", help="a tfphys-train leapfrog run dir")
    p.add_argument("--hmc-only", action="store_true")
    p.add_argument("--size", type=int, default=16, help="--hmc-only: lattice size L")
    p.add_argument("--beta", type=float, default=6.0, help="--hmc-only: β of the τ_int comparison")
    p.add_argument("--step-size", type=float, default=0.1, help="--hmc-only: ε")
    p.add_argument("--n-leapfrog", type=int, default=10, help="--hmc-only: N_LF")
    p.add_argument("--trajectories", type=int, default=1000)
    p.add_argument("--thermalise", type=int, default=600)
    p.add_argument("--chains", type=int, default=64)
    p.add_argument("--betas", type=float, nargs="*", default=[2.0, 3.0, 4.0, 6.0])
    p.add_argument("--scan-trajectories", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if not args.hmc_only and not args.run:
        p.error("give a run dir or --hmc-only")

    from tfphys.cli import _import_tensorflow_quietly

    _import_tensorflow_quietly()
    import numpy as np

    from tfphys.leapfrog import u1
    from tfphys.leapfrog.evaluate import SamplerResult, compare, load_sampler
    from tfphys.leapfrog.hmc import HMC

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}")

    def hmc_pair(beta, n_traj, therm, seed):
        sampler = HMC(beta, args.step_size, args.n_leapfrog)
        x = sampler.thermalise(u1.random_links((args.chains, args.size, args.size, 2), seed), therm, seed)
        chains = sampler.run(x, n_traj, seed=seed + 1, progress=True, desc=f"HMC β={beta:g}")
        return (SamplerResult("HMC", beta, args.n_leapfrog, args.n_leapfrog * args.step_size, chains,
                              args.size ** 2),)

    if args.hmc_only:
        size = args.size
        main_pair = hmc_pair(args.beta, args.trajectories, args.thermalise, args.seed)
        scan = {b: hmc_pair(b, args.scan_trajectories, args.thermalise, args.seed + int(10 * b))
                for b in args.betas}
    else:
        model = load_sampler(args.run)
        size = model.lattice_size
        main_pair = compare(model, model.beta, args.chains, args.thermalise, args.trajectories, args.seed)
        scan = {b: compare(model, b, args.chains, args.thermalise, args.scan_trajectories,
                           args.seed + int(10 * b)) for b in args.betas}

    beta = main_pair[0].beta
    print(f"\n{size}×{size}, β = {beta:g}, {args.chains} chains × {args.trajectories} trajectories "
          f"(after {args.thermalise} HMC thermalisation), trajectory length "
          f"{main_pair[0].trajectory_length:.3f}")
    widths = (26, *(22,) * len(main_pair))
    print(_row(["", *(r.name for r in main_pair)], widths))
    for label, fn in (
        ("acceptance", lambda r: f"{r.acceptance[0]:.3f}"),
        ("⟨cos x_P⟩", lambda r: f"{r.plaquette[0]:.5f}±{r.plaquette[1]:.5f}"),
        ("tunnelling rate δQ_Z", lambda r: f"{r.tunnelling[0]:.4f}±{r.tunnelling[1]:.4f}"),
        ("χ_Q = ⟨Q²⟩/V", lambda r: f"{r.susceptibility[0]:.5f}±{r.susceptibility[1]:.5f}"),
        ("τ_int(Q_Z)", lambda r: str(r.tau["charge_int"])),
        ("τ_int(Q_R)", lambda r: str(r.tau["charge_real"])),
        ("wall ms / trajectory", lambda r: f"{r.wall_per_traj_ms:.1f}"),
        ("CPU ms / trajectory", lambda r: f"{r.cpu_per_traj_ms:.1f}"),
        ("ESS(Q_Z) / CPU-s", lambda r: f"{r.ess_per_cpu_s('charge_int'):.3g}"),
        ("ESS(Q_R) / CPU-s", lambda r: f"{r.ess_per_cpu_s('charge_real'):.3g}"),
    ):
        print(_row([label, *(fn(r) for r in main_pair)], widths))
    if len(main_pair) == 2:
        h, t = main_pair
        ratio = t.tau["charge_int"].tau / h.tau["charge_int"].tau
        ess = t.ess_per_cpu_s() / h.ess_per_cpu_s() if h.ess_per_cpu_s() else float("nan")
        flag = "" if t.tau["charge_int"].reliable and h.tau["charge_int"].reliable else " (unreliable τ)"
        print(f"goal: τ_int(Q_Z) trained/HMC = {ratio:.3g}{flag} (≤ 0.2?), "
              f"ESS(Q_Z)/CPU-s trained/HMC = {ess:.3g} (≥ 1?)")

    print(f"\nexact check, {size}×{size}, {args.chains} chains × {args.scan_trajectories} trajectories:")
    widths = (6, 10, *(24,) * len(main_pair))
    print(_row(["β", "exact", *(f"{r.name} ⟨cos x_P⟩ (pull)" for r in main_pair)], widths))
    for b, results in scan.items():
        exact = u1.exact_plaquette(b, size)
        cells = [f"{r.plaquette[0]:.5f}±{r.plaquette[1]:.5f} ({(r.plaquette[0] - exact) / r.plaquette[1]:+.1f}σ)"
                 for r in results]
        print(_row([f"{b:g}", f"{exact:.5f}", *cells], widths))
    pull = max(abs((r.plaquette[0] - u1.exact_plaquette(b, size)) / r.plaquette[1])
               for b, rs in scan.items() for r in rs)
    print(f"(infinite volume I₁/I₀ at the same β: "
          f"{', '.join(f'{u1.exact_plaquette_infinite(b):.5f}' for b in scan)}; max |pull| {pull:.1f})")
    return 0 if np.isfinite(main_pair[0].plaquette[0]) else 1


if __name__ == "__main__":
    raise SystemExit(main())
