"""``tfphys-eval`` for the dark-shower family — the CoDAE paper's Tables 1–4 and Figures 5–6.

``tfphys-eval RUN [RUN …] --data TEST.h5 --out DIR`` scores every trained model given and the
physics baselines on one labelled test file (QCD label 0 + SUEP/SVJ signals) and writes into DIR:

=================  ===========================================================================
``tables.md``      Table 1 (AUROC %), Table 2 (FPR40 %) per signal and mediator mass with mAUC /
                   mFPR per signal; Table 3 (ASO ε_min of each model's best scores against each
                   baseline, on bootstrapped AUROC distributions); Table 4 (reconstruction MSE and
                   SSIM on QCD, mean ± std)
``results.json``   every number of the tables
``scores.h5``      per-event scores (one dataset per score) with ``label`` and ``mass``, so any
                   metric can be recomputed
``roc.png``        ROC curves per mass point (each model's best score and the baselines)
``latent_*.png``   the 2-d ``Z_m`` latent space with per-class densities (Figure 5)
``reconstructions.png``  inputs beside each model's reconstruction (Figure 6)
=================  ===========================================================================

Scores (§4.6): every auto-encoder gets BCE, SSE, SAE, SAE-mask, Dice⁻¹ and PixelSum on its
reconstruction (the CoDVAE on its Bernoulli mode, whose SAE equals its SSE and is omitted, and BCE
on its mean); models with a mask encoder ``f_m`` get each ``Z_m`` component; the CoDVAE gets KL-R
and KL-F; other models (e.g. a supervised classifier) their registry ``anomaly_score``. A latent
component's sign is arbitrary, so each ``Z_i`` is oriented on the QCD-vs-all-signals AUROC (and the
table says so). Baselines (§5.2): total energy per channel (Eq. 4) and nTracks from the file.

The work is split in two: :func:`compute` scores the test file and builds a
:class:`DarkShowerResults` (every number, table and array of the report; no file written), and
:func:`write_report` writes the files above from it. :func:`evaluate` — what ``tfphys-eval`` runs —
opens the runs (:mod:`tfphys.rundir`), computes, then reports.

ASO (Table 3): for each mass point, each score's AUROC distribution over ``n_subsets``
class-balanced subsets (paper: 1000 × 2k) is compared with :func:`tfphys.metrics.aso`
(deepsig's ε_min, vectorised — identical numbers, ~10³× faster), so the full table takes seconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import keras
import numpy as np
from tqdm.auto import tqdm

from tfphys import atomic, metrics, reports, rundir
from tfphys.darkshowers import format as formats
from tfphys.darkshowers import scores as S
from tfphys.errors import TfphysError

#: Events per component of the default test set (QCD and each of the 9 signal mass points).
DEFAULT_TEST_N = 300
FPR_TPR = 0.4
SIGNALS = {1: "SUEP", 2: "SVJ"}
#: the image channels of Eq. 4 (0 tracker, 1 ECAL, 2 HCAL), by the names the tables use
CHANNELS = ("Trk", "ECAL", "HCAL")


# ------------------------------------------------------------------------------------ data
def read_test_file(path) -> dict[str, np.ndarray]:
    """Masks ``(n, 72, 58, 1)``, total E_T per channel ``(n, 3)`` (Eq. 4,
    :func:`~tfphys.darkshowers.scores.total_energy`), ``label``, ``mass``, ``n_tracks``.

    Refuses a file without background or without any signal class: there is nothing to rank.
    """
    from tfphys.darkshowers.pipeline import load_masks

    with formats.open_darkshowers(path) as f:
        label, mass, n_tracks = f["label"][:], f["mass"][:], f["n_tracks"][:]
        n = len(label)
        energy = np.empty((n, 3))
        block = 64
        for start in tqdm(range(0, n, block), desc="total energy", unit="block", disable=None):
            images = f["images"][start:start + block]
            formats.check_pixels(images, path, start)
            energy[start:start + len(images)] = S.total_energy(images)
    if not (label == 0).any():
        raise TfphysError(f"test file {path} has no QCD background (label 0) events")
    if not np.isin(label, list(SIGNALS)).any():
        raise TfphysError(f"test file {path} has no signal events (SUEP label 1 or SVJ label 2): "
                          f"generate one with `tfphys-data darkshowers --process all`")
    return {"masks": load_masks(path, np.arange(n)), "energy": energy, "label": label.astype(int),
            "mass": mass.astype(float), "n_tracks": n_tracks.astype(float)}


def mass_points(label: np.ndarray, mass: np.ndarray) -> list[tuple[int, float]]:
    """The (signal label, mass) points present in the file, SUEP first, by mass."""
    return sorted({(int(c), float(m)) for c, m in zip(label, mass) if c in SIGNALS})


def _mass_name(cls: int, mass: float) -> str:
    return f"{mass:g}" if cls == 1 else f"{mass / 1000:g}"


def labelled_classes(path, n_per_class: int, *, seed: int = 0) -> list[str]:
    """The class of each event of ``pipeline.labelled_sample(path, n_per_class, seed=seed)``, in its
    order: ``"QCD"`` or the signal mass point as Table 1 names it (``"SUEP 125 GeV"``, ``"SVJ 2.1 TeV"``)."""
    from tfphys.darkshowers.pipeline import labelled_indices

    chosen, labels = labelled_indices(path, n_per_class, seed=seed)
    with formats.open_darkshowers(path) as f:
        mass = f["mass"][:][chosen]
    return ["QCD" if c == 0 else f"{SIGNALS.get(int(c), f'label {c}')} {_mass_name(int(c), float(m))} "
            f"{'GeV' if c == 1 else 'TeV'}" for c, m in zip(labels[chosen], mass)]


# ------------------------------------------------------------------------------------ scores
def model_scores(model, spec, x: np.ndarray, *, seed: int = 0,
                 batch_size: int = 64) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """All §4.6 scores of one trained model on masks ``x``; also its reconstructions (or None).

    ``model``: a Keras model, or a model-like object with ``predict(x, batch_size=…, verbose=…)`` and
    ``layers`` (objects with a ``name``; ``f_m`` predicts the ``Z_m`` latents), e.g. the run's exported
    files run by LiteRT (:class:`tfphys.runtime.LiteRTModel`, ``tfphys-score --runtime litert``).
    """
    from tfphys.darkshowers.codvae import GumbelSoftmaxLatent, kl_scores, reconstruct

    if spec.name == "codvae" and not isinstance(model, keras.Model):
        raise TfphysError("codvae: its KL scores need the Keras model's Gumbel-softmax latent layer; "
                          "score it with --runtime keras")
    out = np.asarray(model.predict(x, batch_size=batch_size, verbose=0))
    layers = {layer.name: layer for layer in model.layers}
    result: dict[str, np.ndarray] = {}
    recon = None
    if spec.name == "dirvae":  # a pixel distribution (sums to 1): undo the normalisation (Table 4)
        result["H"] = np.asarray(spec.anomaly_score(x, out), np.float64)
        out = out * x.reshape(len(x), -1).sum(axis=1)[:, None, None, None]
    if out.shape == x.shape:  # an auto-encoder
        variational = isinstance(layers.get("latent"), GumbelSoftmaxLatent)
        recon = reconstruct(out, "mode") if variational else out
        for name, fn in S.RECONSTRUCTION_SCORES.items():
            if variational and name == "SAE":
                continue  # equals SSE on a binary (mode) reconstruction
            result[name] = fn(x, out if name == "BCE" else recon)
        if variational:
            logits, tau = layers["f_R"].predict(x, batch_size=batch_size, verbose=0)
            result.update(kl_scores(logits, tau, layers["latent"].prior_temperatures, seed=seed))
    elif spec.anomaly_score is not None:
        result["score"] = np.asarray(spec.anomaly_score(x, out), np.float64)
    if "f_m" in layers:
        z_m = np.asarray(layers["f_m"].predict(x, batch_size=batch_size, verbose=0), np.float64)
        for i in range(z_m.shape[1]):
            result[f"Z{i + 1}"] = z_m[:, i]
    if not result:
        raise TfphysError(f"{spec.name}: no anomaly score is defined for this model")
    return result, recon


def _orient(name: str, score: np.ndarray, is_signal: np.ndarray) -> tuple[np.ndarray, str]:
    """Latent components have no preferred sign: flip one whose AUROC is below ½ (and say so)."""
    if name.startswith("Z") and metrics.auroc(is_signal, score) < 0.5:
        return -score, f"−{name}"
    return score, name


# ------------------------------------------------------------------------------------ tables
def detection_table(all_scores: dict[str, np.ndarray], label, mass) -> dict[str, dict[str, dict]]:
    """``{score: {"auroc": {point: v}, "fpr40": {point: v}, "mean": {"SUEP": (mAUC, mFPR), …}}}``."""
    points = mass_points(label, mass)
    table = {}
    for key, s in all_scores.items():
        row = {"auroc": {}, "fpr40": {}}
        for cls, m in points:
            keep = (label == 0) | ((label == cls) & (mass == m))
            y = label[keep] != 0
            point = f"{SIGNALS[cls]} {_mass_name(cls, m)}"
            row["auroc"][point] = metrics.auroc(y, s[keep])
            row["fpr40"][point] = metrics.fpr_at_tpr(y, s[keep], FPR_TPR)
        row["mean"] = {}
        for cls, sig in SIGNALS.items():
            names = [f"{sig} {_mass_name(c, m)}" for c, m in points if c == cls]
            if names:
                row["mean"][sig] = (float(np.mean([row["auroc"][n] for n in names])),
                                    float(np.mean([row["fpr40"][n] for n in names])))
        table[key] = row
    return table


def _best(table, keys) -> str:
    """The score with the best AUROC averaged over every mass point."""
    return max(keys, key=lambda k: np.mean(list(table[k]["auroc"].values())))


def aso_table(all_scores, label, mass, candidates, baselines, *, n_subsets, subset_size, seed,
              bootstrap_iterations: int = 1000) -> dict[str, dict[str, dict[str, float]]]:
    """ε_min(candidate better than baseline) per mass point on bootstrapped AUROC distributions."""
    points = mass_points(label, mass)
    keys = sorted(set(candidates) | set(baselines))
    dists: dict[tuple[str, str], np.ndarray] = {}
    for key in tqdm(keys, desc="bootstrap AUROCs", unit="score", disable=None):
        for cls, m in points:
            keep = (label == 0) | ((label == cls) & (mass == m))
            point = f"{SIGNALS[cls]} {_mass_name(cls, m)}"
            dists[key, point] = metrics.bootstrap_auroc(label[keep] != 0, all_scores[key][keep],
                                                        n_subsets=n_subsets, subset_size=subset_size, seed=seed)
    names = [f"{SIGNALS[cls]} {_mass_name(cls, m)}" for cls, m in points]
    table: dict[str, dict[str, dict[str, float]]] = {}
    pairs = [(c, b) for c in candidates for b in baselines if b != c]
    for c, b in tqdm(pairs, desc="ASO", unit="pair", disable=None):
        table.setdefault(c, {})[b] = {
            point: metrics.aso(dists[c, point], dists[b, point], seed=seed,
                               num_bootstrap_iterations=bootstrap_iterations)
            for point in names}
    return table


def reconstruction_quality(x: np.ndarray, recon: np.ndarray) -> dict[str, tuple[float, float]]:
    """Table 4 on QCD images: per-image MSE (mean over pixels) and SSIM (``tf.image.ssim``),
    each as (mean, std), and the summed squared error per image (the scale of the paper's MSE)."""
    import tensorflow as tf

    sq = (x.astype(np.float64) - recon) ** 2
    mse = sq.reshape(len(x), -1).mean(axis=1)
    sse = sq.reshape(len(x), -1).sum(axis=1)
    ssim = tf.image.ssim(tf.constant(x, tf.float32), tf.constant(recon, tf.float32), max_val=1.0).numpy()
    return {name: (float(v.mean()), float(v.std())) for name, v in
            (("MSE", mse), ("SSE", sse), ("SSIM", ssim.astype(np.float64)))}


# ------------------------------------------------------------------------------------ compute
@dataclass
class DarkShowerResults:
    """Everything ``tfphys-eval`` reports for dark-shower runs: the numbers of Tables 1–4, the
    per-event scores and the arrays behind Figures 5–6. Built by :func:`compute`, written by
    :func:`write_report`; no file is touched in between."""

    #: the test file (as given), its per-event ``label``, ``mass`` and the masks (Figure 6 inputs)
    test_file: str
    label: np.ndarray
    mass: np.ndarray
    masks: np.ndarray
    #: per-event scores, larger = more anomalous: the physics baselines first, then the models'
    scores: dict[str, np.ndarray]
    #: the physics baselines' keys in ``scores`` (Eq. 4 per channel, then nTracks)
    physics: list[str]
    #: model label → its keys in ``scores``
    per_model: dict[str, list[str]]
    #: Tables 1–2 (:func:`detection_table`)
    detection: dict[str, dict[str, dict]]
    #: model label → its score with the best AUROC averaged over the mass points
    best_scores: dict[str, str]
    #: Table 3 (:func:`aso_table`) and how its AUROC distributions were drawn
    aso: dict[str, dict[str, dict[str, float]]]
    aso_settings: str
    #: Table 4: model label → {"MSE"|"SSE"|"SSIM": (mean, std)} on QCD
    reconstruction: dict[str, dict[str, tuple[float, float]]]
    #: Figure 5: model label (file-name safe) → its ``Z_m`` latents ``(n, 2)``
    latents: dict[str, np.ndarray] = field(default_factory=dict)
    #: Figure 6: model label → its reconstructions of ``masks``
    reconstructions: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def roc_scores(self) -> list[str]:
        """The scores drawn in ``roc.png``: nTracks and each model's best."""
        return ["nTracks", *self.best_scores.values()]

    def summary(self) -> dict[str, Any]:
        """The numbers of the tables, as ``results.json`` holds them."""
        label = self.label
        return {
            "test_file": self.test_file, "n_events": int(len(label)), "n_background": int((label == 0).sum()),
            "n_signal": int((label != 0).sum()), "models": list(self.per_model), "detection": self.detection,
            "best_scores": self.best_scores, "aso": self.aso, "aso_settings": self.aso_settings,
            "reconstruction": self.reconstruction,
        }


def _model_label(name: str) -> str:
    return name.upper() if name in ("cae", "ae", "cct") else {
        "codae": "CoDAE", "codvae": "Cat. CoDVAE", "dirvae": "Dirichlet VAE"}.get(name, name)


def physics_scores(test: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The §5.2 baselines: Eq. 4 total energy per channel (:func:`~tfphys.darkshowers.scores.total_energy`,
    summed once when the file is read) and nTracks from the file."""
    out = {f"Total energy ({name})": test["energy"][:, c] for c, name in enumerate(CHANNELS)}
    out["nTracks"] = test["n_tracks"]
    return out


def compute(test: dict[str, np.ndarray], models, *, test_file, seed: int, n_subsets: int = 1000,
            subset_size: int = 2000, progress: bool = True) -> DarkShowerResults:
    """Score ``test`` (:func:`read_test_file`) with the physics baselines and every ``(spec, model)``
    of ``models`` (in order; none is allowed: the baselines alone) and build Tables 1–4."""
    label, mass = test["label"], test["mass"]
    is_signal = label != 0
    all_scores: dict[str, np.ndarray] = physics_scores(test)
    physics = list(all_scores)
    per_model: dict[str, list[str]] = {}
    latents, recons, quality = {}, {}, {}
    names_seen: dict[str, int] = {}
    for spec, model in tqdm(models, desc="models", unit="model", disable=None if progress else True):
        label_name = _model_label(spec.name)
        names_seen[label_name] = names_seen.get(label_name, 0) + 1
        if names_seen[label_name] > 1:
            label_name = f"{label_name} #{names_seen[label_name]}"
        s, recon = model_scores(model, spec, test["masks"], seed=seed)
        keys = []
        for name, values in s.items():
            values, shown = _orient(name, values, is_signal)
            key = f"{label_name} ({shown})"
            all_scores[key] = values
            keys.append(key)
        per_model[label_name] = keys
        if "f_m" in [layer.name for layer in model.layers]:
            latents[label_name.replace(" ", "_").replace(".", "")] = np.stack(
                [s[k] for k in s if k.startswith("Z")], axis=1)
        if recon is not None:
            recons[label_name] = recon
            qcd = label == 0
            quality[label_name] = reconstruction_quality(test["masks"][qcd], recon[qcd])

    table = detection_table(all_scores, label, mass)
    model_best = {m: _best(table, keys) for m, keys in per_model.items()}
    latent_best = {m: _best(table, [k for k in keys if "(Z" in k or "(−Z" in k])
                   for m, keys in per_model.items() if any("(Z" in k or "(−Z" in k for k in keys)}
    candidates = list(dict.fromkeys([*latent_best.values(), *model_best.values()]))
    baselines = ["nTracks", _best(table, physics[:3]), *model_best.values()]
    baselines = list(dict.fromkeys(baselines))
    n_min = min(int((label == 0).sum()),
                *(int(((label == c) & (mass == m)).sum()) for c, m in mass_points(label, mass)))
    size = min(subset_size, 2 * n_min)
    aso = aso_table(all_scores, label, mass, candidates, baselines, n_subsets=n_subsets,
                    subset_size=size, seed=seed)
    return DarkShowerResults(
        test_file=str(test_file), label=label, mass=mass, masks=test["masks"], scores=all_scores,
        physics=physics, per_model=per_model, detection=table, best_scores=model_best, aso=aso,
        aso_settings=f"{n_subsets} class-balanced subsets of {size} events per mass point "
                     f"(paper: 1000 × 2000; capped by the smallest class), 1000 bootstrap iterations",
        reconstruction=quality, latents=latents, reconstructions=recons)


# ------------------------------------------------------------------------------------ report
def _fmt_table(title, table, keys, metric, top_best, scale=100.0, fmt="{:.2f}") -> list[str]:
    points = list(next(iter(table.values()))[metric])
    sigs = [s for s in SIGNALS.values() if any(p.startswith(s) for p in points)]
    head = ["score"]
    for sig in sigs:
        head += [p for p in points if p.startswith(sig)] + [f"m{'AUC' if metric == 'auroc' else 'FPR'} {sig}"]
    cols = {h: [] for h in head[1:]}
    rows = []
    for k in keys:
        row = table[k]
        vals = []
        for sig in sigs:
            vals += [row[metric][p] for p in points if p.startswith(sig)]
            vals.append(row["mean"][sig][0 if metric == "auroc" else 1])
        rows.append((k, vals))
        for h, v in zip(head[1:], vals):
            cols[h].append(v)
    lines = [title, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for k, vals in rows:
        cells = []
        for h, v in zip(head[1:], vals):
            ranked = sorted(cols[h], reverse=top_best)
            bold = v in ranked[:3]
            cell = fmt.format(v * scale)
            cells.append(f"**{cell}**" if bold else cell)
        lines.append(f"| {k} | " + " | ".join(cells) + " |")
    return lines + [""]


def write_tables(path, results: DarkShowerResults) -> Path:
    """``tables.md``: Tables 1–4 of ``results``."""
    results = results.summary()
    table, keys = results["detection"], list(results["detection"])
    lines = [f"# Dark-shower anomaly detection — {results['test_file']}", "",
             f"{results['n_events']} test events: {results['n_background']} QCD, "
             f"{results['n_signal']} signal. Models: {', '.join(results['models'])}. "
             "Scores oriented so that larger = more anomalous (a latent component shown as −Zi was "
             "flipped). Top three per column in bold.", ""]
    lines += _fmt_table("## Table 1 — AUROC (%) per mediator mass (SUEP m_H in GeV, SVJ m_Z' in TeV); "
                        "higher is better", table, keys, "auroc", True)
    lines += _fmt_table("## Table 2 — FPR40 (%): background efficiency at 40 % signal efficiency; "
                        "lower is better", table, keys, "fpr40", False, fmt="{:.3g}")
    aso = results["aso"]
    if aso:
        lines += ["## Table 3 — ASO ε_min (AUROC, 95 % confidence): model score (bold heading) vs "
                  "baseline; smaller = the model dominates more surely (< 0.2 confident, < 0.5 likely)",
                  "", f"AUROC distributions: {results['aso_settings']}", ""]
        points = list(table[keys[0]]["auroc"])
        lines += ["| baseline | " + " | ".join(points) + " |", "|" + "---|" * (len(points) + 1)]
        for cand, row in aso.items():
            lines.append(f"| **{cand}** |" + " |" * len(points))
            for base, eps in row.items():
                lines.append(f"| {base} | " + " | ".join(f"{eps[p]:.2f}" for p in points) + " |")
        lines.append("")
    if results["reconstruction"]:
        lines += ["## Table 4 — reconstruction quality on QCD test images (mean ± std)", "",
                  "| metric | " + " | ".join(results["reconstruction"]) + " |",
                  "|" + "---|" * (len(results["reconstruction"]) + 1)]
        for metric in ("MSE", "SSE", "SSIM"):
            lines.append(f"| {metric} | " + " | ".join(
                f"{q[metric][0]:.4g} (± {q[metric][1]:.2g})" for q in results["reconstruction"].values()) + " |")
        lines += ["", "MSE: mean over the 72 × 58 mask pixels; SSE: summed over them (the paper's "
                  "Table 4 values are on this scale)", ""]
    path = Path(path)
    atomic.write_text(path, "\n".join(lines))
    return path


def write_plots(out, results: DarkShowerResults) -> None:
    """``roc.png`` (nTracks and each model's best score), ``latent_*.png`` (Figure 5) and
    ``reconstructions.png`` (Figure 6) of ``results``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from scipy.stats import gaussian_kde
    from sklearn.metrics import roc_curve

    out = Path(out)
    label, mass = results.label, results.mass
    all_scores, best = results.scores, results.roc_scores
    latents, recons = results.latents, results.reconstructions
    points = mass_points(label, mass)
    cols = 5
    rows = -(-len(points) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.4 * cols, 3.2 * rows), squeeze=False)
    for ax, (cls, m) in zip(axes.flat, points):
        keep = (label == 0) | ((label == cls) & (mass == m))
        for key in best:
            fpr, tpr, _ = roc_curve(label[keep] != 0, np.nan_to_num(all_scores[key][keep], posinf=1e300))
            ax.plot(fpr, tpr, lw=1.2, label=key)
        ax.plot([0, 1], [0, 1], "k:", lw=0.8)
        ax.axhline(FPR_TPR, color="grey", lw=0.6, ls="--")
        ax.set_title(f"{SIGNALS[cls]} {_mass_name(cls, m)} {'GeV' if cls == 1 else 'TeV'}", fontsize=9)
        ax.set_xscale("log")
        ax.set_xlim(1e-3, 1)
        ax.set_xlabel("background efficiency (FPR)", fontsize=8)
        ax.set_ylabel("signal efficiency (TPR)", fontsize=8)
    for ax in list(axes.flat)[len(points):]:
        ax.axis("off")
    axes.flat[0].legend(fontsize=6)
    fig.tight_layout()
    reports.savefig(fig, out / "roc.png", dpi=100)

    colours = {0: "C0", 1: "C1", 2: "C2"}
    for name, z in latents.items():
        fig, axes = plt.subplots(1, 3, figsize=(13, 4))
        for cls, colour in colours.items():
            sel = label == cls
            if not sel.any():
                continue
            axes[0].scatter(z[sel, 0], z[sel, 1], s=3, alpha=0.4, color=colour,
                            label=formats.CLASS_NAMES[cls].upper())
            for i in range(2):
                v = z[sel, i]
                grid = np.linspace(z[:, i].min(), z[:, i].max(), 200)
                if v.std() > 0 and len(v) > 2:
                    axes[i + 1].plot(grid, gaussian_kde(v)(grid), color=colour, label=formats.CLASS_NAMES[cls].upper())
        axes[0].set_xlabel("Z1")
        axes[0].set_ylabel("Z2")
        axes[0].legend()
        for i in range(2):
            axes[i + 1].set_xlabel(f"Z{i + 1}")
            axes[i + 1].set_ylabel("density")
            axes[i + 1].legend()
        fig.suptitle(f"{name}: latent space Z_m (Figure 5)")
        fig.tight_layout()
        reports.savefig(fig, out / f"latent_{name}.png", dpi=100)

    if recons:
        pick = [int(np.flatnonzero(label == 0)[0])] + [int(np.flatnonzero(label == c)[0]) for c in SIGNALS
                                                        if (label == c).any()]
        fig, axes = plt.subplots(len(pick), 1 + len(recons), figsize=(2.2 * (1 + len(recons)), 2.6 * len(pick)),
                                 squeeze=False)
        for r, i in enumerate(pick):
            panels = [("input", results.masks[i])] + [(n, rec[i]) for n, rec in recons.items()]
            for c, (title, img) in enumerate(panels):
                axes[r, c].imshow(img[..., 0], cmap="viridis", vmin=0, vmax=1, aspect="auto")
                axes[r, c].set_xticks([])
                axes[r, c].set_yticks([])
                if r == 0:
                    axes[r, c].set_title(title, fontsize=9)
            axes[r, 0].set_ylabel(formats.CLASS_NAMES[int(label[i])].upper())
        fig.suptitle("inputs and reconstructions (Figure 6)")
        fig.tight_layout()
        reports.savefig(fig, out / "reconstructions.png", dpi=100)


def write_json(path, results: DarkShowerResults) -> Path:
    """``results.json``: every number of the tables."""
    path = Path(path)
    atomic.write_text(path, json.dumps(results.summary(), indent=1, ensure_ascii=False) + "\n")
    return path


def write_scores(path, results: DarkShowerResults) -> Path:
    """``scores.h5``: the per-event scores with ``label`` and ``mass``."""
    path = Path(path)
    with atomic.atomic_path(path) as tmp, h5py.File(tmp, "w") as f:
        f["label"], f["mass"] = results.label.astype(np.int8), results.mass.astype(np.float32)
        f.attrs["test_file"] = results.test_file
        for key, values in results.scores.items():
            f.create_dataset(key.replace("/", "_"), data=np.asarray(values, np.float64))
    return path


def write_report(results: DarkShowerResults, out) -> Path:
    """Every file of ``tfphys-eval`` (see the module docstring) into ``out``; returns ``tables.md``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "results.json", results)
    write_scores(out / "scores.h5", results)
    write_plots(out, results)
    return write_tables(out / "tables.md", results)


# ------------------------------------------------------------------------------------ tfphys-eval
def open_models(runs) -> list[tuple[Any, Any]]:
    """``(spec, model)`` of every run dir in ``runs``, opened by :func:`tfphys.rundir.open_run`
    (a bad run dir or ``model.keras`` is one :class:`TfphysError` line); each must be a
    dark-shower model."""
    models = []
    for run_dir in runs:
        run = rundir.open_run(run_dir)
        if run.spec.evaluate is not evaluate:
            raise TfphysError(f"{run_dir} holds a {run.spec.name} model, not a dark-shower model")
        models.append((run.spec, run.load_model()))
    return models


def evaluate(run: Path, cfg: dict[str, Any], out: Path, data: Path | None, seed: int, *,
             others=(), n_subsets: int = 1000, subset_size: int = 2000) -> Path:
    """Evaluate ``run`` (and ``others``, ``[(run_dir, cfg), …]``) on ``data`` (default: a cached toy
    test set with ``DEFAULT_TEST_N`` events per component); return the path of ``tables.md``."""
    from tfphys.darkshowers.generate import default_dataset

    models = open_models([run, *(run_dir for run_dir, _ in others)])
    if data is None:
        base_seed = int(cfg.get("data", {}).get("default_seed", 20240902))
        data = default_dataset("all", DEFAULT_TEST_N, base_seed + 2)
    results = compute(read_test_file(data), models, test_file=data, seed=seed, n_subsets=n_subsets,
                      subset_size=subset_size)
    return write_report(results, out)
