"""Losses, gradient penalties, n_critic, spectral norm, DiffAugment and the EMA generator."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import random_images

from dcgan_tf.config import preset
from dcgan_tf.model import augment, latent, losses
from dcgan_tf.model.gan import build_gan
from dcgan_tf.model.networks import build_discriminator
from dcgan_tf.train import callbacks
from dcgan_tf.utils import precision
from dcgan_tf.utils.images import to_uint8

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
    {"loss": "wgan", "gp": "wgan-gp", "n_critic": 2, "d_norm": "layer"},
    {"gp": "r1", "gp_weight": 1.0, "d_norm": "none", "diffaugment": "translation"},
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


def _gradient_norms_by_finite_differences(critic, images, eps=1e-6):
    """Per-sample ||d critic(x_i) / d x_i||, one pixel at a time (float64 central differences)."""
    flat = images.numpy().reshape(len(images), -1)
    norms = []
    for i in range(len(flat)):
        grad = []
        for j in range(flat.shape[1]):
            step = np.zeros_like(flat[i])
            step[j] = eps
            plus, minus = (critic(tf.constant((flat[i] + d).reshape(1, *images.shape[1:]))) for d in (step, -step))
            grad.append(float(plus[0, 0] - minus[0, 0]) / (2 * eps))
        norms.append(np.linalg.norm(grad))
    return np.array(norms)


def test_penalties_match_per_sample_finite_differences_of_a_nonlinear_critic():
    rng = np.random.default_rng(0)
    real, fake = (tf.constant(rng.uniform(-1, 1, (3, 4, 4, 3))) for _ in range(2))
    weights = tf.constant(rng.normal(size=(4, 4, 3)))

    def critic(x):  # non-linear and per-sample
        return tf.reduce_sum(tf.tanh(x * weights) ** 2, axis=[1, 2, 3])[:, None]

    r1_expected = 0.5 * np.mean(_gradient_norms_by_finite_differences(critic, real) ** 2)
    assert float(losses.r1(critic, real)) == pytest.approx(r1_expected, rel=1e-5)
    mix = tf.constant(rng.uniform(size=(3, 1, 1, 1)))
    points = mix * real + (1 - mix) * fake
    gp_expected = np.mean((_gradient_norms_by_finite_differences(critic, points) - 1) ** 2)
    assert float(losses.wgan_gp(critic, real, fake, mix)) == pytest.approx(gp_expected, rel=1e-5)


def test_a_gradient_penalty_with_a_batchnorm_critic_is_refused():
    for gp in ("wgan-gp", "r1"):
        with pytest.raises(ValueError, match="per-sample critic"):
            preset("tiny", gp=gp)
        assert not any("normalization" in layer.name for layer in
                       build_discriminator(preset("tiny", gp=gp, d_norm="none")).layers)
    layer_norm = build_discriminator(preset("tiny", gp="r1", d_norm="layer"))
    assert any(isinstance(layer, keras.layers.LayerNormalization) for layer in layer_norm.layers)


def test_penalty_is_taken_on_the_augmented_images_d_trains_on(monkeypatch):
    cfg = preset("tiny", gp="r1", d_norm="none", diffaugment="cutout")
    gan = build_gan(cfg)
    seen = {}
    monkeypatch.setattr(losses, "r1", lambda critic, real: seen.setdefault("real", real) * 0 + 0.0)
    real = batch(cfg)
    gan.train_step(real)
    cut = np.mean(seen["real"].numpy() == 0, axis=(1, 2, 3))  # cutout zeroes a square (clipped at the edges)
    assert (cut > 0.05).all() and not np.array_equal(seen["real"].numpy(), real.numpy())


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
    averaged = gan.sampling_generator
    assert averaged is gan.ema_generator and averaged is not gan.generator
    pairs = [(a, w) for a, w in zip(averaged.weights, gan.generator.weights) if w.trainable]
    statistics = [(a, w) for a, w in zip(averaged.weights, gan.generator.weights) if not w.trainable]
    assert pairs and statistics
    assert gan.generate(2).std() > 0  # before any update the copy holds the initial weights
    gan.train_step(batch(cfg))  # step 0: decay 0, the average starts at the trained weights
    for average, weight in pairs:
        np.testing.assert_allclose(average.numpy(), weight.numpy(), rtol=1e-6)
    first = [w.numpy().copy() for _, w in pairs]
    gan.train_step(batch(cfg))  # step 1: decay min(0.9, 1 / 11)
    for (average, weight), before in zip(pairs, first):
        np.testing.assert_allclose(average.numpy(), before / 11 + 10 / 11 * weight.numpy(), rtol=1e-5, atol=1e-7)
    gan.step.assign(1000)  # past the warm-up the configured decay holds
    before = [a.numpy().copy() for a, _ in pairs]
    gan.train_step(batch(cfg))
    for (average, weight), old in zip(pairs, before):
        np.testing.assert_allclose(average.numpy(), 0.9 * old + 0.1 * weight.numpy(), rtol=1e-5, atol=1e-7)
    for average, statistic in statistics:  # BatchNorm statistics are copied
        np.testing.assert_array_equal(average.numpy(), statistic.numpy())
    np.testing.assert_array_equal(gan.generate(3, seed=4), to_uint8(averaged(latent.sample(3, 16, 4))).numpy())
    assert build_gan(preset("tiny", ema=0.0)).sampling_generator is not None
    plain = build_gan(preset("tiny", ema=0.0))
    assert plain.sampling_generator is plain.generator and plain.ema_generator is None


def test_resume_restores_the_ema_generator(tmp_path):
    from dcgan_tf.train.checkpoints import TrainingCheckpoint
    cfg = preset("tiny", ema=0.9)
    gan = build_gan(cfg)
    for _ in range(3):
        gan.train_step(batch(cfg))
    TrainingCheckpoint(gan, tmp_path).save(1)
    resumed = build_gan(cfg)
    TrainingCheckpoint(resumed, tmp_path).restore()
    averaged = gan.sampling_generator
    assert averaged is not gan.generator
    for original, restored in zip(averaged.weights, resumed.sampling_generator.weights):
        np.testing.assert_array_equal(original.numpy(), restored.numpy())


def test_tensorboard_events_hold_the_losses_learning_rates_and_a_sample_grid(tmp_path):
    from dcgan_tf.train.run import train
    np.save(tmp_path / "faces.npy", random_images(32, 16))
    cfg = preset("tiny", data=str(tmp_path / "faces.npy"), tensorboard=True, ema=0.99)
    train(cfg, tmp_path / "run", verbose=0, log=lambda m: None)
    tags = set()
    for event_file in (tmp_path / "run" / "tensorboard").rglob("events.out.tfevents.*"):
        for record in tf.data.TFRecordDataset(str(event_file)):
            event = tf.compat.v1.Event.FromString(record.numpy())
            tags.update(value.tag for value in event.summary.value)
    assert {"epoch_d_loss", "epoch_g_loss", "epoch_d_real", "epoch_d_fake", "epoch_d_lr", "epoch_g_lr",
            "samples"} <= tags


def test_spectral_norm_keeps_the_logit_float32_under_mixed_float16():
    with precision.policy("mixed_float16"):
        discriminator = build_discriminator(preset("tiny", spectral_norm=True, mixed_precision="mixed_float16"))
    logits = discriminator(tf.zeros([2, 16, 16, 3]), training=True)
    assert logits.dtype == tf.float32


@pytest.mark.parametrize("reuse_fake", [True, False])
def test_every_update_of_a_step_draws_its_own_z_augmentation_and_penalty_mix(monkeypatch, reuse_fake):
    """n_critic=2: each D update and G's own update (without reuse_fake) take fresh random values."""
    gan = build_gan(preset("tiny", loss="wgan", gp="wgan-gp", n_critic=2, d_norm="layer",
                           diffaugment="translation", reuse_fake=reuse_fake))
    drawn = {"z": [], "augment": [], "mix": []}
    call = keras.Layer.__call__

    def recording_call(layer, inputs, *args, **kwargs):
        if layer is gan.generator:
            drawn["z"].append(np.asarray(inputs).tobytes())
        return call(layer, inputs, *args, **kwargs)

    diff_augment, wgan_gp = augment.diff_augment, losses.wgan_gp
    monkeypatch.setattr(keras.Layer, "__call__", recording_call)
    monkeypatch.setattr(augment, "diff_augment", lambda x, names, seed, p=None: (
        drawn["augment"].append(np.asarray(seed).tobytes()), diff_augment(x, names, seed, p))[1])
    monkeypatch.setattr(losses, "wgan_gp", lambda critic, real, fake, mix: (
        drawn["mix"].append(np.asarray(mix).tobytes()), wgan_gp(critic, real, fake, mix))[1])
    gan.train_step(batch(preset("tiny")))
    assert len(drawn["z"]) == 2 + (not reuse_fake)  # one G forward per D update, one more for G's own
    assert len(drawn["augment"]) == 2 * 2 + 1 and len(drawn["mix"]) == 2  # real and fake per D update, G's
    for name, values in drawn.items():
        assert len(set(values)) == len(values), f"two updates of one step share their {name}"


