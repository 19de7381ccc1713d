"""LeapfrogLayers: a trainable generalisation of HMC for 2D U(1) (Foreman, Jin & Osborn, Lattice 2021).

One generalised leapfrog step ``k`` (§3, Figure 3) updates, in this order::

    (a) v  ← Γ_k^a[v; ζ_v]          ζ_v = (x, ∂S(x))
    (b) x  ← m ⊙ x + m̄ ⊙ Λ_k[x_m̄; ζ]   the half m̄, driven by the frozen half m ⊙ x and v
    (c) x  ← m̄ ⊙ x + m ⊙ Λ'_k[x_m; ζ]   the complementary half m
    (d) v  ← Γ_k^d[v; ζ_v]          at the new x

with separate trainable step sizes ``ε^v_k`` (Γ) and ``ε^x_k`` (Λ) and, for the functions
``(s, t, q)`` of every sub-update (Eq. 12–14)::

    Γ:  v' = v·e^{ε^v s/2} − ½ε^v (∂S·e^{ε^v q} − t)             log|J| = Σ ε^v s/2
    Λ:  x' = ⌊ 2 atan(tan(x/2)·e^{ε^x s}) + ε^x (v·e^{ε^x q} + t) ⌉
                                 log|J| = Σ_m̄ [ε^x s − log(cos²(x/2) + e^{2ε^x s} sin²(x/2))]

Each of the ``4 N_LF`` sub-updates has its own trainable scalars: ``s = e^{c_s} tanh(u_s + n_s)``,
``q = e^{c_q} tanh(u_q + n_q)``, ``t = n_t`` (l2hmc-qcd's ``exp(c)·tanh``, one log-scale ``c`` per
sub-update), where ``n_s, n_t, n_q`` are the outputs of the paper's nets (:class:`LeapfrogNet`:
one Γ net per step shared by (a) and (d), two Λ nets) when ``units`` is non-empty, and zero
otherwise. The scalar-only sampler (``units = []``, the default) costs about one HMC trajectory
per trajectory; with nets it is the paper's sampler.

Initialisation (``init``): ``"hmc"`` — every ``u = 0`` and the nets' output layers zero, so the
untrained sampler is plain HMC (Eq. 10) with step ``ε``; ``"heating"`` — the same plus the
heat-and-cool schedule (Neal 1996, "tempering during a trajectory"): ``v ← e^{+a} v`` before each
step of the first half (``ε^v s/2 = a`` in (a)) and ``v ← e^{−a} v`` after each step of the second
half (``ε^v s/2 = ε^v q = −a`` in (d): ``v' = e^{−a}(v − ½ε^v ∂S)``); the per-step log-dets
``±a·dim(v)`` cancel over the trajectory.

The x update uses the *compact* scaling ``2 atan(tan(x/2) e^{εs})`` (also in the authors' code)
instead of the paper's ``x·e^{εs}``: on the circle ``x e^{εs}`` mod 2π is not a bijection unless
``s = 0``. Without x nets the two halves (b), (c) are independent element-wise maps and run as
one. The direction ``d ∈ {+, −}`` is drawn per chain; ``d = −`` runs the exact inverse of the
forward map (sub-updates inverted, in reverse order), so ``(ξ, d) → (F^d ξ, −d)`` is an involution
and ``A = min(1, exp(H(ξ) − H(ξ*) + Σ log|J|))`` satisfies detailed balance.

Training (§3.2–3.3) is :meth:`LeapfrogSampler.train_step`: one trajectory of every chain, the
loss (``loss = "eq15"``: Eq. 15, ``L = −mean_chains ℓ`` with ``ℓ = A(ξ*|ξ)·(Q*_R − Q_R)²``;
``"mixed"``: l2hmc-qcd's ``mean(w/ℓ − ℓ/w)`` with ``ℓ + 10⁻⁴`` and ``w = loss_weight``), a gradient
step, then the MH step that moves the chains; the chain state lives in non-trainable variables,
so ``model.keras``, ``BackupAndRestore`` and a resumed run carry it. The action may be annealed
(§3.3; ``anneal_steps = 0``: none): ``β_t`` rises from ``β_init`` to ``β`` over ``anneal_steps``
optimizer steps, linearly or (``anneal_eras = n > 0``) in ``n`` flat steps
``linspace(β_init, β, n)`` as in l2hmc-qcd, computed from ``optimizer.iterations`` so that it
resumes where it stopped. Random numbers are stateless in ``(seed, step)``. The process CPU time
spent in training is accumulated in the model (``train_cpu_s``, also in ``history.csv``).
"""

from __future__ import annotations

import math
import time

import keras
import numpy as np
import tensorflow as tf

from tfphys.errors import TfphysError
from tfphys.leapfrog import u1

LOSSES = ("eq15", "mixed")
INITS = ("hmc", "heating")


