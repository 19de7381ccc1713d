"""Plain progress lines for logs: what a Keras progress bar shows, when stdout is not a terminal.

Keras's ``verbose=2`` prints once per epoch, so a paper-size epoch redirected to a file (CI, ``nohup``,
``| tee``) is a minute of silence. :class:`StepLines` prints one line at an epoch's first step (it
carries the tracing cost), then every ``every_s`` seconds or every ``every_steps`` steps, and at its
last step::

    epoch 1/3 step 12/63 loss 0.0213 32.4 img/s ETA 1m34s
"""

from __future__ import annotations

import numbers
import sys
import time

import keras


def _duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


class StepLines(keras.callbacks.Callback):
    """One line per ``every_s`` seconds (or ``every_steps`` steps) of training, on ``stream``.

    ``batch_size``: samples per step, for the rate (``img/s``); without it the rate is in steps/s.
    ``every_steps``: a fixed cadence instead of the clock (for tests and reproducible logs).
    """

    def __init__(self, *, batch_size: int | None = None, every_s: float = 10.0,
                 every_steps: int | None = None, stream=None):
        super().__init__()
        if every_steps is not None and every_steps <= 0:
            raise ValueError(f"every_steps must be a positive number of steps, got {every_steps}")
        self.batch_size, self.every_s, self.every_steps = batch_size, every_s, every_steps
        self.stream = stream

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        self._start = self._last = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        steps = self.params.get("steps")
        done = batch + 1
        now = time.perf_counter()
        if self.every_steps is not None:
            due = done % self.every_steps == 0
        else:
            due = now - self._last >= self.every_s
        if not (due or done == 1 or done == steps):
            return
        self._last = now
        elapsed = now - self._start
        if done == 1:
            self._first = now
        # The first step carries the tracing (and the pipeline's first fill): the rate and the ETA
        # are of the steps after it, or a paper-size epoch's ETA starts several times too long.
        steady = (done - 1, now - self._first) if done > 1 else (done, elapsed)
        rate = steady[0] / steady[1] if steady[1] > 0 else float("nan")
        parts = [f"epoch {self._epoch + 1}/{self.params.get('epochs', '?')}",
                 f"step {done}/{steps if steps else '?'}"]
        parts += [f"{k} {v:.4g}" for k, v in (logs or {}).items() if isinstance(v, numbers.Real)]
        parts.append(f"{rate * self.batch_size:.1f} img/s" if self.batch_size else f"{rate:.2f} steps/s")
        if steps and done < steps:
            parts.append(f"ETA {_duration((steps - done) / rate)}")
        elif done == steps:
            parts.append(f"in {_duration(elapsed)}")
        print(" ".join(parts), file=self.stream or sys.stdout, flush=True)
