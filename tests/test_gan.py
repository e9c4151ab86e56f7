import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import random_images

from dcgan_tf.config import preset
from dcgan_tf.model import losses
from dcgan_tf.model.gan import DCGAN, build_gan
from dcgan_tf.train import callbacks
from dcgan_tf.train.callbacks import LOSS_KEYS
from dcgan_tf.utils import precision


def real_batches(cfg, count=64):
    images = random_images(count, cfg.image_size).astype("float32") / 127.5 - 1
    return tf.data.Dataset.from_tensor_slices(images).batch(cfg.batch_size, drop_remainder=True)


def snapshot(model):
    return [w.numpy().copy() for w in model.trainable_weights]


def changed(before, model):
    return all(not np.array_equal(b, w.numpy()) for b, w in zip(before, model.trainable_weights))


@pytest.mark.parametrize("reuse_fake", [True, False])
def test_one_train_step_updates_both_networks(reuse_fake):
    cfg = preset("tiny", reuse_fake=reuse_fake)
    gan = build_gan(cfg)
    g_before, d_before = snapshot(gan.generator), snapshot(gan.discriminator)
    logs = gan.train_step(next(iter(real_batches(cfg))))
    assert changed(g_before, gan.generator) and changed(d_before, gan.discriminator)
    assert set(logs) == {"d_loss", "g_loss", "d_real", "d_fake"}
    assert all(math.isfinite(float(v)) for v in logs.values())
    assert int(gan.d_optimizer.iterations) == int(gan.g_optimizer.iterations) == gan.step_count() == 1


def test_fit_moves_the_losses_and_batchnorm_statistics():
    cfg = preset("tiny")
    gan = build_gan(cfg)
    moving_mean = [w for w in gan.generator.weights if "moving_mean" in w.path][0]
    d_moving_mean = [w for w in gan.discriminator.weights if "moving_mean" in w.path][0]
    history = gan.fit(real_batches(cfg).repeat(4), epochs=2, verbose=0, shuffle=False).history
    assert list(history) == ["d_fake", "d_loss", "d_real", "g_loss"]  # no spurious "loss"
    assert all(np.isfinite(history[k]).all() for k in history)
    assert history["d_loss"][0] != history["d_loss"][1] and history["g_loss"][0] != history["g_loss"][1]
    # BatchNorm statistics move only in training mode: G and D both ran with training=True
    assert np.abs(moving_mean.numpy()).max() > 0 and np.abs(d_moving_mean.numpy()).max() > 0
    assert int(gan.d_optimizer.iterations) == 32


def test_latent_batches_differ_between_steps_and_streams():
    gan = build_gan(preset("tiny"))
    first, other_stream = gan._latent_batch(4, 0), gan._latent_batch(4, 1)
    gan.step.assign_add(1)
    assert not np.allclose(first, other_stream)
    assert not np.allclose(first, gan._latent_batch(4, 0))


