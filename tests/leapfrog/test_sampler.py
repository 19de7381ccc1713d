"""LeapfrogLayers: exact invertibility and Jacobian, HMC at initialisation, exact sampling, and
training / resume / evaluation / export refusal through the shared tools."""

from __future__ import annotations

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from tfphys import config as configs
from tfphys import training
from tfphys.errors import TfphysError
from tfphys.leapfrog import hmc, u1
from tfphys.leapfrog.sampler import LeapfrogSampler, build_leapfrog

TINY = """
[data]
[pipeline]
steps_per_epoch = 3
val_steps = 2
[model]
lattice_size = 3
n_leapfrog = 2
n_chains = 4
beta = 2.0
beta_init = 1.0
anneal_steps = 6
[train]
epochs = 3
seed = 0
[train.optimizer]
class_name = "Adam"
learning_rate = 1e-2
[eval]
thermalise = 5
trajectories = 20
max_trajectories = 40
betas = [2.0]
scan_trajectories = 10
scan_max_trajectories = 20
scan_thermalise = 2
lengths = [1]
hmc_step_sizes = [0.2]
chains = 4
"""


@pytest.fixture
def float64():
    """Exactness tests in float64, so that float32 round-off (~1e-6·|v|) does not hide a bug."""
    floatx, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx("float64")
    keras.config.set_dtype_policy("float64")
    yield tf.float64
    keras.config.set_floatx(floatx)
    keras.config.set_dtype_policy(policy)


def _randomise_scalars(model, seed, scale=0.4):
    """Every trainable scalar of the sampler (step sizes, u, c) set to a random value."""
    rng = np.random.default_rng(seed)
    for var in (model.v_pre, model.v_logscale, model.x_pre, model.x_logscale):
        var.assign(rng.normal(0.0, scale, var.shape))
    for var in (model.log_eps_x, model.log_eps_v):
        var.assign(np.log(0.3) + rng.normal(0.0, 0.2, var.shape))
    return model


def _random_sampler(size=2, n_leapfrog=2, scale=0.3, seed=0, units=(8,), x_scale=True):
    """A sampler whose nets and scalars are not zero (so s, t, q all act) — an 'arbitrarily trained' one."""
    keras.utils.set_random_seed(seed)
    model = build_leapfrog(lattice_size=size, n_leapfrog=n_leapfrog, n_chains=3, units=list(units),
                           output_scale=scale if units else 0.0, step_size=0.3, mask_seed=1,
                           init="hmc", x_scale=x_scale)
    return _randomise_scalars(model, seed)


def _state(model, batch, seed, dtype=tf.float32):
    x = model._flat(u1.random_links((batch, *model.link_shape), seed, dtype))
    v = tf.random.stateless_normal(tf.shape(x), seed=[seed, 1], dtype=dtype)
    return x, v


MODES = {"nets": dict(units=(8,), x_scale=True), "scalars": dict(units=(), x_scale=True),
         "scalars, no x scale": dict(units=(), x_scale=False)}


@pytest.mark.parametrize("x_scale", [True, False])
def test_untrained_sampler_is_plain_hmc(x_scale, float64):
    """init = "hmc": forward, and the one-pass proposal on forward chains, are HMC to 1e-12 (float64)."""
    model = build_leapfrog(lattice_size=4, n_leapfrog=3, n_chains=5, step_size=0.2, init="hmc", x_scale=x_scale)
    x, v = _state(model, 5, 0, float64)
    hx, hv = hmc.leapfrog(model._links(x), model._links(v), 2.0, 0.2, 3)
    for xs, vs, logdet in (model.forward(x, v, 2.0),
                           model._fused_trajectory(x, v, tf.zeros(5, tf.bool), tf.constant(2.0, float64))):
        np.testing.assert_allclose(u1.wrap(xs), model._flat(u1.wrap(hx)), atol=1e-12)
        np.testing.assert_allclose(vs, model._flat(hv), atol=1e-12)
        np.testing.assert_allclose(logdet, 0.0, atol=1e-12)


def test_untrained_net_sampler_is_plain_hmc():
    model = build_leapfrog(lattice_size=4, n_leapfrog=3, n_chains=5, units=[8], step_size=0.2, init="hmc")
    x, v = _state(model, 5, 0)
    xs, vs, logdet = model.forward(x, v, 2.0)
    hx, hv = hmc.leapfrog(model._links(x), model._links(v), 2.0, 0.2, 3)
    np.testing.assert_allclose(xs, model._flat(u1.wrap(hx)), atol=1e-5)
    np.testing.assert_allclose(vs, model._flat(hv), atol=1e-5)
    np.testing.assert_allclose(logdet, 0.0, atol=1e-5)


