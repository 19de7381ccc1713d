"""The registry collects the families' specs and knows none of them by name."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from importlib.metadata import EntryPoint

import pytest

from tfphys import registry
from tfphys.errors import TfphysError

BUILT_IN = {"darkshowers": ["ae", "cae", "cct", "codae", "codvae", "dirvae"], "albus": ["albus"],
            "cbae": ["cbae"], "leapfrog": ["leapfrog"]}


def test_the_four_papers_are_found_through_their_entry_points():
    found = registry.families()
    assert {name: sorted(s.name for s in fam.specs) for name, fam in found.items()} == BUILT_IN
    assert registry.names() == sorted(n for names in BUILT_IN.values() for n in names)
    assert sorted(c.name for c in registry.data_commands()) == ["albus", "cbae", "darkshowers", "import"]
    assert sorted(k.name for k in registry.file_kinds()) == ["albus", "cbae", "darkshowers"]


def test_capabilities_are_explicit_fields():
    leapfrog = registry.get("leapfrog")
    assert (leapfrog.reads_data, leapfrog.exportable, leapfrog.default_data) == (False, False, None)
    assert "MCMC sampler" in leapfrog.not_exportable and "replica" in leapfrog.single_replica
    assert [n for n in registry.names() if registry.get(n).compares_runs] == ["ae", "cae", "cct", "codae",
                                                                            "codvae", "dirvae"]
    assert [n for n in registry.names() if registry.get(n).scorer is None] == ["cbae", "leapfrog"]
    for name in registry.names():
        spec = registry.get(name)
        assert spec.reads_data == (spec.default_data is not None), name
        assert spec.exportable == (spec.representative is not None), name


def test_an_unknown_model_is_one_line_listing_the_known_ones():
    with pytest.raises(TfphysError, match=r"^unknown model 'codea'; known models: ae, albus, cae, cbae, cct, "
                                          r"codae, codvae, dirvae, leapfrog$"):
        registry.get("codea")


@pytest.fixture
def fake_entry_points(monkeypatch):
    """Replace the installed entry points by the given ones (and forget the loaded families)."""
    def use(*values):
        eps = [EntryPoint(name=f"ep{i}", value=v, group=registry.ENTRY_POINT_GROUP) for i, v in enumerate(values)]
        monkeypatch.setattr(registry, "entry_points", lambda group: eps)
        registry.families.cache_clear()
        registry._specs.cache_clear()

    yield use
    registry.families.cache_clear()
    registry._specs.cache_clear()


def test_a_broken_family_declaration_is_one_clear_error(fake_entry_points):
    fake_entry_points("tfphys.errors:TfphysError")  # a class, not a Family: called, then refused
    with pytest.raises(TfphysError, match=r"entry point ep0 = tfphys.errors:TfphysError .* is not a "
                                          r"tfphys.registry.Family \(got TfphysError\)"):
        registry.families()
    fake_entry_points("tfphys.cbae:FAMILY", "tfphys.cbae:FAMILY")
    with pytest.raises(TfphysError, match="two packages declare the model family 'cbae'"):
        registry.families()
    fake_entry_points()
    with pytest.raises(TfphysError, match="no model families found .* is tfphys installed"):
        registry.families()


def test_a_model_name_is_declared_once(fake_entry_points, monkeypatch):
    import tfphys.cbae

    clash = replace(tfphys.cbae.FAMILY, name="cbae2", specs=(replace(tfphys.cbae.SPEC, family="cbae2"),))
    monkeypatch.setattr(tfphys.cbae, "CLASH", clash, raising=False)
    fake_entry_points("tfphys.cbae:FAMILY", "tfphys.cbae:CLASH")
    with pytest.raises(TfphysError, match="model 'cbae' is declared by the families cbae and cbae2"):
        registry.names()


def test_import_tfphys_registers_every_family_and_runs_no_tensorflow_op():
    """A fresh process: after ``import tfphys`` every family is loaded (its Keras classes registered)
    and TensorFlow has not started its runtime, so a multiworker strategy can still be created."""
    code = ("import tfphys, keras; from tensorflow.python.eager import context; "
            "objs = keras.saving.get_custom_objects(); "
            "print(context.context()._context_handle is None, len(tfphys.registry.names()), "
            "all(k in objs for k in ('tfphys>GroupedConv2D', 'tfphys>SpatialConditioning', "
            "'tfphys>GumbelSoftmaxLatent', 'tfphys>CropOrPadTo', 'tfphys>LeapfrogSampler', "
            "'tfphys>FourierFeatures')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["True", "9", "True"]
    assert done.stderr == ""  # TensorFlow's start-up notes are parked


def test_a_command_starts_the_runtime_without_its_start_up_notes():
    """``import tfphys`` imports TensorFlow without starting it; the first command's
    ``_import_tensorflow_quietly`` must still start it where its C++ notes (cuInit, oneDNN) are
    parked, also when no --threads is given (they leaked into tfphys-eval's stderr once)."""
    code = ("from tfphys.cli import _import_tensorflow_quietly; _import_tensorflow_quietly(); "
            "import tensorflow as tf; print(int(tf.reduce_sum(tf.constant([1, 2]))))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert (done.returncode, done.stdout, done.stderr) == (0, "3\n", "")
