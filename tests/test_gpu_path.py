"""The GPU path, exercised on CPU (issue 34): what a multi-GPU or XLA run does that a plain
CPU run never would. Two replicas are two logical CPUs, configured before TensorFlow
starts, so those tests run in a subprocess (as tests/test_distribute.py does)."""

import json
import math
import os
import re
import types

import numpy as np
import pytest
import tensorflow as tf
from test_distribute import run_python

from dcgan_tf.config import preset
from dcgan_tf.train import preflight
from dcgan_tf.train.run import train
from dcgan_tf.utils import memory

OVERFLOW_ON_REPLICA_1 = """
    import json
    import numpy as np, tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    from dcgan_tf.config import preset
    from dcgan_tf.model.gan import build_gan

    # D without BatchNorm: synchronised statistics would carry the inf to replica 0 too.
    cfg = preset("tiny", mixed_precision="mixed_float16", d_norm="none", d_dropout=0.0)
    gan = build_gan(cfg, tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    images = np.random.default_rng(0).uniform(-1, 1, (cfg.batch_size, 16, 16, 3)).astype("float32")
    planted = images.copy()
    planted[-1] = np.inf  # the last rows of the global batch are replica 1's

    def d_weights():
        return [w.numpy().copy() for w in gan.discriminator.trainable_weights]

    def one_step(batch):
        before = d_weights()
        gan.fit(tf.data.Dataset.from_tensors(batch), verbose=0, shuffle=False)
        after = d_weights()
        return {"finite": all(np.isfinite(w).all() for w in after),
                "moved": any(not np.array_equal(a, b) for a, b in zip(before, after)),
                "scale": float(gan.d_optimizer.dynamic_scale.numpy())}

    print(json.dumps({"overflow": one_step(planted), "clean": one_step(images)}))
"""


@pytest.mark.slow
def test_an_fp16_overflow_on_the_second_replica_skips_the_step_on_both(tmp_path):
    process = run_python(OVERFLOW_ON_REPLICA_1, tmp_path)
    out, err = process.communicate(timeout=300)
    assert process.returncode == 0, err[-3000:]
    result = json.loads(out.strip().splitlines()[-1])
    # As LossScaleOptimizer does on one device: the update is skipped and the loss scale halved.
    assert result["overflow"] == {"finite": True, "moved": False, "scale": 2.0**14}
    # The next, finite step trains, at the lowered scale.
    assert result["clean"] == {"finite": True, "moved": True, "scale": 2.0**14}


def test_xla_with_several_replicas_is_refused_before_anything_is_written(tmp_path, monkeypatch):
    monkeypatch.setattr("dcgan_tf.train.run.make_strategy", lambda name: types.SimpleNamespace(num_replicas_in_sync=2))
    with pytest.raises(ValueError, match=r"^--jit-compile on cannot run with 2 replicas .*: use --jit-compile auto "
                                         "or off, or --strategy default$"):
        train(preset("tiny", jit_compile="on", data="builtin:64"), tmp_path / "run", log=lambda message: None)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("jit_compile", ["auto", "off"])
def test_xla_on_one_replica_and_auto_or_off_on_several_are_accepted(jit_compile):
    preflight.check_strategy(preset("tiny", jit_compile="on"), 1, log=print)
    preflight.check_strategy(preset("tiny", jit_compile=jit_compile, fused_batchnorm=False), 2, log=print)


def test_fused_batchnorm_with_several_replicas_says_it_is_not_used():
    logged = []
    preflight.check_strategy(preset("tiny"), 2, logged.append)
    assert logged == [("note: with 2 replicas BatchNorm runs Keras' synchronized layer, not the fused kernel "
                       "(--fused-batchnorm applies to one replica): its statistics are the global batch's")]
    logged.clear()
    preflight.check_strategy(preset("tiny"), 1, logged.append)
    preflight.check_strategy(preset("tiny", fused_batchnorm=False), 2, logged.append)
    assert logged == []


