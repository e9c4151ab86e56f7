"""Training-step speed: ours against the keras.io design, same layers, same data, one process.

  python bench/step_speed.py                       # keras64 at batch 16 and 32
  python bench/step_speed.py --preset dcgan32 --batch-sizes 64 128 --steps 20
  python bench/step_speed.py --preset tiny --batch-sizes 16 --logging --steps 50  # log_every, steps_per_execution

The two models alternate, step by step after a warm-up, so both see the same machine
state; the table gives the median seconds per step, images/s, the ratio ours/reference,
the FLOPs per image per step (counted from the layer shapes) and the achieved GFLOP/s
against this machine's float32 matmul rate measured in the same run.

--logging times model.fit instead, with the run's batch callbacks (the NaN check, a row
per logged step, the stop-signal check) reading the step's values every step, every
--log-every steps, and every --log-every steps run as one execution (steps_per_execution):
the host round trip a read costs, per step, in rounds that alternate the three.
"""

import argparse
import statistics
import time

import numpy as np


def layer_flops(model):
    """Forward FLOPs per image of the Dense / Conv2D / Conv2DTranspose layers (2 per multiply-add)."""
    from keras import layers
    total = 0
    for layer in model.layers:
        if isinstance(layer, layers.Conv2DTranspose):
            _, h, w, c_in = layer.input.shape
            total += 2 * h * w * c_in * layer.filters * layer.kernel_size[0] * layer.kernel_size[1]
        elif isinstance(layer, layers.Conv2D):
            _, h, w, c_out = layer.output.shape
            total += 2 * h * w * c_out * layer.input.shape[-1] * layer.kernel_size[0] * layer.kernel_size[1]
        elif isinstance(layer, layers.Dense):
            total += 2 * layer.input.shape[-1] * layer.units
    return total


def step_flops(g_forward, d_forward, generator_passes):
    """Per image per step. D update: D forward on real and fake plus its backward (~2x);
    G update: D forward on the fake plus the gradient to its input (~1x), G backward (~2x);
    G forwards: one when the fake batch is reused, two when z is drawn twice."""
    return (generator_passes + 2) * g_forward + (2 * 3 + 2) * d_forward


def matmul_gflops(n=2048, repeats=5):
    """float32 matmul rate of numpy (OpenBLAS) and of TensorFlow (oneDNN), GFLOP/s, best of `repeats`."""
    import tensorflow as tf
    a, b = (np.random.default_rng(0).standard_normal((n, n), dtype=np.float32) for _ in range(2))
    ta, tb = tf.constant(a), tf.constant(b)
    rates = {}
    for name, fn in (("numpy", lambda: a @ b), ("tensorflow", lambda: tf.linalg.matmul(ta, tb).numpy())):
        fn()
        rates[name] = 2 * n ** 3 / min(_timed(fn) for _ in range(repeats)) / 1e9
    return rates


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def measure(cfg, steps, warmup, **ours_config):
    """Median seconds per step of ours (cfg with ours_config) and of the reference (cfg), alternating."""
    from keras_io_reference import build_reference

    from dcgan_tf.model.gan import build_gan

    batch_size = cfg.batch_size
    ours = build_gan(cfg.replace(**ours_config))
    reference = build_reference(cfg)  # always float32: build_gan keeps its policy to ours
    batch = np.random.default_rng(0).uniform(-1, 1, (batch_size, cfg.image_size, cfg.image_size, 3)).astype("float32")
    times = {"ours": [], "reference": []}
    for step in range(warmup + steps):
        for name, model in (("ours", ours), ("reference", reference)):
            seconds = _timed(lambda model=model: model.train_on_batch(batch))
            if step >= warmup:
                times[name].append(seconds)
    g, d = layer_flops(ours.generator), layer_flops(ours.discriminator)
    return {name: statistics.median(values) for name, values in times.items()}, g, d


def fit_seconds_per_step(gan, dataset, steps, log_every):
    """Seconds per step of one fit epoch of `steps` steps whose batch logs are read every log_every."""
    import keras

    from dcgan_tf.train import callbacks
    rows, clock = [], []  # the logged steps' values, as LossCurves keeps them; the epoch's start and end
    timing = keras.callbacks.LambdaCallback(
        on_epoch_begin=lambda epoch, logs: clock.append(time.perf_counter()),
        on_train_batch_end=lambda batch, logs: logs and rows.append(list(logs.values())),
        on_epoch_end=lambda epoch, logs: clock.append(time.perf_counter()))
    logs = callbacks.StepLogsEvery([timing, callbacks.NanGuard(), callbacks.StopSignals()], log_every, model=gan,
                                   verbose=0, epochs=1, steps=steps)
    gan.fit(dataset, epochs=1, verbose=0, shuffle=False, callbacks=logs)
    return (clock[1] - clock[0]) / steps


