"""Adaptive augmentation (dcgan_tf.model.ada): the r_t rule, p applied per image, p rising on a
set D memorises and staying 0 when D cannot learn, logs, and a resume that keeps p."""

import csv

import numpy as np
import pytest
import tensorflow as tf
from conftest import random_images

from dcgan_tf.config import preset
from dcgan_tf.model import ada, augment
from dcgan_tf.model.gan import build_gan

ADA = dict(ada_target=0.6, diffaugment="color,translation,cutout")


def test_adjust_moves_p_by_the_images_seen_towards_the_target():
    state = ada.AdaptiveAugment()
    state.p.assign(0.25)
    logits = tf.constant([[1.0], [-1.0], [2.0], [3.0]])  # r_t = (1 - 1 + 1 + 1) / 4 = 0.5
    for expected in (0.15, 0.05, 0.0):  # 4 images of the 40 that take p from 0 to 1, down to its floor
        state.accumulate(logits)
        state.adjust(target=0.6, kimg=0.04)
        assert float(state.p.numpy()) == pytest.approx(expected)
    assert float(state.r_t.numpy()) == pytest.approx(0.5)
    assert (float(state.sign_sum.numpy()), float(state.count.numpy())) == (0.0, 0.0)  # a new interval
    state.accumulate(tf.fill([4, 1], 5.0))  # r_t = 1, above the target
    state.adjust(target=0.6, kimg=0.04)
    assert float(state.p.numpy()) == pytest.approx(0.1) and float(state.r_t.numpy()) == 1.0
    state.accumulate(tf.fill([40, 1], 5.0))
    state.adjust(target=0.6, kimg=0.04)
    assert float(state.p.numpy()) == 1.0  # capped
    state.adjust(target=0.6, kimg=0.04)  # nothing accumulated: p and r_t stay
    assert float(state.p.numpy()) == 1.0 and float(state.r_t.numpy()) == 1.0


def test_each_policy_is_applied_to_each_image_with_probability_p():
    x = tf.Variable(tf.random.uniform([200, 16, 16, 3], -1, 1, seed=1))
    seed = tf.constant([3, 4], tf.int64)
    names = ("color", "translation", "cutout")
    np.testing.assert_array_equal(augment.diff_augment(x, names, seed, p=tf.constant(0.0)).numpy(), x.numpy())
    np.testing.assert_array_equal(augment.diff_augment(x, names, seed, p=tf.constant(1.0)).numpy(),
                                  augment.diff_augment(x, names, seed).numpy())
    with tf.GradientTape() as tape:
        half = augment.diff_augment(x, ("cutout",), seed, p=tf.constant(0.5))
        total = tf.reduce_sum(half * half)
    changed = np.any(half.numpy() != x.numpy(), axis=(1, 2, 3))
    assert 0.35 < changed.mean() < 0.65  # whole images are cut out or left alone
    np.testing.assert_array_equal(half.numpy()[~changed], x.numpy()[~changed])
    assert float(tf.reduce_sum(tf.abs(tape.gradient(total, x)))) > 0


def fit_on(images, cfg, steps, frozen_d=False):
    gan = build_gan(cfg)
    if frozen_d:  # D cannot learn, and its zeroed logit layer has no opinion of any image
        gan.set_learning_rates(0.0, cfg.lr)
        for weight in gan.discriminator.layers[-1].weights:
            weight.assign(tf.zeros_like(weight))
    data = tf.data.Dataset.from_tensor_slices(images).batch(cfg.batch_size).repeat()
    history = gan.fit(data, epochs=1, steps_per_epoch=steps, verbose=0,
                      callbacks=[ada.AdaptAugmentation(cfg.ada_interval, cfg.ada_target, cfg.ada_kimg)])
    return gan, history.history


def tiny_set():
    return random_images(4, 16).astype("float32") / 127.5 - 1


