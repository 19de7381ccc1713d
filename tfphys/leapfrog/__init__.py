"""LeapfrogLayers — trainable, reversible leapfrog updates for 2D U(1) (Foreman et al. 2021).

``u1`` (links, plaquettes, Wilson action, topological charges, exact results) → ``hmc`` (the plain
HMC baseline) → ``sampler`` (the generalised leapfrog, its nets and its training step) →
``autocorr`` (τ_int) → ``evaluate`` (LeapfrogLayers against HMC, the paper's Figures 4–7).
This module declares the family for the registry (:data:`FAMILY`).
"""

from __future__ import annotations

import tensorflow as tf

from tfphys import config as configs
from tfphys.config import Key, Moved
from tfphys.errors import TfphysError
from tfphys.leapfrog import evaluate, sampler
from tfphys.registry import Family, ModelSpec


def _datasets(cfg, path, seed):
    """The "data" of a sampler: ``tf.data`` streams of step indices ("ticks"), one trajectory of
    every chain per element. The annealed β_t is computed in ``train_step`` from the optimizer's
    step count (so a resumed run continues the schedule); ``[pipeline] steps_per_epoch`` ticks
    per epoch train, ``val_steps`` ticks run the validation chains at the target β."""
    pipe = cfg["pipeline"]
    steps, val_steps = int(pipe["steps_per_epoch"]), int(pipe["val_steps"])
    if steps < 1 or val_steps < 1:
        raise TfphysError(f"[pipeline] steps_per_epoch and val_steps must be ≥ 1, got {steps}, {val_steps}")
    return tf.data.Dataset.range(steps), tf.data.Dataset.range(val_steps)


_ONE_SEED = "one seed per run: it starts the chains and draws the masks"
# The keys, types and defaults of every section (tfphys.config; [model]: build_leapfrog's).
SCHEMA = {
    "data": {},  # no data file: the chains start hot (uniform links, seeded) and live in the model
    "pipeline": {
        "steps_per_epoch": Key(int, 100, "training trajectories (one per chain) per epoch"),
        "val_steps": Key(int, 10, "validation trajectories per epoch, separate chains, at the target β"),
    },
    "model": {**configs.model_keys(sampler.build_leapfrog, exclude=("mask_seed",)),
              "seed": Moved("[train] seed", _ONE_SEED), "mask_seed": Moved("[train] seed", _ONE_SEED)},
    "eval": {  # tfphys-eval RUN (tfphys/leapfrog/evaluate.py, DEFAULTS; the rules in its docstring)
        "thermalise": Key(int, 600, "HMC trajectories from a hot start, β ramped up, before measuring"),
        "trajectories": Key(int, 1000, "measured trajectories per sampler at the target β, at least"),
        "max_trajectories": Key(int | None, None, "... extended until ≥ 50 τ_int(Q_Z), up to this many (unset: 20×)"),
        "max_cpu_s": Key(float | None, None, "... or this many CPU-seconds of sampling per sampler (unset: no cap)"),
        "betas": Key(list[float], [2.0, 3.0, 4.0, 5.0, 6.0, 7.0], "Figure 4 scan and the exact checks"),
        "scan_trajectories": Key(int, 300, "measured trajectories per sampler and β of the scan, at least"),
        "scan_max_trajectories": Key(int | None, None, "scan: the cap on trajectories (unset: 20×)"),
        "scan_max_cpu_s": Key(float | None, None, "scan: the cap on CPU-seconds per sampler and β"),
        "scan_thermalise": Key(int, 300, "thermalisation trajectories per β of the scan"),
        "lengths": Key(list[int], [10, 20, 40], "best-tuned HMC: the N_LF of the scan (Figure 5)"),
        "hmc_step_sizes": Key(list[float], [0.1, 0.125], "best-tuned HMC: the ε of the scan"),
        "chains": Key(int | None, None, "chains per sampler (unset: the model's n_chains)"),
    },
}

SPEC = ModelSpec(
    name="leapfrog", family="leapfrog", build=sampler.build_leapfrog, datasets=_datasets,
    loss=lambda: None, metrics=lambda: [], monitor="val_loss", mode="min",
    description="LeapfrogLayers: trainable generalised HMC for 2D U(1) (Foreman et al. 2021)",
    reads_data=False, exportable=False,
    not_exportable="leapfrog is an MCMC sampler (random trajectories + Metropolis test), not an inference "
                   "model: it has no TFLite export; evaluate it with tfphys-eval RUN",
    evaluate=evaluate.evaluate_run, schema=SCHEMA,
    single_replica="its data are its own Markov chains, held in the model: every replica would run "
                   "the same chains, and the chain update is not a mirrored one",
)

FAMILY = Family(
    name="leapfrog",
    description="trainable leapfrog HMC that tunnels between topological sectors of 2D U(1) (LeapfrogLayers)",
    specs=(SPEC,),
)