@keras.saving.register_keras_serializable(package="tfphys")
class LeapfrogNet(keras.layers.Layer):
    """The Γ (momentum) or Λ (link) network of one leapfrog sub-update, Eq. (12)–(14)::

        h₁ = σ(w_a a + w_b b + b₁),  h_j = σ(w_j h_{j−1} + b_j)
        n_s = w_s h_k + b_s,  n_t = w_t h_k + b_t,  n_q = w_q h_k + b_q

    (the sampler applies ``s = e^{c_s} tanh(u_s + n_s)``, ``q = e^{c_q} tanh(u_q + n_q)``, ``t = n_t``).
    For Λ, ``a`` is the frozen half of the links encoded as ``[cos x, sin x]`` (zeros on the
    updated half) and ``b`` is ``v``; for Γ, ``a`` is ``[cos x, sin x]`` and ``b = ∂S(x)``.

    Args:
        units: widths ``n₁, …, n_k`` of the hidden layers.
        activation: σ.
        output_scale: the output kernels are drawn from ``N(0, output_scale²)`` (biases zero);
            ``0`` (default) makes the outputs zero, so the sampler starts as its scalars say.

    Input: ``[a, b]`` of shapes ``(batch, A)`` and ``(batch, D)``.
    Output: ``(n_s, n_t, n_q)``, each ``(batch, D)`` (one value per link).
    """

    def __init__(self, units=(64,), activation="swish", output_scale=0.0, **kwargs):
        super().__init__(**kwargs)
        self.units = [int(u) for u in units]
        self.activation = activation
        self.output_scale = float(output_scale)
        if not self.units or min(self.units) < 1:
            raise ValueError(f"LeapfrogNet needs at least one positive hidden width, got {units}")

    def build(self, input_shape):
        a_shape, b_shape = input_shape
        dim = b_shape[-1]
        if dim is None or a_shape[-1] is None:
            raise ValueError(f"LeapfrogNet needs static feature sizes, got {input_shape}")
        self.in_a = keras.layers.Dense(self.units[0], name="w_a")
        self.in_b = keras.layers.Dense(self.units[0], use_bias=False, name="w_b")
        self.in_a.build(a_shape)
        self.in_b.build(b_shape)
        self.act = keras.layers.Activation(self.activation)
        self.hidden = []
        for j, width in enumerate(self.units[1:]):
            layer = keras.layers.Dense(width, activation=self.activation, name=f"w_{j + 2}")
            layer.build((None, self.units[j]))
            self.hidden.append(layer)
        init = (keras.initializers.Zeros() if self.output_scale == 0.0
                else keras.initializers.RandomNormal(stddev=self.output_scale))
        self.out_s, self.out_t, self.out_q = (
            keras.layers.Dense(dim, kernel_initializer=init, name=f"w_{k}") for k in "stq")
        for layer in (self.out_s, self.out_t, self.out_q):
            layer.build((None, self.units[-1]))

    def call(self, inputs):
        a, b = inputs
        h = self.act(self.in_a(a) + self.in_b(b))
        for layer in self.hidden:
            h = layer(h)
        return self.out_s(h), self.out_t(h), self.out_q(h)

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": self.activation,
                "output_scale": self.output_scale}


def _encode(x):
    """Links as ``[cos x, sin x]`` (the paper's encoding), ``(batch, D) → (batch, 2D)``."""
    return tf.concat([tf.cos(x), tf.sin(x)], axis=-1)


def _process_cpu_s():
    return np.float64(time.process_time())


