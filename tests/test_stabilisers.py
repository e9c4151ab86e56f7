"""Losses, gradient penalties, n_critic, spectral norm, DiffAugment and the EMA generator."""

import math

import numpy as np
import pytest
import tensorflow as tf

from dcgan_tf import augment, losses
from dcgan_tf.config import preset
from dcgan_tf.gan import build_gan

from conftest import random_images

REAL, FAKE = tf.constant([2.0, -1.0]), tf.constant([0.5, -3.0])


@pytest.mark.parametrize("name, d_expected, g_expected", [
    ("hinge", (0.0 + 2.0) / 2 + (1.5 + 0.0) / 2, (-0.5 + 3.0) / 2),
    ("lsgan", 0.5 * (1.0 + 4.0) / 2 + 0.5 * (0.25 + 9.0) / 2, 0.5 * (0.25 + 16.0) / 2),
    ("wgan", (0.5 - 3.0) / 2 - (2.0 - 1.0) / 2, -(0.5 - 3.0) / 2),
    ("bce", None, None),
])
def test_loss_values_on_known_logits(name, d_expected, g_expected):
    d_fn, g_fn = losses.get(name)
    if name == "bce":  # -log sigmoid(x) for reals, -log(1 - sigmoid(x)) for fakes
        softplus = lambda x: math.log1p(math.exp(x))  # noqa: E731
        d_expected = (softplus(-2.0) + softplus(1.0)) / 2 + (softplus(0.5) + softplus(-3.0)) / 2
        g_expected = (softplus(-0.5) + softplus(3.0)) / 2
    assert float(d_fn(REAL, FAKE)) == pytest.approx(d_expected, rel=1e-6)
    assert float(g_fn(FAKE)) == pytest.approx(g_expected, rel=1e-6)


def batch(cfg):
    return tf.constant(random_images(cfg.batch_size, cfg.image_size).astype("float32") / 127.5 - 1)


@pytest.mark.parametrize("overrides", [
    {"loss": "hinge", "spectral_norm": True},
    {"loss": "lsgan"},
    {"loss": "wgan", "gp": "wgan-gp", "n_critic": 2},
    {"gp": "r1", "gp_weight": 1.0},
    {"diffaugment": "color,translation,cutout"},
    {"diffaugment": "color,translation,cutout", "reuse_fake": False},
])
def test_each_option_trains_both_networks(overrides):
    gan = build_gan(preset("tiny", **overrides))
    before = [[w.numpy().copy() for w in model.trainable_weights] for model in (gan.generator, gan.discriminator)]
    logs = [gan.train_step(batch(preset("tiny"))) for _ in range(2)][-1]
    assert all(math.isfinite(float(v)) for v in logs.values())
    for model, weights in zip((gan.generator, gan.discriminator), before):
        assert any(not np.array_equal(b, w.numpy()) for b, w in zip(weights, model.trainable_weights)), model.name
    assert int(gan.g_optimizer.iterations) == 2
    assert int(gan.d_optimizer.iterations) == 2 * overrides.get("n_critic", 1)


def test_wgan_gp_penalty_is_zero_for_a_unit_gradient_critic():
    gan = build_gan(preset("tiny", loss="wgan", gp="wgan-gp"))
    real = batch(preset("tiny"))
    # a critic that sums the image scaled to unit gradient norm has a zero penalty
    size = float(np.prod(real.shape[1:]))
    gan.discriminator = lambda x, training=False: tf.reduce_sum(x, axis=[1, 2, 3])[:, None] / math.sqrt(size)
    assert float(gan._gradient_penalty(real, -real)) == pytest.approx(0.0, abs=1e-6)
    gan.gp = "r1"
    assert float(gan._gradient_penalty(real, -real)) == pytest.approx(0.5 * 10.0, rel=1e-5)


@pytest.mark.parametrize("name", ["color", "translation", "cutout"])
def test_diffaugment_keeps_shapes_changes_images_and_passes_gradients(name):
    x = tf.Variable(tf.random.uniform([4, 16, 16, 3], -1, 1, seed=1))
    seed = tf.constant([1, 2], tf.int64)
    with tf.GradientTape() as tape:
        y = augment.diff_augment(x, (name,), seed)
        total = tf.reduce_sum(y * y)
    grad = tape.gradient(total, x)
    assert y.shape == x.shape and grad is not None and float(tf.reduce_sum(tf.abs(grad))) > 0
    assert not np.allclose(y.numpy(), x.numpy())
    np.testing.assert_array_equal(y.numpy(), augment.diff_augment(x, (name,), seed).numpy())  # same seed


