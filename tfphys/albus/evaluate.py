"""ALBUS evaluation — paper §III.B–C: detection statistics, efficiency vs visibility, figures.

What ``tfphys-eval RUN`` writes for an ``albus`` run (``report.md`` with PNGs beside it):

* two detection statistics per map, computed on the output localisation map ``O`` (T × F):
  ``map_sum`` = Σ_ij O_ij (the paper's suggestion, §II.B), and ``largest_cluster`` = the summed
  output of the largest 8-connected group of pixels with ``O > 0.1`` — it rewards connected
  structure (a chirp track) over the same amount of output scattered in isolated hot pixels (the
  background behaviour of Figure 15);
* their AUROC (background vs chirp maps), and the detection efficiency per visibility level at a
  false-alarm rate fixed on the background maps: a threshold at the loudest background map
  (FAR < 1 per ``n_background × 1000 s``) and at 10 % of background maps;
* Figure 10-like chirps of each frequency law, Figure 11-like glitch(es), Figures 13–14-like
  series (one chirp in one noise stretch at V = 60, 40, 30, 20, 16, 12, generated here), and
  Figure 15-like background maps beside a chirp: the input's red channel next to the output.

:func:`compute` runs the model and returns an :class:`AlbusResults` (every number and map of the
report; no file written); :func:`write_report` writes ``report.md`` and the PNGs from it;
:func:`evaluate` opens the run (:mod:`tfphys.rundir`), computes, then reports.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from tfphys import atomic, reports, rundir
from tfphys.errors import TfphysError

CLUSTER_THRESHOLD = 0.1
SERIES_LEVELS = (60, 40, 30, 20, 16, 12)
FAR_FRACTION = 0.1


# ------------------------------------------------------------------------------ statistics
def _output_maps(outputs) -> np.ndarray:
    out = np.asarray(outputs, np.float32)
    return out[..., 0] if out.ndim == 4 else out


def map_sum(inputs, outputs) -> np.ndarray:
    """Σ_ij O_ij per map (§II.B), larger = more signal-like. ``outputs``: (n, T, F[, 1])."""
    return _output_maps(outputs).reshape(len(outputs), -1).sum(axis=1, dtype=np.float64)


def largest_cluster(outputs, threshold: float = CLUSTER_THRESHOLD) -> np.ndarray:
    """Summed output of the largest 8-connected cluster of pixels above ``threshold``, per map.

    A track of ``k`` connected pixels scores its whole sum; ``k`` isolated pixels of the same
    values score only the largest one. 0 if no pixel passes.
    """
    from scipy import ndimage

    maps = _output_maps(outputs)
    structure = np.ones((3, 3), bool)
    scores = np.zeros(len(maps))
    for i, m in enumerate(maps):
        labels, n = ndimage.label(m > threshold, structure=structure)
        if n:
            scores[i] = np.max(ndimage.sum_labels(m, labels, index=np.arange(1, n + 1)))
    return scores


STATISTICS = {"map_sum": lambda o: map_sum(None, o), "largest_cluster": largest_cluster}


def threshold_at_far(background: np.ndarray, far_fraction: float | None) -> float:
    """Statistic threshold passed by a fraction ``far_fraction`` of background maps.

    ``None``: the loudest background map (nothing of the background passes; FAR < 1/n_background
    per map). Refuses fractions below 1/n_background, which the background cannot resolve.
    """
    background = np.sort(np.asarray(background, float))
    n = len(background)
    if n == 0:
        raise TfphysError("a false-alarm threshold needs background maps")
    if far_fraction is None:
        return float(background[-1])
    if not 1.0 / n <= far_fraction < 1:
        raise TfphysError(f"FAR of {far_fraction:g} per map cannot be set with {n} background maps "
                          f"(need ≥ 1/{n})")
    k = int(np.floor(far_fraction * n))  # k background maps lie strictly above the threshold
    return float(background[n - k - 1])


def efficiency(signal: np.ndarray, levels: np.ndarray, threshold: float) -> dict[float, tuple[float, float, int]]:
    """Per visibility level: (fraction above threshold, binomial σ, maps)."""
    out = {}
    for level in np.unique(levels):
        sel = np.asarray(signal)[levels == level]
        e = float(np.mean(sel > threshold))
        out[float(level)] = (e, float(np.sqrt(max(e * (1 - e), 0) / len(sel))), int(len(sel)))
    return out


# ------------------------------------------------------------------------------ data
def representative(path, n: int, seed: int, val_fraction: float = 0.1) -> np.ndarray:
    """``n`` training maps (both classes) as the network sees them: float32 (n, T, F, 3)."""
    from tfphys.albus.pipeline import read_maps, split_maps

    split = split_maps(path, val_fraction=val_fraction, seed=seed)
    pool = np.concatenate([split.train_background, split.train_chirp])
    chosen = np.random.default_rng(seed).permutation(pool)[:n]
    return read_maps(path, np.sort(chosen))[0]


def labelled_sample(path, n_per_class: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``n_per_class`` background and chirp maps: (x (n, T, F, 3), is_signal (n,))."""
    from tfphys.albus import storage
    from tfphys.albus.pipeline import read_maps

    with storage.open_albus(path) as f:
        kind = f["kind"][:]
    rng = np.random.default_rng(seed)
    bg = rng.permutation(np.flatnonzero(kind == 0))[:n_per_class]
    sig = rng.permutation(np.flatnonzero(kind == 1))[:n_per_class]
    if not len(bg) or not len(sig):
        raise TfphysError(f"data file {path} needs background and chirp maps for a labelled sample")
    x, _ = read_maps(path, np.concatenate([bg, sig]))
    return x, np.r_[np.zeros(len(bg), bool), np.ones(len(sig), bool)]