def _heat_and_cool(x, v, beta, eps, n, a):
    """The schedule written out: v·e^{+a} before each step of the first half, v·e^{−a} after each of the
    second (Neal 1996), plain leapfrog steps otherwise."""
    for k in range(n):
        if k < n // 2:
            v = v * math.exp(a)
        v = v - 0.5 * eps * u1.action_gradient(x, beta)
        x = x + eps * v
        v = v - 0.5 * eps * u1.action_gradient(x, beta)
        if k >= n - n // 2:
            v = v * math.exp(-a)
    return x, v


@pytest.mark.parametrize("n_leapfrog", [4, 5])
def test_heating_start_is_the_heat_and_cool_schedule_with_zero_total_log_jacobian(n_leapfrog, float64):
    a, eps = 0.04, 0.2
    model = build_leapfrog(lattice_size=4, n_leapfrog=n_leapfrog, n_chains=4, step_size=eps, init="heating",
                           heating=a)
    x, v = _state(model, 4, 3, float64)
    hx, hv = _heat_and_cool(model._links(x), model._links(v), 2.0, eps, n_leapfrog, a)
    logdets = []
    xs, vs, logdet = model.forward(x, v, 2.0, record=lambda xx, vv, ld: logdets.append(ld.numpy()))
    np.testing.assert_allclose(u1.wrap(xs), model._flat(u1.wrap(hx)), atol=1e-12)
    np.testing.assert_allclose(vs, model._flat(hv), atol=1e-12)
    half, dim = n_leapfrog // 2, model.dim
    expected = np.concatenate([a * dim * np.arange(1, half + 1), np.full(n_leapfrog % 2, a * dim * half),
                               a * dim * np.arange(half - 1, -1, -1)])  # +a·dim per heating step, then −a·dim
    np.testing.assert_allclose(np.array(logdets)[:, 0], expected, atol=1e-9)
    np.testing.assert_allclose(logdet, 0.0, atol=1e-9)
    assert np.allclose(model.heating_schedule()[:half, 0], a) and np.allclose(model.heating_schedule()[-half:, 1], -a)


@pytest.mark.parametrize("mode", MODES)
def test_forward_then_backward_returns_the_initial_state(mode, float64):
    model = _random_sampler(size=4, n_leapfrog=3, **MODES[mode])
    x, v = _state(model, 6, 1, float64)
    xs, vs, ld_f = model.forward(x, v, 3.0)
    assert np.abs(u1.wrap(xs - x)).max() > 0.1  # the map moved the links
    xb, vb, ld_b = model.backward(xs, vs, 3.0)
    assert np.abs(u1.wrap(xb - x)).max() <= 1e-10
    assert np.abs(vb - v).max() <= 1e-10
    np.testing.assert_allclose(ld_f + ld_b, 0.0, atol=1e-10)
    xf, vf, _ = model.forward(*model.backward(x, v, 3.0)[:2], 3.0)  # and the other way round
    assert np.abs(u1.wrap(xf - x)).max() <= 1e-10 and np.abs(vf - v).max() <= 1e-10


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("direction", ["forward", "backward"])
def test_log_jacobian_equals_autodiff_log_determinant(direction, mode, float64):
    model = _random_sampler(size=2, n_leapfrog=2, **MODES[mode])
    x, v = _state(model, 3, 2, float64)
    dim = model.dim
    z = tf.concat([x, v], -1)
    run = getattr(model, direction)
    with tf.GradientTape() as tape:
        tape.watch(z)
        xs, vs, logdet = run(z[:, :dim], z[:, dim:], 2.0)
        out = tf.concat([xs, vs], -1)
    jac = tape.batch_jacobian(out, z).numpy()  # (3, 16, 16)
    sign, logabs = np.linalg.slogdet(jac)
    assert np.all(sign != 0)
    assert np.abs(logdet).max() > 0.05  # a non-trivial Jacobian
    np.testing.assert_allclose(logdet, logabs, atol=1e-9)


@pytest.mark.parametrize("x_scale", [True, False])
def test_one_pass_proposal_equals_forward_and_backward_chain_by_chain(x_scale, float64):
    """The scalar sampler's proposal runs F and F⁻¹ in one batch: the same states and log-dets."""
    model = _random_sampler(size=4, n_leapfrog=3, units=(), x_scale=x_scale)
    x, v = _state(model, 6, 4, float64)
    back = tf.constant([False, True, True, False, True, False])
    fx, fv, fld = model._fused_trajectory(x, v, back, tf.constant(2.5, float64))
    for i, b in enumerate(back.numpy()):
        ex, ev, eld = (model.backward if b else model.forward)(x[i:i + 1], v[i:i + 1], 2.5)
        np.testing.assert_allclose(u1.wrap(fx[i:i + 1] - ex), 0.0, atol=1e-12)
        np.testing.assert_allclose(fv[i:i + 1], ev, atol=1e-12)
        np.testing.assert_allclose(fld[i:i + 1], eld, atol=1e-12)


