"""§4 of the LeapfrogLayers paper: a trained sampler against plain HMC and the exact 2D U(1) solution.

:func:`evaluate_run` is what ``tfphys-eval RUN`` runs for a ``leapfrog`` run; it writes
``report.md`` and the figures beside it:

==========================  =========================================================================
``chains.png``              Q_Z along a few chains, HMC vs trained (the paper's Figure 1 view)
``tau_vs_beta.png``         τ_int(Q_R) and τ_int(Q_Z) vs β, both samplers (Figure 4)
``tau_vs_length.png``       τ_int(Q_R) vs trajectory length N_LF·ε at the target β (Figure 5)
``trajectory.png``          Q_R, Q_Z and H − Σ log|J| along one trajectory (Figure 6)
``plaquette_trajectory.png``  ⟨cos x_P⟩ along one trajectory, with the exact value (Figure 7)
``training.png``            the run's training curve (acceptance, δQ_Z, ΔQ_R² per epoch)
==========================  =========================================================================

Both samplers run at the same β, lattice and trajectory length (HMC: ``N_LF`` steps of
``ε = Σ_k ε_k / N_LF``, the trained sampler's total), from the same thermalised configurations
(hot start + HMC trajectories with β ramped up to the target). Errors of ⟨cos x_P⟩, χ_Q and δQ_Z are the spread of the
independent chains' time averages (``std / √n_chains``); τ_int is
:func:`tfphys.leapfrog.autocorr.integrated_time` (unreliable estimates are flagged, not hidden).
The cost is measured: wall and process-CPU time per trajectory (after compilation), and effective
samples of Q_Z per CPU-second ``n_traj · n_chains / τ_int / CPU-s``.

Sizes come from the run's ``[eval]`` table (keys of :data:`DEFAULTS`); ``tfphys-eval RUN --set
eval.trajectories=N --set 'eval.betas=[2, 3, 4]'`` changes them for other scans.

:func:`compute` runs every sampler and returns a :class:`LeapfrogResults` (no file written);
:func:`write_report` writes ``report.md`` and the PNGs from it; :func:`evaluate_run` opens the run
(:mod:`tfphys.rundir`), computes, then reports.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tfphys.errors import TfphysError

DEFAULTS: dict[str, Any] = {
    "thermalise": 600,       # HMC trajectories from a hot start (β ramped up, see HMC.thermalise)
    "trajectories": 1000,    # measured trajectories per sampler at the target β
    "betas": [2.0, 3.0, 4.0, 5.0, 6.0, 7.0],  # Figure 4 scan (and the exact-plaquette check)
    "scan_trajectories": 300,
    "scan_thermalise": 300,
    "lengths": [5, 10, 20],  # Figure 5: HMC with N_LF ∈ lengths steps of the same ε
    "chains": None,          # default: the model's n_chains
}


@dataclass
class SamplerResult:
    """Summary of one sampling run (see the module docstring for the error bars)."""

    name: str
    beta: float
    n_leapfrog: int
    trajectory_length: float
    chains: Any  # tfphys.leapfrog.hmc.Chains
    volume: int
    tau: dict = field(default_factory=dict)

    def __post_init__(self):
        from tfphys.leapfrog.autocorr import integrated_time

        for key, series in (("charge_int", self.chains.charge_int), ("charge_real", self.chains.charge_real)):
            self.tau[key] = integrated_time(series, strict=False)

    def _mean_err(self, per_chain):
        per_chain = np.asarray(per_chain, np.float64)
        return float(per_chain.mean()), float(per_chain.std(ddof=1) / math.sqrt(len(per_chain)))

    @property
    def acceptance(self):
        return self._mean_err(self.chains.acceptance.mean(axis=0))

    @property
    def plaquette(self):
        return self._mean_err(self.chains.plaquette.mean(axis=0))

    @property
    def susceptibility(self):
        """``χ_Q = ⟨Q_Z²⟩ / V``."""
        return self._mean_err((self.chains.charge_int ** 2).mean(axis=0) / self.volume)

    @property
    def tunnelling(self):
        from tfphys.leapfrog.u1 import tunnelling_rate

        return self._mean_err(tunnelling_rate(self.chains.charge_int))

    @property
    def n_samples(self):
        return self.chains.charge_int.size

    @property
    def wall_per_traj_ms(self):
        return 1e3 * self.chains.wall_s / self.chains.n_trajectories

    @property
    def cpu_per_traj_ms(self):
        return 1e3 * self.chains.cpu_s / self.chains.n_trajectories

    def ess_per_cpu_s(self, key="charge_int"):
        tau = self.tau[key]
        return (self.n_samples / tau.tau) / self.chains.cpu_s if np.isfinite(tau.tau) else 0.0


def _settings(cfg, overrides=None):
    out = dict(DEFAULTS)
    out.update(cfg.get("eval", {}) or {})
    out.update({k: v for k, v in (overrides or {}).items() if v is not None})
    unknown = sorted(set(out) - set(DEFAULTS))
    if unknown:
        raise TfphysError(f"[eval] of leapfrog has unknown key(s) {', '.join(unknown)}; "
                          f"accepted: {', '.join(DEFAULTS)}")
    return out


def load_sampler(run_dir):
    """The trained :class:`~tfphys.leapfrog.sampler.LeapfrogSampler` of a run dir, opened by
    :func:`tfphys.rundir.open_run` (a bad run dir or ``model.keras`` is one :class:`TfphysError`)."""
    from tfphys import rundir
    from tfphys.leapfrog import sampler as leapfrog

    run = rundir.open_run(run_dir)
    model = run.load_model()
    if not isinstance(model, leapfrog.LeapfrogSampler):
        raise TfphysError(f"{run.model_path} is a {type(model).__name__}, not a LeapfrogLayers sampler")
    return model


def equal_length_hmc(model, beta, n_leapfrog=None):
    """Plain HMC with the trained sampler's trajectory length ``Σ_k ε_k`` (N_LF steps by default)."""
    from tfphys.leapfrog.hmc import HMC

    n = int(n_leapfrog or model.n_leapfrog)
    return HMC(beta, model.trajectory_length() / n, n)


