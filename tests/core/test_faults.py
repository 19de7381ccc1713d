"""Kill anywhere, rerun, same result; two at once; a full disk (issue 21).

Every long command is run in a fresh process (as a user runs it) and SIGKILLed at a named point
(``TFPHYS_FAULT_AT=name[:K]``, :func:`tfphys.atomic.fault_point`: the K-th time the point is
reached): inside an HDF5 chunk (``mid-chunk``), after one (``after-chunk``), just before an output's
rename (``before-rename``: every output is written under a temporary name, so this is "mid-write"
of any file — a report's K-th file, a checkpoint, a shard), inside a training epoch (``mid-epoch``)
or its backup (``mid-checkpoint-write``), before a shard or a merge is renamed. Then the same
command is rerun: it completes, its output equals an uninterrupted run's (bit for bit: HDF5
datasets and attributes, history.csv, report.md), no final name ever held a partial file, and no
temporary is left behind.
"""

from __future__ import annotations

import fcntl
import io
import os
import resource
import signal
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import pytest

from export.files import LOCK
from tests.conftest import TINY_CONFIG, sparse_events
from tfphys.darkshowers import format as formats

BIN = Path(sys.executable).parent
KILLED = -signal.SIGKILL

def environment(cwd: Path, fault: str | None = None) -> dict[str, str]:
    """The environment of a command run in ``cwd``: its own data cache, ``fault`` as TFPHYS_FAULT_AT."""
    env = {k: v for k, v in os.environ.items() if k != "TFPHYS_FAULT_AT"}
    env.update(TF_CPP_MIN_LOG_LEVEL="3", TFPHYS_CACHE=str(cwd / "cache"))
    if fault:
        env["TFPHYS_FAULT_AT"] = fault
    return env