def measure_logging(cfg, steps, rounds, log_every):
    """Median seconds per step of fit for: every step read; every log_every read; log_every steps per execution."""
    import tensorflow as tf

    from dcgan_tf.model.gan import build_gan

    batch_size = cfg.batch_size
    batch = np.random.default_rng(0).uniform(-1, 1, (batch_size, cfg.image_size, cfg.image_size, 3)).astype("float32")
    dataset = tf.data.Dataset.from_tensors(batch).repeat(steps)
    variants = {"every step": (build_gan(cfg), 1), f"every {log_every}": (build_gan(cfg), log_every),
                f"every {log_every}, steps_per_execution {log_every}": (
                    build_gan(cfg.replace(steps_per_execution=log_every)), log_every)}
    times = {name: [] for name in variants}
    for round_ in range(rounds + 1):  # round 0 traces and warms up
        for name, (gan, every) in variants.items():
            seconds = fit_seconds_per_step(gan, dataset, steps, every)
            if round_:
                times[name].append(seconds)
    return {name: statistics.median(values) for name, values in times.items()}


def main_logging(args):
    import os

    import tensorflow as tf

    from dcgan_tf.config import preset
    print(f"machine: {os.cpu_count()} CPUs, TensorFlow {tf.__version__}; model.fit epochs of {args.steps} steps, "
          f"median of {args.rounds} alternating rounds\n")
    print("| preset | batch | batch logs read | s/step | img/s | vs every step |")
    print("|---|---|---|---|---|---|")
    for batch_size in args.batch_sizes:
        medians = measure_logging(preset(args.preset, batch_size=batch_size), args.steps, args.rounds, args.log_every)
        base = medians["every step"]
        for name, seconds in medians.items():
            print(f"| {args.preset} | {batch_size} | {name} | {seconds:.4f} | {batch_size / seconds:.1f} | "
                  f"{base / seconds:.3f}x |", flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="keras64")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32])
    parser.add_argument("--steps", type=int, default=6, help="timed steps per model and batch size")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--precision", default="float32", help="ours only: float32, mixed_bfloat16, mixed_float16")
    parser.add_argument("--reuse-fake", default="true", choices=("true", "false"), help="ours only")
    parser.add_argument("--jit-compile", default="auto", choices=("auto", "on", "off"), help="ours only (XLA)")
    parser.add_argument("--fused-batchnorm", default="true", choices=("true", "false"), help="ours only")
    parser.add_argument("--logging", action="store_true", help="time fit with the batch logs read less often")
    parser.add_argument("--log-every", type=int, default=10, help="--logging: read the step's values every N steps")
    parser.add_argument("--rounds", type=int, default=3, help="--logging: timed rounds")
    args = parser.parse_args()
    if args.logging:
        return main_logging(args)
    ours_config = {"mixed_precision": args.precision, "reuse_fake": args.reuse_fake == "true",
                   "jit_compile": args.jit_compile, "fused_batchnorm": args.fused_batchnorm == "true"}

    import os

    import tensorflow as tf

    from dcgan_tf.config import preset
    rates = matmul_gflops()
    peak = max(rates.values())
    print(f"machine: {os.cpu_count()} CPUs, TensorFlow {tf.__version__}; float32 matmul: numpy "
          f"{rates['numpy']:.0f} GFLOP/s, TensorFlow {rates['tensorflow']:.0f} GFLOP/s (the % column uses the higher)\n")
    print("| preset | batch | model | s/step | img/s | GFLOP/img | GFLOP/s | % of matmul | ours/ref |")
    print("|---|---|---|---|---|---|---|---|---|")
    for batch_size in args.batch_sizes:
        medians, g, d = measure(preset(args.preset, batch_size=batch_size), args.steps, args.warmup, **ours_config)
        speedup = medians["reference"] / medians["ours"]
        options = [args.precision] + ([f"XLA {args.jit_compile}"] if args.jit_compile != "auto" else []) \
            + (["Keras BatchNorm"] if args.fused_batchnorm == "false" else [])
        label = f"ours ({', '.join(options)})"
        for name, passes in ((label, 1 if ours_config["reuse_fake"] else 2), ("reference", 2)):
            flops = step_flops(g, d, passes)
            rate = batch_size / medians[name.split()[0]]
            achieved = flops * rate / 1e9
            ratio = f"{speedup:.2f}x" if name.startswith("ours") else ""
            print(f"| {args.preset} | {batch_size} | {name} | {batch_size / rate:.3f} | {rate:.1f} | {flops / 1e9:.2f} | "
                  f"{achieved:.1f} | {100 * achieved / peak:.0f}% | {ratio} |", flush=True)
    print(f"\nG forward {g / 1e9:.2f} GFLOP/img, D forward {d / 1e9:.3f} GFLOP/img")


if __name__ == "__main__":
    main()
