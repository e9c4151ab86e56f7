"""A --tensorboard run's event files, read with TensorBoard's own reader."""

import numpy as np
from conftest import random_images
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import metadata

from dcgan_tf.config import preset
from dcgan_tf.train.run import train


def read(directory):
    events = EventAccumulator(str(directory), size_guidance={"tensors": 0})
    events.Reload()
    return events


def test_samples_share_their_epochs_step_and_the_config_is_logged(tmp_path):
    np.save(tmp_path / "faces.npy", random_images(32, 16))
    cfg = preset("tiny", data=str(tmp_path / "faces.npy"), tensorboard=True, epochs=2, lr=3e-4)
    train(cfg, tmp_path / "run", verbose=0, log=lambda m: None)
    logs = tmp_path / "run" / "tensorboard"
    scalar_steps = [event.step for event in read(logs / "train").Tensors("epoch_g_loss")]
    image_steps = [event.step for event in read(logs / "samples").Tensors("samples")]
    assert scalar_steps == image_steps == [0, 1]

    hparams = read(logs).PluginTagToContent(metadata.PLUGIN_NAME)[metadata.SESSION_START_INFO_TAG]
    logged = metadata.parse_session_start_info_plugin_data(hparams).hparams
    assert logged["lr"].number_value == 3e-4 and logged["preset"].string_value == "tiny"
    assert logged["g_mult"].string_value == str(cfg.g_mult) and logged["reuse_fake"].bool_value
