"""The one script to run on a GPU: does the GPU path work here, and how fast is it.

  python bench/gpu_check.py                  # keras64 at batch 128, a 200-step training run
  python bench/gpu_check.py --batch-size 256 --steps 500
  python bench/gpu_check.py --tiny           # the tiny preset, a few steps, XLA in float32 only: CI, any CPU

It prints the devices TensorFlow sees, the NVIDIA driver, TensorFlow's build (CUDA, cuDNN)
and the TF32 setting; then the training step with XLA off and on in float32,
mixed_bfloat16 and mixed_float16 (seconds per step, images/s, the step's losses); our step
against the keras.io DCGAN step, alternating in one process; fit with the step's values
read every step and every 10 steps; and a short training run (the real `train`, its
callbacks and checkpoints) with its epoch losses. One line per check; the last says OK or
lists what failed, and the exit code is 1 if anything failed. Without --tiny, a machine on
which TensorFlow sees no GPU is a failure.
"""

import argparse
import math
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import numpy as np

POLICIES = ("float32", "mixed_bfloat16", "mixed_float16")
LOG_EVERY = 10


class Checks:
    """Runs each check, printing its line or its failure; remembers what failed."""

    def __init__(self):
        self.failed = []

    def run(self, name, check, *args):
        try:
            return check(*args)
        except Exception as error:  # noqa: BLE001 (whatever a check raises is its failure; the others still run)
            self.failed.append(name)
            print(f"FAILED {name}: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}")
            traceback.print_exc(file=sys.stderr)
        return None