def test_generate_is_deterministic_per_seed():
    gan = build_gan(preset("tiny"))
    a, b, c = gan.generate(6, seed=3), gan.generate(6, seed=3), gan.generate(6, seed=4)
    assert a.shape == (6, 16, 16, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_keras_file_round_trip_keeps_images_and_optimizer_state(tmp_path):
    cfg = preset("tiny", label_smoothing=0.1)
    gan = build_gan(cfg)
    gan.fit(real_batches(cfg), epochs=1, verbose=0, shuffle=False)
    gan.save(tmp_path / "gan.keras")
    loaded = keras.saving.load_model(tmp_path / "gan.keras")
    assert isinstance(loaded, DCGAN) and loaded.label_smoothing == 0.1
    np.testing.assert_array_equal(loaded.generate(8, seed=1), gan.generate(8, seed=1))
    assert int(loaded.d_optimizer.iterations) == int(gan.d_optimizer.iterations) == 4
    for original, restored in zip(gan.g_optimizer.variables, loaded.g_optimizer.variables):
        np.testing.assert_array_equal(original.numpy(), restored.numpy())


def test_one_sided_label_smoothing():
    # a confident real logit is pushed back from 1 towards 0.9 (plain BCE values: test_stabilisers)
    confident = tf.fill((4, 1), 5.0)
    assert float(losses.bce_discriminator(confident, -confident, 0.1)) > float(
        losses.bce_discriminator(confident, -confident, 0.0))
    expected = -(0.9 * math.log(1 / (1 + math.exp(-5))) + 0.1 * math.log(1 - 1 / (1 + math.exp(-5))))
    assert float(losses.bce_discriminator(confident, tf.fill((4, 1), -100.0), 0.1)) == pytest.approx(expected, rel=1e-5)


def test_unknown_loss_is_rejected():
    with pytest.raises(ValueError, match="loss must be one of bce, hinge, lsgan, wgan"):
        build_gan(preset("tiny", loss="wasserstein"))


@pytest.mark.parametrize("policy, tolerance", [("mixed_bfloat16", 0.1), ("mixed_float16", 0.02)])
def test_mixed_precision_updates_match_float32_with_sgd(policy, tolerance):
    """With SGD the update is proportional to the gradient, so a loss scale that is not undone
    (or a gradient lost to float16) shows; Adam would hide a constant scale."""
    from dcgan_tf.model.networks import build_discriminator, build_generator
    cfg = preset("tiny", d_dropout=0.0, ema=0.0)
    batch = next(iter(real_batches(cfg)))
    updates = {}
    for name in ("float32", policy):
        with precision.policy(name):
            gan = DCGAN(build_generator(cfg), build_discriminator(cfg), seed=cfg.seed)
            gan.build()
            gan.compile(d_optimizer=keras.optimizers.SGD(0.1), g_optimizer=keras.optimizers.SGD(0.1))
        variables = [*gan.generator.trainable_variables, *gan.discriminator.trainable_variables]
        before = [v.numpy().copy() for v in variables]
        gan.train_step(batch)
        updates[name] = np.concatenate([(v.numpy() - b).ravel() for v, b in zip(variables, before)])
    if policy == "mixed_float16":
        assert isinstance(gan.g_optimizer, keras.optimizers.LossScaleOptimizer)
    reference, mixed = updates["float32"], updates[policy]
    assert np.linalg.norm(reference) > 0
    assert np.linalg.norm(mixed - reference) < tolerance * np.linalg.norm(reference)


def test_a_mixed_precision_gan_leaves_models_built_after_it_in_float32():
    """The run's policy is for G and D: the FID network that --eval-every builds mid-run must
    not compute in bfloat16 because the run does."""
    gan = build_gan(preset("tiny", mixed_precision="mixed_bfloat16"))
    assert gan.generator.layers[0].compute_dtype == "bfloat16"  # the output activation stays float32
    assert keras.mixed_precision.global_policy().name == "float32"
    assert keras.layers.Conv2D(1, 3).compute_dtype == "float32"


@pytest.mark.parametrize("policy, tolerance", [("mixed_bfloat16", 0.5), ("mixed_float16", 0.3)])
def test_mixed_precision_first_steps_move_both_networks_as_float32_does(policy, tolerance):
    """The run's own GAN (Adam, and a LossScaleOptimizer under mixed_float16) trained 3 steps:
    each network's weights move as they do in float32, so an update lost to the loss scaler
    (or never applied) fails."""
    cfg = preset("tiny", d_dropout=0.0)
    batch = next(iter(real_batches(cfg)))
    moves = {}
    for name in ("float32", policy):
        gan = build_gan(cfg.replace(mixed_precision=name))
        networks = (gan.generator, gan.discriminator)
        before = [snapshot(network) for network in networks]
        losses = [gan.train_on_batch(batch, return_dict=True) for _ in range(3)]
        assert all(math.isfinite(value) for logs in losses for value in logs.values())
        moves[name] = [np.concatenate([(w.numpy() - b).ravel() for w, b in zip(network.trainable_weights, old)])
                       for network, old in zip(networks, before)]
    if policy == "mixed_float16":
        assert isinstance(gan.g_optimizer, keras.optimizers.LossScaleOptimizer)
    assert gan.generator.layers[0].compute_dtype == policy.removeprefix("mixed_")
    for reference, mixed in zip(moves["float32"], moves[policy]):
        assert np.linalg.norm(reference) > 0
        assert np.linalg.norm(mixed - reference) < tolerance * np.linalg.norm(reference)


def logged_steps(cfg, directory, monkeypatch):
    """steps.csv of a 2-epoch fit, and how often the step counter was read back from the device."""
    reads = []
    step_count = DCGAN.step_count
    monkeypatch.setattr(DCGAN, "step_count", lambda self: reads.append(1) or step_count(self))
    gan = build_gan(cfg)
    gan.fit(real_batches(cfg), epochs=2, verbose=0, shuffle=False,
            callbacks=[callbacks.NanGuard(), callbacks.LossCurves(directory)])
    rows = np.loadtxt(directory / "steps.csv", delimiter=",", skiprows=1)
    return rows, len(reads), gan


def test_steps_csv_holds_each_steps_own_values_whatever_steps_per_execution(tmp_path, monkeypatch):
    cfg = preset("tiny", d_dropout=0.0)
    (tmp_path / "one").mkdir(), (tmp_path / "four").mkdir()
    every_step, reads, one = logged_steps(cfg, tmp_path / "one", monkeypatch)
    every_fourth, _, four = logged_steps(cfg.replace(steps_per_execution=4), tmp_path / "four", monkeypatch)
    assert reads <= 3 * 2  # a few reads an epoch, not one per step
    np.testing.assert_array_equal(every_step[:, :2], [[step, 1 + (step > 4)] for step in range(1, 9)])
    reference = build_gan(cfg)  # the values train_step returns, step by step
    expected = [[float(logs[k]) for k in LOSS_KEYS]
                for logs in (reference.train_step(batch) for batch in real_batches(cfg).repeat(2))]
    np.testing.assert_allclose(every_step[:, 2:], expected, rtol=1e-4, atol=1e-6)
    # four steps per execution: a row every fourth step, that step's own values, the same training
    np.testing.assert_array_equal(every_fourth[:, 0], [4, 8])
    np.testing.assert_allclose(every_fourth[:, 2:], every_step[[3, 7], 2:], rtol=1e-5, atol=1e-7)
    for a, b in zip(one.weights, four.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)
