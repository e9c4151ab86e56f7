"""tf.distribute strategies for train.py --strategy, and who writes files in a multi-worker run.

- auto: MirroredStrategy when more than one GPU is visible, else the default strategy;
- default: one device; mirrored: all local GPUs (or the given devices);
- multiworker: MultiWorkerMirroredStrategy, the cluster described by the TF_CONFIG
  environment variable; tpu: TPUStrategy on the TPU that TPUClusterResolver finds.

--batch-size is always the global batch: fit splits each batch across the replicas.
In a multi-worker run every worker runs the same callbacks (checkpoint saves are
collective), but only the chief writes into the run directory; the others write to a
temporary directory that is deleted at the end, as the TensorFlow guide prescribes.
"""

import json
import os
import tempfile

import tensorflow as tf

from dcgan_tf.config import STRATEGIES


def make_strategy(name="auto", devices=None):
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")
    if name == "auto":
        name = "mirrored" if len(tf.config.list_logical_devices("GPU")) > 1 else "default"
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy(devices)
    if name == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise ValueError("--strategy multiworker needs the TF_CONFIG environment variable (see README)")
        return tf.distribute.MultiWorkerMirroredStrategy()
    resolver = tf.distribute.cluster_resolver.TPUClusterResolver()  # untestable here: kept minimal
    tf.config.experimental_connect_to_cluster(resolver)
    tf.tpu.experimental.initialize_tpu_system(resolver)
    return tf.distribute.TPUStrategy(resolver)


def replica_rows(draw, batch_size):
    """This replica's batch_size rows of draw(global_batch_size).

    Random values (z, augmentations, penalty mixes) are drawn for the global batch and
    sliced, as each replica takes its slice of the real batch: replicas draw different
    values, and N replicas see exactly what one device would for the same global batch.
    """
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    replica = tf.distribute.get_replica_context()
    index = replica.replica_id_in_sync_group if replica is not None else 0
    return draw(batch_size * replicas)[index * batch_size:(index + 1) * batch_size]


def overflow_everywhere(grads):
    """The gradients, made non-finite on every replica when they are on any one.

    Keras' LossScaleOptimizer decides whether to skip a step (and halve the loss scale) on
    the first replica's gradients, before they are summed across replicas: an fp16 overflow
    on another replica would be applied and turn the weights to inf. One all-reduced flag
    per update lets every replica see the overflow, so all of them skip it as one device would.
    """
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return grads
    overflows = tf.add_n([tf.cast(tf.reduce_any(~tf.math.is_finite(g)), tf.int32) for g in grads if g is not None])
    anywhere = context.all_reduce(tf.distribute.ReduceOp.SUM, overflows) > 0
    first = next(i for i, g in enumerate(grads) if g is not None)
    poisoned = tf.where(anywhere, tf.constant(float("nan"), grads[first].dtype), grads[first])
    return [*grads[:first], poisoned, *grads[first + 1:]]


def is_chief(strategy):
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None or not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    has_chief = "chief" in json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    return task_type in (None, "chief") or (not has_chief and task_type == "worker" and task_id == 0)


def writer_dir(run_dir, strategy):
    """run_dir on the chief; a fresh temporary directory on the other workers."""
    if is_chief(strategy):
        return run_dir
    return tempfile.mkdtemp(prefix=f"dcgan-worker{strategy.cluster_resolver.task_id}-")
