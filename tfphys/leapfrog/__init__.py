"""LeapfrogLayers — trainable, reversible leapfrog updates for 2D U(1) (Foreman et al. 2021).

``u1`` (links, plaquettes, Wilson action, topological charges, exact results) → ``hmc`` (the plain
HMC baseline) → ``sampler`` (the generalised leapfrog, its nets and its training step) →
``autocorr`` (τ_int) → ``evaluate`` (LeapfrogLayers against HMC, the paper's Figures 4–7).
This module declares the family for the registry (:data:`FAMILY`).
"""

from __future__ import annotations

import tensorflow as tf

from tfphys.errors import TfphysError
from tfphys.leapfrog import evaluate, sampler
from tfphys.registry import Family, ModelSpec


def _datasets(cfg, path, seed):
    """The "data" of a sampler: ``tf.data`` streams of step indices ("ticks"), one trajectory of
    every chain per element. The annealed β_t is computed in ``train_step`` from the optimizer's
    step count (so a resumed run continues the schedule); ``[pipeline] steps_per_epoch`` ticks
    per epoch train, ``val_steps`` ticks run the validation chains at the target β."""
    pipe = cfg.get("pipeline", {})
    steps, val_steps = int(pipe.get("steps_per_epoch", 100)), int(pipe.get("val_steps", 10))
    if steps < 1 or val_steps < 1:
        raise TfphysError(f"[pipeline] steps_per_epoch and val_steps must be ≥ 1, got {steps}, {val_steps}")
    return tf.data.Dataset.range(steps), tf.data.Dataset.range(val_steps)


SPEC = ModelSpec(
    name="leapfrog", family="leapfrog", build=sampler.build_leapfrog, datasets=_datasets,
    loss=lambda: None, metrics=lambda: [], monitor="val_loss", mode="min",
    description="LeapfrogLayers: trainable generalised HMC for 2D U(1) (Foreman et al. 2021)",
    reads_data=False, exportable=False,
    not_exportable="leapfrog is an MCMC sampler (random trajectories + Metropolis test), not an inference "
                   "model: it has no TFLite export; evaluate it with tfphys-eval RUN",
    evaluate=evaluate.evaluate_run,
    single_replica="its data are its own Markov chains, held in the model: every replica would run "
                   "the same chains, and the chain update is not a mirrored one",
)

FAMILY = Family(
    name="leapfrog",
    description="trainable leapfrog HMC that tunnels between topological sectors of 2D U(1) (LeapfrogLayers)",
    specs=(SPEC,),
)
