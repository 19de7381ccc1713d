"""The CBAE evaluation in two steps: compute → CbaeResults, then the report written from it."""

import dataclasses
from pathlib import Path

import keras
import numpy as np
import pytest

from tfphys.cbae import evaluate as ev
from tfphys.cbae import model as cbae
from tfphys.cbae import waveforms as wf


@pytest.fixture(scope="module")
def results():
    """An untrained tiny CBAE on 40 waveforms whose noise is exactly +0.01 everywhere."""
    keras.utils.set_random_seed(0)
    model = cbae.build_cbae(encoder_filters=[8, 8], encoder_units=[32], decoder_units=[32, 64],
                            decoder_filters=[8, 8], kernel_size=3)
    clean = wf.simulate(40, seed=1, noise_sigma=0.0)
    test = wf.Waveforms(waveforms=clean["clean"] + np.float32(0.01), params=clean["params"], clean=clean["clean"],
                        x=wf.sample_positions().astype(np.float32), offset=0.1, scale=0.8, noise_sigma=0.0)
    return model, test, ev.compute(model, test, "40 constructed waveforms", "tiny/model.keras")


def test_results_hold_the_section_4_numbers(results):
    model, test, r = results
    n = r.numbers
    assert n["n_test"] == 40 and n["test_data"] == "40 constructed waveforms"
    assert n["noise_rms"] == pytest.approx(0.01, rel=1e-4)
    err = cbae.estimate(model, test.waveforms) - test.params
    assert n["parameters"]["theta"]["mean"] == pytest.approx(float(err[:, 0].mean()), abs=1e-7)
    assert n["parameters"]["eta"]["std"] == pytest.approx(float(err[:, 1].std()), rel=1e-5)
    axis, grid = ev.parameter_grid()
    assert np.array_equal(r.axis, axis) and np.array_equal(r.truth, wf.clean_waveforms(grid))
    assert r.generated.shape == r.truth.shape == (ev.GRID ** 2, wf.N_SAMPLES)
    assert n["generation"]["worst"] == pytest.approx(float(np.abs(r.truth - r.generated).max()))
    d = r.denoised - test.clean
    assert n["denoising"]["bias"] == pytest.approx(float(d.mean()), abs=1e-7)
    # a perfect generator: every generation error is 0
    assert ev.generation_errors(r.truth, r.truth)["worst"] == 0.0


def test_the_report_is_written_from_the_results(results):
    """The Markdown of write_report (its figures are checked end to end in test_cbae.py)."""
    _, _, r = results
    figures = {k: Path(f"{k}.png") for k in ("fig5", "fig7", "fig8", "fig9")}
    text = ev.markdown(r.numbers, figures, r.model_path)
    assert text.startswith("# CBAE evaluation (paper §4) — `tiny/model.keras`")
    assert "Test sample: 40 waveforms (40 constructed waveforms); noise RMS in the input 1.00 %" in text
    g, p = r.numbers["generation"], r.numbers["parameters"]
    assert f"| generation error, worst | < 4 % | {100 * g['worst']:.2f} % |" in text
    assert f"| θ′ − θ | {p['theta']['fit_bias']:+.4f} | {p['theta']['fit_sigma']:.4f} |" in text
    # a perfect model's numbers, put in the same results object, give ✓ rows
    perfect = dataclasses.replace(r, numbers={**r.numbers, "generation": ev.generation_errors(r.truth, r.truth)})
    assert "| generation error, worst | < 4 % | 0.00 % | ✓ |" in ev.markdown(perfect.numbers, figures, "m")

