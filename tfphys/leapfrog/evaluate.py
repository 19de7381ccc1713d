"""§4 of the LeapfrogLayers paper, measured honestly: a trained sampler against its untrained
starting point, HMC of equal trajectory length and the best-tuned HMC, per CPU-second, and all of
them against the exact 2D U(1) solution.

:func:`evaluate_run` is what ``tfphys-eval RUN`` runs for a ``leapfrog`` run (and
``tools/bench_leapfrog.py`` prints the same numbers); it writes ``report.md`` and the figures beside it:

==========================  =========================================================================
``chains.png``              Q_Z along a few chains: trained, untrained start, HMC (Figure 1 view)
``tau_vs_beta.png``         τ_int(Q_Z) vs β of those three (Figure 4); bounds drawn hollow
``tau_vs_length.png``       τ_int(Q_Z) vs trajectory length: the HMC scan and the trained sampler (Figure 5)
``trajectory.png``          Q_R, Q_Z and H − Σ log|J| along one trajectory (Figure 6)
``plaquette_trajectory.png``  ⟨cos x_P⟩ along one trajectory, with the exact value (Figure 7)
``training.png``            the run's training curve (acceptance, δQ_Z, ΔQ_R² per epoch)
==========================  =========================================================================

The rules (issue 17): every sampler at a β starts from the same thermalised links (hot start +
HMC trajectories with β ramped up) and runs until the run is at least ``TOL = 50`` τ_int(Q_Z)
long with every chain's charge changed (:func:`run_until_reliable`), up to a cap of trajectories
and CPU-seconds; a capped run gives τ_int as a lower bound (``≳``) and ESS per CPU-second as an
upper bound (``≤``), and no ratio is formed from a bound (:func:`goal_text` says when a bound
still decides a goal). τ_int is :func:`tfphys.leapfrog.autocorr.integrated_time` (chain-averaged
FFT autocorrelation, Sokal window; error from the spread of the independent chains' estimates);
⟨cos x_P⟩ and ⟨Q_Z²⟩ have errors from the spread of the chains' time averages and are compared with
the exact finite-torus values (:func:`tfphys.leapfrog.u1.exact_plaquette`,
:func:`~tfphys.leapfrog.u1.exact_charge_squared`). The figure of merit is ESS(Q_Z) per CPU-second
of sampling (``time.process_time``, after compilation), beside τ_int per trajectory; the training's
CPU time (``train_cpu_s`` in ``history.csv``) is reported apart, with the break-even number of
effective samples. Baselines: HMC with the trained sampler's N_LF and Σε, a scan ε ×
N_LF (``[eval] hmc_step_sizes × lengths``; the best ESS/CPU-s is the best-tuned HMC), and the
sampler's untrained starting point (:meth:`~tfphys.leapfrog.sampler.LeapfrogSampler.untrained`).

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

from tfphys import atomic
from tfphys.errors import TfphysError
from tfphys.reports import savefig

DEFAULTS: dict[str, Any] = {
    "thermalise": 600,       # HMC trajectories from a hot start (β ramped up, see HMC.thermalise)
    "trajectories": 1000,    # measured trajectories per sampler at the target β, at least ...
    "max_trajectories": None,  # ... extended until the run is ≥ 50 τ_int(Q_Z), up to this many (None: 20×) ...
    "max_cpu_s": None,       # ... or this many CPU-seconds of sampling per sampler (None: no limit)
    "betas": [2.0, 3.0, 4.0, 5.0, 6.0, 7.0],  # Figure 4 scan (and the exact checks)
    "scan_trajectories": 300,  # the same three sizes for every sampler at every β of the scan
    "scan_max_trajectories": None,
    "scan_max_cpu_s": None,
    "scan_thermalise": 300,
    "lengths": [10, 20, 40],  # best-tuned HMC: a scan of N_LF ∈ lengths × ε ∈ hmc_step_sizes
    "hmc_step_sizes": [0.1, 0.125],
    "chains": None,          # chains per sampler (None: the model's n_chains)
}

#: a run is long enough for τ_int when it is at least TOL τ_int long (emcee's and Sokal's rule)
TOL = 50.0


@dataclass
class SamplerResult:
    """One sampler at one β, run until ``TOL τ_int(Q_Z)`` long or a cap (see the module docstring).

    ``τ`` comes from :func:`tfphys.leapfrog.autocorr.integrated_time` (chain-averaged ACF; error
    from the spread of the independent chains' estimates); a run shorter than ``TOL τ`` gives a
    lower bound on τ (``reliable`` False), hence an upper bound on the effective samples per
    CPU-second, and no ratio is formed from it.
    """

    name: str
    beta: float
    n_leapfrog: int
    trajectory_length: float
    chains: Any  # tfphys.leapfrog.hmc.Chains
    volume: int
    lattice_size: int = 0
    tau: dict = field(default_factory=dict)

    def __post_init__(self):
        from tfphys.leapfrog.autocorr import integrated_time

        for key, series in (("charge_int", self.chains.charge_int), ("charge_real", self.chains.charge_real)):
            self.tau[key] = integrated_time(series, strict=False, tol=TOL)
        if not self.lattice_size:
            self.lattice_size = int(round(math.sqrt(self.volume)))

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
    def charge_squared(self):
        """``⟨Q_Z²⟩`` (the chains' time averages; error from their spread)."""
        return self._mean_err((self.chains.charge_int ** 2).mean(axis=0))

    @property
    def susceptibility(self):
        """``χ_Q = ⟨Q_Z²⟩ / V``."""
        q2, err = self.charge_squared
        return q2 / self.volume, err / self.volume

    def pulls(self):
        """``(⟨cos x_P⟩ pull, ⟨Q_Z²⟩ pull)`` in σ against the exact finite-torus values."""
        from tfphys.leapfrog import u1

        (p, pe), (q, qe) = self.plaquette, self.charge_squared
        exact_p = u1.exact_plaquette(self.beta, self.lattice_size)
        exact_q = u1.exact_charge_squared(self.beta, self.lattice_size)
        return (p - exact_p) / pe if pe > 0 else np.inf, (q - exact_q) / qe if qe > 0 else np.inf

    @property
    def tunnelling(self):
        from tfphys.leapfrog.u1 import tunnelling_rate

        return self._mean_err(tunnelling_rate(self.chains.charge_int))

    @property
    def n_samples(self):
        return self.chains.charge_int.size

    @property
    def reliable(self):
        return self.tau["charge_int"].reliable

    @property
    def wall_per_traj_ms(self):
        return 1e3 * self.chains.wall_s / self.chains.n_trajectories

    @property
    def cpu_per_traj_ms(self):
        return 1e3 * self.chains.cpu_s / self.chains.n_trajectories

    def ess_per_cpu_s(self, key="charge_int"):
        """Effective samples per CPU-second of sampling, ``n_traj · n_chains / τ_int / CPU-s`` (an
        upper bound when τ is a lower bound; 0 when the charge never moved)."""
        tau = self.tau[key]
        return (self.n_samples / tau.tau) / self.chains.cpu_s if np.isfinite(tau.tau) else 0.0

    def ess_error(self, key="charge_int"):
        tau = self.tau[key]
        return self.ess_per_cpu_s(key) * tau.err / tau.tau if np.isfinite(tau.tau) and np.isfinite(tau.err) else np.nan

    def tau_text(self, key="charge_int"):
        tau = self.tau[key]
        if not np.isfinite(tau.tau):
            return f"≫ {self.chains.n_trajectories}"
        return f"{tau.tau:.3g} ± {tau.err:.2g}" if tau.reliable else f"≳ {tau.tau:.3g}"

    def ess_text(self, key="charge_int"):
        r = self.ess_per_cpu_s(key)
        return f"{r:.3g} ± {self.ess_error(key):.2g}" if self.tau[key].reliable else f"≤ {r:.3g}"


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
    """Plain HMC with the trained sampler's trajectory length ``Σ_k ε^x_k`` (N_LF steps by default)."""
    from tfphys.leapfrog.hmc import HMC

    n = int(n_leapfrog or model.n_leapfrog)
    return HMC(beta, model.trajectory_length() / n, n)


def thermalised_start(model, beta, n_chains, n_trajectories, seed):
    """Hot start (uniform links) followed by ``n_trajectories`` equal-length HMC trajectories
    (β ramped up from 2, :meth:`~tfphys.leapfrog.hmc.HMC.thermalise`)."""
    from tfphys.leapfrog import u1

    x = u1.random_links((n_chains, *model.link_shape), seed)
    return equal_length_hmc(model, beta).thermalise(x, n_trajectories, seed=seed)


def concat_chains(parts):
    """One :class:`~tfphys.leapfrog.hmc.Chains` from consecutive runs of the same chains."""
    from tfphys.leapfrog.hmc import Chains

    return Chains(*(np.concatenate([getattr(p, k) for p in parts]) for k in
                    ("charge_int", "charge_real", "plaquette", "acceptance")),
                  sum(p.wall_s for p in parts), sum(p.cpu_s for p in parts), parts[-1].x)


def run_until_reliable(run, x0, *, min_trajectories, max_trajectories, max_cpu_s, seed):
    """Run ``run(x, n, seed) → Chains`` from ``x0`` until the run is ``TOL τ_int(Q_Z)`` long
    (every chain's charge having changed), or ``max_trajectories`` / ``max_cpu_s`` CPU-seconds of
    sampling are spent; returns the concatenated :class:`~tfphys.leapfrog.hmc.Chains`."""
    from tfphys.leapfrog.autocorr import integrated_time

    parts, n, x, chunk = [], 0, x0, int(min_trajectories)
    while True:
        part = run(x, chunk, seed + 7919 * len(parts))
        parts.append(part)
        n, x = n + chunk, part.x
        chains = parts[0] if len(parts) == 1 else concat_chains(parts)
        tau = integrated_time(chains.charge_int, strict=False, tol=TOL)
        cpu_per_traj = chains.cpu_s / n
        if tau.reliable or n >= max_trajectories or chains.cpu_s >= max_cpu_s:
            return chains
        wanted = int(1.15 * TOL * tau.tau) - n if np.isfinite(tau.tau) else n
        chunk = max(n // 4, min(max(wanted, n // 4), 3 * n))  # grow at most 4× per round
        chunk = min(chunk, max_trajectories - n)
        if math.isfinite(max_cpu_s):
            chunk = min(chunk, int(max(0.0, max_cpu_s - chains.cpu_s) / max(cpu_per_traj, 1e-9)) + 1)
        if chunk < 1:
            return chains


def _measure(name, sampler_run, beta, n_leapfrog, length, x0, size, sizes, seed):
    chains = run_until_reliable(sampler_run, x0, seed=seed, **sizes)
    return SamplerResult(name, beta, n_leapfrog, length, chains, size ** 2, size)


def samplers_at(model, beta, x0, sizes, seed, *, untrained=None, hmc_scan=(), progress=False):
    """Every sampler at ``beta`` from the same thermalised links ``x0``: the trained one, its
    untrained starting point, HMC of equal trajectory length and the HMC scan
    (``hmc_scan``: ``(ε, N_LF)`` pairs). Returns ``{name: SamplerResult}``."""
    from tfphys.leapfrog.hmc import HMC

    size, out = model.lattice_size, {}

    def sampler_runner(m, label):
        return lambda x, n, s: m.sample(x, n, beta=beta, seed=s, progress=progress, desc=f"{label} β={beta:g}")

    def hmc_runner(h, label):
        return lambda x, n, s: h.run(x, n, seed=s, progress=progress, desc=f"{label} β={beta:g}")

    length = model.trajectory_length()
    out["LeapfrogLayers"] = _measure("LeapfrogLayers", sampler_runner(model, "trained"), beta, model.n_leapfrog,
                                     length, x0, size, sizes, seed + 1)
    if untrained is not None:
        out["untrained start"] = _measure("untrained start", sampler_runner(untrained, "untrained"), beta,
                                          untrained.n_leapfrog, untrained.trajectory_length(), x0, size, sizes,
                                          seed + 2)
    h = equal_length_hmc(model, beta)
    out["HMC equal length"] = _measure("HMC equal length", hmc_runner(h, "HMC"), beta, h.n_steps, length, x0, size,
                                       sizes, seed + 3)
    for i, (eps, n) in enumerate(hmc_scan):
        name = f"HMC ε={eps:g} N={n}"
        out[name] = _measure(name, hmc_runner(HMC(beta, eps, n), name), beta, n, eps * n, x0, size, sizes,
                             seed + 10 + i)
    return out


def best_hmc(results):
    """The HMC run with the highest ESS(Q_Z) per CPU-second (bounds compared as their values)."""
    hmcs = [r for name, r in results.items() if name.startswith("HMC")]
    return max(hmcs, key=lambda r: r.ess_per_cpu_s())


def goal_text(trained, other, what, factor):
    """``trained`` against ``other`` on τ_int(Q_Z) (``what = "tau"``: τ_tr ≤ factor·τ_other) or on
    ESS(Q_Z)/CPU-s (``"ess"``: r_tr ≥ factor·r_other): the ratio when both are measured; when
    ``other`` is a bound, whether the bound decides the goal (no ratio printed); else undecided."""
    if what == "tau":
        a, b = trained.tau["charge_int"], other.tau["charge_int"]
        if a.reliable and b.reliable:
            ratio = a.tau / b.tau
            return f"{ratio:.3g} (goal ≤ {factor:g}: {'met' if ratio <= factor else 'not met'})", ratio <= factor
        if a.reliable and np.isfinite(a.tau) and (not np.isfinite(b.tau) or a.tau <= factor * b.tau):
            return (f"no ratio (τ {other.tau_text()} is a lower bound); τ_trained {trained.tau_text()} ≤ {factor:g} × "
                    "that bound, so the goal is met"), True
        return f"undecided (τ: {trained.tau_text()} vs {other.tau_text()})", None
    ra, rb = trained.ess_per_cpu_s(), other.ess_per_cpu_s()
    if trained.reliable and other.reliable:
        ratio = ra / rb if rb > 0 else np.inf
        return f"{ratio:.3g} (goal ≥ {factor:g}: {'met' if ratio >= factor else 'not met'})", ratio >= factor
    if trained.reliable and ra >= factor * rb:
        return (f"no ratio ({other.ess_text()} is an upper bound); {trained.ess_text()} ≥ {factor:g} × that bound, "
                "so the goal is met"), True
    return f"undecided (ESS/CPU-s: {trained.ess_text()} vs {other.ess_text()})", None


def break_even(train_cpu_s, trained, baseline):
    """Effective samples of Q_Z after which training paid for itself against ``baseline``:
    ``T_train / (1/r_baseline − 1/r_trained)``; text (``≲`` when ``baseline`` is a bound)."""
    rt, rb = trained.ess_per_cpu_s(), baseline.ess_per_cpu_s()
    if not train_cpu_s or not trained.reliable or rt <= 0:
        return "n/a"
    if rb <= 0:
        return "0 (the baseline never moved the charge)"
    if rt <= rb:
        return "never (the trained sampler is not faster" + (")" if baseline.reliable else ", on a bound)")
    n = train_cpu_s / (1.0 / rb - 1.0 / rt)
    return f"{n:.3g}" if baseline.reliable else f"≲ {n:.3g}"


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
    savefig(fig, out, dpi=110)


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
    savefig(fig, out, dpi=110)


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
    savefig(fig, out_traj, dpi=110)

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, tr in traces.items():
        ax.plot(tr["step"], tr["plaquette"].mean(1), label=label)
    ax.axhline(u1.exact_plaquette(beta, lattice_size), color="k", ls="--", lw=0.8,
               label=f"exact, β = {beta:g}")
    ax.set_xlabel("leapfrog step")
    ax.set_ylabel("$\\langle\\cos x_P\\rangle$")
    ax.legend(fontsize=8)
    fig.tight_layout()
    savefig(fig, out_plaq, dpi=110)


# ----------------------------------------------------------------------------------- report
def _fmt(pair, digits=4):
    return f"{pair[0]:.{digits}f} ± {pair[1]:.{digits}f}"


def _table(results):
    """Markdown rows: one column per sampler (``results``: a list of :class:`SamplerResult` at one β)."""
    from tfphys.leapfrog import u1

    r0 = results[0]
    exact_p = u1.exact_plaquette(r0.beta, r0.lattice_size)
    exact_q = u1.exact_charge_squared(r0.beta, r0.lattice_size)
    rows = ["| | " + " | ".join(r.name for r in results) + " |", "|---|" + "---|" * len(results)]

    def row(name, fn):
        rows.append(f"| {name} | " + " | ".join(fn(r) for r in results) + " |")

    row("trajectory: N_LF, Σε", lambda r: f"{r.n_leapfrog}, {r.trajectory_length:.3f}")
    row("acceptance", lambda r: _fmt(r.acceptance, 3))
    row(f"⟨cos x_P⟩ (exact {exact_p:.5f})", lambda r: f"{_fmt(r.plaquette, 5)} ({r.pulls()[0]:+.1f}σ)")
    row(f"⟨Q_Z²⟩ (exact {exact_q:.4f})", lambda r: f"{_fmt(r.charge_squared, 3)} ({r.pulls()[1]:+.1f}σ)")
    row("tunnelling rate δQ_Z", lambda r: _fmt(r.tunnelling, 4))
    row("τ_int(Q_Z) [traj.]", lambda r: r.tau_text("charge_int"))
    row("τ_int(Q_R) [traj.]", lambda r: r.tau_text("charge_real"))
    row("trajectories × chains", lambda r: f"{r.chains.n_trajectories} × {r.chains.charge_int.shape[1]}")
    row("CPU ms / trajectory (all chains)", lambda r: f"{r.cpu_per_traj_ms:.1f}")
    row("ESS(Q_Z) per CPU-second", lambda r: r.ess_text("charge_int"))
    return rows


@dataclass
class LeapfrogResults:
    """Everything ``report.md`` and its figures show. Built by :func:`compute` (the sampling),
    written by :func:`write_report`; no file is touched in between."""

    #: the sizes used (keys of :data:`DEFAULTS`), the seed and where the sampler came from
    settings: dict[str, Any]
    seed: int
    source: str
    #: the sampler: target β, lattice size L (L × L), chains per sampler, N_LF, Σ ε^x_k, the ε_k
    beta: float
    lattice_size: int
    chains: int
    n_leapfrog: int
    trajectory_length: float
    step_sizes: np.ndarray
    momentum_step_sizes: np.ndarray
    #: per step, ε^v s/2 of the momentum updates (a) and (d) (the heating schedule)
    heating: np.ndarray
    #: at the target β: name → SamplerResult (trained, untrained start, HMC equal length, HMC scan)
    main: dict[str, SamplerResult]
    #: Figure 4: β → {name: SamplerResult} (trained, untrained start, HMC equal length)
    scan: dict[float, dict[str, SamplerResult]]
    #: Figures 6–7: per sampler, the quantities along one trajectory (``LeapfrogSampler.trace``)
    traces: dict[str, dict[str, np.ndarray]]
    #: the lowest chain-averaged plaquette along the trained trajectory
    lowest_plaquette: float
    #: the run's training history (rows of ``history.csv``; empty: no training curve)
    history: list[dict[str, float]] = field(default_factory=list)
    #: process CPU seconds the training took (None: unknown)
    train_cpu_s: float | None = None

    @property
    def betas(self) -> list[float]:
        return sorted(self.scan)

    @property
    def best_hmc(self) -> SamplerResult:
        return best_hmc(self.main)

    def goals(self):
        """``[(goal, text, met or None)]`` of issue 17 at the target β."""
        t, main = self.main["LeapfrogLayers"], self.main
        out = [("τ_int(Q_Z) trained / HMC of equal length ≤ 0.25",
                *goal_text(t, main["HMC equal length"], "tau", 0.25)),
               (f"ESS(Q_Z)/CPU-s trained / best-tuned HMC ({self.best_hmc.name}) ≥ 3",
                *goal_text(t, self.best_hmc, "ess", 3.0))]
        if "untrained start" in main:
            out.append(("ESS(Q_Z)/CPU-s trained / untrained start ≥ 1.3",
                        *goal_text(t, main["untrained start"], "ess", 1.3)))
        pulls = [abs(p) for res in [main, *self.scan.values()] for r in res.values() for p in r.pulls()]
        worst = max(pulls) if pulls else 0.0
        out.append(("⟨cos x_P⟩ and ⟨Q_Z²⟩ within 3σ of exact, every sampler and β",
                    f"largest |pull| {worst:.1f}σ", worst <= 3.0))
        return out

    def break_even(self):
        """Text: effective samples after which the training paid for itself, against the best HMC
        and against the untrained start."""
        t = self.main["LeapfrogLayers"]
        out = {"best-tuned HMC": break_even(self.train_cpu_s, t, self.best_hmc)}
        if "untrained start" in self.main:
            out["untrained start"] = break_even(self.train_cpu_s, t, self.main["untrained start"])
        return out


def _sizes(s, prefix=""):
    low, high, cpu = s[f"{prefix}trajectories"], s[f"{prefix}max_trajectories"], s[f"{prefix}max_cpu_s"]
    return {"min_trajectories": int(low), "max_trajectories": int(high) if high else 20 * int(low),
            "max_cpu_s": float(cpu) if cpu else math.inf}


def compute(model, *, settings=None, seed=0, progress=True, source="", history=(),
            train_cpu_s=None) -> LeapfrogResults:
    """Every sampling run of the report: at the target β the trained sampler, its untrained
    starting point, HMC of equal length and the HMC scan (best-tuned HMC); at every β of the
    scan the first three; one trajectory of each for Figures 6–7."""
    from tfphys.leapfrog.sampler import LeapfrogSampler

    s = _settings({}, settings)
    chains = int(s["chains"] or model.n_chains)
    beta, size = model.beta, model.lattice_size
    untrained = model.untrained()
    hmc_scan = [(float(eps), int(n)) for eps in s["hmc_step_sizes"] for n in s["lengths"]]

    x0 = thermalised_start(model, beta, chains, int(s["thermalise"]), seed)
    main = samplers_at(model, beta, x0, _sizes(s), seed, untrained=untrained, hmc_scan=hmc_scan, progress=progress)
    scan = {}
    for b in s["betas"]:
        b = float(b)
        if b == beta:
            scan[b] = {k: main[k] for k in ("LeapfrogLayers", "untrained start", "HMC equal length")}
            continue
        xb = thermalised_start(model, b, chains, int(s["scan_thermalise"]), seed + int(100 * b))
        scan[b] = samplers_at(model, b, xb, _sizes(s, "scan_"), seed + int(100 * b), untrained=untrained,
                              progress=progress)

    # Figures 6-7: one trajectory of 8 chains, trained vs its start vs HMC of the same length
    eps = model.trajectory_length() / model.n_leapfrog
    hmc_like = LeapfrogSampler.from_config({**model.get_config(), "units": [], "init": "hmc", "step_size": eps,
                                            "n_chains": 1, "x_scale": False})
    x_trace = x0[:8]
    traces = {"LeapfrogLayers": model.trace(x_trace, seed=seed), "untrained start": untrained.trace(x_trace, seed=seed),
              "HMC (same length)": hmc_like.trace(x_trace, seed=seed)}
    lowest = traces["LeapfrogLayers"]["plaquette"].mean(1).min()
    history = list(history)
    if train_cpu_s is None:
        cpu = [row["train_cpu_s"] for row in history if "train_cpu_s" in row]
        train_cpu_s = cpu[-1] if cpu else (float(model.train_cpu_s.numpy()) or None)
    return LeapfrogResults(
        settings=s, seed=seed, source=source, beta=beta, lattice_size=size, chains=chains,
        n_leapfrog=model.n_leapfrog, trajectory_length=model.trajectory_length(),
        step_sizes=model.step_sizes.numpy(), momentum_step_sizes=model.momentum_step_sizes.numpy(),
        heating=model.heating_schedule(), main=main, scan=scan, traces=traces, lowest_plaquette=lowest,
        history=history, train_cpu_s=train_cpu_s)


def _caps(s, prefix=""):
    sizes = _sizes(s, prefix)
    cpu = "" if math.isinf(sizes["max_cpu_s"]) else f" or {sizes['max_cpu_s']:g} CPU-s"
    return f"{sizes['max_trajectories']} trajectories{cpu}"


SCAN_NAMES = ("LeapfrogLayers", "untrained start", "HMC equal length")


def write_figures(results: LeapfrogResults, out) -> None:
    """The PNGs of the report (see the module docstring) into ``out``."""
    r, out = results, Path(out)
    size, beta, betas, scan = r.lattice_size, r.beta, r.betas, r.scan
    _plot_chains([r.main[k] for k in SCAN_NAMES if k in r.main], out / "chains.png")
    _plot_tau(betas, {name: [scan[b][name].tau["charge_int"] for b in betas] for name in SCAN_NAMES
                      if all(name in scan[b] for b in betas)},
              "β", out / "tau_vs_beta.png",
              f"τ_int(Q_Z), {size}×{size}, {r.chains} chains, runs ≥ {TOL:g} τ or capped; trained at β = {beta:g} only")
    hmc = [v for k, v in r.main.items() if k.startswith("HMC ε")]
    groups = {}
    for v in hmc:
        groups.setdefault(f"HMC ε = {v.trajectory_length / v.n_leapfrog:g}", []).append(v)
    trained = r.main["LeapfrogLayers"]
    _plot_tau({**{k: [v.trajectory_length for v in g] for k, g in groups.items()},
               "LeapfrogLayers": [trained.trajectory_length]},
              {**{k: [v.tau["charge_int"] for v in g] for k, g in groups.items()},
               "LeapfrogLayers": [trained.tau["charge_int"]]},
              "trajectory length Σε", out / "tau_vs_length.png", f"τ_int(Q_Z) at β = {beta:g}, {size}×{size}")
    _plot_trace(r.traces, beta, size, out / "trajectory.png", out / "plaquette_trajectory.png")
    if r.history:
        _plot_training(r.history, out / "training.png")


def markdown(results: LeapfrogResults) -> str:
    """The text of ``report.md``."""
    from tfphys.leapfrog import u1

    r = results
    s, seed, source, size, beta, chains = r.settings, r.seed, r.source, r.lattice_size, r.beta, r.chains
    scan, betas, mid = r.scan, r.betas, r.lowest_plaquette
    lines = [
        "# LeapfrogLayers vs HMC — 2D U(1)",
        "",
        f"Sampler {source or 'in memory'}: {size}×{size} lattice, β = {beta:g}, {chains} chains, "
        f"{s['thermalise']} thermalisation + {s['trajectories']} measured trajectories each, seed {seed}. "
        f"Every run is extended until it is ≥ {TOL:g} τ_int(Q_Z) long (and every chain's charge changed), up to "
        f"{_caps(s)} per sampler (scan: from {s['scan_trajectories']}, {_caps(s, 'scan_')}); a run that stays shorter "
        "gives τ as a lower bound (≳) and ESS/CPU-s as an upper bound (≤), and no ratio is formed from a bound. "
        "Errors: τ from the spread of the independent chains' estimates, ⟨·⟩ from the spread of their time averages.",
        "",
        f"Trained ε^x_k = {np.array2string(r.step_sizes, precision=3)}; ε^v_k = "
        f"{np.array2string(r.momentum_step_sizes, precision=3)}; momentum log-scalings ε^v s/2 of (a) and (d) "
        f"per step (the heating schedule): {np.array2string(r.heating.T, precision=3)}.",
        "",
        f"## At β = {beta:g}: trained, its untrained start, HMC of equal length, the HMC scan",
        "",
        *_table(list(r.main.values())),
        "",
        "## Goals (issue 17)",
        "",
        "| goal | measured | met |",
        "|---|---|---|",
        *[f"| {g} | {text} | {'yes' if ok else 'no' if ok is False else 'undecided'} |" for g, text, ok in r.goals()],
        "",
        f"Training CPU time: {r.train_cpu_s:.0f} s. Break-even (effective samples of Q_Z after which the training "
        f"paid for itself): against the best-tuned HMC {r.break_even()['best-tuned HMC']}"
        + (f", against the untrained start {r.break_even()['untrained start']}." if "untrained start" in r.main
           else ".") if r.train_cpu_s else "Training CPU time: unknown.",
        "",
        "![Q_Z along chains](chains.png)",
        "",
        "## τ_int(Q_Z) vs β (Figure 4) and the exact checks at every β",
        "",
        "| β | sampler | acceptance | ⟨cos x_P⟩ (pull) | ⟨Q_Z²⟩ (pull) | τ_int(Q_Z) | ESS(Q_Z)/CPU-s | trajectories |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for b in betas:
        for name, res in scan[b].items():
            pp, pq = res.pulls()
            lines.append(f"| {b:g} | {name} | {res.acceptance[0]:.3f} | {_fmt(res.plaquette, 5)} ({pp:+.1f}σ) | "
                         f"{_fmt(res.charge_squared, 3)} ({pq:+.1f}σ) | {res.tau_text()} | {res.ess_text()} | "
                         f"{res.chains.n_trajectories} |")
    lines += [
        "",
        "Exact values (finite torus): " + ", ".join(
            f"β = {b:g}: ⟨cos x_P⟩ {u1.exact_plaquette(b, size):.5f}, ⟨Q_Z²⟩ {u1.exact_charge_squared(b, size):.4f}"
            for b in betas) + ".",
        f"The sampler was trained at β = {beta:g} only; at other β it runs with the same parameters.",
        "",
        "![tau vs beta](tau_vs_beta.png)",
        "",
        "## τ_int(Q_Z) vs trajectory length (Figure 5)",
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
    atomic.write_text(report, markdown(results))
    return report


def evaluate(model, out_dir, *, settings=None, seed=0, progress=True, source="") -> Path:
    """Run the comparison for a loaded sampler; write ``out_dir/report.md`` + PNGs."""
    return write_report(compute(model, settings=settings, seed=seed, progress=progress, source=source), out_dir)


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
    savefig(fig, out, dpi=110)


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