def test_learning_rate_half_lives_halve_the_rates_each_epoch(tmp_path):
    import csv

    from dcgan_tf.train.run import train
    np.save(tmp_path / "faces.npy", random_images(32, 16))
    cfg = preset("tiny", data=str(tmp_path / "faces.npy"), epochs=3, d_lr_half_life=1.0, g_lr_half_life=2.0)
    train(cfg, tmp_path / "run", verbose=0, log=lambda m: None)
    with open(tmp_path / "run" / "history.csv") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["d_lr"]) for r in rows] == pytest.approx([2e-4, 1e-4, 5e-5])
    assert [float(r["g_lr"]) for r in rows] == pytest.approx([2e-4, 2e-4 * 0.5 ** 0.5, 1e-4])


def test_standing_statistics_trace_their_pass_once_for_a_whole_run():
    cfg = preset("tiny", ema=0.9)
    gan = build_gan(cfg)
    callback = callbacks.StandingStatistics(2, cfg.batch_size, cfg.latent_dim, seed=1)
    callback.set_model(gan)
    for epoch in range(3):
        callback.on_epoch_end(epoch, {"d_loss": 1.0, "g_loss": 1.0})
    assert callback.recompute.moments.experimental_get_tracing_count() == 1


def test_standing_statistics_are_the_averages_own_batch_statistics(tmp_path):
    from dcgan_tf.model import ema
    from dcgan_tf.train.run import train
    np.save(tmp_path / "faces.npy", random_images(32, 16))
    cfg = preset("tiny", data=str(tmp_path / "faces.npy"), epochs=1, ema=0.9)
    copied, _ = train(cfg.replace(ema_standing_batches=0), tmp_path / "copied", verbose=0, log=lambda m: None)
    standing, _ = train(cfg.replace(ema_standing_batches=3), tmp_path / "standing", verbose=0, log=lambda m: None)

    def norms(model):
        return [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    raw = [norm.moving_mean.numpy() for norm in norms(copied.generator)]
    np.testing.assert_array_equal([norm.moving_mean.numpy() for norm in norms(copied.ema_generator)][0], raw[0])
    # The same training either way; only the average's statistics differ: its own activations' means.
    z = [latent.sample(3 * cfg.batch_size, cfg.latent_dim, cfg.seed + 3).numpy()[i:i + cfg.batch_size]
         for i in range(0, 3 * cfg.batch_size, cfg.batch_size)]
    probe = keras.Model(standing.ema_generator.inputs, [n.input for n in norms(standing.ema_generator)])
    first = np.mean([np.asarray(probe([batch], training=True)[0]).reshape(-1, raw[0].shape[0]).mean(axis=0)
                     for batch in z], axis=0)
    ema.StandingStatistics(copied.ema_generator)(z)  # what the run did at its epoch's end
    for got, expected in zip(norms(standing.ema_generator), norms(copied.ema_generator)):
        np.testing.assert_allclose(got.moving_mean.numpy(), expected.moving_mean.numpy(), atol=1e-6)
        np.testing.assert_allclose(got.moving_variance.numpy(), expected.moving_variance.numpy(), atol=1e-6)
    np.testing.assert_allclose(norms(standing.ema_generator)[0].moving_mean.numpy(), first, atol=1e-5)
    assert np.abs(norms(standing.ema_generator)[0].moving_mean.numpy() - raw[0]).max() > 1e-4