@keras.saving.register_keras_serializable(package="tfphys")
class LeapfrogSampler(keras.Model):
    """The LeapfrogLayers sampler: ``n_leapfrog`` generalised leapfrog steps + MH, on ``n_chains``.

    Args:
        lattice_size: ``L`` of the ``L × L`` periodic lattice.
        n_leapfrog: generalised leapfrog steps per trajectory ``N_LF``.
        n_chains: Markov chains trained (and kept) in parallel.
        beta: the target coupling β.
        beta_init, anneal_steps, anneal_eras: the annealing of §3.3 (module docstring; 0 steps: none).
        step_size: initial ``ε^x_k = ε^v_k`` of every step (trainable, kept positive).
        units, activation: the hidden layers of every Γ and Λ net (Eq. 12–14); ``[]``: no nets,
            the trainable scalars only.
        output_scale: see :class:`LeapfrogNet` (0 → the nets start at zero).
        init: ``"hmc"`` or ``"heating"`` (module docstring); ``heating``: its ``a``.
        x_scale: train the link scaling ``s`` of the Λ updates (False: ``s ≡ 0`` there, cheaper).
        loss, loss_weight: ``"eq15"`` or ``"mixed"`` (with ``w = loss_weight``).
        mask_seed: seed of the fixed random half-of-the-links mask of every step.
        seed: seed of the chains' hot start and of the stateless random numbers.

    Inputs to :meth:`train_step` / :meth:`test_step`: anything (a tick of the tf.data stream);
    the state is in the model. Links have shape ``(n_chains, L, L, 2)``.
    """

    def __init__(self, lattice_size=16, n_leapfrog=40, n_chains=256, beta=6.0, beta_init=2.0,
                 anneal_steps=0, anneal_eras=0, step_size=0.1, units=(), activation="swish",
                 output_scale=0.0, init="heating", heating=0.025, x_scale=False, loss="mixed",
                 loss_weight=0.01, mask_seed=0, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.lattice_size, self.n_leapfrog, self.n_chains = int(lattice_size), int(n_leapfrog), int(n_chains)
        self.beta, self.beta_init = float(beta), float(beta_init)
        self.anneal_steps, self.anneal_eras = int(anneal_steps), int(anneal_eras)
        self.step_size, self.units, self.activation = float(step_size), [int(u) for u in units], activation
        self.output_scale, self.init, self.heating = float(output_scale), str(init), float(heating)
        self.x_scale, self.loss_name, self.loss_weight = bool(x_scale), str(loss), float(loss_weight)
        self.mask_seed, self.seed = int(mask_seed), int(seed)
        if self.lattice_size < 2 or self.n_leapfrog < 1 or self.n_chains < 1 or self.step_size <= 0:
            raise ValueError("LeapfrogSampler needs lattice_size ≥ 2, n_leapfrog ≥ 1, n_chains ≥ 1, "
                             f"step_size > 0; got {lattice_size}, {n_leapfrog}, {n_chains}, {step_size}")
        if self.loss_name not in LOSSES or self.init not in INITS:
            raise ValueError(f"LeapfrogSampler: loss must be one of {', '.join(LOSSES)} and init one of "
                             f"{', '.join(INITS)}; got loss={loss!r}, init={init!r}")
        if self.init == "heating" and not 0.0 <= 2.0 * self.heating / self.step_size < 0.95:
            raise ValueError(f"LeapfrogSampler: heating a = {heating} needs 0 ≤ 2a/step_size < 0.95 "
                             f"(s = e^c tanh(u) ≤ 1 at c = 0); got 2a/ε = {2 * self.heating / self.step_size:.3g}")
        if self.anneal_steps < 0 or self.anneal_eras < 0 or self.loss_weight <= 0:
            raise ValueError(f"LeapfrogSampler needs anneal_steps ≥ 0, anneal_eras ≥ 0, loss_weight > 0; got "
                             f"{anneal_steps}, {anneal_eras}, {loss_weight}")
        self.link_shape = (self.lattice_size, self.lattice_size, 2)
        dim = int(np.prod(self.link_shape))
        self.dim = dim
        # A fixed random half of the links per step (architecture, derived from mask_seed).
        rng = np.random.default_rng(self.mask_seed)
        masks = np.zeros((self.n_leapfrog, dim), np.float32)
        for k in range(self.n_leapfrog):
            masks[k, rng.permutation(dim)[: dim // 2]] = 1.0
        self.masks = masks

        def net(name):
            layer = LeapfrogNet(self.units, self.activation, self.output_scale, name=name)
            layer.build(((None, 2 * dim), (None, dim)))
            return layer

        n = self.n_leapfrog
        if self.units:
            self.v_nets = [net(f"gamma_{k}") for k in range(n)]
            self.x_nets = [net(f"lambda_{k}") for k in range(n)]      # updates m̄
            self.x_nets_c = [net(f"lambda_c_{k}") for k in range(n)]  # updates m
        self.log_eps_x = self.add_weight(shape=(n,), name="log_eps_x", initializer="zeros")
        self.log_eps_v = self.add_weight(shape=(n,), name="log_eps_v", initializer="zeros")
        # [k, j, (s, q)]: pre-activation u and log-scale c of sub-update j ∈ {(a), (d)} / {m̄, m} of step k
        self.v_pre = self.add_weight(shape=(n, 2, 2), name="v_pre", initializer="zeros")
        # assigned in the variables' dtype (keras' Constant initializer rounds through float32)
        self.log_eps_x.assign(np.full(n, math.log(self.step_size)))
        self.log_eps_v.assign(np.full(n, math.log(self.step_size)))
        self.v_pre.assign(self._v_pre_init())
        self.v_logscale = self.add_weight(shape=(n, 2, 2), name="v_logscale", initializer="zeros")
        self.x_pre = self.add_weight(shape=(n, 2, 2), name="x_pre", initializer="zeros")
        self.x_logscale = self.add_weight(shape=(n, 2, 2), name="x_logscale", initializer="zeros")
        hot = keras.initializers.RandomUniform(-math.pi, math.pi, seed=self.seed)
        self.chain_x = self.add_weight(shape=(self.n_chains, *self.link_shape), initializer=hot,
                                       trainable=False, name="chain_x")
        # Validation chains: at the first validation trajectory of every epoch, a copy of the
        # training chains (thermalised, unlike a hot or cold start, whose relaxation would make the
        # later epochs look best on val_loss), then run with the epoch's sampler at the target β.
        self.val_x = self.add_weight(shape=(self.n_chains, *self.link_shape), trainable=False,
                                     initializer="zeros", name="val_chain_x")
        self.val_mark = self.add_weight(shape=(), initializer=keras.initializers.Constant(-1.0),
                                        trainable=False, name="val_mark")
        self.val_count = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                         name="val_count")
        # process CPU seconds spent training, summed over every (resumed) process
        self.train_cpu_s = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                           name="train_cpu_s", dtype="float64")
        self._cpu_mark = time.process_time()
        self.trackers = {k: keras.metrics.Mean(name=k) for k in
                         ("loss", "acceptance", "dq_int", "dq_real_sq", "plaquette", "beta")}
        self.built = True

    def _v_pre_init(self):
        pre = np.zeros((self.n_leapfrog, 2, 2), np.float64)
        if self.init == "heating" and self.heating > 0:
            ratio = self.heating / self.step_size  # ε s / 2 = ±a ⇔ s = ±2a/ε;  ε q = −a ⇔ q = −a/ε
            half = self.n_leapfrog // 2
            pre[:half, 0, 0] = math.atanh(2.0 * ratio)                       # (a): v ← e^{+a} v, first half
            pre[self.n_leapfrog - half:, 1, 0] = -math.atanh(2.0 * ratio)    # (d): v ← e^{−a}(v − ½ε∂S)
            pre[self.n_leapfrog - half:, 1, 1] = -math.atanh(ratio)
        return pre

    # ------------------------------------------------------------------ configuration / keras
    def get_config(self):
        return {**super().get_config(), "lattice_size": self.lattice_size,
                "n_leapfrog": self.n_leapfrog, "n_chains": self.n_chains, "beta": self.beta,
                "beta_init": self.beta_init, "anneal_steps": self.anneal_steps,
                "anneal_eras": self.anneal_eras, "step_size": self.step_size, "units": self.units,
                "activation": self.activation, "output_scale": self.output_scale, "init": self.init,
                "heating": self.heating, "x_scale": self.x_scale, "loss": self.loss_name,
                "loss_weight": self.loss_weight, "mask_seed": self.mask_seed, "seed": self.seed}

    def compile(self, *args, **kwargs):
        """Keras' compile without XLA: the chains' trajectories are cheaper as plain graphs on CPU
        (measured: XLA ~25× slower for the rolled lattice ops), and the CPU clock is a py_function."""
        kwargs["jit_compile"] = False
        return super().compile(*args, **kwargs)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, inputs, training=False):
        """A sampler has no single forward pass (a trajectory needs momenta, a direction and a
        Metropolis test): ``call`` returns the trained link step sizes ``(n_leapfrog,)``; use
        :meth:`propose`, :meth:`sample` or :meth:`trace`."""
        return self.step_sizes

    @property
    def step_sizes(self):
        """The trained link step sizes ``ε^x_k``, shape ``(n_leapfrog,)``."""
        return tf.exp(self.log_eps_x)

    @property
    def momentum_step_sizes(self):
        """The trained momentum step sizes ``ε^v_k``, shape ``(n_leapfrog,)``."""
        return tf.exp(self.log_eps_v)

    def trajectory_length(self):
        """``Σ_k ε^x_k``: the time the links move (HMC of equal length: ``N_LF`` steps of the mean)."""
        return float(tf.reduce_sum(self.step_sizes))

    def heating_schedule(self):
        """Per step, the momentum log-scalings ``ε^v s/2`` of (a) and (d), shape ``(n_leapfrog, 2)``
        (the nets' contributions, which depend on the configuration, left out)."""
        s = tf.exp(self.v_logscale[..., 0]) * tf.tanh(self.v_pre[..., 0])
        return (0.5 * self.momentum_step_sizes[:, None] * s).numpy()

    def annealed_beta(self, step):
        if self.anneal_steps == 0:
            return tf.constant(self.beta, tf.float32)
        frac = tf.minimum(1.0, tf.cast(step, tf.float32) / float(self.anneal_steps))
        if self.anneal_eras > 0:  # flat steps: era e of n holds linspace(β_init, β, n)[e]
            eras = float(self.anneal_eras)
            frac = tf.minimum(tf.floor(frac * eras), eras - 1.0) / max(1.0, eras - 1.0)
        return self.beta_init + (self.beta - self.beta_init) * frac

    # ------------------------------------------------------------------ the generalised leapfrog
    def _flat(self, x):
        return tf.reshape(x, (-1, self.dim))

    def _links(self, x):
        return tf.reshape(x, (-1, *self.link_shape))

    def _squash(self, pre, logscale, k, j, net_s=0.0, net_q=0.0):
        """``s = e^{c_s} tanh(u_s + n_s)``, ``q = e^{c_q} tanh(u_q + n_q)`` of sub-update ``(k, j)``."""
        s = tf.exp(logscale[k, j, 0]) * tf.tanh(pre[k, j, 0] + net_s)
        q = tf.exp(logscale[k, j, 1]) * tf.tanh(pre[k, j, 1] + net_q)
        return s, q

    def _grad(self, x, beta):
        return self._flat(u1.action_gradient(self._links(x), beta))

    def _v_update(self, k, j, x, v, grad, inverse):
        """Γ of sub-update ``j`` (0: (a), 1: (d)) of step ``k``; ``grad = ∂S(x)`` (reused across steps)."""
        eps = tf.cast(tf.exp(self.log_eps_v[k]), x.dtype)
        if self.units:
            n_s, t, n_q = self.v_nets[k]([_encode(x), grad])
            s, q = self._squash(self.v_pre, self.v_logscale, k, j, n_s, n_q)
            logdet = tf.reduce_sum(0.5 * eps * s, -1)
        else:  # scalars: s, q the same on every link
            (s, q), t = self._squash(self.v_pre, self.v_logscale, k, j), 0.0
            logdet = tf.fill(tf.shape(x)[:1], 0.5 * eps * s * self.dim)
        scale = tf.exp(0.5 * eps * s)
        force = 0.5 * eps * (grad * tf.exp(eps * q) - t)
        if not inverse:
            return v * scale - force, logdet
        return (v + force) / scale, -logdet

    def _x_map(self, x, v, a, shift, upd, inverse):
        """The Λ map on the links where ``upd = 1`` (log-scale ``a = ε s``, shift ``ε(v e^{εq} + t)``)."""
        if not self.x_scale:
            return (u1.wrap(x - shift) if inverse else u1.wrap(x + shift)), 0.0

        def log_jac(z):  # d/dz 2 atan(tan(z/2) e^a)
            return a - tf.math.log(tf.square(tf.cos(0.5 * z)) + tf.exp(2.0 * a) * tf.square(tf.sin(0.5 * z)))

        if not inverse:
            y = 2.0 * tf.atan2(tf.sin(0.5 * x) * tf.exp(a), tf.cos(0.5 * x))
            return u1.wrap(y + shift), tf.reduce_sum(upd * log_jac(x), -1)
        y = u1.wrap(x - shift)
        new = 2.0 * tf.atan2(tf.sin(0.5 * y) * tf.exp(-a), tf.cos(0.5 * y))
        return new, -tf.reduce_sum(upd * log_jac(new), -1)

    def _x_scalars(self, k, j):
        s, q = self._squash(self.x_pre, self.x_logscale, k, j)
        return (s if self.x_scale else 0.0 * s), q

    def _x_update_fused(self, k, x, v, inverse):
        """(b) and (c) of step k at once: without nets they are independent element-wise maps."""
        eps = tf.cast(tf.exp(self.log_eps_x[k]), x.dtype)
        frozen = tf.constant(self.masks[k], x.dtype)  # m: frozen in (b), updated in (c)
        (s0, q0), (s1, q1) = self._x_scalars(k, 0), self._x_scalars(k, 1)
        a = eps * ((1.0 - frozen) * s0 + frozen * s1)
        q = (1.0 - frozen) * q0 + frozen * q1
        shift = eps * v * tf.exp(eps * q)
        new, logdet = self._x_map(x, v, a, shift, 1.0, inverse)
        return new, logdet + tf.zeros(tf.shape(x)[:1], x.dtype)

    def _x_update(self, k, half, x, v, inverse):
        mask = tf.constant(self.masks[k] if half == 0 else 1.0 - self.masks[k], x.dtype)  # frozen half
        upd = 1.0 - mask
        net = self.x_nets[k] if half == 0 else self.x_nets_c[k]
        eps = tf.cast(tf.exp(self.log_eps_x[k]), x.dtype)
        n_s, t, n_q = net([_encode(x) * tf.concat([mask, mask], 0), v])
        s, q = self._squash(self.x_pre, self.x_logscale, k, half, n_s, n_q)
        a = eps * s if self.x_scale else 0.0 * s
        shift = eps * (v * tf.exp(eps * q) + t)
        new, logdet = self._x_map(x, v, a, shift, upd, inverse)
        return mask * x + upd * new, logdet + tf.zeros(tf.shape(x)[:1], x.dtype)

    def _x_updates(self, k, x, v, inverse):
        """(b) then (c) of step ``k`` (or their inverse, (c)⁻¹ then (b)⁻¹). Returns ``(x, log|J|)``."""
        if not self.units:
            return self._x_update_fused(k, x, v, inverse)
        logdet = 0.0
        for half in ((1, 0) if inverse else (0, 1)):
            x, ld = self._x_update(k, half, x, v, inverse)
            logdet += ld
        return x, logdet

    def forward(self, x, v, beta, record=None):
        """``F``: all steps, forward. Flat ``x, v`` ``(batch, D)``, x in ``[−π, π)``.

        Returns ``(x*, v*, Σ log|J|)``; ``record(x, v, logdet)`` is called after every full step
        (mid-step states, with half-kicked momenta and half-moved links, are not physical).
        One force evaluation per step: ∂S at the end of step k is the one step k + 1 starts with.
        """
        logdet = tf.zeros(tf.shape(x)[:1], x.dtype)
        grad = self._grad(x, beta)
        for k in range(self.n_leapfrog):
            v, ld_a = self._v_update(k, 0, x, v, grad, inverse=False)
            x, ld_x = self._x_updates(k, x, v, inverse=False)
            grad = self._grad(x, beta)
            v, ld_d = self._v_update(k, 1, x, v, grad, inverse=False)
            logdet += ld_a + ld_x + ld_d
            if record is not None:
                record(x, v, logdet)
        return x, v, logdet

    def backward(self, x, v, beta):
        """``F⁻¹``: the exact inverse of :meth:`forward` (``d = −``). Returns ``(x, v, Σ log|J|)``."""
        logdet = tf.zeros(tf.shape(x)[:1], x.dtype)
        grad = self._grad(x, beta)
        for k in reversed(range(self.n_leapfrog)):
            v, ld_d = self._v_update(k, 1, x, v, grad, inverse=True)
            x, ld_x = self._x_updates(k, x, v, inverse=True)
            grad = self._grad(x, beta)
            v, ld_a = self._v_update(k, 0, x, v, grad, inverse=True)
            logdet += ld_a + ld_x + ld_d
        return x, v, logdet

    def _scalar_coefficients(self, dtype):
        """Per step, the scalar-only sampler's update coefficients (module docstring)::

            (a), (d):  v' = A v − B ∂S          A = e^{ε^v s/2}, B = ½ε^v e^{ε^v q}, log|J| = dim·ε^v s/2
            (b)+(c):   x' = 2 atan(tan(x/2) e^{a}) + c ⊙ v,   a = ε^x s, c = ε^x e^{ε^x q} per link

        Returns a dict of ``(n_leapfrog,)`` (v) and ``(n_leapfrog, dim)`` (x) tensors.
        """
        cast = lambda t: tf.cast(t, dtype)  # noqa: E731
        eps_v, eps_x = cast(tf.exp(self.log_eps_v)), cast(tf.exp(self.log_eps_x))
        s_v = cast(tf.exp(self.v_logscale[..., 0]) * tf.tanh(self.v_pre[..., 0]))  # (N, 2)
        q_v = cast(tf.exp(self.v_logscale[..., 1]) * tf.tanh(self.v_pre[..., 1]))
        s_x = cast(tf.exp(self.x_logscale[..., 0]) * tf.tanh(self.x_pre[..., 0]))
        q_x = cast(tf.exp(self.x_logscale[..., 1]) * tf.tanh(self.x_pre[..., 1]))
        frozen = tf.constant(self.masks, dtype)  # m_k: updated in (c)
        per_link = lambda z: (1.0 - frozen) * z[:, :1] + frozen * z[:, 1:]  # noqa: E731
        half_eps = 0.5 * eps_v[:, None]
        return {"A": tf.exp(half_eps * s_v), "B": half_eps * tf.exp(eps_v[:, None] * q_v),
                "ld_v": half_eps * s_v * self.dim,
                "a": eps_x[:, None] * per_link(s_x) if self.x_scale else None,
                "c": eps_x[:, None] * tf.exp(eps_x[:, None] * per_link(q_x))}

    def _fused_trajectory(self, x, v, backward, beta):
        """``F`` on the chains where ``backward`` is False and ``F⁻¹`` where it is True, in one pass
        (no split of the batch: one set of ops per sub-update) — the scalar-only sampler's
        :meth:`propose`. Equal to :meth:`forward` / :meth:`backward` chain by chain; the links are
        not wrapped inside (the action and the compact scaling are 2π-periodic). At position ``i``
        a forward chain runs step ``i``; a backward chain runs the inverse of step ``N − 1 − i``:
        ``(d)⁻¹`` (``A → 1/A``, ``B → −B/A``), the x update inverted (shift first, then the
        scaling with ``−a``), ``(a)⁻¹``. Returns ``(x*, v*, Σ log|J|)``.
        """
        co = self._scalar_coefficients(x.dtype)
        n = self.n_leapfrog
        b = backward[:, None]
        sign = tf.where(backward, -1.0, 1.0)[:, None]
        sign = tf.cast(sign, x.dtype)
        logdet = tf.zeros(tf.shape(x)[:1], x.dtype)

        def v_coeff(i, first):
            kf, kb = i, n - 1 - i
            jf, jb = (0, 1) if first else (1, 0)  # forward: (a) then (d); backward: (d)⁻¹ then (a)⁻¹
            a_f, b_f, ld_f = co["A"][kf, jf], co["B"][kf, jf], co["ld_v"][kf, jf]
            a_b, b_b, ld_b = co["A"][kb, jb], co["B"][kb, jb], co["ld_v"][kb, jb]
            return (tf.where(b, 1.0 / a_b, a_f), tf.where(b, -b_b / a_b, b_f),
                    tf.where(backward, -ld_b, ld_f))

        grad = self._grad(x, beta)
        for i in range(n):
            big_a, big_b, ld = v_coeff(i, True)
            v = big_a * v - big_b * grad
            logdet += ld
            c = tf.where(b, co["c"][n - 1 - i][None], co["c"][i][None])
            if co["a"] is None:
                x = x + sign * c * v
            else:
                a = tf.where(b, -co["a"][n - 1 - i][None], co["a"][i][None])
                y = tf.where(b, x - c * v, x)
                half = 0.5 * y
                sin_h, cos_h = tf.sin(half), tf.cos(half)
                ea = tf.exp(a)
                z = 2.0 * tf.atan2(sin_h * ea, cos_h)
                logdet += tf.reduce_sum(a - tf.math.log(tf.square(cos_h) + tf.square(ea * sin_h)), -1)
                x = tf.where(b, z, z + c * v)
            grad = self._grad(x, beta)
            big_a, big_b, ld = v_coeff(i, False)
            v = big_a * v - big_b * grad
            logdet += ld
        return x, v, logdet

    def hamiltonian(self, x, v, beta):
        """``H = S_β(x) + ½ v²`` per chain for flat ``x, v``."""
        return u1.wilson_action(self._links(x), beta) + 0.5 * tf.reduce_sum(tf.square(v), -1)

    def propose(self, x, beta, seed):
        """One proposal for every chain: ``v ~ N(0, 1)``, ``d ~ U(±)``, ``ξ* = F^d ξ`` (Eq. 16).

        ``x``: links ``(batch, L, L, 2)``; ``seed``: shape-(2,) int tensor (stateless).
        Returns ``(x*, A)``: proposed links (wrapped) and acceptance probabilities ``(batch,)``.
        """
        x = u1.wrap(self._flat(x))
        beta = u1.as_dtype(beta, x.dtype)
        seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
        v = tf.random.stateless_normal(tf.shape(x), seed=seeds[0], dtype=x.dtype)
        backward = tf.random.stateless_uniform(tf.shape(x)[:1], seed=seeds[1]) < 0.5
        if not self.units:  # the scalar-only sampler: both directions in one pass
            x_star, v_star, logdet = self._fused_trajectory(x, v, backward, beta)
            log_a = self.hamiltonian(x, v, beta) - self.hamiltonian(x_star, v_star, beta) + logdet
            return self._links(u1.wrap(x_star)), tf.exp(tf.minimum(tf.zeros_like(log_a), log_a))
        parts = tf.cast(backward, tf.int32)
        idx = tf.dynamic_partition(tf.range(tf.shape(x)[0]), parts, 2)
        xs, vs = tf.dynamic_partition(x, parts, 2), tf.dynamic_partition(v, parts, 2)
        fx, fv, fld = self.forward(xs[0], vs[0], beta)
        bx, bv, bld = self.backward(xs[1], vs[1], beta)
        x_star = tf.dynamic_stitch(idx, [fx, bx])
        v_star = tf.dynamic_stitch(idx, [fv, bv])
        logdet = tf.dynamic_stitch(idx, [fld, bld])
        log_a = self.hamiltonian(x, v, beta) - self.hamiltonian(x_star, v_star, beta) + logdet
        prob = tf.exp(tf.minimum(tf.zeros_like(log_a), log_a))  # Eq. (16)
        return self._links(x_star), prob

    def loss_fn(self, prob, dq2):
        """The training loss from per-chain ``A`` and ``(Q*_R − Q_R)²`` (``loss``: eq15 or mixed)."""
        ell = prob * dq2
        if self.loss_name == "eq15":
            return -tf.reduce_mean(ell)  # Eq. (15): maximise A·(Q*_R − Q_R)²
        ell = ell + 1e-4
        w = u1.as_dtype(self.loss_weight, ell.dtype)
        return tf.reduce_mean(w / ell - ell / w)  # l2hmc-qcd "mixed": punishes chains that stay

    def _mcmc(self, x, beta, seed, training):
        with tf.GradientTape(watch_accessed_variables=training) as tape:
            x_star, prob = self.propose(x, beta, seed)
            dq2 = tf.square(u1.charge_real(x_star) - u1.charge_real(x))
            loss = self.loss_fn(prob, dq2)
        if training:
            grads = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply(grads, self.trainable_variables)
        u = tf.random.stateless_uniform(tf.shape(prob), seed=tf.cast(seed, tf.int64) + [0, 7], dtype=prob.dtype)
        x_next = tf.where((u < prob)[:, None, None, None], x_star, x)
        stats = {"loss": loss, "acceptance": tf.reduce_mean(prob),
                 "dq_int": tf.reduce_mean(tf.abs(u1.charge_int(x_next) - u1.charge_int(x))),
                 "dq_real_sq": tf.reduce_mean(dq2), "plaquette": tf.reduce_mean(u1.average_plaquette(x_next)),
                 "beta": beta}
        for key, value in stats.items():
            self.trackers[key].update_state(value)
        return x_next

    def _clock(self):
        """Process CPU seconds since the last call (first call of a process: since the model was built)."""
        now = time.process_time()
        delta, self._cpu_mark = now - self._cpu_mark, now
        return np.float64(max(delta, 0.0))

    def _logs(self):
        return {**{m.name: m.result() for m in self.metrics}, "train_cpu_s": self.train_cpu_s}

    def train_step(self, data):
        step = self.optimizer.iterations
        beta = self.annealed_beta(step)
        seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(step, tf.int64)])
        self.chain_x.assign(self._mcmc(tf.convert_to_tensor(self.chain_x), beta, seed, True))
        self.train_cpu_s.assign_add(tf.reshape(tf.numpy_function(self._clock, [], tf.float64, stateful=True), []))
        return self._logs()

    def test_step(self, data):
        """A trajectory of the separate validation chains at the target β (no training)."""
        seed = tf.stack([tf.constant(self.seed + 1, tf.int64), tf.cast(self.val_count, tf.int64)])
        self.val_count.assign_add(1.0)
        step = tf.cast(self.optimizer.iterations, self.val_mark.dtype)
        fresh = tf.not_equal(step, self.val_mark)
        self.val_x.assign(tf.where(fresh, tf.convert_to_tensor(self.chain_x), tf.convert_to_tensor(self.val_x)))
        self.val_mark.assign(step)
        beta = tf.constant(self.beta, self.chain_x.dtype)
        self.val_x.assign(self._mcmc(tf.convert_to_tensor(self.val_x), beta, seed, False))
        return self._logs()

    # ------------------------------------------------------------------ sampling and diagnostics
    def sample(self, x, n_trajectories, beta=None, seed=0, progress=False, desc="LeapfrogLayers"):
        """Run the (trained) sampler without training; returns :class:`tfphys.leapfrog.hmc.Chains`."""
        from tqdm.auto import tqdm

        from tfphys.leapfrog.hmc import Chains

        dtype = self.chain_x.dtype
        beta = tf.constant(self.beta if beta is None else float(beta), dtype)
        if getattr(self, "_sample_step", None) is None:  # one graph for every β (β is an input)

            @tf.function(reduce_retracing=True)
            def step(x, beta, seed):
                x_star, prob = self.propose(x, beta, seed)
                u = tf.random.stateless_uniform(tf.shape(prob), seed=seed + [0, 7], dtype=prob.dtype)
                x = tf.where((u < prob)[:, None, None, None], x_star, x)
                return x, prob, u1.charge_int(x), u1.charge_real(x), u1.average_plaquette(x)

            self._sample_step = step
        step = self._sample_step
        x = tf.convert_to_tensor(x, dtype)
        base = tf.constant([int(seed), 99991], tf.int64)
        step(x, beta, base)  # compile outside the timed region
        rec = []
        wall, cpu = time.perf_counter(), time.process_time()
        for i in tqdm(range(int(n_trajectories)), desc=desc, disable=not progress, leave=False):
            x, *obs = step(x, beta, base + tf.constant([0, 1], tf.int64) * (i + 1))
            rec.append([o.numpy() for o in obs])
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        prob, qz, qr, plaq = (np.array(r) for r in zip(*rec))
        return Chains(qz, qr, plaq, prob, wall, cpu, x.numpy())

    def trace(self, x, beta=None, seed=0):
        """Quantities along one forward trajectory (Figures 6–7), after every leapfrog step.

        Returns a dict of arrays ``(n_leapfrog + 1, batch)``: ``h_minus_logdet`` (H − Σ log|J|),
        ``charge_real``, ``charge_int``, ``plaquette``, and ``step`` (0 … n_leapfrog).
        """
        dtype = self.chain_x.dtype
        beta = tf.constant(self.beta if beta is None else float(beta), dtype)
        x = u1.wrap(self._flat(tf.convert_to_tensor(x, dtype)))
        v = tf.random.stateless_normal(tf.shape(x), seed=[int(seed), 4242], dtype=dtype)
        rows = []

        def record(xx, vv, logdet):
            links = self._links(xx)
            rows.append([self.hamiltonian(xx, vv, beta) - logdet, u1.charge_real(links),
                         u1.charge_int(links), u1.average_plaquette(links)])

        record(x, v, tf.zeros(tf.shape(x)[:1], dtype))
        self.forward(x, v, beta, record=record)
        cols = [np.stack([r[j].numpy() for r in rows]) for j in range(4)]
        out = dict(zip(("h_minus_logdet", "charge_real", "charge_int", "plaquette"), cols))
        out["step"] = np.arange(len(rows))
        return out

    def untrained(self, **changes):
        """A fresh sampler of the same config (its untrained starting point), ``changes`` applied."""
        return LeapfrogSampler.from_config({**self.get_config(), **changes})