@pytest.fixture
def portable_draws(monkeypatch):
    """Float random draws made from integer bits. Under XLA, TensorFlow 2.21's float philox
    draws (stateless_normal, stateless_uniform) differ from its kernels' for the same seed,
    while integer draws agree: with these, an XLA step and a plain one see the same z,
    augmentations and penalty mixes, and what is compared is the step itself."""
    original = tf.random.stateless_uniform

    def uniform(shape, seed, minval=0, maxval=None, dtype=tf.float32, name=None, alg="auto_select"):
        dtype = tf.as_dtype(dtype)
        if dtype.is_integer:
            return original(shape, seed, minval, maxval, dtype, name, alg)
        bits = original(shape, seed, minval=None, maxval=None, dtype=tf.uint32, alg=alg)
        unit = tf.cast(tf.bitwise.right_shift(bits, 8), tf.float32) * 2.0**-24
        return tf.cast(minval + ((1.0 if maxval is None else maxval) - minval) * unit, dtype)

    def normal(shape, seed, mean=0.0, stddev=1.0, dtype=tf.float32, name=None, alg="auto_select"):
        seeds = tf.random.experimental.stateless_split(seed, 2, alg=alg)
        radius = tf.sqrt(-2.0 * tf.math.log(1.0 - uniform(shape, seeds[0], alg=alg)))
        return tf.cast(mean + stddev * radius * tf.cos(2 * math.pi * uniform(shape, seeds[1], alg=alg)), dtype)

    monkeypatch.setattr(tf.random, "stateless_uniform", uniform)
    monkeypatch.setattr(tf.random, "stateless_normal", normal)


AUGMENT = "color,translation,cutout"
CONDITIONAL = {"condition": ("Smiling", "Male"), "attrs": "attrs.txt"}
# (precision, config, tolerance of the losses (rtol = atol), of the weights (their mean
# difference over their mean move in two steps)), measured on CPU with margin: float32
# agrees to round-off; bfloat16 keeps 8 bits, so its losses agree to about 4e-4 of their size.
XLA_CASES = {
    "float32, BatchNorm D, bce": ("float32", {}, 1e-5, 1e-3),
    "mixed_bfloat16, conditional, wgan-gp, n_critic 2": (
        "mixed_bfloat16", {**CONDITIONAL, "loss": "wgan", "gp": "wgan-gp", "n_critic": 2, "d_norm": "layer"}, 2e-3, 0.2),
    "mixed_float16, hinge, r1": ("mixed_float16", {"loss": "hinge", "gp": "r1", "d_norm": "none"}, 1e-4, 0.05),
}


def two_steps(cfg):
    """The step results and the trained weights after two steps on one batch."""
    from dcgan_tf.model.gan import build_gan
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (cfg.batch_size, cfg.image_size, cfg.image_size, 3)).astype("float32")
    batch = (images, rng.integers(0, 2, (cfg.batch_size, len(cfg.condition))).astype("float32")) \
        if cfg.condition else (images,)
    gan = build_gan(cfg)
    initial = [w.numpy().astype("float64") for w in gan.trainable_weights]
    results = [gan.train_on_batch(*batch, return_dict=True) for _ in range(2)]
    return results, initial, [w.numpy().astype("float64") for w in gan.trainable_weights]


def mean_difference(weights, others):
    """The mean absolute difference over all the values of two lists of weights."""
    return np.concatenate([np.abs(a - b).ravel() for a, b in zip(weights, others)]).mean()


@pytest.mark.parametrize("case", XLA_CASES)
@pytest.mark.slow
def test_the_xla_step_computes_what_the_plain_step_does(case, portable_draws):
    precision, fields, loss_tolerance, weight_tolerance = XLA_CASES[case]
    cfg = preset("tiny", image_size=8, mixed_precision=precision, diffaugment=AUGMENT, d_dropout=0.0, **fields)
    plain, initial, plain_weights = two_steps(cfg.replace(jit_compile="off"))
    xla, _, xla_weights = two_steps(cfg.replace(jit_compile="on"))
    for plain_step, xla_step in zip(plain, xla):
        assert plain_step.keys() == xla_step.keys()
        for key, value in plain_step.items():
            np.testing.assert_allclose(xla_step[key], value, rtol=loss_tolerance, atol=loss_tolerance, err_msg=key)
    moved = mean_difference(plain_weights, initial)
    assert mean_difference(xla_weights, plain_weights) <= weight_tolerance * moved


def logged_run(tmp_path, name, **fields):
    """steps.csv rows (step, then the four values) and the trained weights of a two-epoch run."""
    cfg = preset("tiny", data="builtin:64", epochs=2, d_dropout=0.0, **fields)  # 4 steps an epoch
    gan, _ = train(cfg, tmp_path / name, verbose=0, log=lambda message: None)
    rows = np.loadtxt(tmp_path / name / "steps.csv", delimiter=",", skiprows=1)
    return np.delete(rows, 1, axis=1), [w.numpy() for w in gan.weights]