@pytest.mark.parametrize("mode", ["nets", "scalars"])
def test_a_non_trivial_sampler_still_samples_the_exact_distribution(mode):
    """Detailed balance with the log-Jacobian in the MH test: ⟨cos x_P⟩ and ⟨Q_Z²⟩ exact within 3σ."""
    beta, size = 2.0, 3
    keras.utils.set_random_seed(0)
    model = build_leapfrog(lattice_size=size, n_leapfrog=2, n_chains=48, units=[8] if mode == "nets" else [],
                           output_scale=0.2, step_size=0.25, beta=beta, x_scale=True, init="hmc")
    _randomise_scalars(model, 5, scale=0.3)
    x = hmc.HMC(beta, 0.2, 5).thermalise(u1.random_links((48, size, size, 2), 3), 30)
    chains = model.sample(x, 150, seed=4)
    for per_chain, exact in ((chains.plaquette.mean(axis=0), u1.exact_plaquette(beta, size)),
                             ((chains.charge_int ** 2).mean(axis=0), u1.exact_charge_squared(beta, size))):
        mean, err = per_chain.mean(), per_chain.std(ddof=1) / np.sqrt(len(per_chain))
        assert abs(mean - exact) < 3 * err and err < 0.2 * exact, (mean, err, exact)
    assert 0.2 < chains.acceptance.mean() < 0.99  # the nets change the dynamics, MH corrects it


@pytest.mark.parametrize("units", [(8,), ()])
def test_loss_gradient_reaches_every_network_and_scalar(units):
    model = _random_sampler(size=3, n_leapfrog=2, scale=0.05, units=units)
    x = u1.random_links((3, 3, 3, 2), 5)
    with tf.GradientTape() as tape:
        x_star, prob = model.propose(x, 2.0, tf.constant([1, 2], tf.int64))
        loss = model.loss_fn(prob, tf.square(u1.charge_real(x_star) - u1.charge_real(x)))
    grads = tape.gradient(loss, model.trainable_variables)
    assert all(g is not None for g in grads)
    by_var = {}
    for var, g in zip(model.trainable_variables, grads):
        owner = var.path if var.path.startswith("leapfrog/") else var.path.split("/")[0]  # a scalar or a net
        by_var.setdefault(owner, []).append(float(tf.reduce_sum(tf.abs(g))))
    assert len(by_var) == (3 * 2 if units else 0) + 6 and all(sum(v) > 0 for v in by_var.values()), by_var


def test_the_two_losses():
    prob, dq2 = tf.constant([1.0, 0.5]), tf.constant([0.04, 0.0])
    eq15 = build_leapfrog(lattice_size=2, n_leapfrog=1, n_chains=2, loss="eq15")
    mixed = build_leapfrog(lattice_size=2, n_leapfrog=1, n_chains=2, loss="mixed", loss_weight=0.1)
    assert float(eq15.loss_fn(prob, dq2)) == pytest.approx(-0.02)
    ell = np.array([0.04 + 1e-4, 1e-4])
    assert float(mixed.loss_fn(prob, dq2)) == pytest.approx(np.mean(0.1 / ell - ell / 0.1), rel=1e-6)
    with pytest.raises(TfphysError, match="loss must be one of"):
        build_leapfrog(lattice_size=2, n_leapfrog=1, loss="l2")
    with pytest.raises(TfphysError, match="heating"):
        build_leapfrog(lattice_size=2, n_leapfrog=1, heating=0.1, step_size=0.1)


def test_save_load_round_trip_keeps_nets_step_sizes_and_chains(tmp_path):
    model = _random_sampler(size=3)
    model.chain_x.assign(u1.random_links(model.chain_x.shape, 9))
    path = tmp_path / "sampler.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True, compile=False)
    assert isinstance(loaded, LeapfrogSampler)
    np.testing.assert_array_equal(loaded.chain_x.numpy(), model.chain_x.numpy())
    np.testing.assert_array_equal(loaded.step_sizes.numpy(), model.step_sizes.numpy())
    np.testing.assert_array_equal(loaded.v_pre.numpy(), model.v_pre.numpy())
    seed = tf.constant([3, 4], tf.int64)
    a, pa = model.propose(model.chain_x, 2.0, seed)
    b, pb = loaded.propose(loaded.chain_x, 2.0, seed)
    np.testing.assert_allclose(a, b, atol=1e-6)
    np.testing.assert_allclose(pa, pb, atol=1e-6)


