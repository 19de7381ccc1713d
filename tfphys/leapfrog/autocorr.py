"""Integrated autocorrelation times of Markov chains, averaged over independent chains.

``τ_int = 1 + 2 Σ_t ρ(t)`` with the FFT autocorrelation ``ρ`` averaged over chains and Sokal's
automatic window (``c = 5``; Sokal, *Monte Carlo Methods in Statistical Mechanics*, p. 16) — that is
exactly :func:`emcee.autocorr.integrated_time`, which this module calls. The error is the spread of
the per-chain estimates, ``std / √n_chains``. As in emcee, a chain shorter than ``tol · τ`` gives
no trustworthy number: :func:`integrated_time` raises :class:`UnreliableEstimate` carrying the
estimate (a lower bound), and a quantity that never changed on some chain (frozen topology)
has ``τ_int`` longer than the run, which is also refused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from tfphys.errors import TfphysError


class UnreliableEstimate(TfphysError):
    """The run is too short for ``τ_int``; ``.estimate`` is the (lower-bound) estimate or ``inf``."""

    def __init__(self, estimate, message):
        super().__init__(message)
        self.estimate = float(estimate)


@dataclass(frozen=True)
class AutocorrTime:
    tau: float       #: τ_int in trajectories, from the chain-averaged autocorrelation function
    err: float       #: std of the per-chain estimates / √n_chains
    n_steps: int
    n_chains: int
    reliable: bool   #: n_steps ≥ tol · τ on the averaged ACF and on every chain changed

    @property
    def effective_samples(self) -> float:
        """``n_steps · n_chains / τ_int``."""
        return self.n_steps * self.n_chains / self.tau

    def __str__(self):
        return f"{self.tau:.3g} ± {self.err:.2g}" if self.reliable else f"≳ {self.tau:.3g} (unreliable)"


def integrated_time(series, *, c: float = 5.0, tol: float = 50.0, strict: bool = True) -> AutocorrTime:
    """``τ_int`` of ``series`` of shape ``(n_steps, n_chains)`` (one column per chain).

    ``strict=True`` (default) raises :class:`UnreliableEstimate` when ``n_steps < tol · τ`` or
    when the quantity never changed on some chain; ``strict=False`` returns the estimate with
    ``reliable=False`` instead (``inf`` when nothing ever changed).
    """
    from emcee.autocorr import integrated_time as emcee_time

    x = np.asarray(series, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"integrated_time needs a series of shape (n_steps ≥ 2, n_chains), got {x.shape}")
    n_steps, n_chains = x.shape
    moving = np.ptp(x, axis=0) > 0
    if not moving.any():
        if strict:
            raise UnreliableEstimate(np.inf, f"the quantity never changed in {n_steps} steps on any "
                                             f"of {n_chains} chains: τ_int ≫ {n_steps}")
        return AutocorrTime(np.inf, np.nan, n_steps, n_chains, False)
    log = logging.getLogger("emcee.autocorr")
    level, _ = log.level, log.setLevel(logging.ERROR)  # the too-short warning is ours to report
    try:
        tau = float(emcee_time(x[:, moving], c=c, tol=tol, quiet=True)[0])
        per_chain = np.array([emcee_time(x[:, k], c=c, tol=tol, quiet=True)[0]
                              for k in np.flatnonzero(moving)])
    finally:
        log.setLevel(level)
    err = float(per_chain.std(ddof=1) / np.sqrt(len(per_chain))) if len(per_chain) > 1 else np.nan
    reliable = bool(moving.all() and n_steps >= tol * tau)
    if strict and not reliable:
        why = (f"{n_chains - moving.sum()} of {n_chains} chains never changed" if not moving.all()
               else f"the run ({n_steps} steps) is shorter than {tol:g} τ_int")
        raise UnreliableEstimate(tau, f"τ_int ≈ {tau:.3g} is not trustworthy: {why}")
    return AutocorrTime(tau, err, n_steps, n_chains, reliable)
