"""Terminal hygiene for the command-line tools."""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile

from tfphys.errors import TfphysError


@contextlib.contextmanager
def quiet():
    """Park file descriptors 1 and 2 in a temporary file for the duration of the block.

    TensorFlow's C++ runtime and the TFLite converter write notes straight to the descriptors
    (start-up banners, "Saved artifact at …", MLIR dumps); Python-level redirection cannot catch
    them. What was parked is replayed to stderr only if the block raises something other than a
    user error (so a bug keeps its context, and a clean run stays clean).
    """
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with tempfile.TemporaryFile() as parked:
        os.dup2(parked.fileno(), 1)
        os.dup2(parked.fileno(), 2)
        try:
            yield
        except TfphysError:
            raise
        except BaseException:
            _restore(saved)
            parked.seek(0)
            sys.stderr.write(parked.read().decode(errors="replace")[-20_000:])
            raise
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            _restore(saved)


def _restore(saved):
    for fd, copy in zip((1, 2), saved):
        try:
            os.dup2(copy, fd)
        except OSError:
            pass
