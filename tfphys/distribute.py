"""``tf.distribute`` for the one trainer: a strategy from a name, the worker's role, and the
two Keras 3 work-arounds that ``model.fit`` needs under ``MultiWorkerMirroredStrategy``.

==============  ===================================================================================
``default``     ``tf.distribute.get_strategy()``: one process, no replication (TensorFlow's own
                thread pools use every core)
``mirrored``    ``MirroredStrategy``: synchronous data parallelism over the devices of one machine,
                one replica per visible GPU; on a CPU-only machine that is **one** replica on
                ``/cpu:0`` (same maths as ``default``, useful to check a config before a cluster run)
``multiworker`` ``MultiWorkerMirroredStrategy``: one process per worker (host or ``srun`` task),
                gradients all-reduced every step; the cluster comes from ``TF_CONFIG`` or, when
                it is unset and the process runs under ``srun`` with several tasks, from
                ``SlurmClusterResolver`` (hosts from ``SLURM_STEP_NODELIST``, ports from
                ``TFPHYS_PORT_BASE``, default 8888)
==============  ===================================================================================

Semantics, the same for every model:

- ``[pipeline] batch_size`` is the **global** batch: one optimizer step sees ``batch_size``
  events in total, ``batch_size / num_replicas`` per replica. Learning rates and epoch lengths
  therefore do not change with the number of workers.
- Datasets are auto-sharded with ``AutoShardPolicy.DATA``: every worker runs the same seeded
  pipeline and keeps its slice of every global batch. ``FILE`` does not apply (the pipelines
  read HDF5 through ``numpy_function`` / ``from_tensor_slices``, not tf.data file readers), and
  ``DATA`` keeps the property that N workers see exactly the global batches of one process with
  the same seed. The price is that every worker reads and preprocesses the whole file.
- With W > 1 workers a final batch of fewer than W events is dropped (it would leave a worker
  an empty batch): fewer than W events per epoch, training or validation.
- The strategy must exist before any other TensorFlow op of the process (collective ops are
  configured at start-up): ``tfphys-train --strategy`` creates it first.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any

from tfphys.errors import TfphysError

STRATEGIES = ("default", "mirrored", "multiworker")


@dataclass(frozen=True)
class WorkerRole:
    """Where this process stands in the cluster: ``task_id`` among ``num_workers``."""

    task_type: str | None
    task_id: int
    num_workers: int

    @property
    def is_chief(self) -> bool:
        """The chief writes the run dir; the others write to a temporary dir of their own."""
        return self.task_type in (None, "chief") or (self.task_type == "worker" and self.task_id == 0)


def tf_config_cluster(text: str) -> dict[str, Any]:
    """Validate a ``TF_CONFIG`` string; return it parsed. Errors name what is wrong.

    Expected: ``{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": i}}``
    (an optional ``"chief": ["host:port"]`` job makes a separate chief).
    """
    try:
        conf = json.loads(text)
    except json.JSONDecodeError as err:
        raise TfphysError(f"TF_CONFIG is not valid JSON ({err.msg} at character {err.pos}): {text[:80]!r}") from None
    if not (isinstance(conf, dict) and isinstance(conf.get("cluster"), dict)
            and isinstance(conf.get("task"), dict)):
        raise TfphysError('TF_CONFIG needs "cluster" and "task" objects, e.g. {"cluster": {"worker": '
                          '["host1:12345", "host2:12345"]}, "task": {"type": "worker", "index": 0}}')
    cluster, task = conf["cluster"], conf["task"]
    for job, hosts in cluster.items():
        if job not in ("worker", "chief"):
            raise TfphysError(f'TF_CONFIG cluster job {job!r} is not used by MultiWorkerMirroredStrategy '
                              '(only "worker" and "chief")')
        if not isinstance(hosts, list) or not hosts:
            raise TfphysError(f'TF_CONFIG cluster "{job}" must be a non-empty list of "host:port", got {hosts!r}')
        for address in hosts:
            host, _, port = str(address).rpartition(":")
            if not host or not port.isdigit():
                raise TfphysError(f'TF_CONFIG cluster "{job}" address {address!r} is not "host:port"')
    if "worker" not in cluster:
        raise TfphysError('TF_CONFIG cluster has no "worker" list')
    kind, index = task.get("type"), task.get("index")
    if kind not in cluster:
        raise TfphysError(f'TF_CONFIG task type {kind!r} is not a job of the cluster ({", ".join(cluster)})')
    if not isinstance(index, int) or not 0 <= index < len(cluster[kind]):
        raise TfphysError(f'TF_CONFIG task index {index!r} is out of range for the {len(cluster[kind])} '
                          f'"{kind}" address(es)')
    return conf


def _on_slurm_step() -> bool:
    """Inside ``srun`` with more than one task (a single task needs no cluster)."""
    try:
        return int(os.environ.get("SLURM_STEP_NUM_TASKS", "1")) > 1
    except ValueError:
        return False


def cluster_resolver():
    """``TFConfigClusterResolver`` (``TF_CONFIG`` validated first) or ``SlurmClusterResolver``."""
    import tensorflow as tf

    if os.environ.get("TF_CONFIG"):
        tf_config_cluster(os.environ["TF_CONFIG"])
        return tf.distribute.cluster_resolver.TFConfigClusterResolver()
    if _on_slurm_step():
        port = os.environ.get("TFPHYS_PORT_BASE", "8888")
        if not port.isdigit():
            raise TfphysError(f"TFPHYS_PORT_BASE must be a port number, got {port!r}")
        # The resolver pairs each task of a node with a slice of that node's GPUs, and without GPU
        # counts it runs nvidia-smi (missing on CPU nodes) — and with 0 GPUs it lists no task at
        # all. So: nominally one "GPU" per task, never applied (auto_set_gpu=False); real GPUs
        # are SLURM's business (--gpus-per-task sets CUDA_VISIBLE_DEVICES per task).
        tasks = int(os.environ["SLURM_STEP_NUM_TASKS"])
        try:
            return tf.distribute.cluster_resolver.SlurmClusterResolver(
                port_base=int(port), gpus_per_node=tasks, gpus_per_task=1, auto_set_gpu=False)
        except (RuntimeError, ValueError, KeyError) as err:
            raise TfphysError(f"cannot read the SLURM allocation: {err}") from None
    raise TfphysError("--strategy multiworker needs a cluster: set TF_CONFIG on every worker, or start "
                      "the workers with srun (see README, Scaling out)")


def make_strategy(name: str):
    """The ``tf.distribute.Strategy`` called ``name`` (one of :data:`STRATEGIES`).

    Call it before any other TensorFlow op of the process.
    """
    if name not in STRATEGIES:
        raise TfphysError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    import tensorflow as tf

    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    resolver = cluster_resolver()
    # AUTO: ring all-reduce between CPUs, NCCL where every worker has GPUs.
    options = tf.distribute.experimental.CommunicationOptions(
        implementation=tf.distribute.experimental.CommunicationImplementation.AUTO)
    try:
        return tf.distribute.MultiWorkerMirroredStrategy(cluster_resolver=resolver, communication_options=options)
    except RuntimeError as err:
        if "Collective ops must be configured at program startup" in str(err):
            raise TfphysError("the multiworker strategy must be created before any other TensorFlow "
                              "op of the process") from None
        raise


def is_default(strategy) -> bool:
    """TensorFlow's default (no-op) strategy: no scope, no replication."""
    return type(strategy).__name__ == "_DefaultDistributionStrategy"


def is_multi_worker(strategy) -> bool:
    """Several processes all-reduce their gradients (a ``MultiWorkerMirroredStrategy`` with a cluster)."""
    import tensorflow as tf

    return (isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy)
            and strategy.extended._in_multi_worker_mode())


