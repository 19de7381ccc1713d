"""The report in HLT terms: working point, flips and farm cost against known answers; whole files
(atomic writes, the export lock); the concurrent single-thread instances in fresh processes."""

import multiprocessing as mp
import os
import time

import numpy as np
import pytest
from scipy.stats import norm

from export import files, hlt, instances
from tfphys.atomic import atomic_path


def test_threshold_on_a_uniform_ladder_keeps_exactly_the_asked_fraction():
    background = np.random.default_rng(0).permutation(np.arange(1000.0))  # 0, 1, …, 999
    threshold = hlt.threshold_for_efficiency(background, 0.01)
    assert threshold == 989.5  # between the 10th and 11th highest: 990 … 999 fire
    assert hlt.efficiency(background, threshold) == 0.01
    signal = np.arange(700.0, 1200.0)  # 990 … 1199 fire: 210 of 500
    assert hlt.efficiency(signal, threshold) == pytest.approx(0.42)
    # an efficiency below the sample's resolution (1/1000) lets nothing fire
    assert hlt.efficiency(background, hlt.threshold_for_efficiency(background, 5e-4)) == 0.0
    for bad in (0.0, 1.0, -0.1):
        with pytest.raises(ValueError):
            hlt.threshold_for_efficiency(background, bad)


def test_working_point_on_gaussian_scores_matches_the_normal_quantiles():
    # background N(0, 1), signal N(2, 1) at two "mass points" with shifts 2 and 3: at a 5 % background
    # efficiency the threshold is Φ⁻¹(0.95) = 1.645 and the signal efficiencies are Φ(μ − 1.645)
    rng = np.random.default_rng(1)
    n = 200_000
    b, s2, s3 = rng.normal(size=n), rng.normal(2, 1, n), rng.normal(3, 1, n)
    scores = np.concatenate([b, s2, s3])
    is_signal = np.repeat([0, 1, 1], n)
    classes = ["QCD"] * n + ["A 2"] * n + ["A 3"] * n
    wp = hlt.working_point(scores, scores, is_signal, classes, background_efficiency=0.05,
                           target={"background_rate_hz": 5e3, "input_rate_hz": 1e5})
    assert wp["threshold"] == pytest.approx(norm.ppf(0.95), abs=0.01)
    assert wp["background_efficiency"] == pytest.approx(0.05, abs=1e-5)
    assert wp["signal_efficiency"]["A 2"]["efficiency"] == pytest.approx(norm.cdf(2 - norm.ppf(0.95)), abs=0.005)
    assert wp["signal_efficiency"]["A 3"]["efficiency"] == pytest.approx(norm.cdf(3 - norm.ppf(0.95)), abs=0.005)
    assert wp["signal_efficiency"]["A 2"]["events"] == n and list(wp["signal_efficiency"]) == ["A 2", "A 3"]
    assert wp["flips"] == 0 and wp["flip_events"] == 3 * n
    assert wp["background_rate_hz"] == 5e3 and hlt.efficiency_for_rate(5e3, 1e5) == 0.05


def test_flips_are_zero_for_identical_scores_and_exact_for_a_constructed_perturbation():
    reference = np.arange(100.0)
    assert hlt.flips(reference, reference.copy(), 49.5) == 0
    exported = reference.copy()
    exported[[48, 49]] += 2.0  # 48 → 50, 49 → 51: now fire
    exported[50] -= 1.0  # 50 → 49: no longer fires
    exported[[10, 90]] += 0.3  # move without crossing 49.5
    assert hlt.flips(reference, exported, 49.5) == 3
    # at the working point: threshold set on the exported background scores, flips counted on all events
    is_signal = (np.arange(100) % 2).astype(bool)
    wp = hlt.working_point(exported, reference, is_signal, None, background_efficiency=0.5, target={})
    assert wp["flips"] == hlt.flips(reference, exported, wp["threshold"])
    assert set(wp["signal_efficiency"]) == {"signal"}