def thermalised_start(model, beta, n_chains, n_trajectories, seed):
    """Hot start (uniform links) followed by ``n_trajectories`` equal-length HMC trajectories."""
    from tfphys.leapfrog import u1

    x = u1.random_links((n_chains, *model.link_shape), seed)
    return equal_length_hmc(model, beta).thermalise(x, n_trajectories, seed=seed)


def compare(model, beta, n_chains, thermalise, trajectories, seed, progress=True):
    """Trained sampler vs equal-length HMC at ``beta`` from the same thermalised links."""
    x0 = thermalised_start(model, beta, n_chains, thermalise, seed)
    volume = model.lattice_size ** 2
    hmc = equal_length_hmc(model, beta)
    h = hmc.run(x0, trajectories, seed=seed + 1, progress=progress, desc=f"HMC β={beta:g}")
    t = model.sample(x0, trajectories, beta=beta, seed=seed + 2, progress=progress,
                     desc=f"LeapfrogLayers β={beta:g}")
    length = model.trajectory_length()
    return (SamplerResult("HMC", beta, hmc.n_steps, length, h, volume),
            SamplerResult("LeapfrogLayers", beta, model.n_leapfrog, length, t, volume))


# ----------------------------------------------------------------------------------- figures
def _plot_chains(results, out):
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(results), 1, figsize=(8, 2.2 * len(results)), sharex=True)
    for ax, r in zip(np.atleast_1d(axes), results):
        ax.plot(r.chains.charge_int[:, :4], lw=0.8)
        ax.set_ylabel("$Q_\\mathbb{Z}$")
        ax.set_title(f"{r.name}, β = {r.beta:g}, τ_int(Q_Z) {r.tau['charge_int']}", fontsize=9)
    np.atleast_1d(axes)[-1].set_xlabel("trajectory")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def _plot_tau(xs, rows, xlabel, out, title):
    """``rows``: {label: [AutocorrTime, ...]} aligned with ``xs``; unreliable points hollow."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4))
    for (label, taus), marker in zip(rows.items(), "osD^v"):
        x = np.asarray(xs[label] if isinstance(xs, dict) else xs, float)
        tau = np.array([t.tau if np.isfinite(t.tau) else np.nan for t in taus])
        err = np.array([t.err if np.isfinite(t.err) else 0.0 for t in taus])
        ok = np.array([t.reliable for t in taus])
        line = ax.errorbar(x[ok], tau[ok], err[ok], marker=marker, ls="", capsize=3,
                           label=label if ok.any() else None)
        ax.plot(x[~ok], tau[~ok], marker=marker, ls="", mfc="none", color=line[0].get_color(),
                label=f"{label} (unreliable: lower bound)" if (~ok).any() else None)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("$\\tau_{int}$ [trajectories]")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def _plot_trace(traces, beta, lattice_size, out_traj, out_plaq):
    import matplotlib.pyplot as plt

    from tfphys.leapfrog import u1

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for label, tr in traces.items():
        axes[0].plot(tr["step"], (tr["charge_real"] - tr["charge_real"][0]).mean(1), label=label)
        axes[1].plot(tr["step"], np.abs(tr["charge_int"] - tr["charge_int"][0]).mean(1), label=label)
        axes[2].plot(tr["step"], (tr["h_minus_logdet"] - tr["h_minus_logdet"][0]).mean(1), label=label)
    for ax, name in zip(axes, ("$\\langle Q_\\mathbb{R} - Q_\\mathbb{R}^{(0)}\\rangle$",
                               "$\\langle|Q_\\mathbb{Z} - Q_\\mathbb{Z}^{(0)}|\\rangle$",
                               "$\\langle H - \\sum\\log|J|\\rangle - H_0$")):
        ax.set_xlabel("leapfrog step")
        ax.set_title(name, fontsize=10)
        ax.legend(fontsize=8)
    fig.suptitle(f"along one trajectory, β = {beta:g} (mean over chains)", fontsize=10)
    fig.tight_layout()
    fig.savefig(out_traj, dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, tr in traces.items():
        ax.plot(tr["step"], tr["plaquette"].mean(1), label=label)
    ax.axhline(u1.exact_plaquette(beta, lattice_size), color="k", ls="--", lw=0.8,
               label=f"exact, β = {beta:g}")
    ax.set_xlabel("leapfrog step")
    ax.set_ylabel("$\\langle\\cos x_P\\rangle$")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out_plaq, dpi=110)
    plt.close(fig)


# ----------------------------------------------------------------------------------- report
def _fmt(pair, digits=4):
    return f"{pair[0]:.{digits}f} ± {pair[1]:.{digits}f}"


def _table(results, lattice_size):
    from tfphys.leapfrog import u1

    exact = u1.exact_plaquette(results[0].beta, lattice_size)
    rows = ["| | " + " | ".join(r.name for r in results) + " |",
            "|---|" + "---|" * len(results)]

    def row(name, fn):
        rows.append(f"| {name} | " + " | ".join(fn(r) for r in results) + " |")

    row("trajectory: N_LF × ε", lambda r: f"{r.n_leapfrog} × {r.trajectory_length / r.n_leapfrog:.4f} "
        f"= {r.trajectory_length:.3f}" if r.name == "HMC" else f"{r.n_leapfrog} trained steps, Σε = "
        f"{r.trajectory_length:.3f}")
    row("acceptance", lambda r: _fmt(r.acceptance, 3))
    row(f"⟨cos x_P⟩ (exact {exact:.5f})",
        lambda r: f"{_fmt(r.plaquette, 5)} ({(r.plaquette[0] - exact) / r.plaquette[1]:+.1f}σ)")
    row("χ_Q = ⟨Q_Z²⟩/V", lambda r: _fmt(r.susceptibility, 5))
    row("tunnelling rate δQ_Z", lambda r: _fmt(r.tunnelling, 4))
    row("τ_int(Q_Z) [traj.]", lambda r: str(r.tau["charge_int"]))
    row("τ_int(Q_R) [traj.]", lambda r: str(r.tau["charge_real"]))
    row("wall time / trajectory", lambda r: f"{r.wall_per_traj_ms:.1f} ms")
    row("CPU time / trajectory", lambda r: f"{r.cpu_per_traj_ms:.1f} ms")
    row("ESS(Q_Z) per CPU-second", lambda r: f"{r.ess_per_cpu_s('charge_int'):.3g}")
    row("ESS(Q_R) per CPU-second", lambda r: f"{r.ess_per_cpu_s('charge_real'):.3g}")
    return rows


@dataclass
class LeapfrogResults:
    """Everything ``report.md`` and its figures show. Built by :func:`compute` (the sampling),
    written by :func:`write_report`; no file is touched in between."""

    #: the sizes used (keys of :data:`DEFAULTS`), the seed and where the sampler came from
    settings: dict[str, Any]
    seed: int
    source: str
    #: the sampler: target β, lattice size L (L × L), chains per sampler, N_LF, Σ ε_k, the ε_k
    beta: float
    lattice_size: int
    chains: int
    n_leapfrog: int
    trajectory_length: float
    step_sizes: np.ndarray
    #: (HMC, LeapfrogLayers) at the target β (:func:`compare`)
    main: tuple[SamplerResult, SamplerResult]
    #: Figure 4: β → (HMC, LeapfrogLayers)
    scan: dict[float, tuple[SamplerResult, SamplerResult]]
    #: Figure 5: HMC trajectory lengths N_LF·ε and their τ_int(Q_R); the trained sampler's τ_int(Q_R)
    lengths: list[float]
    hmc_tau: list[Any]
    trained_tau: list[Any]
    #: Figures 6–7: per sampler, the quantities along one trajectory (``LeapfrogSampler.trace``)
    traces: dict[str, dict[str, np.ndarray]]
    #: the lowest chain-averaged plaquette along the trained trajectory
    lowest_plaquette: float
    #: the run's training history (rows of ``history.csv``; empty: no training curve)
    history: list[dict[str, float]] = field(default_factory=list)

    @property
    def betas(self) -> list[float]:
        return sorted(self.scan)


def compute(model, *, settings=None, seed=0, progress=True, source="", history=()) -> LeapfrogResults:
    """The §4 comparison of a loaded sampler against HMC (every sampling run of the report)."""
    from tfphys.leapfrog.hmc import HMC
    from tfphys.leapfrog.sampler import LeapfrogSampler

    s = _settings({}, settings)
    chains = int(s["chains"] or model.n_chains)
    beta, size = model.beta, model.lattice_size

    main = compare(model, beta, chains, int(s["thermalise"]), int(s["trajectories"]), seed, progress)

    # Figure 4 (and the exact-plaquette check at several β)
    scan = {}
    for b in s["betas"]:
        scan[float(b)] = compare(model, float(b), chains, int(s["scan_thermalise"]),
                                 int(s["scan_trajectories"]), seed + int(100 * b), progress)

    # Figure 5: HMC at several trajectory lengths (same ε) vs the trained sampler
    eps = model.trajectory_length() / model.n_leapfrog
    x0 = main[0].chains.x  # thermalised at β by the main comparison
    lengths, hmc_tau = [], []
    for n in s["lengths"]:
        r = SamplerResult("HMC", beta, int(n), n * eps,
                          HMC(beta, eps, int(n)).run(x0, int(s["scan_trajectories"]), seed=seed + n,
                                                     progress=progress, desc=f"HMC N_LF={n}"),
                          size ** 2)
        lengths.append(n * eps)
        hmc_tau.append(r.tau["charge_real"])
    trained_tau = [scan[beta][1].tau["charge_real"]] if beta in scan else [main[1].tau["charge_real"]]

    # Figures 6-7: one trajectory, trained vs untrained (= HMC of the same length)
    hmc_like = LeapfrogSampler.from_config({**model.get_config(), "output_scale": 0.0,
                                            "step_size": eps, "n_chains": 1})
    x_trace = main[0].chains.x
    traces = {"LeapfrogLayers": model.trace(x_trace, seed=seed),
              "HMC (same length)": hmc_like.trace(x_trace, seed=seed)}
    lowest = traces["LeapfrogLayers"]["plaquette"].mean(1).min()
    return LeapfrogResults(
        settings=s, seed=seed, source=source, beta=beta, lattice_size=size, chains=chains,
        n_leapfrog=model.n_leapfrog, trajectory_length=model.trajectory_length(),
        step_sizes=model.step_sizes.numpy(), main=main, scan=scan, lengths=lengths, hmc_tau=hmc_tau,
        trained_tau=trained_tau, traces=traces, lowest_plaquette=lowest, history=list(history))


def write_figures(results: LeapfrogResults, out) -> None:
    """The PNGs of the report (see the module docstring) into ``out``."""
    r, out = results, Path(out)
    s, size, beta, betas, scan = r.settings, r.lattice_size, r.beta, r.betas, r.scan
    _plot_chains(r.main, out / "chains.png")
    _plot_tau(betas, {f"{name} Q_R": [scan[b][i].tau["charge_real"] for b in betas]
                      for i, name in enumerate(("HMC", "LeapfrogLayers"))}
              | {f"{name} Q_Z": [scan[b][i].tau["charge_int"] for b in betas]
                 for i, name in enumerate(("HMC", "LeapfrogLayers"))},
              "β", out / "tau_vs_beta.png",
              f"{size}×{size}, {r.chains} chains × {s['scan_trajectories']} trajectories; "
              f"sampler trained at β = {beta:g} only")
    _plot_tau({"HMC": r.lengths, "LeapfrogLayers": [r.trajectory_length]},
              {"HMC": r.hmc_tau, "LeapfrogLayers": r.trained_tau}, "trajectory length N_LF·ε",
              out / "tau_vs_length.png", f"τ_int(Q_R) at β = {beta:g}, {size}×{size}")
    _plot_trace(r.traces, beta, size, out / "trajectory.png", out / "plaquette_trajectory.png")
    if r.history:
        _plot_training(r.history, out / "training.png")


def markdown(results: LeapfrogResults) -> str:
    """The text of ``report.md``."""
    from tfphys.leapfrog import u1

    r = results
    s, seed, source, size, beta, chains = r.settings, r.seed, r.source, r.lattice_size, r.beta, r.chains
    scan, betas, mid = r.scan, r.betas, r.lowest_plaquette
    h, t = r.main
    lines = [
        "# LeapfrogLayers vs HMC — 2D U(1)",
        "",
        f"Sampler {source or 'in memory'}: {size}×{size} lattice, β = {beta:g}, {chains} chains, "
        f"{s['thermalise']} thermalisation + {s['trajectories']} measured trajectories each, seed {seed}. "
        f"Trained step sizes ε_k = {np.array2string(r.step_sizes, precision=4)}.",
        "",
        f"## Same β, lattice and trajectory length (β = {beta:g})",
        "",
        *_table(r.main, size),
        "",
        f"τ_int ratio trained/HMC: Q_Z {_ratio(t, h, 'charge_int')}, Q_R {_ratio(t, h, 'charge_real')} "
        "(goal ≤ 0.2); ESS(Q_Z)/CPU-s ratio "
        f"{_safe_div(t.ess_per_cpu_s(), h.ess_per_cpu_s())} (goal ≥ 1).",
        "τ_int marked ≳ is a lower bound: the run is shorter than 50 τ_int, or the charge never "
        "changed on some chain (frozen topology).",
        "",
        "![Q_Z along chains](chains.png)",
        "",
        "## τ_int vs β (Figure 4) and the exact plaquette at several β",
        "",
        "| β | exact ⟨cos x_P⟩ (finite V) | HMC ⟨cos x_P⟩ | pull | LeapfrogLayers ⟨cos x_P⟩ | pull | "
        "HMC acc. | LF acc. | HMC τ(Q_R) | LF τ(Q_R) | HMC τ(Q_Z) | LF τ(Q_Z) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for b in betas:
        hb, tb = scan[b]
        exact = u1.exact_plaquette(b, size)
        lines.append(
            f"| {b:g} | {exact:.5f} | {_fmt(hb.plaquette, 5)} | {(hb.plaquette[0] - exact) / hb.plaquette[1]:+.1f}σ"
            f" | {_fmt(tb.plaquette, 5)} | {(tb.plaquette[0] - exact) / tb.plaquette[1]:+.1f}σ"
            f" | {hb.acceptance[0]:.3f} | {tb.acceptance[0]:.3f} | {hb.tau['charge_real']}"
            f" | {tb.tau['charge_real']} | {hb.tau['charge_int']} | {tb.tau['charge_int']} |")
    lines += [
        "",
        f"The sampler was trained at β = {beta:g} only; at other β it runs with the same networks "
        "(its force input ∂S scales with β). Its ⟨cos x_P⟩ agreeing with the exact value at every β is "
        "the check that the Metropolis–Hastings test with the accumulated log-Jacobian is exact.",
        "",
        "![tau vs beta](tau_vs_beta.png)",
        "",
        "## τ_int vs trajectory length (Figure 5)",
        "",
        "| sampler | N_LF·ε | τ_int(Q_R) |",
        "|---|---|---|",
        *[f"| HMC N_LF={n} | {length:.3f} | {tau} |" for n, length, tau in zip(s["lengths"], r.lengths, r.hmc_tau)],
        f"| LeapfrogLayers | {r.trajectory_length:.3f} | {r.trained_tau[0]} |",
        "",
        "![tau vs length](tau_vs_length.png)",
        "",
        "## Along one trajectory (Figures 6 and 7)",
        "",
        f"Lowest chain-averaged plaquette along the trained trajectory: {mid:.4f}, the infinite-volume "
        f"value at β ≈ {u1.beta_with_plaquette(mid):.2f} (the paper's \"effective coupling\" reading).",
        "",
        "![trajectory](trajectory.png)",
        "",
        "![plaquette along the trajectory](plaquette_trajectory.png)",
        "",
    ]
    text = "\n".join(lines)
    if r.history:
        text += "\n".join(_training_table(r.history)) + "\n"
    return text


def write_report(results: LeapfrogResults, out_dir) -> Path:
    """``report.md`` and its PNGs into ``out_dir``; returns the report's path."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    write_figures(results, out)
    report = out / "report.md"
    report.write_text(markdown(results))
    return report