def driver_version():
    try:
        out = subprocess.run(["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=30, check=True).stdout
        return out.split()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return None


def describe_devices(tiny):
    """The device lines; a GPU's compute capability (None on CPU)."""
    import keras
    import tensorflow as tf
    gpus = tf.config.list_physical_devices("GPU")
    capability = None
    for gpu in gpus:
        details = tf.config.experimental.get_device_details(gpu)
        capability = capability or details.get("compute_capability")
        print(f"device: {gpu.name} {details.get('device_name', '?')} (compute capability "
              f"{'.'.join(map(str, details.get('compute_capability', ('?',))))})")
    if not gpus:
        print("device: no GPU visible to TensorFlow: CPU only")
    print(f"driver: {driver_version() or 'none (nvidia-smi not found)'}")
    build = tf.sysconfig.get_build_info()
    print(f"tensorflow: {tf.__version__}, keras {keras.__version__}; built with CUDA {build.get('cuda_version', '-')}, "
          f"cuDNN {build.get('cudnn_version', '-')} (CUDA build: {build.get('is_cuda_build', False)})")
    print(f"tf32: {'on' if tf.config.experimental.tensor_float_32_execution_enabled() else 'off'} for training "
          "(off while evaluation features and export checks compute)")
    if not gpus and not tiny:
        raise RuntimeError("TensorFlow sees no GPU: install tensorflow[and-cuda]==2.21.0, and check that "
                           "nvidia-smi lists the GPU (or pass --tiny to check the CPU path)")
    return capability


def real_batch(cfg):
    import tensorflow as tf
    images = np.random.default_rng(0).uniform(-1, 1, (cfg.batch_size, cfg.image_size, cfg.image_size, 3))
    return tf.constant(images.astype("float32"))  # on the device once: the steps time no copy


def finite_losses(logs):
    values = {k: float(v) for k, v in logs.items()}
    if not all(math.isfinite(v) for v in values.values()):
        raise FloatingPointError(f"non-finite step values {values}")
    return values


def time_step(cfg, steps, warmup):
    """Median seconds of the train step over `steps` steps, and the last step's values."""
    from dcgan_tf.model.gan import build_gan
    gan = build_gan(cfg)
    batch = real_batch(cfg)
    times = []
    for step in range(warmup + steps):
        start = time.perf_counter()
        logs = gan.train_on_batch(batch, return_dict=True)  # returns Python floats: the step has finished
        if step >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times), finite_losses(logs)


def check_step(cfg, jit, policy, steps, warmup):
    seconds, logs = time_step(cfg.replace(jit_compile=jit, mixed_precision=policy), steps, warmup)
    print(f"step {policy} xla {jit}: {seconds:.4f} s/step, {cfg.batch_size / seconds:.1f} img/s, "
          + " ".join(f"{k} {v:.3f}" for k, v in logs.items()))


def check_reference(cfg, steps, warmup):
    from step_speed import measure
    medians, _, _ = measure(cfg, steps, warmup)
    ours, reference = medians["ours"], medians["reference"]
    print(f"ours vs keras.io (float32, XLA auto, alternating): ours {ours:.4f} s/step "
          f"({cfg.batch_size / ours:.1f} img/s), keras.io {reference:.4f} s/step "
          f"({cfg.batch_size / reference:.1f} img/s): ours is {reference / ours:.2f}x")


def check_logging(cfg, steps, rounds):
    from step_speed import measure_logging
    medians = measure_logging(cfg, steps, rounds, LOG_EVERY)
    base = medians["every step"]
    print("fit, step values read " + "; ".join(f"{name}: {seconds:.4f} s/step ({base / seconds:.2f}x)"
                                                for name, seconds in medians.items()))


def check_training(cfg, steps, gpus):
    """The real training loop on the built-in faces: `steps` steps in epochs of up to 50."""
    from dcgan_tf.train.run import train
    per_epoch = min(steps, 50)
    epochs = math.ceil(steps / per_epoch)
    run_cfg = cfg.replace(data=f"builtin:{per_epoch * cfg.batch_size}", epochs=epochs)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as folder:
        start = time.perf_counter()
        gan, history = train(run_cfg, Path(folder) / "run", verbose=0, log=lambda message: None)
        seconds = time.perf_counter() - start
    for epoch in range(len(history.history["d_loss"])):
        values = {k: history.history[k][epoch] for k in ("d_loss", "g_loss", "d_real", "d_fake")}
        finite_losses(values)
        print(f"training epoch {epoch + 1}/{epochs}: " + " ".join(f"{k} {v:.3f}" for k, v in values.items()))
    if gan.step_count() != epochs * per_epoch:
        raise RuntimeError(f"trained {gan.step_count()} steps, expected {epochs * per_epoch}")
    placed = gan.generator.weights[0].value.device
    print(f"training: {gan.step_count()} steps on {gan.distribute_strategy.num_replicas_in_sync} replica(s) in "
          f"{seconds:.1f} s (building, tracing and checkpoints included); G's first weight on {placed}")
    if gpus and "GPU" not in placed:
        raise RuntimeError(f"a GPU is visible but the weights are on {placed}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="keras64")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--steps", type=int, default=200, help="steps of the training run")
    parser.add_argument("--timed-steps", type=int, default=20, help="timed steps per step variant")
    parser.add_argument("--tiny", action="store_true", help="the tiny preset, a few steps: checks the path on any CPU")
    args = parser.parse_args()
    if args.tiny:
        args.preset, args.batch_size, args.timed_steps = "tiny", 8, 2
        args.steps = min(args.steps, 4)
    from dcgan_tf.config import preset

    cfg = preset(args.preset, batch_size=args.batch_size, **({"image_size": 8} if args.tiny else {}))
    checks = Checks()
    capability = checks.run("devices", describe_devices, args.tiny)
    warmup = 1 if args.tiny else 3
    for jit in ("off", "on"):
        for policy in POLICIES:
            if policy == "mixed_bfloat16" and capability is not None and tuple(capability) < (8, 0):
                print(f"step {policy} xla {jit}: skipped, bfloat16 needs compute capability 8.0 (Ampere) or later")
                continue
            if args.tiny and jit == "on" and policy != "float32":  # tests/test_gpu_path.py compiles those
                print(f"step {policy} xla {jit}: skipped with --tiny (each XLA compile takes seconds on a CPU)")
                continue
            checks.run(f"step {policy} xla {jit}", check_step, cfg, jit, policy, args.timed_steps, warmup)
    checks.run("ours vs keras.io", check_reference, cfg, args.timed_steps, warmup)
    checks.run("fit logging", check_logging, cfg, LOG_EVERY * (1 if args.tiny else 5), 1 if args.tiny else 3)
    import tensorflow as tf
    checks.run("training", check_training, cfg, args.steps, bool(tf.config.list_physical_devices("GPU")))
    print("result: OK" if not checks.failed else f"result: FAILED ({', '.join(checks.failed)})")
    return 1 if checks.failed else 0


if __name__ == "__main__":
    sys.exit(main())