def test_p_rises_when_d_memorises_a_tiny_set():
    cfg = preset("tiny", batch_size=4, d_dropout=0.0, ada_interval=2, ada_kimg=0.2, **ADA)
    gan, history = fit_on(tiny_set(), cfg, steps=120)
    assert float(gan.ada.r_t.numpy()) > 0.6 and float(gan.ada.p.numpy()) > 0.5
    # logged: the epoch's mean p, between the 0 it started at and where it ended
    assert 0.1 < history["augment_p"][-1] < float(gan.ada.p.numpy())


def test_p_stays_zero_when_d_cannot_learn():
    cfg = preset("tiny", batch_size=4, d_dropout=0.0, ada_interval=2, ada_kimg=0.2, **ADA)
    gan, _ = fit_on(tiny_set(), cfg, steps=40, frozen_d=True)
    assert float(gan.ada.p.numpy()) == 0.0 and float(gan.ada.r_t.numpy()) == 0.0
    assert float(gan.ada.count.numpy()) == 0.0  # every interval was read: the last ended at step 40


def test_ada_is_off_by_default_and_needs_policies_and_a_signed_logit():
    assert build_gan(preset("tiny")).ada is None
    with pytest.raises(ValueError, match="ada_target needs diffaugment"):
        preset("tiny", ada_target=0.6)
    with pytest.raises(ValueError, match="Wasserstein critic"):
        preset("tiny", loss="wgan", **ADA)
    from dcgan_tf.cli.train import parse_args, run_config
    cfg = run_config(parse_args(["--preset", "tiny", "--ada-target", "0.6", "--diffaugment", "cutout",
                                 "--ada-interval", "8", "--ada-kimg", "50"]))
    assert (cfg.ada_target, cfg.ada_interval, cfg.ada_kimg) == (0.6, 8, 50.0)


def read_rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_a_resumed_run_restores_p_and_the_open_interval(tmp_path):
    import keras

    from dcgan_tf.train.checkpoints import TrainingCheckpoint
    from dcgan_tf.train.run import train
    np.save(tmp_path / "faces.npy", random_images(8, 16))
    # 2 steps an epoch, p adjusted after steps 4 and 8: the checkpoint after step 6 holds an open interval.
    cfg = preset("tiny", data=str(tmp_path / "faces.npy"), batch_size=4, ada_interval=4, ada_kimg=0.05, epochs=3,
                 **{**ADA, "ada_target": 0.1})  # below this D's r_t: p rises
    run = tmp_path / "run"
    gan, _ = train(cfg, run, verbose=0, log=lambda m: None)
    saved = {name: float(getattr(gan.ada, name).numpy()) for name in ("p", "r_t", "sign_sum", "count")}
    assert saved["p"] > 0 and saved["count"] == 8  # steps 5 and 6, 4 real images each
    restored = build_gan(cfg)
    TrainingCheckpoint(restored, run).restore()
    assert {name: float(getattr(restored.ada, name).numpy()) for name in saved} == saved

    class FirstStep(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            self.state = (self.model.step_count(), float(self.model.ada.p.numpy()),
                          float(self.model.ada.count.numpy()))

    first = FirstStep()
    gan, _ = train(cfg.replace(epochs=4), run, resume=True, verbose=0, log=lambda m: None, extra_callbacks=[first])
    assert first.state == (6, saved["p"], 8)
    assert float(gan.ada.count.numpy()) == 0  # the interval of steps 5-8 was closed at step 8
    history, steps = read_rows(run / "history.csv"), read_rows(run / "steps.csv")
    assert float(history[2]["augment_p"]) == pytest.approx(saved["p"])  # step 6 used the p of step 4
    assert [int(row["step"]) for row in steps] == list(range(1, 9))
    assert float(steps[-1]["augment_p"]) == pytest.approx(saved["p"]) and float(steps[-1]["ada_r_t"]) == saved["r_t"]
    # history.csv holds each epoch's means, as without adaptive augmentation, not its last step's values
    for epoch in (1, 2, 3, 4):
        rows = [row for row in steps if int(row["epoch"]) == epoch]
        for key in ("d_loss", "augment_p", "ada_r_t"):
            mean = np.mean([float(row[key]) for row in rows])
            assert float(history[epoch - 1][key]) == pytest.approx(mean, rel=1e-5, abs=1e-6), (epoch, key)