def build_leapfrog(lattice_size: int = 16, n_leapfrog: int = 40, n_chains: int = 256, beta: float = 6.0,
                   beta_init: float = 2.0, anneal_steps: int = 0, anneal_eras: int = 0,
                   step_size: float = 0.1, units: list[int] = (), activation: str = "swish",
                   output_scale: float = 0.0, init: str = "heating", heating: float = 0.025,
                   x_scale: bool = False, loss: str = "mixed", loss_weight: float = 0.01, *,
                   seed=0, mask_seed=None) -> LeapfrogSampler:
    """The registry's builder: a :class:`LeapfrogSampler` from the ``[model]`` table.

    ``seed``: the run's ``[train] seed`` (the trainer passes it): the chains' hot start, the
    stateless random numbers and, unless ``mask_seed`` is given, the links' masks. A bad value is
    one :class:`~tfphys.errors.TfphysError`.
    """
    mask_seed = seed if mask_seed is None else mask_seed
    try:
        return LeapfrogSampler(lattice_size=lattice_size, n_leapfrog=n_leapfrog, n_chains=n_chains,
                               beta=beta, beta_init=beta_init, anneal_steps=anneal_steps,
                               anneal_eras=anneal_eras, step_size=step_size, units=units,
                               activation=activation, output_scale=output_scale, init=init,
                               heating=heating, x_scale=x_scale, loss=loss, loss_weight=loss_weight,
                               mask_seed=mask_seed, seed=seed, name="leapfrog")
    except ValueError as err:
        raise TfphysError(f"[model] of leapfrog: {err}") from None
