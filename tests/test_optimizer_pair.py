"""Keras' own learning-rate callbacks on the GAN: both optimizers follow, D/G ratio kept."""

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import random_images

from dcgan_tf.config import preset
from dcgan_tf.model.gan import build_gan

LR, D_LR = 2e-4, 8e-4  # two time-scale: D 4x G


def fit(callback, epochs=3):
    cfg = preset("tiny", lr=LR, d_lr=D_LR)
    gan = build_gan(cfg)
    images = random_images(16, cfg.image_size).astype("float32") / 127.5 - 1
    dataset = tf.data.Dataset.from_tensor_slices(images).batch(cfg.batch_size, drop_remainder=True)
    history = gan.fit(dataset, epochs=epochs, verbose=0, shuffle=False, callbacks=[callback]).history
    rates = [float(keras.ops.convert_to_numpy(o.learning_rate)) for o in (gan.d_optimizer, gan.g_optimizer)]
    return history, rates


@pytest.mark.parametrize("schedule, g_rate", [
    (lambda epoch, lr: lr * 0.5, LR / 8),  # each of the 3 epochs halves it
    (lambda epoch: 1e-5 * (epoch + 1), 3e-5),  # the rate of epoch 3, set outright
])
def test_learning_rate_scheduler_sets_g_and_scales_d(schedule, g_rate):
    history, (d, g) = fit(keras.callbacks.LearningRateScheduler(schedule))
    assert g == pytest.approx(g_rate) and d == pytest.approx(g_rate * D_LR / LR)
    assert history["learning_rate"][-1] == pytest.approx(g_rate)  # the callback logs G's rate


def test_reduce_lr_on_plateau_reduces_both():
    # min_delta that large: no epoch after the first counts as better, so epochs 2 and 3 reduce the rates
    history, (d, g) = fit(keras.callbacks.ReduceLROnPlateau(monitor="g_loss", mode="min", factor=0.5, patience=0,
                                                            min_delta=1e9))
    assert g == pytest.approx(LR * 0.25) and d == pytest.approx(D_LR * 0.25)
    assert np.allclose(history["learning_rate"], [LR, LR, LR * 0.5])  # logged before each reduction