def test_reading_the_step_values_less_often_logs_the_same_values_and_trains_the_same(tmp_path):
    """log_every (and steps_per_execution) change which steps the batch callbacks see, never
    the training: the rows logged are the every-step run's rows, the weights its weights."""
    every_step, weights = logged_run(tmp_path, "every")
    np.testing.assert_array_equal(every_step[:, 0], range(1, 9))
    for fields, logged in (({"log_every": 3}, [3, 4, 7, 8]),  # every 3 steps of an epoch, and its last
                           ({"log_every": 2, "steps_per_execution": 2}, [2, 4, 6, 8])):
        rows, other_weights = logged_run(tmp_path, "_".join(map(str, fields.values())), **fields)
        np.testing.assert_array_equal(rows[:, 0], logged, err_msg=str(fields))
        np.testing.assert_allclose(rows[:, 1:], every_step[np.array(logged) - 1, 1:], rtol=1e-5, atol=1e-7)
        for a, b in zip(weights, other_weights):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6, err_msg=str(fields))


def test_evaluation_features_and_the_export_check_compute_without_tf32(tmp_path, monkeypatch):
    """TF32 (on by default on Ampere GPUs) is off while the FID features and the export check
    compute, and as it was after: training keeps it."""
    from dcgan_tf.metrics import inception
    from dcgan_tf.model.networks import build_generator
    from dcgan_tf.serve import export
    seen = []

    def network(x, training=False):  # traced inside features(): sees the setting the features run with
        seen.append(("features", tf.config.experimental.tensor_float_32_execution_enabled()))
        return tf.reduce_mean(x, axis=(1, 2))

    load = export.loader.load

    def loading(path, *args, **kwargs):  # the export check loads the written generator.keras
        seen.append(("export check", tf.config.experimental.tensor_float_32_execution_enabled()))
        return load(path, *args, **kwargs)

    monkeypatch.setattr(export.loader, "load", loading)
    assert tf.config.experimental.tensor_float_32_execution_enabled()  # TensorFlow's default
    inception.features(np.zeros((2, 8, 8, 3), np.uint8), model=network)
    cfg = preset("tiny")
    export.export_generator(build_generator(cfg), cfg, tmp_path / "export")
    assert seen == [("features", False), ("export check", False)]
    assert tf.config.experimental.tensor_float_32_execution_enabled()


GIB = 2**30


@pytest.mark.parametrize("gpu, batch_size, replicas, refused", [
    # keras64 needs about 15.4 GiB at batch 512 and 30.6 GiB at 1024, with the host's 1 GiB of RAM
    (memory.GpuMemory(24 * GIB, 0), 512, 1, None),  # device work: the host's RAM does not count
    (memory.GpuMemory(24 * GIB, 0), 1024, 1, ("batch 1024 needs about 30.6 GiB of GPU memory, the GPU has 24.0 GiB "
                                             "(0.0 GiB of it in use by TensorFlow)")),
    (memory.GpuMemory(24 * GIB, 0), 1024, 2, None),  # each replica trains on 512 on its own GPU
    (memory.GpuMemory(16 * GIB, 1 * GIB), 512, 1, ("batch 512 needs about 15.4 GiB of GPU memory, the GPU has 16.0 GiB "
                                                  "(1.0 GiB of it in use by TensorFlow)")),
    (memory.GpuMemory(None, 0), 1024, 1, None),  # nvidia-smi could not say: nothing to refuse on
    (None, 512, 1, "batch 512 needs about 15.4 GiB of memory, 1.0 GiB is available"),  # no GPU: host RAM
])
def test_training_memory_is_checked_where_training_runs(monkeypatch, gpu, batch_size, replicas, refused):
    monkeypatch.setattr(memory, "available", lambda: 1 * GIB)
    monkeypatch.setattr(memory, "gpu_memory", lambda: gpu)
    cfg = preset("keras64", batch_size=batch_size)
    if refused is None:
        preflight.check_memory(cfg, replicas)
    else:
        with pytest.raises(memory.NotEnoughMemory, match=re.escape(f"training keras64 at 64x64, {refused}: lower "
                                                                   "--image-size or --batch-size")):
            preflight.check_memory(cfg, replicas)


@pytest.mark.skipif(bool(tf.config.list_physical_devices("GPU")), reason="a machine without a GPU")
def test_without_a_gpu_the_device_query_says_so():
    assert memory.gpu_memory() is None


def test_the_gpus_total_comes_from_nvidia_smi_for_tensorflows_first_gpu(tmp_path, monkeypatch):
    fake = tmp_path / "nvidia-smi"
    fake.write_text(f'#!/bin/sh\necho "$@" > {tmp_path / "args"}\necho 24576\n')  # MiB, as --format=...nounits
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,1")
    assert memory._nvidia_smi_total() == 24 * GIB
    assert (tmp_path / "args").read_text().split()[0] == "--id=3"
    monkeypatch.setenv("PATH", str(tmp_path / "nowhere"))
    assert memory._nvidia_smi_total() is None