def default_eval_data(cfg) -> Path:
    """The cached evaluation set: ``[data] eval_*`` sizes, seed ``default_seed + 1``, with glitches."""
    from tfphys.albus.storage import default_dataset

    data = cfg.get("data", {})
    return default_dataset(int(data.get("eval_background", 40)), int(data.get("eval_per_level", 4)),
                           int(data.get("default_seed", 20220121)) + 1,
                           n_glitch=int(data.get("eval_glitch", 2)), psd=data.get("psd", "auto"))


def predict(model, x: np.ndarray, batch_size: int = 4) -> np.ndarray:
    """Output maps (n, T, F) of a compiled-path Keras forward pass."""
    return model.predict(x, batch_size=batch_size, verbose=0)[..., 0]


# ------------------------------------------------------------------------------ figures
def _panel(ax, image, title, geometry, *, vmax=None, cmap="gray"):
    ax.imshow(image.T, origin="lower", aspect="auto", cmap=cmap, vmin=0, vmax=vmax,
              extent=(0, geometry.n_time * geometry.stride_s, 0, geometry.sample_rate_hz / 2),
              interpolation="nearest")
    ax.set_title(title, fontsize=8)
    ax.set_xlabel("time [s]", fontsize=7)
    ax.set_ylabel("frequency [Hz]", fontsize=7)
    ax.tick_params(labelsize=6)


def plot_pairs(pairs, path, geometry, *, title: str, columns: int = 2):
    """Input red channel beside ALBUS output for each (red, output, caption): Figures 10–15."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = int(np.ceil(len(pairs) / columns))
    fig, axes = plt.subplots(rows, 2 * columns, figsize=(4.4 * columns, 2.6 * rows), squeeze=False)
    for ax in axes.ravel():
        ax.set_visible(False)
    for k, (red, output, caption) in enumerate(pairs):
        a, b = axes[k // columns, 2 * (k % columns)], axes[k // columns, 2 * (k % columns) + 1]
        a.set_visible(True)
        b.set_visible(True)
        # the red channel's own range (as the paper's panels): noise is dark in cubehelix
        _panel(a, red, f"input (red) — {caption}", geometry, vmax=max(float(red.max()), 1.0),
               cmap="gray")
        _panel(b, output, f"ALBUS output (max {output.max():.2f})", geometry, vmax=1, cmap="viridis")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    reports.savefig(fig, path, dpi=100)
    return Path(path)


def plot_efficiency(eff: dict, path, *, title: str):
    """Efficiency vs visibility: one curve per (statistic, FAR)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for (stat, far_label), per_level in eff.items():
        levels = sorted(per_level)
        ax.errorbar(levels, [per_level[v][0] for v in levels], yerr=[per_level[v][1] for v in levels],
                    marker="o", capsize=2, label=f"{stat}, {far_label}")
    ax.set_xlabel("visibility V (Eq. 4)")
    ax.set_ylabel("detection efficiency")
    ax.set_ylim(-0.03, 1.03)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    reports.savefig(fig, path, dpi=110)
    return Path(path)


