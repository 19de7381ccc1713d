"""Nothing half-written under a final name: every output of every command goes through here.

:class:`atomic_path` yields a temporary path in the same directory as the final one; when the block
succeeds the file (or directory) is flushed to disk (``fsync``) and renamed onto the final name with
``os.replace`` (atomic on POSIX within one file system), so a reader sees the old file or the whole
new one, never a truncated one. When the block fails — an exception, or the process is killed — the
final name is untouched; the temporary is removed (or, with ``keep_partial=True``, kept as
``FINAL.part`` for a writer that resumes, e.g. Pythia generation).

Temporary names are hidden (``.NAME.tmp-PID-XXXX.EXT``, the extensions kept for libraries that
look at them: Keras wants ``.keras`` and ``.weights.h5``, matplotlib infers the format), unique
per process (two processes writing the same output never share one), and swept when their
process no longer runs.

:func:`fault_point` is the fault-injection hook of ``tests/core/test_faults.py``: a named point
where a test kills the process (``TFPHYS_FAULT_AT=name`` or ``name:K``, the K-th time it is reached).
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
from pathlib import Path

PARTIAL_SUFFIX = ".part"
_TMP_MARK = ".tmp-"


def partial_path(final) -> Path:
    """The resumable partial file of ``final``: ``FINAL.part`` (see ``keep_partial``)."""
    final = Path(final)
    return final.with_name(final.name + PARTIAL_SUFFIX)


def _split(name: str) -> tuple[str, str]:
    """``"latest.weights.h5"`` → ``("latest", ".weights.h5")``: every extension is kept (Keras
    checks ``.weights.h5``)."""
    base = name.lstrip(".").split(".", 1)[0]
    return base, name[name.index(base) + len(base):]


def final_of(path) -> Path:
    """The final name a temporary of :class:`atomic_path` stands for (``path`` itself otherwise)."""
    path = Path(path)
    if path.name.endswith(PARTIAL_SUFFIX):
        return path.with_name(path.name[: -len(PARTIAL_SUFFIX)])
    found = re.fullmatch(r"\.(.+?)" + re.escape(_TMP_MARK) + r"\d+-[0-9a-f]+(.*)", path.name)
    return path.with_name(found.group(1) + found.group(2)) if found else path


def _fsync(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems (or directories on them) refuse fsync; the rename still holds
        pass
    finally:
        os.close(fd)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def sweep(final) -> None:
    """Remove the temporaries of ``final`` left by processes that no longer run (killed writers)."""
    final = Path(final)
    prefix = f".{_split(final.name)[0]}{_TMP_MARK}"
    try:
        candidates = [p for p in final.parent.iterdir() if p.name.startswith(prefix)]
    except OSError:
        return
    for p in candidates:
        pid = p.name[len(prefix):].split("-", 1)[0]
        if pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid)):
            _remove(p)


class atomic_path:  # noqa: N801 — used like a function: ``with atomic_path(final) as tmp:``
    """``with atomic_path(final) as tmp:`` write ``tmp`` (a file, or a directory you create);
    on success it is fsynced and renamed onto ``final``; on failure ``final`` is left as it was.

    ``keep_partial``: the temporary is ``FINAL.part`` (one fixed name) and is kept on failure, for a
    writer that resumes from it; it must not exist twice at once (the caller's lock or HDF5's own
    file lock sees to that). Also usable without ``with``: :meth:`open`, then :meth:`commit` or
    :meth:`abort` (e.g. a writer object that lives across calls).
    """

    def __init__(self, final, *, keep_partial: bool = False):
        self.final = Path(final)
        self.keep_partial = keep_partial
        if keep_partial:
            self.tmp = partial_path(self.final)
        else:
            base, ext = _split(self.final.name)
            self.tmp = self.final.with_name(f".{base}{_TMP_MARK}{os.getpid()}-{secrets.token_hex(3)}{ext}")
        self._open = False

    def open(self) -> Path:
        sweep(self.final)
        self._open = True
        return self.tmp

    def commit(self) -> Path:
        """Flush the temporary to disk and rename it onto the final name."""
        if not self._open:
            return self.final
        self._open = False
        if self.tmp.is_dir():
            for p in self.tmp.rglob("*"):
                if p.is_file():
                    _fsync(p)
        return rename(self.tmp, self.final)

    def abort(self) -> None:
        """Leave the final name alone; drop the temporary (kept with ``keep_partial``)."""
        if not self._open:
            return
        self._open = False
        if not self.keep_partial:
            _remove(self.tmp)

    def __enter__(self) -> Path:
        return self.open()

    def __exit__(self, kind, value, tb):
        if kind is None:
            self.commit()
        else:
            self.abort()
        return False


def rename(done, final) -> Path:
    """Flush the complete file ``done`` to disk and rename it onto ``final`` (``os.replace``)."""
    done, final = Path(done), Path(final)
    _fsync(done)
    fault_point("before-rename")
    os.replace(done, final)
    _fsync(final.parent)
    return final


def write_bytes(final, data: bytes) -> Path:
    """``final`` holds ``data``, written through :class:`atomic_path`."""
    with atomic_path(final) as tmp:
        Path(tmp).write_bytes(data)
    return Path(final)


def write_text(final, text: str) -> Path:
    """``final`` holds ``text`` (UTF-8), written through :class:`atomic_path`."""
    return write_bytes(final, text.encode("utf-8"))


_FAULT_COUNTS: dict[str, int] = {}


def fault_point(name: str) -> None:
    """Fault injection for tests: SIGKILL this process at the named point when ``TFPHYS_FAULT_AT``
    is ``name`` (the first time it is reached) or ``name:K`` (the K-th time). Costs one dict lookup."""
    wanted = os.environ.get("TFPHYS_FAULT_AT")
    if not wanted:
        return
    target, _, k = wanted.partition(":")
    if target != name:
        return
    _FAULT_COUNTS[name] = _FAULT_COUNTS.get(name, 0) + 1
    if _FAULT_COUNTS[name] >= int(k or 1):
        os.kill(os.getpid(), signal.SIGKILL)