class _InterruptAfter(keras.callbacks.Callback):
    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            raise KeyboardInterrupt


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """tfphys-train leapfrog, interrupted after epoch 0 and resumed (the shared trainer)."""
    tmp = tmp_path_factory.mktemp("leapfrog")
    (tmp / "tiny.toml").write_text(TINY)
    cfg = configs.load(tmp / "tiny.toml")
    out = tmp / "run"
    with pytest.raises(KeyboardInterrupt):
        training.train("leapfrog", cfg, out, verbose=0, callbacks=[_InterruptAfter(0)])
    result = training.train("leapfrog", cfg, out, verbose=0)
    return out, result


def test_training_runs_through_the_shared_trainer_and_resumes(trained_run, tmp_path):
    out, result = trained_run
    assert result.resumed_from_epoch == 1
    assert [row["epoch"] for row in result.history] == [0, 1, 2]
    # the annealing schedule continued after the resume (it follows optimizer.iterations): β from 1 to 2
    # over 6 steps, 3 steps an epoch, so the epoch means are (1 + 7/6 + 4/3)/3, (3/2 + 5/3 + 11/6)/3, 2
    assert [row["beta"] for row in result.history] == pytest.approx([7 / 6, 5 / 3, 2.0], rel=1e-6)
    # and the resume changed nothing: the same seed trained without a break gives the same history
    (tmp_path / "tiny.toml").write_text(TINY)
    straight = training.train("leapfrog", configs.load(tmp_path / "tiny.toml"), tmp_path / "straight", verbose=0)
    keys = ("loss", "acceptance", "val_loss")
    assert [[row[k] for k in keys] for row in straight.history] == [[row[k] for k in keys] for row in result.history]
    # the training CPU time adds up over the interrupted and the resumed process
    cpu = [row["train_cpu_s"] for row in result.history]
    assert 0 < cpu[0] < cpu[1] < cpu[2]
    model = keras.saving.load_model(out / "model.keras", safe_mode=True, compile=False)
    fresh = LeapfrogSampler.from_config(model.get_config())  # same seed: the same hot start
    moved = np.abs(u1.wrap(model.chain_x - fresh.chain_x)).max(axis=(1, 2, 3))
    assert np.all(moved > 1e-3)  # the chain state kept in the checkpoint is the chains' state


def test_tfphys_eval_writes_the_comparison_report(trained_run, tmp_path):
    from tfphys.cli import eval_main

    out, _ = trained_run
    assert eval_main([str(out), "--out", str(tmp_path / "eval")]) == 0
    report = (tmp_path / "eval" / "report.md").read_text()
    for needle in ("acceptance", "⟨cos x_P⟩", "⟨Q_Z²⟩", "τ_int(Q_Z)", "ESS(Q_Z) per CPU-second", "exact",
                   "Training CPU time", "HMC equal length", "untrained start", "HMC ε=0.2 N=1"):
        assert needle in report
    for png in ("chains", "tau_vs_beta", "tau_vs_length", "trajectory", "plaquette_trajectory"):
        assert (tmp_path / "eval" / f"{png}.png").stat().st_size > 1000


def test_tfphys_export_refuses_a_sampler_in_one_line(trained_run, capsys):
    from export.cli import export_main

    out, _ = trained_run
    assert export_main([str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no TFLite export" in err[0], err


def test_leapfrog_reads_no_data_file(tmp_path):
    from tfphys.cli import train_main

    cfg = tmp_path / "tiny.toml"
    cfg.write_text(TINY)
    data = tmp_path / "x.h5"
    data.write_bytes(b"")
    assert train_main(["leapfrog", "--config", str(cfg), "--data", str(data), "--out",
                       str(tmp_path / "run")]) == 1


def test_annealing_linear_flat_steps_or_none():
    linear = build_leapfrog(lattice_size=2, n_leapfrog=1, beta=6.0, beta_init=2.0, anneal_steps=100)
    flat = build_leapfrog(lattice_size=2, n_leapfrog=1, beta=6.0, beta_init=2.0, anneal_steps=100, anneal_eras=5)
    none = build_leapfrog(lattice_size=2, n_leapfrog=1, beta=6.0, anneal_steps=0)
    steps = [0, 19, 20, 50, 99, 100, 500]
    assert [float(linear.annealed_beta(t)) for t in steps] == pytest.approx([2, 2.76, 2.8, 4, 5.96, 6, 6])
    assert [float(flat.annealed_beta(t)) for t in steps] == pytest.approx([2, 2, 3, 4, 6, 6, 6])  # linspace(2, 6, 5)
    assert [float(none.annealed_beta(t)) for t in steps] == pytest.approx([6] * 7)