def plot_histograms(stats: dict, kind: np.ndarray, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(stats), figsize=(4.5 * len(stats), 3.2), squeeze=False)
    for ax, (name, values) in zip(axes[0], stats.items()):
        bins = np.linspace(0, max(values.max(), 1e-6) * 1.05, 40)
        for k, label in ((0, "background"), (1, "chirps"), (2, "glitches")):
            if np.any(kind == k):
                ax.hist(values[kind == k], bins=bins, histtype="step", label=label, density=False)
        ax.set_xlabel(name)
        ax.set_ylabel("maps")
        ax.legend(fontsize=7)
    fig.tight_layout()
    reports.savefig(fig, path, dpi=110)
    return Path(path)


# ------------------------------------------------------------------------------ the report
def visibility_series(geometry, psd: str, seed: int, levels=SERIES_LEVELS):
    """Figures 13–14: one chirp in one noise stretch at each visibility level → (rgb maps, chirp)."""
    from tfphys.albus import coherence, injections, noise, storage

    rng = np.random.default_rng(seed)
    h1, l1 = noise.detector_noise(geometry.duration_s, rng, sample_rate_hz=geometry.sample_rate_hz,
                                  model=psd)
    noise_map = coherence.coherence_map(h1, l1, geometry)
    scale = geometry.sample_rate_hz / 4096.0  # 150 → 900 Hz at the paper's 4096 Hz
    chirp = injections.Chirp(duration_s=0.3 * geometry.duration_s, delay_s=0.25 * geometry.duration_s,
                             f_start_hz=150.0 * scale, f_end_hz=900.0 * scale, method="quadratic", beta=2.5,
                             rising=True).validate(geometry)
    maps = []
    for level in levels:
        inj = injections.inject_at_visibility(h1, l1, chirp, level, noise_map=noise_map, geometry=geometry)
        maps.append(storage.encode_map(inj.injected_map))
    return np.stack(maps), chirp


@dataclass
class AlbusResults:
    """Everything ``report.md`` and its figures show: the per-map statistics, their AUROC, the
    efficiencies at fixed FAR, and the maps of the figures. Built by :func:`compute`, written by
    :func:`write_report`; no file is touched in between."""

    run_dir: str
    #: the evaluation file, its per-map kind (0 background, 1 chirp, 2 glitch), visibility, law
    data: Path
    kind: np.ndarray
    level: np.ndarray
    method: np.ndarray
    geometry: Any
    #: statistic name → (n_maps,) values
    stats: dict[str, np.ndarray]
    #: statistic → AUROC background vs chirps
    aurocs: dict[str, float]
    #: (statistic, FAR label) → {visibility: (efficiency, σ, maps)}; and its threshold
    efficiency: dict[tuple[str, str], dict[float, tuple[float, float, int]]]
    thresholds: dict[tuple[str, str], float]
    #: map index → (input red channel 0…255, output map), for the maps of Figures 10, 11, 15
    picks: set
    kept: dict[int, tuple[np.ndarray, np.ndarray]]
    #: Figures 13–14: one chirp at each of ``SERIES_LEVELS`` → (rgb maps, outputs), and the chirp
    series: np.ndarray
    series_outputs: np.ndarray
    chirp: Any = None

    def caption(self, i: int) -> str:
        from tfphys.albus import injections, storage

        if self.kind[i] == 1:
            return f"{injections.METHODS[self.method[i]]} chirp, V={self.level[i]:g}"
        return storage.KINDS[int(self.kind[i])]