def evaluate(model, out_dir, *, settings=None, seed=0, progress=True, source="") -> Path:
    """Run the §4 comparison for a loaded sampler; write ``out_dir/report.md`` + PNGs."""
    return write_report(compute(model, settings=settings, seed=seed, progress=progress, source=source), out_dir)


def _safe_div(a, b):
    return f"{a / b:.3g}" if b and np.isfinite(a / b) else "n/a"


def _ratio(t, h, key):
    a, b = t.tau[key], h.tau[key]
    text = _safe_div(a.tau, b.tau)
    return text if a.reliable and b.reliable else f"{text} (unreliable)"


def evaluate_run(run_dir, cfg, out_dir, data=None, seed=0, overrides=None) -> Path:
    """``tfphys-eval RUN`` for a leapfrog run (see the module docstring): open the run, compute, report.

    The sizes are the run config's ``[eval]`` table (``tfphys-eval --set eval.KEY=VALUE`` changes
    them there), then ``overrides`` (keys of :data:`DEFAULTS`; ``None`` values ignored).
    """
    from tfphys.training import read_history

    if data is not None:
        raise TfphysError("leapfrog evaluation reads no data file: it samples its own configurations")
    settings = _settings(cfg, overrides)
    model = load_sampler(run_dir)
    results = compute(model, settings=settings, seed=seed, source=str(run_dir),
                      history=read_history(Path(run_dir) / "history.csv"))
    return write_report(results, out_dir)