def run(cwd: Path, command: str, *args, fault: str | None = None, fsize: int | None = None):
    """``command args`` in a fresh process in ``cwd``; ``fault``: TFPHYS_FAULT_AT; ``fsize``: a
    file-size limit (RLIMIT_FSIZE: a write past it fails with EFBIG, as on a full disk, also as root)."""
    env = environment(cwd, fault)

    def limits():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        if fsize:
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))

    return subprocess.run([str(BIN / command), *map(str, args)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=900, preexec_fn=limits)


def ok(done):
    assert done.returncode == 0, done.stderr[-3000:]
    return done


def killed(done):
    assert done.returncode == KILLED, (done.returncode, done.stderr[-3000:])


def content(path) -> dict:
    """Every dataset's bytes, dtype and shape and every attribute of an HDF5 file."""
    out = {}
    with h5py.File(path, "r") as f:
        out["/"] = sorted((k, repr(v)) for k, v in f.attrs.items())

        def visit(name, obj):
            attrs = sorted((k, repr(v)) for k, v in obj.attrs.items())
            out[name] = (obj[()].tobytes(), obj.dtype.str, obj.shape, attrs) if isinstance(obj, h5py.Dataset) else attrs

        f.visititems(visit)
    return out


def leftovers(folder: Path) -> list[str]:
    """Temporaries (``.NAME.tmp-PID-…``) and partial files (``.part``) under ``folder``."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")
                  if ".tmp-" in p.name or p.name.endswith(".part"))


# ------------------------------------------------------------------------------ data commands
GENERATE = {
    "toy": ["darkshowers", "--process", "all", "--n", "2", "--seed", "3"],  # 10 chunks of 2 events
    "pythia": ["darkshowers", "--generator", "pythia", "--process", "qcd", "--n", "2", "--seed", "3",
               "--workers", "1"],
    "cbae": ["cbae", "--n", "64", "--seed", "3"],
    "albus": ["albus", "--background", "2", "--per-level", "1", "--levels", "12", "--psd", "analytic",
              "--workers", "1", "--seed", "3"],
}
# (command, kill point)
DATA_KILLS = [
    ("toy", "mid-chunk:5"), ("toy", "before-rename"),
    ("pythia", "mid-chunk"), ("pythia", "after-chunk"),  # after-chunk: the rerun resumes from x.h5.part
    ("cbae", "mid-chunk"), ("albus", "after-chunk:2"),
]


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("faults")


@pytest.fixture(scope="module")
def references(work):
    """Each data command's output, uninterrupted."""
    made = {}

    def get(kind):
        if kind not in made:
            out = work / f"ref-{kind}.h5"
            ok(run(work, "tfphys-data", *GENERATE[kind], "--out", out))
            made[kind] = content(out)
        return made[kind]

    return get


@pytest.mark.parametrize("kind, point", DATA_KILLS, ids=[f"{k}-{p}" for k, p in DATA_KILLS])
def test_a_data_command_killed_anywhere_reruns_to_the_same_file(work, references, kind, point):
    folder = work / f"{kind}-{point.replace(':', '-')}"
    folder.mkdir()
    out = folder / "x.h5"
    killed(run(folder, "tfphys-data", *GENERATE[kind], "--out", out, fault=point))
    assert not out.exists()  # nothing under the final name until the file is whole
    if kind == "pythia" and point == "after-chunk":
        assert (folder / "x.h5.part").exists()  # the finished chunk is kept for the resume
    ok(run(folder, "tfphys-data", *GENERATE[kind], "--out", out))
    assert content(out) == references(kind)
    assert leftovers(folder) == []


# ----------------------------------------------------------------------------- tfphys-train
# A seeded run with the shuffle and the §4.2 augmentation on (the tiny config's defaults): every epoch's
# order and augmentation are a pure function of (seed, epoch) (tfphys.datasets.Epochs), so a resumed
# run must give the uninterrupted run's history and weights bit for bit.
TINY_SHUFFLED = TINY_CONFIG.replace("[pipeline]\n", "[pipeline]\nshuffle_buffer = 64\naugmentation = true\n")


def train_args(data, out):
    return ["tfphys-train", "codae", "--config", "tiny.toml", "--data", data, "--epochs", "3", "--out", out]


@pytest.fixture(scope="module")
def codae_run(work):
    """A tiny CoDAE run (3 epochs of 3 steps) and its data: the reference of the kills, the run scored
    and evaluated."""
    data = work / "qcd.h5"
    formats.write_darkshowers(data, [sparse_events(32, seed=1)], generator="test")
    (work / "tiny.toml").write_text(TINY_SHUFFLED)
    ok(run(work, *train_args(data, "codae")))
    return work / "codae", data


# 24 training events, batch 8: 3 steps an epoch. mid-epoch:5 is in the 2nd epoch; mid-checkpoint-write:2
# is inside the 2nd epoch's backup; before-rename:4 is the 1st epoch's backup (after config.toml,
# best.keras and history.png): no epoch committed, the rerun starts afresh.
TRAIN_KILLS = ["mid-epoch:5", "mid-checkpoint-write:2", "before-rename:4"]


@pytest.mark.parametrize("point", TRAIN_KILLS)
def test_training_killed_mid_epoch_or_mid_checkpoint_resumes_to_the_same_run(work, codae_run, point):
    reference, data = codae_run
    out = work / f"codae-{point.replace(':', '-')}"
    killed(run(work, *train_args(data, out), fault=point))
    assert not (out / "model.keras").exists()  # an unfinished run is not taken for a finished one
    ok(run(work, *train_args(data, out)))
    assert (out / "history.csv").read_bytes() == (reference / "history.csv").read_bytes()
    with zipfile.ZipFile(out / "model.keras") as a, zipfile.ZipFile(reference / "model.keras") as b:
        assert _same_weights(a.read("model.weights.h5"), b.read("model.weights.h5"))  # bit for bit
    assert not (out / "backup").exists() and leftovers(out) == []


def test_every_epoch_is_a_new_order_and_the_same_whether_reached_directly_or_after_a_resume(codae_run):
    """Epoch k of a stream started at 0 equals epoch k of one started at k (what a resumed run
    trains on), with the shuffle and the augmentation on; epochs 0 and 1 differ in order and
    augmentation; the same seed gives the same epochs, another seed others."""
    import numpy as np

    from tfphys.darkshowers import pipeline

    _, data = codae_run

    def epochs(seed):
        train, _ = pipeline.autoencoder_epochs(data, batch_size=8, seed=seed, val_fraction=0.25,
                                               shuffle_buffer=64, augmentation=True)
        return train

    def batches(ds):
        return [x.numpy() for x, _ in ds]

    train = epochs(1)
    assert train.steps == 3
    whole = batches(train.stream(0, 3))
    assert len(whole) == 9
    resumed = batches(train.stream(2, 3))
    assert all(np.array_equal(a, b) for a, b in zip(whole[6:], resumed, strict=True))  # epoch 2 after a resume
    direct = batches(epochs(1).epoch(1))
    assert all(np.array_equal(a, b) for a, b in zip(whole[3:6], direct, strict=True))  # a fresh pipeline
    first, second = np.concatenate(whole[:3]), np.concatenate(whole[3:6])
    assert not np.array_equal(first, second)  # a new order (and augmentation) every epoch
    assert sorted(first.sum(axis=(1, 2, 3))) == sorted(second.sum(axis=(1, 2, 3)))  # the same events' hits
    assert not np.array_equal(first, np.concatenate(batches(epochs(2).epoch(0))))


def _same_weights(x: bytes, y: bytes) -> bool:
    """Two Keras weight files (HDF5 bytes) hold the same arrays, bit for bit."""
    with h5py.File(io.BytesIO(x), "r") as a, h5py.File(io.BytesIO(y), "r") as b:
        names, other = [], []
        a.visit(names.append)
        b.visit(other.append)
        return names == other and len(names) > 0 and all(
            not isinstance(a[n], h5py.Dataset) or a[n][()].tobytes() == b[n][()].tobytes() for n in names)


# ----------------------------------------------------------------------------- tfphys-score
def test_scoring_killed_mid_shard_and_mid_merge_reruns_to_the_same_scores(work, codae_run):
    run_dir, data = codae_run
    ref, cut = work / "scores-ref", work / "scores-cut"
    for shard in ("0/2", "1/2"):
        ok(run(work, "tfphys-score", "shard", run_dir, "--data", data, "--out", ref, "--shard", shard))
    ok(run(work, "tfphys-score", "merge", ref))
    ok(run(work, "tfphys-score", "shard", run_dir, "--data", data, "--out", cut, "--shard", "0/2"))
    killed(run(work, "tfphys-score", "shard", run_dir, "--data", data, "--out", cut, "--shard", "1/2",
               fault="mid-shard"))
    assert sorted(p.name for p in cut.glob("scores-*")) == ["scores-00000-of-00002.h5"]
    merged = run(work, "tfphys-score", "merge", cut)  # the killed shard is missing, not half there
    assert merged.returncode == 1 and "never scored" in merged.stderr and not (cut / "scores.h5").exists()
    ok(run(work, "tfphys-score", "shard", run_dir, "--data", data, "--out", cut, "--shard", "1/2"))
    killed(run(work, "tfphys-score", "merge", cut, fault="mid-merge"))
    assert not (cut / "scores.h5").exists()
    ok(run(work, "tfphys-score", "merge", cut))
    for name in ("scores-00000-of-00002.h5", "scores-00001-of-00002.h5", "scores.h5"):
        a, b = content(ref / name), content(cut / name)
        a["/"] = [kv for kv in a["/"] if kv[0] not in ("data", "run")]
        b["/"] = [kv for kv in b["/"] if kv[0] not in ("data", "run")]
        assert a == b, name
    assert leftovers(cut) == []


# ------------------------------------------------------------------------------ tfphys-eval
def test_eval_killed_mid_report_reruns_to_the_same_report(work, codae_run):
    """The dark-shower report (results.json, scores.h5, figures, tables.md), killed before its 1st
    and its 3rd file is renamed into place, then rerun: the same files, tables.md and results.json
    byte for byte, scores.h5 dataset for dataset."""
    run_dir, _ = codae_run
    test = work / "labelled.h5"
    formats.write_darkshowers(test, [sparse_events(16, seed=11), sparse_events(16, label=1, mass=400.0,
                                                                                  hits=(60, 160), seed=12)],
                              generator="test")
    ok(run(work, "tfphys-eval", run_dir, "--data", test, "--out", "eval-ref"))
    for k in (1, 3):
        killed(run(work, "tfphys-eval", run_dir, "--data", test, "--out", "eval-cut", fault=f"before-rename:{k}"))
        done = sorted(p.name for p in (work / "eval-cut").iterdir() if not p.name.startswith("."))
        assert len(done) == k - 1  # the files renamed before the kill, whole; nothing else under a final name
    ok(run(work, "tfphys-eval", run_dir, "--data", test, "--out", "eval-cut"))
    names = sorted(p.name for p in (work / "eval-ref").iterdir())
    assert sorted(p.name for p in (work / "eval-cut").iterdir()) == names and "tables.md" in names
    for name in ("tables.md", "results.json"):
        text = (work / "eval-cut" / name).read_text().replace("eval-cut", "eval-ref")
        assert text == (work / "eval-ref" / name).read_text(), name
    assert content(work / "eval-cut" / "scores.h5") == content(work / "eval-ref" / "scores.h5")
    assert leftovers(work / "eval-cut") == []


# ---------------------------------------------------------------------------- tfphys-export
EXPORT = ["--float32", "--iterations", "3", "--warmup", "1", "--samples", "4", "--no-submodels"]


def test_export_killed_mid_conversion_and_mid_report_reruns_to_the_same_export(work, codae_run):
    """Killed before its 1st file is renamed (the .tflite: mid-conversion) and between report.md and
    report.json (mid-report), then rerun: the same files; the deterministic part of report.json
    (everything but timings, machine load and the hashes of report.md / latency.png) equal."""
    import json

    run_dir, _ = codae_run
    ref, cut = work / "export-ref", work / "export-cut"
    ok(run(work, "tfphys-export", run_dir, *EXPORT, "--out", ref))
    killed(run(work, "tfphys-export", run_dir, *EXPORT, "--out", cut, fault="before-rename:1"))
    assert not cut.exists() or not [p for p in cut.iterdir() if not p.name.startswith(".")]
    killed(run(work, "tfphys-export", run_dir, *EXPORT, "--out", cut, fault="mid-report"))
    assert (cut / "report.md").exists() and not (cut / "report.json").exists()  # not taken for whole
    ok(run(work, "tfphys-export", run_dir, *EXPORT, "--out", cut))
    names = sorted(p.name for p in ref.iterdir() if not p.name.startswith("."))
    assert sorted(p.name for p in cut.iterdir() if not p.name.startswith(".")) == names
    a, b = (json.loads((d / "report.json").read_text()) for d in (ref, cut))
    assert a.keys() == b.keys()
    for key in ("model", "precision", "batch_size", "size_bytes", "size_bytes_float32", "budget_ms",
                "max_abs_diff", "auroc_float32", "auroc_exported", "flops", "submodels", "ops"):
        assert a.get(key) == b.get(key), key  # the deterministic part (the rest: timings, load)
    models = {k: v for k, v in a["sha256"].items() if k.endswith((".tflite", ".onnx"))}
    assert models and models == {k: v for k, v in b["sha256"].items() if k.endswith((".tflite", ".onnx"))}
    assert leftovers(cut) == []


# ------------------------------------------------------------------- tfphys-eval of a leapfrog run
def _deterministic(report: str) -> list[str]:
    """The lines of a leapfrog report.md that do not depend on the machine (no CPU time in them):
    headings, the trained step sizes, the exact values and the training curve (from history.csv)."""
    lines = report.splitlines()
    curve = lines.index("## Training curve")
    return [ln for ln in lines[:curve] if ln.startswith(("#", "Trained ε", "Exact values", "!["))] + lines[curve:]


def test_leapfrog_report_killed_mid_report_reruns_to_the_same_report(work):
    """A tiny leapfrog run's report (PNGs, then report.md), killed before its 1st and its last file is
    renamed into place, then rerun: the same files, and report.md equal in everything that is not a
    CPU time; report.md never exists before the report is whole."""
    from tests.conftest import TINY_MODELS
    from tfphys import config as configs

    cfg = configs.load(configs.default_config_path("leapfrog"))
    cfg["model"] = dict(TINY_MODELS["leapfrog"])
    cfg["train"].update(epochs=1, seed=1)
    cfg["pipeline"].update(steps_per_epoch=3, val_steps=2)
    cfg["eval"] = dict(thermalise=5, trajectories=20, betas=[2.0], scan_trajectories=10, scan_thermalise=2,
                       lengths=[1])
    configs.save(cfg, work / "leapfrog.toml")
    ok(run(work, "tfphys-train", "leapfrog", "--config", work / "leapfrog.toml", "--out", "lf"))
    ok(run(work, "tfphys-eval", "lf", "--out", "lf-ref"))
    names = sorted(p.name for p in (work / "lf-ref").iterdir() if not p.name.startswith("."))
    assert "report.md" in names and len(names) >= 3
    for k in (1, len(names)):  # the first PNG, and report.md (written last)
        killed(run(work, "tfphys-eval", "lf", "--out", "lf-cut", fault=f"before-rename:{k}"))
        done = [p.name for p in (work / "lf-cut").iterdir() if not p.name.startswith(".")]
        assert len(done) == k - 1 and "report.md" not in done
    ok(run(work, "tfphys-eval", "lf", "--out", "lf-cut"))
    assert sorted(p.name for p in (work / "lf-cut").iterdir() if not p.name.startswith(".")) == names
    a, b = ((work / d / "report.md").read_text() for d in ("lf-ref", "lf-cut"))
    assert _deterministic(a) == _deterministic(b.replace("lf-cut", "lf-ref"))
    assert leftovers(work / "lf-cut") == []


# ------------------------------------------------------------------------------ concurrency
def test_a_second_train_on_the_same_run_dir_refuses_in_one_line(work, codae_run):
    out = work / "locked"
    out.mkdir()
    with open(out / ".lock", "a") as held:  # another tfphys-train holds the run dir
        fcntl.flock(held, fcntl.LOCK_EX)
        done = run(work, *train_args(codae_run[1], out))
    assert done.returncode == 1
    assert done.stderr.strip().splitlines()[-1].startswith("tfphys-train: error: ")
    assert "being written by another tfphys-train" in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == [".lock"]  # nothing written
    # the lock of a killed process does not stick: the kill tests above reran into their run dirs


def test_an_export_into_a_folder_another_export_holds_waits_its_turn(work, codae_run):
    """While another export holds the folder (its flock on .export.lock), a second export says it waits
    in one line and writes nothing there; once the folder is free it writes its whole report."""
    import json
    import time

    out = work / "export-shared"
    out.mkdir()
    (out / "report.md").write_text("the other export's report, being written\n")
    with open(out / LOCK, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        proc = subprocess.Popen([str(BIN / "tfphys-export"), str(codae_run[0]), *EXPORT, "--out", str(out)],
                                cwd=work, env=environment(work), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True)
        seen = []
        while not any("waiting for another export" in line for line in seen):
            line = proc.stderr.readline()
            assert line, (proc.wait(timeout=60), seen, proc.stdout.read()[-2000:])  # exited before waiting
            seen.append(line)
        assert seen[-1].strip() == f"tfphys-export: waiting for another export into {out} to finish"
        time.sleep(3)  # it keeps waiting, and has written nothing
        assert proc.poll() is None
        assert sorted(p.name for p in out.iterdir()) == sorted([LOCK, "report.md"])
        assert (out / "report.md").read_text() == "the other export's report, being written\n"
    stdout, stderr = proc.communicate(timeout=900)  # the folder is free
    assert proc.returncode == 0, stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["precision"] == "float32" and report["n_validation"] == 8
    markdown = (out / "report.md").read_text()
    assert "being written" not in markdown and markdown.count("\n# ") + markdown.startswith("# ") == 1
    assert leftovers(out) == []


def test_two_processes_filling_one_cache_entry_make_one_valid_file(work):
    code = ("import sys, time; from pathlib import Path; from tfphys.cache import cached; calls = []\n"
            "def build(tmp):\n"
            "    calls.append(1); Path(tmp).write_bytes(b'x' * 100000); time.sleep(2)\n"
            "p = cached('entry.bin', build); print(len(calls), p.stat().st_size)\n")
    env = {**os.environ, "TFPHYS_CACHE": str(work / "shared-cache"), "TF_CPP_MIN_LOG_LEVEL": "3"}
    procs = [subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-2000:] for o in outs]
    lines = sorted(o[0].strip().splitlines()[-1] for o in outs)
    assert lines == ["0 100000", "1 100000"]  # one built it, the other found it built
    assert sorted(p.name for p in (work / "shared-cache").iterdir()) == [".entry.bin.lock", "entry.bin"]


# ------------------------------------------------------------------------------- full disk
def test_a_full_disk_gives_one_line_and_keeps_the_earlier_outputs(work, codae_run):
    folder = work / "full"
    folder.mkdir()
    ok(run(folder, "tfphys-data", *GENERATE["cbae"], "--out", "x.h5"))
    before = (folder / "x.h5").read_bytes()
    done = run(folder, "tfphys-data", "cbae", "--n", "4000", "--seed", "4", "--out", "x.h5", fsize=len(before))
    assert done.returncode == 1, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tfphys-data: error: cannot write ")
    assert "x.h5" in lines[0] and "File too large" in lines[0]
    assert (folder / "x.h5").read_bytes() == before  # the earlier output is intact
    assert leftovers(folder) == []
    done = run(work, *train_args(codae_run[1], folder / "run"), fsize=20000)
    assert done.returncode == 1 and len(done.stderr.strip().splitlines()) == 1, done.stderr[-2000:]
    assert "cannot write" in done.stderr and not (folder / "run").exists()  # no epoch finished: nothing kept


def test_a_place_that_cannot_be_written_gives_one_line_and_writes_nothing(work, codae_run):
    """/sys refuses new files to everyone, root included (as a read-only mount or a foreign directory
    would): the data, training and export commands each say so in one line, naming the place."""
    run_dir, data = codae_run
    commands = {
        "/sys/tfphys-x.h5": ["tfphys-data", *GENERATE["cbae"], "--out", "/sys/tfphys-x.h5"],
        "/sys/tfphys-run": train_args(data, "/sys/tfphys-run"),
        "/sys/tfphys-export": ["tfphys-export", run_dir, *EXPORT, "--out", "/sys/tfphys-export"],
    }
    for place, command in commands.items():
        done = run(work, *command)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1 and len(lines) == 1, done.stderr[-2000:]
        assert lines[0].startswith(f"{command[0]}: error: cannot write /sys/tfphys-"), lines[0]
        assert "(errno E" in lines[0] and not os.path.exists(place)