def compute(model, data, seed: int = 0, run_dir="") -> AlbusResults:
    """Run ``model`` over every map of the file ``data`` and over a visibility series; no file written."""
    from tfphys.albus import storage
    from tfphys.albus.pipeline import read_maps

    path = Path(data)
    with storage.open_albus(path) as f:
        kind, level = f["kind"][:], f["visibility"][:]
        method = f["method"][:]
        geometry = storage.geometry_of(f)
        psd = str(f.attrs["psd"])
    if tuple(model.input_shape[1:3]) != geometry.shape:
        raise TfphysError(f"model expects {model.input_shape[1:3]} maps, {path} holds {geometry.shape}")

    stats = {name: np.zeros(len(kind)) for name in STATISTICS}
    keep = _figure_picks(kind, level, method, seed)
    kept = {}
    for start in range(0, len(kind), 16):
        idx = np.arange(start, min(start + 16, len(kind)))
        x, _ = read_maps(path, idx)
        o = predict(model, x)
        for name, fn in STATISTICS.items():
            stats[name][idx] = fn(o)
        for j, i in enumerate(idx):
            if i in keep:
                kept[i] = (np.round(x[j, ..., 0] * 255), o[j])

    if not (kind == 0).any() or not (kind == 1).any():
        raise TfphysError(f"{path} needs background and chirp maps for an evaluation")
    aurocs, thresholds, eff = detection(stats, kind, level)
    series, chirp = visibility_series(geometry, psd, seed)
    series_outputs = predict(model, series.astype(np.float32) / 255.0)
    return AlbusResults(str(run_dir), path, kind, level, method, geometry, stats, aurocs, eff, thresholds,
                        keep, kept, series, series_outputs, chirp)


def detection(stats: dict[str, np.ndarray], kind: np.ndarray, level: np.ndarray):
    """Per statistic: its AUROC (background vs chirps), and per false-alarm rate (the loudest
    background map; ``FAR_FRACTION`` of them when the background resolves it) its threshold and
    the efficiency per visibility level → ``(aurocs, thresholds, efficiencies)``."""
    from sklearn.metrics import roc_auc_score

    bg, sig = kind == 0, kind == 1
    if not bg.any() or not sig.any():
        raise TfphysError("the evaluation needs background and chirp maps")
    fars = {"loudest background": None}
    if FAR_FRACTION >= 1 / bg.sum():
        fars[f"FAR {FAR_FRACTION:.0%} of background"] = FAR_FRACTION
    eff, thresholds, aurocs = {}, {}, {}
    for name, values in stats.items():
        aurocs[name] = float(roc_auc_score(sig[bg | sig], values[bg | sig]))
        for far_label, far in fars.items():
            t = threshold_at_far(values[bg], far)
            thresholds[(name, far_label)] = t
            eff[(name, far_label)] = efficiency(values[sig], level[sig], t)
    return aurocs, thresholds, eff


def write_figures(results: AlbusResults, out) -> dict[str, Path]:
    """The PNGs of the report (efficiency, statistics, Figures 10, 11, 13–14, 15-like) into ``out``."""
    r, out = results, Path(out)
    kind, keep, kept, geometry = r.kind, r.picks, r.kept, r.geometry
    figures = {"efficiency": plot_efficiency(r.efficiency, out / "efficiency.png",
                                             title=f"ALBUS efficiency vs visibility ({(kind == 0).sum()} "
                                                   f"background maps)"),
               "statistics": plot_histograms(r.stats, kind, out / "statistics.png")}
    chirps = [i for i in keep if kind[i] == 1][:4]
    figures["chirps"] = plot_pairs([(*kept[i], r.caption(i)) for i in chirps], out / "fig10_chirps.png", geometry,
                                   title="Figure 10-like: chirps of each frequency law")
    glitches = [i for i in keep if kind[i] == 2]
    if glitches:
        figures["glitch"] = plot_pairs([(*kept[i], "coherent glitch") for i in glitches], out / "fig11_glitch.png",
                                       geometry, title="Figure 11-like: coherent glitch")
    backs = [i for i in keep if kind[i] == 0][:3]
    figures["background"] = plot_pairs([(*kept[chirps[0]], r.caption(chirps[0]))] +
                                       [(*kept[i], "background") for i in backs],
                                       out / "fig15_background.png", geometry,
                                       title="Figure 15-like: a chirp, then background maps")
    series, o, chirp = r.series, r.series_outputs, r.chirp
    figures["series"] = plot_pairs([(series[k, ..., 0], o[k], f"V = {v}") for k, v in enumerate(SERIES_LEVELS)],
                                   out / "fig13_visibility_series.png", geometry, columns=3,
                                   title=f"Figures 13–14-like: one {chirp.method} chirp "
                                         f"{chirp.f_start_hz:g}→{chirp.f_end_hz:g} Hz at decreasing visibility")
    return figures


