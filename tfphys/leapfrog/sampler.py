"""LeapfrogLayers: a trainable generalisation of HMC for 2D U(1) (Foreman, Jin & Osborn, Lattice 2021).

One generalised leapfrog step ``k`` (§3, Figure 3) updates, in this order::

    (a) v  ← Γ_k[v; ζ_v]          ζ_v = (x, ∂S(x))
    (b) x  ← m ⊙ x + m̄ ⊙ Λ_k[x_m̄; ζ]   the half m̄, driven by the frozen half m ⊙ x and v
    (c) x  ← m̄ ⊙ x + m ⊙ Λ'_k[x_m; ζ]   the complementary half m
    (d) v  ← Γ_k[v; ζ_v]          the same Γ_k net, at the new x

with, for the outputs ``(s, t, q)`` of the step's networks (Eq. 12–14) and its trainable ``ε_k``::

    Γ:  v' = v·e^{εs/2} − ½ε (∂S·e^{εq} − t)                    log|J| = Σ εs/2
    Λ:  x' = ⌊ 2 atan(tan(x/2)·e^{εs}) + ε (v·e^{εq} + t) ⌉    log|J| = Σ_m̄ [εs − log(cos²(x/2) + e^{2εs} sin²(x/2))]

The x update uses the *compact* scaling ``2 atan(tan(x/2) e^{εs})`` (also in the authors' code)
instead of the paper's ``x·e^{εs}``: on the circle ``x e^{εs}`` mod 2π is not a bijection unless
``s = 0``, and a bijection with an exact Jacobian is what makes the Metropolis–Hastings test
(Eq. 16) exact. The direction ``d ∈ {+, −}`` is drawn per chain; ``d = −`` runs the exact inverse
of the forward map (sub-updates inverted, in reverse order), so ``(ξ, d) → (F^d ξ, −d)`` is an
involution and ``A = min(1, exp(H(ξ) − H(ξ*) + Σ log|J|))`` satisfies detailed balance.

The output layers of every net start at zero, so ``s = t = q = 0`` and an untrained sampler is
plain HMC (Eq. 10) with step ``ε_k``.

Training (§3.2–3.3) is :meth:`LeapfrogSampler.train_step`: one trajectory of every chain, the
loss of Eq. (15) ``L = −mean_chains A(ξ*|ξ)·(Q*_R − Q_R)²``, a gradient step, then the MH step
that moves the chains; the chain state lives in non-trainable variables, so ``model.keras``,
``BackupAndRestore`` and a resumed run carry it. The action is annealed (§3.3): the coupling is
``β_t = β_init + (β − β_init)·min(1, t / anneal_steps)`` at optimizer step ``t`` (``γ_t = β_t/β``
rises linearly to 1 with ``|γ_{t+1} − γ_t| = (1 − β_init/β)/anneal_steps ≪ 1``), computed from
``optimizer.iterations`` so that it resumes where it stopped. Random numbers are stateless in
``(seed, step)``: a resumed run draws what the uninterrupted one would have drawn.
"""

from __future__ import annotations

import math

import keras
import numpy as np
import tensorflow as tf

from tfphys.leapfrog import u1