def role(strategy) -> WorkerRole:
    """This process's :class:`WorkerRole` (a single process is the chief of one)."""
    if not is_multi_worker(strategy):
        return WorkerRole(None, 0, 1)
    resolver = strategy.cluster_resolver
    jobs = resolver.cluster_spec().as_dict()
    n = sum(len(jobs.get(job, ())) for job in ("chief", "worker"))
    return WorkerRole(resolver.task_type, int(resolver.task_id), n)


def shard_dataset(dataset):
    """``dataset`` with ``AutoShardPolicy.DATA`` (see the module docstring for why)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return dataset.with_options(options)


def skip_tiny_batches(dataset, strategy):
    """Drop a batch with fewer events than there are workers (at most the last one of an epoch).

    ``DATA`` sharding splits every global batch between the workers; a final batch of fewer than
    W events would leave some worker an *empty* batch, which e.g. the CCT's tokenizer cannot
    process (seen with 2 workers and a last validation batch of 1 event). Dropping it costs
    fewer than W events per epoch. A no-op unless several workers are in the cluster.
    """
    import tensorflow as tf

    n = role(strategy).num_workers
    if n <= 1:
        return dataset
    return dataset.filter(lambda *batch: tf.shape(tf.nest.flatten(batch)[0])[0] >= n)


def check_optimizer(optimizer, strategy) -> None:
    """Refuse what Keras 3 cannot do under a strategy, before anything is trained.

    Gradient accumulation puts the optimizer update inside a ``cond``; under any
    ``tf.distribute`` strategy that cond contains the gradient all-reduce, which TensorFlow
    refuses ("merge_call called while defining a new graph") — checked here for ``mirrored``
    and ``multiworker`` with Keras 3.15 / TF 2.21.
    """
    steps = getattr(optimizer, "gradient_accumulation_steps", None)
    if steps and not is_default(strategy):
        raise TfphysError(
            f"[train.optimizer] gradient_accumulation_steps = {steps} does not work under a tf.distribute "
            f"strategy with Keras 3 (the update's cond would contain the all-reduce); drop it and let the "
            f"workers hold the batch: with W workers, --batch-size B gives B/W events per worker per step")


def prepare_model(model, strategy, element_spec) -> None:
    """Keras 3.15 ``fit`` under a multi-worker ``MultiWorkerMirroredStrategy``: two work-arounds.

    Keras' TF trainer fails there in two places (keras-team/keras#20585, tensorflow#72388):

    1. ``_maybe_symbolic_build`` reduces the first *nested* distributed batch with
       ``strategy.reduce``, which the collective strategy accepts only for single tensors. The
       model, its compiled loss/metrics and optimizer are built here from the dataset's
       ``element_spec`` instead (shapes only, no data), and that step is skipped.
    2. The per-step logs (scalars) are reduced with ``strategy.reduce("MEAN", v, axis=0)``,
       which fails on rank-0 tensors. The steps' logs are given a length-1 axis, which that
       reduction removes again. The values are the same on every worker: Keras' metric
       variables are mirrored with ``SUM`` aggregation, so each worker's ``result()`` is
       already the global one.

    A no-op unless several workers are in the cluster.
    """
    if not is_multi_worker(strategy):
        return
    with strategy.scope():
        model._symbolic_build(data_batch=element_spec)
    model._maybe_symbolic_build = lambda iterator=None, data_batch=None: None
    model.train_step = _logs_as_vectors(model.train_step)
    model.test_step = _logs_as_vectors(model.test_step)


def _logs_as_vectors(step):
    import tensorflow as tf

    def wrapped(data):
        logs = step(data)
        return {k: tf.reshape(v, [1]) if getattr(v, "shape", None) is not None and v.shape.rank == 0 else v
                for k, v in logs.items()}

    return wrapped