def write_report(results: AlbusResults, out) -> Path:
    """``report.md`` and its PNGs into ``out``; returns the report's path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return write_markdown(results, write_figures(results, out), out / "report.md")


def evaluate(run_dir, cfg, out_dir, data=None, seed: int = 0) -> Path:
    """What ``tfphys-eval RUN`` runs for ALBUS: open the run, compute, report; returns ``report.md``."""
    model = rundir.open_run(run_dir).load_model()
    path = Path(data) if data else default_eval_data(cfg)
    return write_report(compute(model, path, seed, run_dir=run_dir), out_dir)


def _figure_picks(kind, level, method, seed) -> set:
    """Map indices shown in the figures: the loudest chirp of each law, 3 backgrounds, glitches."""
    rng = np.random.default_rng(seed)
    picks = []
    for m in range(4):
        cand = np.flatnonzero((kind == 1) & (method == m))
        if len(cand):
            picks.append(int(cand[np.argmax(level[cand])]))
    picks += [int(i) for i in rng.permutation(np.flatnonzero(kind == 0))[:3]]
    picks += [int(i) for i in np.flatnonzero(kind == 2)[:2]]
    return set(picks)


def write_markdown(results: AlbusResults, figures: dict[str, Path], report) -> Path:
    """``report.md``: the statistics table, the efficiency table and the figures' links."""
    run_dir, path, kind, level = results.run_dir, results.data, results.kind, results.level
    stats, aurocs, eff, thresholds = results.stats, results.aurocs, results.efficiency, results.thresholds
    lines = [f"# ALBUS evaluation — {run_dir}", "",
             f"Data: `{path}` — {int((kind == 0).sum())} background, {int((kind == 1).sum())} chirp, "
             f"{int((kind == 2).sum())} glitch maps.", "",
             "## Detection statistics", "",
             "| statistic | AUROC (background vs chirps) | median background | median chirps | "
             "median glitches |", "|---|---|---|---|---|"]
    for name, values in stats.items():
        med = [f"{np.median(values[kind == k]):.3g}" if np.any(kind == k) else "—" for k in (0, 1, 2)]
        lines.append(f"| `{name}` | {aurocs[name]:.3f} | {' | '.join(med)} |")
    lines += ["", "`map_sum` = Σ output (paper §II.B); `largest_cluster` = summed output of the largest "
              f"8-connected cluster with output > {CLUSTER_THRESHOLD} (rewards connected tracks).", "",
              "## Efficiency vs visibility at fixed false-alarm rate", "",
              "One map = 1000 s: 'loudest background' is FAR < 1/(n_background × 1000 s).", ""]
    levels = sorted(float(v) for v in np.unique(level[kind == 1]))
    lines.append("| statistic | FAR | threshold | " + " | ".join(f"V={v:g}" for v in levels) + " |")
    lines.append("|---|---|---|" + "---|" * len(levels))
    for (name, far_label), per_level in eff.items():
        cells = [f"{per_level[v][0]:.2f} ± {per_level[v][1]:.2f}" for v in levels]
        lines.append(f"| `{name}` | {far_label} | {thresholds[(name, far_label)]:.3g} | " + " | ".join(cells) + " |")
    lines += ["", "![efficiency](efficiency.png)", "", "![statistics](statistics.png)", "", "## Figures", ""]
    for key, fig in figures.items():
        if key not in ("efficiency", "statistics"):
            lines += [f"![{key}]({Path(fig).name})", ""]
    report = Path(report)
    atomic.write_text(report, "\n".join(lines) + "\n")
    return report