@keras.saving.register_keras_serializable(package="tfphys")
class LeapfrogNet(keras.layers.Layer):
    """The Γ (momentum) or Λ (link) network of one leapfrog sub-update, Eq. (12)–(14)::

        h₁ = σ(w_a a + w_b b + b₁),  h_j = σ(w_j h_{j−1} + b_j)
        s = λ_s tanh(w_s h_k + b_s),  t = w_t h_k + b_t,  q = λ_q tanh(w_q h_k + b_q)

    For Λ, ``a`` is the frozen half of the links encoded as ``[cos x, sin x]`` (zeros on the
    updated half) and ``b`` is ``v``; for Γ, ``a`` is ``[cos x, sin x]`` and ``b = ∂S(x)``.

    Args:
        units: widths ``n₁, …, n_k`` of the hidden layers.
        activation: σ.
        output_scale: the output kernels are drawn from ``N(0, output_scale²)`` (biases zero);
            ``0`` (default) makes ``s = t = q = 0``, so the sampler starts as plain HMC.

    Input: ``[a, b]`` of shapes ``(batch, A)`` and ``(batch, D)``.
    Output: ``(s, t, q)``, each ``(batch, D)`` (one value per link).
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
        self.lambda_s = self.add_weight(shape=(), initializer="ones", name="lambda_s")
        self.lambda_q = self.add_weight(shape=(), initializer="ones", name="lambda_q")

    def call(self, inputs):
        a, b = inputs
        h = self.act(self.in_a(a) + self.in_b(b))
        for layer in self.hidden:
            h = layer(h)
        s = self.lambda_s * keras.ops.tanh(self.out_s(h))
        q = self.lambda_q * keras.ops.tanh(self.out_q(h))
        return s, self.out_t(h), q

    def get_config(self):
        return {**super().get_config(), "units": self.units, "activation": self.activation,
                "output_scale": self.output_scale}


def _encode(x):
    """Links as ``[cos x, sin x]`` (the paper's encoding), ``(batch, D) → (batch, 2D)``."""
    return tf.concat([tf.cos(x), tf.sin(x)], axis=-1)


@keras.saving.register_keras_serializable(package="tfphys")
class LeapfrogSampler(keras.Model):
    """The LeapfrogLayers sampler: ``n_leapfrog`` generalised leapfrog steps + MH, on ``n_chains``.

    Args:
        lattice_size: ``L`` of the ``L × L`` periodic lattice.
        n_leapfrog: generalised leapfrog steps per trajectory ``N_LF``.
        n_chains: Markov chains trained (and kept) in parallel.
        beta: the target coupling β.
        beta_init, anneal_steps: the annealing schedule of §3.3 (see the module docstring).
        step_size: initial ``ε_k`` of every step (trainable, one per step, kept positive).
        units, activation: the hidden layers of every Γ and Λ net (Eq. 12–14).
        mask_seed: seed of the fixed random half-of-the-links mask of every step.
        seed: seed of the chains' hot start and of the stateless random numbers.
        output_scale: see :class:`LeapfrogNet` (0 → untrained sampler = plain HMC).

    Inputs to :meth:`train_step` / :meth:`test_step`: anything (a tick of the tf.data stream);
    the state is in the model. Links have shape ``(n_chains, L, L, 2)``.
    """

    def __init__(self, lattice_size=16, n_leapfrog=10, n_chains=64, beta=6.0, beta_init=2.0,
                 anneal_steps=1000, step_size=0.1, units=(64,), activation="swish", mask_seed=0,
                 seed=0, output_scale=0.0, **kwargs):
        super().__init__(**kwargs)
        self.lattice_size, self.n_leapfrog, self.n_chains = int(lattice_size), int(n_leapfrog), int(n_chains)
        self.beta, self.beta_init, self.anneal_steps = float(beta), float(beta_init), int(anneal_steps)
        self.step_size, self.units, self.activation = float(step_size), [int(u) for u in units], activation
        self.mask_seed, self.seed, self.output_scale = int(mask_seed), int(seed), float(output_scale)
        if self.lattice_size < 2 or self.n_leapfrog < 1 or self.n_chains < 1 or self.step_size <= 0:
            raise ValueError("LeapfrogSampler needs lattice_size ≥ 2, n_leapfrog ≥ 1, n_chains ≥ 1, "
                             f"step_size > 0; got {lattice_size}, {n_leapfrog}, {n_chains}, {step_size}")
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

        self.v_nets = [net(f"gamma_{k}") for k in range(self.n_leapfrog)]
        self.x_nets = [net(f"lambda_{k}") for k in range(self.n_leapfrog)]      # updates m̄
        self.x_nets_c = [net(f"lambda_c_{k}") for k in range(self.n_leapfrog)]  # updates m
        self.log_step = self.add_weight(
            shape=(self.n_leapfrog,), name="log_step_size",
            initializer=keras.initializers.Constant(math.log(self.step_size)))
        hot = keras.initializers.RandomUniform(-math.pi, math.pi, seed=self.seed)
        self.chain_x = self.add_weight(shape=(self.n_chains, *self.link_shape), initializer=hot,
                                       trainable=False, name="chain_x")
        # Validation chains start cold (x = 0, Q = 0), near equilibrium at large β: a hot start
        # would "tunnel" while thermalising and make the first epochs look best on val_loss.
        self.val_x = self.add_weight(shape=(self.n_chains, *self.link_shape), trainable=False,
                                     initializer="zeros", name="val_chain_x")
        self.val_count = self.add_weight(shape=(), initializer="zeros", trainable=False,
                                         name="val_count")
        self.trackers = {k: keras.metrics.Mean(name=k) for k in
                         ("loss", "acceptance", "dq_int", "dq_real_sq", "plaquette", "beta")}
        self.built = True

    # ------------------------------------------------------------------ configuration / keras
    def get_config(self):
        return {**super().get_config(), "lattice_size": self.lattice_size,
                "n_leapfrog": self.n_leapfrog, "n_chains": self.n_chains, "beta": self.beta,
                "beta_init": self.beta_init, "anneal_steps": self.anneal_steps,
                "step_size": self.step_size, "units": self.units, "activation": self.activation,
                "mask_seed": self.mask_seed, "seed": self.seed, "output_scale": self.output_scale}

    @property
    def metrics(self):
        return list(self.trackers.values())

    def call(self, inputs, training=False):
        """A sampler has no single forward pass (a trajectory needs momenta, a direction and a
        Metropolis test): ``call`` returns the trained step sizes ``(n_leapfrog,)``; use
        :meth:`propose`, :meth:`sample` or :meth:`trace`."""
        return self.step_sizes

    @property
    def step_sizes(self):
        """The trained ``ε_k``, shape ``(n_leapfrog,)``."""
        return tf.exp(self.log_step)

    def trajectory_length(self):
        return float(tf.reduce_sum(self.step_sizes))

    def annealed_beta(self, step):
        frac = tf.minimum(1.0, tf.cast(step, tf.float32) / float(max(1, self.anneal_steps)))
        return self.beta_init + (self.beta - self.beta_init) * frac

    # ------------------------------------------------------------------ the generalised leapfrog
    def _flat(self, x):
        return tf.reshape(x, (-1, self.dim))

    def _links(self, x):
        return tf.reshape(x, (-1, *self.link_shape))

    def _v_update(self, k, x, v, beta, inverse):
        eps = self.step_sizes[k]
        grad = self._flat(u1.action_gradient(self._links(x), beta))
        s, t, q = self.v_nets[k]([_encode(x), grad])
        scale = 0.5 * eps * s
        force = 0.5 * eps * (grad * tf.exp(eps * q) - t)
        if not inverse:
            return v * tf.exp(scale) - force, tf.reduce_sum(scale, -1)
        return (v + force) * tf.exp(-scale), -tf.reduce_sum(scale, -1)

    def _x_update(self, k, half, x, v, inverse):
        mask = tf.constant(self.masks[k] if half == 0 else 1.0 - self.masks[k], x.dtype)  # frozen half
        upd = 1.0 - mask
        net = self.x_nets[k] if half == 0 else self.x_nets_c[k]
        eps = self.step_sizes[k]
        s, t, q = net([_encode(x) * tf.concat([mask, mask], 0), v])
        a = eps * s
        shift = eps * (v * tf.exp(eps * q) + t)

        def log_jac(z):  # d/dz 2 atan(tan(z/2) e^a)
            return a - tf.math.log(tf.square(tf.cos(0.5 * z)) + tf.exp(2.0 * a) * tf.square(tf.sin(0.5 * z)))

        if not inverse:
            y = 2.0 * tf.atan2(tf.sin(0.5 * x) * tf.exp(a), tf.cos(0.5 * x))
            new = u1.wrap(y + shift)
            logdet = tf.reduce_sum(upd * log_jac(x), -1)
        else:
            y = u1.wrap(x - shift)
            new = 2.0 * tf.atan2(tf.sin(0.5 * y) * tf.exp(-a), tf.cos(0.5 * y))
            logdet = -tf.reduce_sum(upd * log_jac(new), -1)
        return mask * x + upd * new, logdet

    def forward(self, x, v, beta, record=None):
        """``F``: all steps, forward. Flat ``x, v`` ``(batch, D)``, x in ``[−π, π)``.

        Returns ``(x*, v*, Σ log|J|)``; ``record(x, v, logdet)`` is called after every full step
        (mid-step states, with half-kicked momenta and half-moved links, are not physical).
        """
        logdet = tf.zeros(tf.shape(x)[:1], x.dtype)
        for k in range(self.n_leapfrog):
            for sub in range(4):
                if sub in (0, 3):
                    v, ld = self._v_update(k, x, v, beta, inverse=False)
                else:
                    x, ld = self._x_update(k, sub - 1, x, v, inverse=False)
                logdet += ld
            if record is not None:
                record(x, v, logdet)
        return x, v, logdet

    def backward(self, x, v, beta):
        """``F⁻¹``: the exact inverse of :meth:`forward` (``d = −``). Returns ``(x, v, Σ log|J|)``."""
        logdet = tf.zeros(tf.shape(x)[:1], x.dtype)
        for k in reversed(range(self.n_leapfrog)):
            for sub in (3, 2, 1, 0):
                if sub in (0, 3):
                    v, ld = self._v_update(k, x, v, beta, inverse=True)
                else:
                    x, ld = self._x_update(k, sub - 1, x, v, inverse=True)
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
        seeds = tf.random.experimental.stateless_split(tf.cast(seed, tf.int64), 2)
        v = tf.random.stateless_normal(tf.shape(x), seed=seeds[0], dtype=x.dtype)
        backward = tf.random.stateless_uniform(tf.shape(x)[:1], seed=seeds[1]) < 0.5
        parts = tf.cast(backward, tf.int32)
        idx = tf.dynamic_partition(tf.range(tf.shape(x)[0]), parts, 2)
        xs, vs = tf.dynamic_partition(x, parts, 2), tf.dynamic_partition(v, parts, 2)
        fx, fv, fld = self.forward(xs[0], vs[0], beta)
        bx, bv, bld = self.backward(xs[1], vs[1], beta)
        x_star = tf.dynamic_stitch(idx, [fx, bx])
        v_star = tf.dynamic_stitch(idx, [fv, bv])
        logdet = tf.dynamic_stitch(idx, [fld, bld])
        log_a = self.hamiltonian(x, v, beta) - self.hamiltonian(x_star, v_star, beta) + logdet
        prob = tf.exp(tf.minimum(0.0, log_a))  # Eq. (16)
        return self._links(x_star), prob

    def _mcmc(self, x, beta, seed, training):
        with tf.GradientTape(watch_accessed_variables=training) as tape:
            x_star, prob = self.propose(x, beta, seed)
            dq2 = tf.square(u1.charge_real(x_star) - u1.charge_real(x))
            loss = -tf.reduce_mean(prob * dq2)  # Eq. (15): maximise A·(Q*_R − Q_R)²
        if training:
            grads = tape.gradient(loss, self.trainable_variables)
            self.optimizer.apply(grads, self.trainable_variables)
        u = tf.random.stateless_uniform(tf.shape(prob), seed=tf.cast(seed, tf.int64) + [0, 7])
        x_next = tf.where((u < prob)[:, None, None, None], x_star, x)
        stats = {"loss": loss, "acceptance": tf.reduce_mean(prob),
                 "dq_int": tf.reduce_mean(tf.abs(u1.charge_int(x_next) - u1.charge_int(x))),
                 "dq_real_sq": tf.reduce_mean(dq2), "plaquette": tf.reduce_mean(u1.average_plaquette(x_next)),
                 "beta": beta}
        for key, value in stats.items():
            self.trackers[key].update_state(value)
        return x_next

    def train_step(self, data):
        step = self.optimizer.iterations
        beta = self.annealed_beta(step)
        seed = tf.stack([tf.constant(self.seed, tf.int64), tf.cast(step, tf.int64)])
        self.chain_x.assign(self._mcmc(tf.convert_to_tensor(self.chain_x), beta, seed, True))
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        """A trajectory of the separate validation chains at the target β (no training)."""
        seed = tf.stack([tf.constant(self.seed + 1, tf.int64), tf.cast(self.val_count, tf.int64)])
        self.val_count.assign_add(1.0)
        self.val_x.assign(self._mcmc(tf.convert_to_tensor(self.val_x), tf.constant(self.beta), seed, False))
        return {m.name: m.result() for m in self.metrics}

    # ------------------------------------------------------------------ sampling and diagnostics
    def sample(self, x, n_trajectories, beta=None, seed=0, progress=False, desc="LeapfrogLayers"):
        """Run the (trained) sampler without training; returns :class:`tfphys.leapfrog.hmc.Chains`."""
        import time

        from tqdm.auto import tqdm

        from tfphys.leapfrog.hmc import Chains

        beta = tf.constant(self.beta if beta is None else float(beta), tf.float32)
        if getattr(self, "_sample_step", None) is None:  # one graph for every β (β is an input)

            @tf.function(reduce_retracing=True)
            def step(x, beta, seed):
                x_star, prob = self.propose(x, beta, seed)
                u = tf.random.stateless_uniform(tf.shape(prob), seed=seed + [0, 7])
                x = tf.where((u < prob)[:, None, None, None], x_star, x)
                return x, prob, u1.charge_int(x), u1.charge_real(x), u1.average_plaquette(x)

            self._sample_step = step
        step = self._sample_step
        x = tf.convert_to_tensor(x, tf.float32)
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
        beta = tf.constant(self.beta if beta is None else float(beta), tf.float32)
        x = u1.wrap(self._flat(tf.convert_to_tensor(x, tf.float32)))
        v = tf.random.stateless_normal(tf.shape(x), seed=[int(seed), 4242])
        rows = []

        def record(xx, vv, logdet):
            links = self._links(xx)
            rows.append([self.hamiltonian(xx, vv, beta) - logdet, u1.charge_real(links),
                         u1.charge_int(links), u1.average_plaquette(links)])

        record(x, v, tf.zeros(tf.shape(x)[:1]))
        self.forward(x, v, beta, record=record)
        cols = [np.stack([r[j].numpy() for r in rows]) for j in range(4)]
        out = dict(zip(("h_minus_logdet", "charge_real", "charge_int", "plaquette"), cols))
        out["step"] = np.arange(len(rows))
        return out


def build_leapfrog(lattice_size=16, n_leapfrog=10, n_chains=64, beta=6.0, beta_init=2.0,
                   anneal_steps=1000, step_size=0.1, units=(64,), activation="swish",
                   output_scale=0.0, *, seed=0, mask_seed=None) -> LeapfrogSampler:
    """The registry's builder: a :class:`LeapfrogSampler` from the ``[model]`` table.

    ``seed``: the run's ``[train] seed`` (the trainer passes it): the chains' hot start, the
    stateless random numbers and, unless ``mask_seed`` is given, the links' masks.
    """
    mask_seed = seed if mask_seed is None else mask_seed
    return LeapfrogSampler(lattice_size=lattice_size, n_leapfrog=n_leapfrog, n_chains=n_chains,
                           beta=beta, beta_init=beta_init, anneal_steps=anneal_steps,
                           step_size=step_size, units=units, activation=activation,
                           mask_seed=mask_seed, seed=seed, output_scale=output_scale,
                           name="leapfrog")
