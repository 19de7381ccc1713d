"""CBAE evaluation — the paper's §4: parameter estimation (Figure 5), signal generation (Figure 7),
denoising (Figures 8 and 9). What ``tfphys-eval RUN`` runs for a ``cbae`` run.

All waveform errors are on the normalised scale of §3.1, ``(s + 0.1) / 0.8``, on which the maximum
possible signal amplitude is 1 (the paper's noise, 0.05 / 0.8, is "6.25 % of the maximum possible
signal amplitude"): an error of 0.02 is 2 % of the maximum amplitude.

* **Figure 5** — ``θ′ − θ`` and ``η′ − η`` on the test set: 2-d histogram, marginals with Gaussian
  fits (least squares on the histogram, :func:`gaussian_fit`), their bias μ, width σ and the
  Pearson correlation of the two errors.
* **Figure 7** — ``f(p) − f̂(p)`` on a regular (θ, η) grid, in slices of η coloured by θ, and the
  largest |error| per grid point. *Typical* = the 95th percentile of |error| over all grid points
  and samples (paper: "typically well contained within 2 %"), *worst* = the maximum (paper: < 4 %).
* **Figure 8** — ``f̂(f̂⁻¹(s)) − f(p)`` per waveform position (quantile bands, every 16th position)
  and aggregated: all n × 1024 errors (bias = mean, σ = standard deviation; paper 0.3 % / 0.7 %) and
  the 1024 per-position medians (paper 0.3 % / 0.2 %).
* **Figure 9** — test waveforms at percentiles 0…100 of their mean squared denoising error.

:func:`compute` returns a :class:`CbaeResults` (the numbers and the arrays of the figures; no file
written), :func:`write_report` writes ``report.md``, ``metrics.json`` and the PNGs from it, and
:func:`evaluate` opens the run (:mod:`tfphys.rundir`), computes, then reports.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy import optimize, stats  # noqa: E402

from tfphys import atomic, reports, rundir  # noqa: E402
from tfphys.cbae import waveforms as wf  # noqa: E402
from tfphys.errors import TfphysError  # noqa: E402

#: the paper's figures (fractions of the maximum amplitude), for the report's side-by-side table
PAPER = {"generation_typical": 0.02, "generation_worst": 0.04, "denoising_bias": 0.003,
         "denoising_sigma": 0.007, "median_bias": 0.003, "median_sigma": 0.002}
GRID = 41            # (θ, η) grid points per axis for Figure 7
POSITION_STEP = 16   # Figure 8: one every sixteen waveform positions
N_EXAMPLES = 35      # Figure 9
INTERIOR = (0.05, 0.95)  # the (θ, η) square without its edges, for a second generation figure


# ------------------------------------------------------------------------------- the numbers
def gaussian_fit(values: np.ndarray, bins: int = 100) -> tuple[float, float]:
    """(μ, σ) of a Gaussian least-squares fitted to the histogram of ``values`` (as in Figure 5).

    Starts from the sample mean and standard deviation; the histogram spans ±5 σ of the sample so
    that a few outliers cannot swallow the binning. Refuses fewer than 10 finite values.
    """
    v = np.asarray(values, np.float64).ravel()
    if v.size < 10 or not np.all(np.isfinite(v)):
        raise TfphysError(f"a Gaussian fit needs ≥ 10 finite values, got {v.size}")
    mu0, sd0 = float(v.mean()), float(v.std())
    if sd0 == 0.0:
        return mu0, 0.0
    counts, edges = np.histogram(v, bins=bins, range=(mu0 - 5 * sd0, mu0 + 5 * sd0), density=True)
    centres = 0.5 * (edges[1:] + edges[:-1])
    try:
        (mu, sigma), _ = optimize.curve_fit(lambda x, m, s: stats.norm.pdf(x, m, abs(s)),
                                            centres, counts, p0=(mu0, sd0))
    except RuntimeError:  # no convergence: the moments are the honest answer
        return mu0, sd0
    return float(mu), float(abs(sigma))


def parameter_errors(params: np.ndarray, estimates: np.ndarray) -> dict[str, Any]:
    """Figure 5's numbers: per parameter the fitted bias and σ (and mean, std), and the correlation."""
    err = np.asarray(estimates, np.float64) - np.asarray(params, np.float64)
    out: dict[str, Any] = {}
    for i, name in enumerate(wf.PARAM_NAMES):
        mu, sigma = gaussian_fit(err[:, i])
        out[name] = {"fit_bias": mu, "fit_sigma": sigma, "mean": float(err[:, i].mean()),
                     "std": float(err[:, i].std())}
    out["correlation"] = float(np.corrcoef(err[:, 0], err[:, 1])[0, 1])
    return out


