"""Checks made before a training run writes anything.

Whatever can be known to fail is checked here, before the run directory gets its first
file, so a failed start leaves nothing that would refuse the corrected rerun ("already
holds a training run"), and nothing fails only after hours of training (an unwritable
export folder, missing FID weights). Each failure is one line naming the problem and the fix.
"""

import importlib.util
import shutil
from pathlib import Path

from dcgan_tf.config import CONFIG_FILE, LEGACY_CONFIG_FILE
from dcgan_tf.model import augment
from dcgan_tf.model.networks import sizes, training_bytes
from dcgan_tf.train.checkpoints import SPACE_MARGIN, has_checkpoint, readable_checkpoint
from dcgan_tf.utils import memory
from dcgan_tf.utils.files import check_writable

# What a run directory holds (see dcgan_tf.training): a fresh run never writes over any of it,
# except the two files a start writes before its first checkpoint, from the flags and the data
# alone: a start stopped there (killed while building the model) trained nothing to keep.
RUN_FILES = (CONFIG_FILE, LEGACY_CONFIG_FILE, "real_batch.png", "history.csv", "steps.csv", "losses.png", "samples",
             "checkpoints", "best", "tensorboard")
START_FILES = (CONFIG_FILE, LEGACY_CONFIG_FILE, "real_batch.png")


def check_run(cfg, run_dir, resume, export_dir=None, replicas=1):
    """Before the data is read: the run directory, the export folder, the optional extras
    and whether training on `replicas` replicas fits in memory and on disk."""
    run_dir = Path(run_dir)
    check_run_dir(run_dir, resume)
    check_writable(run_dir, "--out")
    if export_dir is not None:
        from dcgan_tf.serve.export import check_replaceable
        check_writable(Path(export_dir).parent, "--export-dir")
        check_replaceable(Path(export_dir))
    check_extras(cfg)
    check_memory(cfg, replicas)
    check_disk(cfg, run_dir)


def check_data(cfg, images, replicas=1):
    """Once the data is read (and holds host memory): a full batch, and training still fits."""
    from dcgan_tf.data.pipeline import check_batch_size
    check_batch_size(len(images), cfg.batch_size)
    check_memory(cfg, replicas)


def check_strategy(cfg, replicas, log):
    """What the strategy's replica count rules out, on every worker: XLA with several replicas
    fails in Keras 3.15 (a replica's variable read from another's device), and Keras' own
    "auto" leaves XLA off under a distribution strategy; and the fused BatchNorm kernel
    cannot synchronise replicas, so they train with Keras' synchronized layer (said once)."""
    if replicas > 1 and cfg.jit_compile == "on":
        raise ValueError(f"--jit-compile on cannot run with {replicas} replicas (Keras 3.15 cannot compile a "
                         "multi-replica step): use --jit-compile auto or off, or --strategy default")
    if replicas > 1 and cfg.fused_batchnorm:
        log(f"note: with {replicas} replicas BatchNorm runs Keras' synchronized layer, not the fused kernel "
            "(--fused-batchnorm applies to one replica): its statistics are the global batch's")


def check_run_dir(run_dir, resume):
    """--resume needs a readable checkpoint; a fresh run needs a folder with no run in it."""
    if resume:
        readable_checkpoint(run_dir, log=lambda message: None)  # FileNotFoundError saying why there is none
        return
    if has_checkpoint(run_dir):
        raise FileExistsError(f"{run_dir} already holds a training run: pass --resume to continue it, "
                              "or choose another --out")
    found = [name for name in RUN_FILES if (run_dir / name).exists()]
    if set(found) - set(START_FILES):
        raise FileExistsError(f"{run_dir} holds files of an earlier run ({', '.join(found)}) but no checkpoint "
                              "to resume: choose another --out, or delete that folder to start again")


def check_extras(cfg):
    augment.parse(cfg.diffaugment)
    if cfg.eval_every:
        from dcgan_tf.metrics.inception import (
            WeightsError,
            default_weights_path,
            verify,
        )
        try:
            verify(default_weights_path())
        except WeightsError as error:
            raise ValueError(f"--eval-every: {error}") from None
    if cfg.tensorboard and importlib.util.find_spec("tensorboard") is None:
        raise ValueError("--tensorboard needs TensorBoard: pip install tensorboard")


def check_memory(cfg, replicas=1):
    """Training's memory where it trains: on a GPU each replica's share of the batch against the
    GPU's memory; on the CPU the whole batch against host RAM. (Not on a TPU: its memory is
    not queried here.)"""
    what = f"training {cfg.preset} at {cfg.image_size}x{cfg.image_size}, batch {cfg.batch_size}"
    fix = "lower --image-size or --batch-size"
    if cfg.strategy == "tpu":
        return
    gpu = memory.gpu_memory()
    if gpu is None:
        memory.check(training_bytes(cfg), what, fix)
        return
    share = max(1, cfg.batch_size // replicas)
    memory.check_gpu(training_bytes(cfg.replace(batch_size=share)),
                     gpu, what + (f" ({share} per replica)" if replicas > 1 else ""), fix)


def check_disk(cfg, run_dir):
    """Room for a checkpoint: weights, both optimizers' two moments, the EMA (4 bytes each)."""
    needed = SPACE_MARGIN * 4 * 4 * sizes(cfg)[0]
    free = shutil.disk_usage(run_dir).free
    if free < needed:
        raise ValueError(f"only {free / 2**20:.1f} MiB free in {run_dir}, a checkpoint needs about "
                         f"{needed / 2**20:.1f} MiB: free some space or choose another --out")