def test_farm_cost_is_rate_times_time():
    assert hlt.farm_cores(100e3, 14.0) == pytest.approx(1400.0)
    assert hlt.farm_cores(100e3, 1.9) == pytest.approx(190.0)
    assert hlt.farm_cores(1.0, 1000.0) == 1.0
    with pytest.raises(ValueError):
        hlt.farm_cores(0.0, 1.0)
    with pytest.raises(ValueError):
        hlt.efficiency_for_rate(2e5, 1e5)


def test_an_atomic_write_leaves_the_old_file_or_the_new_one_never_a_part(tmp_path):
    path = tmp_path / "report.json"
    files.write_text(path, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(path) as tmp:
            tmp.write_text("half of the new")
            raise RuntimeError("killed mid-write")
    assert path.read_text() == "old" and sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]
    files.write_bytes(path, b"new")
    assert path.read_bytes() == b"new" and files.sha256(path) == (
        "11507a0e2f5e69d5dfa40a62a1bd7b6ee57e6bcd85c67c9b8431b36fff21c437")
    directory = tmp_path / "triton" / "m"
    files.replace_dir(directory, {"config.pbtxt": b"a", "1/model.onnx": b"b"})
    files.replace_dir(directory, {"config.pbtxt": b"c", "1/model.onnx": b"d"})
    assert (directory / "config.pbtxt").read_bytes() == b"c" and (directory / "1" / "model.onnx").read_bytes() == b"d"
    assert sorted(p.name for p in (tmp_path / "triton").iterdir()) == ["m"]


def _hold_lock(directory, log, hold_s):
    with files.locked(directory):
        with open(log, "a") as f:
            f.write(f"start {os.getpid()}\n")
        time.sleep(hold_s)
        with open(log, "a") as f:
            f.write(f"end {os.getpid()}\n")


def test_two_exports_into_one_directory_take_turns(tmp_path):
    log = tmp_path / "log"
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_hold_lock, args=(tmp_path, log, 0.3)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(10)
    lines = log.read_text().split()
    # start A, end A, start B, end B: never two starts in a row
    assert [w for w in lines if w in ("start", "end")] == ["start", "end", "start", "end"]


def test_concurrent_single_thread_instances_in_fresh_processes(tmp_path):
    # a one-node ONNX model (y = x + 1), two instances: each loads it, runs it, reports threads and memory
    from onnx import TensorProto, helper, numpy_helper

    graph = helper.make_graph([helper.make_node("Add", ["x", "one"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
                              [numpy_helper.from_array(np.ones(4, np.float32), "one")])
    path = tmp_path / "add.onnx"
    path.write_bytes(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString())
    options = {"intra_op_num_threads": 1, "inter_op_num_threads": 1, "execution_mode": "ORT_SEQUENTIAL",
               "graph_optimization_level": "ORT_ENABLE_ALL"}
    result = instances.run_instances([("add", "onnx", path, [np.zeros((1, 4), np.float32)]),
                                      ("missing", "onnx", tmp_path / "missing.onnx", [np.zeros((1, 4))])],
                                     2, runs=50, warmup=2, ort_options=options)
    add = result["add"]
    assert add["instances"] == 2 and add["events_per_s"] > 0 and add["mean_ms"] > 0
    assert add["threads_added"] == 0  # ONNX Runtime at CMSSW's options starts no thread pool
    assert add["threads_before_load"] >= 1 and add["rss_load_bytes"] >= 0
    assert result["missing"]["error"].startswith("NoSuchFile") or "missing.onnx" in result["missing"]["error"]
    # a runtime given two intra-op threads starts a pool: the count sees its extra thread
    pooled = instances.run_instances([("add", "onnx", path, [np.zeros((1, 4), np.float32)])], 1, runs=20, warmup=2,
                                     ort_options={**options, "intra_op_num_threads": 2})
    assert pooled["add"]["threads_added"] == 1