def test_cutout_zeroes_a_quarter_of_the_image_and_translation_moves_it():
    x = tf.ones([2, 16, 16, 3])
    zeroed = 1.0 - tf.reduce_mean(augment.cutout(x, tf.constant([3, 4], tf.int64)), axis=[1, 2, 3])
    assert all(0.0 < float(v) <= 0.25 for v in zeroed)
    # one bright pixel in the middle lands at most 2 pixels away (ratio 0.125 of 16), intact
    dot = tf.tensor_scatter_nd_update(tf.zeros([8, 16, 16, 1]), [[i, 8, 8, 0] for i in range(8)], tf.ones([8]))
    moved = augment.translation(dot, tf.constant([5, 6], tf.int64)).numpy()[..., 0]
    positions = [np.argwhere(image == 1.0) for image in moved]
    assert all(len(p) == 1 and np.abs(p[0] - 8).max() <= 2 for p in positions)
    assert any(tuple(p[0]) != (8, 8) for p in positions)
    with pytest.raises(ValueError, match="unknown DiffAugment policy flip"):
        augment.parse("color,flip")


def test_ema_generator_averages_the_trained_weights_with_a_warm_up():
    cfg = preset("tiny", ema=0.9)
    gan = build_gan(cfg)
    gan.train_step(batch(cfg))  # the first update starts the average at the trained weights
    first = [w.numpy().copy() for w in gan.generator.trainable_weights]
    gan.train_step(batch(cfg))  # update 1: decay min(0.9, 1 / 11)
    averaged = gan.sampling_generator()
    for before, trained, ema in zip(first, gan.generator.trainable_weights, averaged.trainable_weights):
        np.testing.assert_allclose(ema.numpy(), before / 11 + 10 / 11 * trained.numpy(), rtol=1e-5, atol=1e-7)
    gan.g_optimizer.iterations.assign(1000)  # past the warm-up the configured decay holds
    before = [w.numpy().copy() for w in averaged.trainable_weights]
    gan.train_step(batch(cfg))
    averaged = gan.sampling_generator()
    for old, trained, ema in zip(before, gan.generator.trainable_weights, averaged.trainable_weights):
        np.testing.assert_allclose(ema.numpy(), 0.9 * old + 0.1 * trained.numpy(), rtol=1e-5, atol=1e-7)
    assert averaged is not gan.generator
    assert build_gan(preset("tiny", ema=0.0)).sampling_generator().name == "generator"
    untrained = build_gan(cfg)  # its average holds zeros until the first update: samples use the weights
    assert untrained.sampling_generator() is untrained.generator and untrained.generate(2).std() > 0


def test_resume_restores_the_ema_generator(tmp_path):
    from dcgan_tf.checkpoints import TrainingCheckpoint
    cfg = preset("tiny", ema=0.9)
    gan = build_gan(cfg)
    for _ in range(3):
        gan.train_step(batch(cfg))
    TrainingCheckpoint(gan, tmp_path).save(1)
    resumed = build_gan(cfg)
    TrainingCheckpoint(resumed, tmp_path).restore()
    averaged = gan.sampling_generator()
    assert averaged is not gan.generator
    for original, restored in zip(averaged.weights, resumed.sampling_generator().weights):
        np.testing.assert_array_equal(original.numpy(), restored.numpy())


def test_tensorboard_events_hold_the_losses_learning_rates_and_a_sample_grid(tmp_path):
    from dcgan_tf.training import train
    np.save(tmp_path / "faces.npy", random_images(32, 16))
    cfg = preset("tiny", data=str(tmp_path / "faces.npy"), tensorboard=True, ema=0.99)
    train(cfg, tmp_path / "run", verbose=0, log=lambda m: None)
    tags = set()
    for event_file in (tmp_path / "run" / "tensorboard").rglob("events.out.tfevents.*"):
        for record in tf.data.TFRecordDataset(str(event_file)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            tags.update(value.tag for value in event.summary.value)
    assert {"epoch_d_loss", "epoch_g_loss", "epoch_real_prob", "epoch_fake_prob", "epoch_d_lr", "epoch_g_lr",
            "samples"} <= tags