def _plot_training(rows, out):
    """The run's training curve (acceptance, δQ_Z, ΔQ_R² per epoch)."""
    import matplotlib.pyplot as plt

    epochs = [r["epoch"] for r in rows]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for key, label in (("acceptance", "train"), ("val_acceptance", "validation (target β)")):
        axes[0].plot(epochs, [r.get(key, np.nan) for r in rows], label=label)
    for key, label in (("dq_int", "train"), ("val_dq_int", "validation (target β)")):
        axes[1].plot(epochs, [r.get(key, np.nan) for r in rows], label=label)
    for key, label in (("dq_real_sq", "train"), ("val_dq_real_sq", "validation (target β)")):
        axes[2].plot(epochs, [r.get(key, np.nan) for r in rows], label=label)
    for ax, title in zip(axes, ("acceptance A", "tunnelling rate δQ_Z", "⟨(Q*_R − Q_R)²⟩")):
        ax.set_xlabel("epoch")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
    axes[1].set_yscale("symlog", linthresh=1e-3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def _training_table(rows):
    """The run's history (β_t, acceptance, tunnelling, Eq. 15 loss per epoch) as Markdown lines."""
    lines = ["## Training curve", "",
             "| epoch | β_t | acceptance | δQ_Z | ⟨ΔQ_R²⟩ | val acceptance | val δQ_Z | val loss (Eq. 15) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['epoch']:.0f} | {r.get('beta', np.nan):.3f} | {r.get('acceptance', np.nan):.3f} "
                     f"| {r.get('dq_int', np.nan):.4f} | {r.get('dq_real_sq', np.nan):.4f} "
                     f"| {r.get('val_acceptance', np.nan):.3f} | {r.get('val_dq_int', np.nan):.4f} "
                     f"| {r.get('val_loss', np.nan):.5f} |")
    return lines + ["", "![training](training.png)", ""]
