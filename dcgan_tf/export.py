"""Exporting a trained generator, and loading one back from any saved form.

An export directory (saved_models/NAME/) holds a TensorFlow SavedModel that needs
no dcgan_tf to run, the Keras generator (generator.keras) and the training config:
- signature `serving_default`: z float32 [batch, latent_dim] -> images uint8 [batch, H, W, 3];
- signature `sample`: num int32, seed int64 scalars -> images uint8, the same for the same seed.
"""

import shutil
from pathlib import Path

import keras
import tensorflow as tf

from . import latent
from .config import CONFIG_FILE, Config

GENERATOR_FILE = "generator.keras"


def export_generator(generator, cfg, out_dir):
    """Write the SavedModel, generator.keras and config.json; replaces out_dir only once complete."""
    out_dir = Path(out_dir)
    partial = out_dir.with_name(f".{out_dir.name}.partial")
    shutil.rmtree(partial, ignore_errors=True)

    archive = keras.export.ExportArchive()
    archive.track(generator)

    def images_from_z(z):
        return {"images": latent.to_uint8(generator(z, training=False))}

    def sample(num, seed):
        return images_from_z(latent.sample(num, cfg.latent_dim, seed))

    archive.add_endpoint("serving_default", images_from_z,
                         input_signature=[tf.TensorSpec([None, cfg.latent_dim], tf.float32, name="z")])
    archive.add_endpoint("sample", sample, input_signature=[
        tf.TensorSpec([], tf.int32, name="num"), tf.TensorSpec([], tf.int64, name="seed")])
    archive.write_out(str(partial), verbose=False)
    generator.save(partial / GENERATOR_FILE)
    cfg.save(partial)

    if out_dir.exists():
        shutil.rmtree(out_dir)
    partial.rename(out_dir)
    return out_dir


def export_run(path, out_dir):
    """Export the generator of a run directory or checkpoint (see load_generator) to out_dir."""
    generator, cfg = load_generator(path)
    if cfg is None:
        raise ValueError(f"{path}: no config.json beside the model, cannot export it")
    return export_generator(generator, cfg, out_dir)


def load_generator(path):
    """A Keras generator and its Config from a run directory (latest checkpoint), one
    checkpoint of a run (runs/NAME/checkpoints/ckpt-12), an export directory or a .keras file."""
    from .checkpoints import TrainingCheckpoint, has_checkpoint
    from .gan import DCGAN, build_gan

    path = Path(path)
    checkpoint = None
    if path.with_name(path.name + ".index").is_file():  # a checkpoint prefix: its run is two levels up
        path, checkpoint = path.parent.parent, str(path)
    if not path.exists():
        raise FileNotFoundError(f"no model at {path}")
    if path.is_dir() and has_checkpoint(path):
        cfg = Config.load(path)
        gan = build_gan(cfg)
        TrainingCheckpoint(gan, path).restore(checkpoint, generator_only=True)
        return gan.sampling_generator(), cfg
    keras_file = path / GENERATOR_FILE if path.is_dir() else path
    if keras_file.suffix == ".keras" and keras_file.is_file():
        model = keras.saving.load_model(keras_file, safe_mode=True)
        generator = model.generator if isinstance(model, DCGAN) else model
        config_file = keras_file.parent / CONFIG_FILE
        cfg = Config.load(config_file) if config_file.exists() else None
        return generator, cfg
    raise ValueError(f"{path} is not a run directory with checkpoints, an export directory or a .keras file")