def parameter_grid(n: int = GRID) -> tuple[np.ndarray, np.ndarray]:
    """A regular ``n × n`` grid over [0, 1]²: θ values, η values, and the ``(n·n, 2)`` points
    (η-major: point ``i·n + j`` is ``(θ_j, η_i)``)."""
    axis = np.linspace(0.0, 1.0, n)
    theta, eta = np.meshgrid(axis, axis)
    return axis, np.stack([theta.ravel(), eta.ravel()], axis=1)


def generation_errors(generated: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """Figure 7's numbers from ``f̂(p)`` and ``f(p)`` of shape ``(n_points, 1024)``."""
    a = np.abs(np.asarray(truth, np.float64) - np.asarray(generated, np.float64))
    return {"typical": float(np.percentile(a, 95)), "median": float(np.median(a)),
            "p99": float(np.percentile(a, 99)), "worst": float(a.max()),
            "rms": float(np.sqrt(np.mean(a ** 2)))}


def denoising_errors(denoised: np.ndarray, clean: np.ndarray) -> dict[str, float]:
    """Figure 8's numbers from ``f̂(f̂⁻¹(s))`` and ``f(p)`` of shape ``(n, 1024)``."""
    d = np.asarray(denoised, np.float64) - np.asarray(clean, np.float64)
    medians = np.median(d, axis=0)
    return {"bias": float(d.mean()), "sigma": float(d.std()), "abs_bias": float(abs(d.mean())),
            "median_bias": float(np.mean(np.abs(medians))), "median_sigma": float(medians.std()),
            "worst": float(np.abs(d).max())}


# ------------------------------------------------------------------------------- the figures
def plot_parameter_errors(params, estimates, numbers, path) -> Path:
    """Figure 5: 2-d error histogram with its two marginals and their Gaussian fits."""
    err = np.asarray(estimates) - np.asarray(params)
    fig = plt.figure(figsize=(6.4, 6.0))
    grid = fig.add_gridspec(2, 2, width_ratios=(4, 1.3), height_ratios=(1.3, 4), wspace=0.05, hspace=0.05)
    ax = fig.add_subplot(grid[1, 0])
    top, right = fig.add_subplot(grid[0, 0], sharex=ax), fig.add_subplot(grid[1, 1], sharey=ax)
    lim = [np.percentile(np.abs(err[:, i]), 99.8) * 1.2 for i in range(2)]
    ax.hist2d(err[:, 0], err[:, 1], bins=80, range=[[-lim[0], lim[0]], [-lim[1], lim[1]]], cmap="viridis",
              cmin=1)
    ax.set_xlabel("θ′ − θ")
    ax.set_ylabel("η′ − η")
    ax.text(0.03, 0.95, f"correlation {numbers['correlation']:+.3f}", transform=ax.transAxes, va="top",
            color="k", bbox=dict(facecolor="white", alpha=0.7))
    for i, (axis, name) in enumerate(((top, "theta"), (right, "eta"))):
        mu, sigma = numbers[name]["fit_bias"], numbers[name]["fit_sigma"]
        xs = np.linspace(-lim[i], lim[i], 300)
        label = f"μ={mu:+.4f}\nσ={sigma:.4f}"
        if i == 0:
            axis.hist(err[:, 0], bins=80, range=(-lim[0], lim[0]), density=True, color="tab:cyan")
            axis.plot(xs, stats.norm.pdf(xs, mu, sigma), "r-", label=label)
            axis.tick_params(labelbottom=False)
        else:
            axis.hist(err[:, 1], bins=80, range=(-lim[1], lim[1]), density=True, color="tab:cyan",
                      orientation="horizontal")
            axis.plot(stats.norm.pdf(xs, mu, sigma), xs, "r-", label=label)
            axis.tick_params(labelleft=False)
        axis.legend(fontsize=7, loc="upper right")
    fig.suptitle(f"Figure 5 — parameter reconstruction errors ({len(err)} test waveforms)")
    reports.savefig(fig, path, dpi=110, bbox_inches="tight")
    return Path(path)


def plot_generation_errors(x, axis, generated, truth, numbers, path, slices=(0.0, 0.25, 0.5, 0.75, 1.0)) -> Path:
    """Figure 7: ``f(p) − f̂(p)`` vs x in slices of η, coloured by θ; and max |error| over (θ, η)."""
    n = len(axis)
    diff = (np.asarray(truth) - np.asarray(generated)).reshape(n, n, -1)   # (η, θ, samples)
    fig, axes = plt.subplots(2, 3, figsize=(13, 7))
    cmap = plt.get_cmap("viridis")
    for ax, eta in zip(axes.ravel(), slices):
        i = int(np.argmin(np.abs(axis - eta)))
        for j in range(0, n, max(1, n // 10)):
            ax.plot(x, 100 * diff[i, j], color=cmap(axis[j]), lw=0.8)
        for level, style in ((2, "--"), (4, ":")):
            ax.axhline(level, color="gray", ls=style, lw=0.8)
            ax.axhline(-level, color="gray", ls=style, lw=0.8)
        ax.set_title(f"η = {axis[i]:.2f}")
        ax.set_xlabel("x")
    for ax in axes[:, 0]:
        ax.set_ylabel("f(p) − f̂(p)  [% of max amplitude]")
    ax = axes.ravel()[-1]
    worst = 100 * np.abs(diff).max(axis=2)
    image = ax.imshow(worst, origin="lower", extent=(0, 1, 0, 1), aspect="auto", cmap="magma")
    fig.colorbar(image, ax=ax, label="max |f − f̂| [%]")
    ax.set_xlabel("θ")
    ax.set_ylabel("η")
    ax.set_title("largest error per (θ, η)")
    fig.colorbar(plt.cm.ScalarMappable(cmap=cmap), ax=axes[0, :].tolist(), label="θ", shrink=0.8)
    fig.suptitle(f"Figure 7 — generation error: typical (95 %) {100 * numbers['typical']:.2f} %, "
                 f"worst {100 * numbers['worst']:.2f} % of the maximum amplitude")
    reports.savefig(fig, path, dpi=110, bbox_inches="tight")
    return Path(path)


def plot_denoising_errors(denoised, clean, numbers, path) -> Path:
    """Figure 8: error quantiles at every 16th position (left); all errors and medians (right)."""
    d = 100 * (np.asarray(denoised) - np.asarray(clean))
    positions = np.arange(0, d.shape[1], POSITION_STEP)
    q = np.percentile(d[:, positions], [0, 2.5, 16, 50, 84, 97.5, 100], axis=0)
    fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.6), gridspec_kw={"width_ratios": (2, 1)})
    left.fill_between(positions, q[0], q[6], color="tab:blue", alpha=0.15, label="min – max")
    left.fill_between(positions, q[1], q[5], color="tab:blue", alpha=0.3, label="95 %")
    left.fill_between(positions, q[2], q[4], color="tab:blue", alpha=0.5, label="68 %")
    left.plot(positions, q[3], "o-", color="tab:orange", ms=3, label="median")
    left.set_xlabel("waveform position")
    left.set_ylabel("f̂(f̂⁻¹(s)) − f(p)  [% of max amplitude]")
    left.legend(fontsize=8, ncol=4)
    lim = max(np.percentile(np.abs(d), 99.99), 1e-3)
    right.hist(d.ravel(), bins=200, range=(-lim, lim), color="tab:cyan", density=True,
               label=f"all {d.size} (μ {numbers['bias'] * 100:+.2f} %, σ {numbers['sigma'] * 100:.2f} %)")
    right.hist(np.median(d, axis=0), bins=100, range=(-lim, lim), color="tab:orange", density=True, alpha=0.7,
               label=f"{d.shape[1]} medians (σ {numbers['median_sigma'] * 100:.2f} %)")
    right.set_yscale("log")
    right.set_xlabel("error [% of max amplitude]")
    right.legend(fontsize=7)
    fig.suptitle(f"Figure 8 — denoising error on {len(d)} test waveforms")
    reports.savefig(fig, path, dpi=110, bbox_inches="tight")
    return Path(path)


def example_indices(mse: np.ndarray, n: int = N_EXAMPLES) -> tuple[np.ndarray, np.ndarray]:
    """Figure 9's choice: the waveforms at ``n`` equally spaced percentiles 0…100 of ``mse``
    (percentile 0 = the best, 100 = the worst); returns (percentiles, indices)."""
    order = np.argsort(mse, kind="stable")
    percentiles = np.linspace(0, 100, n)
    ranks = np.round(percentiles / 100 * (len(order) - 1)).astype(int)
    return percentiles, order[ranks]


def plot_examples(x, noisy, denoised, clean, path) -> Path:
    """Figure 9: noisy s, denoised s′ and f(p) at percentiles 0…100 of the denoising MSE."""
    mse = np.mean((np.asarray(denoised) - np.asarray(clean)) ** 2, axis=1)
    percentiles, chosen = example_indices(mse)
    fig, axes = plt.subplots(7, 5, figsize=(15, 15), sharex=True, sharey=True)
    for ax, pct, i in zip(axes.ravel(), percentiles, chosen):
        ax.plot(x, noisy[i], color="0.75", lw=0.5, label="s (noisy)")
        ax.plot(x, clean[i], "k-", lw=1.0, label="f(p)")
        ax.plot(x, denoised[i], "r--", lw=1.0, label="s′ = f̂(f̂⁻¹(s))")
        ax.set_title(f"percentile {pct:.0f}", fontsize=8, pad=2)
        ax.locator_params(nbins=4)
    axes[0, 0].legend(fontsize=6)
    fig.suptitle("Figure 9 — test waveforms by denoising-error percentile (0 best, 100 worst)")
    fig.subplots_adjust(left=0.04, right=0.99, bottom=0.03, top=0.95, hspace=0.25, wspace=0.05)
    reports.savefig(fig, path, dpi=80)  # no tight_layout: it costs ~10 s on 35 panels
    return Path(path)


# ------------------------------------------------------------------------------- tfphys-eval
def _test_sample(cfg: dict[str, Any], data: Path | None) -> tuple[wf.Waveforms, str]:
    from tfphys.cbae.pipeline import held_out

    if data is not None:
        sample, where = wf.read_waveforms(data), f"all of {data}"
    else:
        d = cfg.get("data", {})
        path = Path(d["path"]) if d.get("path") else None
        if path is None or not path.exists():
            raise TfphysError(f"the run's training data {path} is not there; pass --data FILE "
                              f"(a waveform file with noiseless f(p), e.g. from `tfphys-data cbae`)")
        val_fraction = float(d.get("val_fraction", 0.2))
        sample = held_out(path, val_fraction=val_fraction, max_waveforms=d.get("max_waveforms"))
        where = f"the held-out {val_fraction:.0%} of {path}"
    if sample.clean is None:
        raise TfphysError("the evaluation data hold no noiseless f(p) ('clean'); the §4 errors need it")
    return sample, where


@dataclass
class CbaeResults:
    """Everything the §4 report shows: ``numbers`` (``metrics.json``) and the arrays of Figures 5,
    7, 8 and 9. Built by :func:`compute`, written by :func:`write_report`; no file is touched in
    between."""

    #: n_test, test_data, parameters (Figure 5), generation (+ _interior, Figure 7), denoising
    #: (Figure 8), noise_rms — as ``metrics.json`` holds them
    numbers: dict[str, Any]
    #: the test waveforms (x, noisy waveforms, clean f(p), params)
    test: wf.Waveforms
    #: Figure 5: the encoder's p′ of each test waveform
    estimates: np.ndarray
    #: Figure 7: the (θ, η) grid axis, f̂(p) and f(p) on the grid
    axis: np.ndarray
    generated: np.ndarray
    truth: np.ndarray
    #: Figures 8–9: f̂(f̂⁻¹(s)) of each test waveform
    denoised: np.ndarray
    #: the model evaluated (shown in the report's title)
    model_path: str = ""


def compute(model, test: wf.Waveforms, where: str = "", model_path="") -> CbaeResults:
    """The §4 numbers and arrays of ``model`` on the waveforms ``test`` (described by ``where``)."""
    from tfphys.cbae import model as cbae

    estimates = cbae.estimate(model, test.waveforms)
    axis, grid = parameter_grid()
    generated, truth = cbae.generate(model, grid), wf.clean_waveforms(grid)
    interior = np.all((grid >= INTERIOR[0]) & (grid <= INTERIOR[1]), axis=1)
    denoised = cbae.denoise(model, test.waveforms)
    numbers = {
        "n_test": len(test), "test_data": where,
        "parameters": parameter_errors(test.params, estimates),
        "generation": generation_errors(generated, truth),
        # the same away from the edges of the parameter space (where training data are one-sided)
        "generation_interior": generation_errors(generated[interior], truth[interior]),
        "denoising": denoising_errors(denoised, test.clean),
        "noise_rms": float(np.sqrt(np.mean((test.waveforms - test.clean) ** 2))),
    }
    return CbaeResults(numbers, test, estimates, axis, generated, truth, denoised, str(model_path))


def write_figures(results: CbaeResults, out) -> dict[str, Path]:
    """Figures 5, 7, 8 and 9 of ``results`` as PNGs in ``out``."""
    r, out, test = results, Path(out), results.test
    return {
        "fig5": plot_parameter_errors(test.params, r.estimates, r.numbers["parameters"],
                                      out / "fig5_parameter_errors.png"),
        "fig7": plot_generation_errors(test.x, r.axis, r.generated, r.truth, r.numbers["generation"],
                                       out / "fig7_generation_error.png"),
        "fig8": plot_denoising_errors(r.denoised, test.clean, r.numbers["denoising"],
                                      out / "fig8_denoising_error.png"),
        "fig9": plot_examples(test.x, test.waveforms, r.denoised, test.clean, out / "fig9_examples.png"),
    }


def write_report(results: CbaeResults, out) -> Path:
    """``report.md``, ``metrics.json`` and the four PNGs into ``out``; returns the report's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    figures = write_figures(results, out)
    atomic.write_text(out / "metrics.json", json.dumps(results.numbers, indent=2))
    report = out / "report.md"
    atomic.write_text(report, markdown(results.numbers, figures, results.model_path))
    return report


def evaluate(run_dir, cfg: dict[str, Any], out_dir, data: Path | None = None, seed: int = 0) -> Path:
    """The §4 evaluation of a ``cbae`` run: writes ``report.md``, ``metrics.json`` and four PNGs.

    ``data``: a waveform file, evaluated whole; without it, the held-out part of the run's own
    training file (the paper's 10k test waveforms). Deterministic: ``seed`` is not used.
    """
    run = rundir.open_run(run_dir)
    model = run.load_model()
    test, where = _test_sample(cfg, data)
    return write_report(compute(model, test, where, run.model_path), out_dir)


def _pct(v: float) -> str:
    return f"{100 * v:.2f} %"


def markdown(numbers: dict[str, Any], figures: dict[str, Path], model_path) -> str:
    """The report: a paper-vs-measured table, then the figures."""
    p, g, d = numbers["parameters"], numbers["generation"], numbers["denoising"]
    gi = numbers["generation_interior"]
    ok = lambda value, target: "✓" if value <= target else "✗"  # noqa: E731
    rows = [
        ("generation error, typical (95th pct of \\|f − f̂\\|)", "≲ 2 %", _pct(g["typical"]),
         ok(g["typical"], PAPER["generation_typical"])),
        ("generation error, worst", "< 4 %", _pct(g["worst"]), ok(g["worst"], PAPER["generation_worst"])),
        (f"generation error, worst for θ, η in [{INTERIOR[0]}, {INTERIOR[1]}]", "—",
         _pct(numbers["generation_interior"]["worst"]), ""),
        ("denoising bias, all errors (\\|mean\\|)", "≈ 0.3 %", _pct(d["abs_bias"]),
         ok(d["abs_bias"], PAPER["denoising_bias"])),
        ("denoising σ, all errors", "≈ 0.7 %", _pct(d["sigma"]), ok(d["sigma"], 1.5 * PAPER["denoising_sigma"])),
        ("denoising, per-position medians: mean \\|median\\|", "≈ 0.3 %", _pct(d["median_bias"]),
         ok(d["median_bias"], PAPER["median_bias"])),
        ("denoising, per-position medians: σ", "≈ 0.2 %", _pct(d["median_sigma"]),
         ok(d["median_sigma"], 1.5 * PAPER["median_sigma"])),
    ]
    lines = [
        f"# CBAE evaluation (paper §4) — `{model_path}`",
        "",
        f"Test sample: {numbers['n_test']} waveforms ({numbers['test_data']}); noise RMS in the "
        f"input {_pct(numbers['noise_rms'])} of the maximum amplitude. Errors are fractions of the "
        f"maximum amplitude (1 on the normalised scale (s + 0.1)/0.8).",
        "",
        "| quantity | paper | measured | |",
        "|---|---|---|---|",
        *[f"| {a} | {b} | {c} | {e} |" for a, b, c, e in rows],
        "",
        "(✓ for the σ rows: within 1.5× the paper's figure.)",
        "",
        "## Parameter estimation (Figure 5)",
        "",
        "| | fitted bias μ | fitted σ | mean | std |",
        "|---|---|---|---|---|",
        *[f"| {n}′ − {n} | {p[k]['fit_bias']:+.4f} | {p[k]['fit_sigma']:.4f} | {p[k]['mean']:+.4f} | "
          f"{p[k]['std']:.4f} |" for k, n in (("theta", "θ"), ("eta", "η"))],
        "",
        f"Correlation of the two errors: {p['correlation']:+.3f}.",
        "",
        f"![Figure 5]({figures['fig5'].name})",
        "",
        "## Signal generation (Figure 7)",
        "",
        f"f(p) − f̂(p) on a {GRID} × {GRID} (θ, η) grid: median \\|error\\| {_pct(g['median'])}, "
        f"95th percentile {_pct(g['typical'])}, 99th {_pct(g['p99'])}, worst {_pct(g['worst'])}, "
        f"RMS {_pct(g['rms'])}. Without the edges (θ, η in [{INTERIOR[0]}, {INTERIOR[1]}]): 95th "
        f"percentile {_pct(gi['typical'])}, worst {_pct(gi['worst'])}. The decoder learns f̂ from the "
        f"encoder's estimates p′: the waveforms whose p′ lies on an edge of the (θ, η) square come "
        f"from p inside it (the prior ends there), so f̂ is pulled inward at the edges, and the "
        f"corners have the fewest training waveforms; the largest errors sit there, where f "
        f"changes fastest with p (θ ≈ 0, right-hand panel).",
        "",
        f"![Figure 7]({figures['fig7'].name})",
        "",
        "## Denoising (Figures 8 and 9)",
        "",
        f"f̂(f̂⁻¹(s)) − f(p): bias {d['bias'] * 100:+.3f} %, σ {_pct(d['sigma'])}, worst "
        f"{_pct(d['worst'])} (input noise RMS {_pct(numbers['noise_rms'])}); the {wf.N_SAMPLES} "
        f"per-position medians: mean \\|median\\| {_pct(d['median_bias'])}, σ {_pct(d['median_sigma'])}.",
        "",
        f"![Figure 8]({figures['fig8'].name})",
        "",
        f"![Figure 9]({figures['fig9'].name})",
        "",
    ]
    return "\n".join(lines)
