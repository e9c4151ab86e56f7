"""Exporting a trained generator, and loading one back from any saved form.

An export directory (saved_models/NAME/) holds a TensorFlow SavedModel that needs
no dcgan_tf to run, the Keras generator (generator.keras) and the training config:
- signature `serving_default`: z float32 [batch, latent_dim] -> images uint8 [batch, H, W, 3];
- signature `sample`: num int32, seed int64 scalars -> images uint8, the same for the same seed.
A conditional model's signatures also take `attributes` float32, one value per attribute
(1 present, 0 absent): [batch, count] beside z, or [count] for all `num` faces of `sample`;
signature `attribute_names` () -> names string [count] says which, in order.
"""

from pathlib import Path

import keras
import tensorflow as tf

from . import latent
from .config import CONFIG_FILE, Config
from .files import written_atomically

GENERATOR_FILE = "generator.keras"
DIRECTIONS_FILE = "directions.npz"  # attribute name -> latent direction, beside the generator (dcgan_tf.editing)


def check_replaceable(out_dir):
    """An export replaces an earlier export, never a folder of something else."""
    if out_dir.exists() and (not out_dir.is_dir()
                             or (not (out_dir / "saved_model.pb").is_file() and any(out_dir.iterdir()))):
        raise ValueError(f"{out_dir} exists and is not an exported model; choose another export directory")


def export_generator(generator, cfg, out_dir):
    """Write the SavedModel, generator.keras and config.json; replaces out_dir only once complete."""
    out_dir = Path(out_dir)
    check_replaceable(out_dir)
    with written_atomically(out_dir) as (partial,):
        _write_export(_with_keras_layers(generator, cfg), cfg, partial)
    return out_dir


def _with_keras_layers(generator, cfg):
    """The generator rebuilt from Keras' own layers (no fused BatchNorm) with the same
    weights, so generator.keras loads in Keras without dcgan_tf."""
    from .models import build_generator
    plain = build_generator(cfg, fused_batchnorm=False)
    plain.set_weights(generator.get_weights())
    return plain


def _write_export(generator, cfg, directory):
    # No archive.track(generator): the endpoints' variables are tracked anyway, and tracking
    # the model too stored every weight twice (23.7 MB for dcgan32's 11.9 MB).
    archive = keras.export.ExportArchive()
    count = len(cfg.condition)

    def images_from_z(z, *attributes):  # attributes: none, or [batch, count] for a conditional generator
        return {"images": latent.to_uint8(generator([z, *attributes] if attributes else z, training=False))}

    def sample(num, seed, *attributes):  # attributes: none, or [count] for all num faces
        return images_from_z(latent.sample(num, cfg.latent_dim, seed),
                             *(tf.broadcast_to(values, [num, count]) for values in attributes))

    def attribute_spec(*shape):
        return [tf.TensorSpec(shape, tf.float32, name="attributes")] if count else []

    archive.add_endpoint("serving_default", images_from_z, input_signature=[
        tf.TensorSpec([None, cfg.latent_dim], tf.float32, name="z"), *attribute_spec(None, count)])
    archive.add_endpoint("sample", sample, input_signature=[
        tf.TensorSpec([], tf.int32, name="num"), tf.TensorSpec([], tf.int64, name="seed"), *attribute_spec(count)])
    if count:
        archive.add_endpoint("attribute_names", lambda: {"names": tf.constant(cfg.condition)}, input_signature=[])
    archive.write_out(str(directory), verbose=False)
    generator.save(directory / GENERATOR_FILE)
    cfg.save(directory)


def export_run(path, out_dir):
    """Export the generator of a run directory or checkpoint (see load_generator) to out_dir."""
    generator, cfg = load_generator(path)
    if cfg is None:
        raise ValueError(f"{path}: no config.json beside the model, cannot export it")
    return export_generator(generator, cfg, out_dir)


def _run_and_checkpoint(path):
    """(run directory, checkpoint prefix or None): a checkpoint prefix (runs/NAME/checkpoints/ckpt-12,
    runs/NAME/best/ckpt) belongs to the run two levels up."""
    if path.with_name(path.name + ".index").is_file():
        return path.parent.parent, str(path)
    return path, None


def export_name(path):
    """The folder name under saved_models/ for exporting `path`: its run's name, else the file's."""
    run, _ = _run_and_checkpoint(Path(path).resolve())
    return run.stem if run.suffix == ".keras" else run.name


def model_dir(path):
    """The folder a model's companion files (directions.npz) live in: a checkpoint's run, the
    directory of a run, an export or a SavedModel, or the folder of a .keras file."""
    run, _ = _run_and_checkpoint(Path(path))
    return run if run.is_dir() else run.parent


def load_generator(path):
    """A Keras generator and its Config from a run directory (latest checkpoint), one
    checkpoint of a run (runs/NAME/checkpoints/ckpt-12), an export directory or a .keras file."""
    from .checkpoints import has_checkpoint, load_sampling_generator, readable_checkpoint
    from .gan import DCGAN

    path, checkpoint = _run_and_checkpoint(Path(path))
    if not path.exists():
        raise FileNotFoundError(f"no model at {path}")
    if path.is_dir() and has_checkpoint(path):
        cfg = Config.load(path)
        return load_sampling_generator(cfg, readable_checkpoint(path, checkpoint)), cfg
    keras_file = path / GENERATOR_FILE if path.is_dir() else path
    if keras_file.suffix == ".keras" and keras_file.is_file():
        try:
            model = keras.saving.load_model(keras_file, safe_mode=True)
        except Exception as error:  # Keras raises many types for a damaged or foreign file
            raise ValueError(f"{keras_file}: not a readable .keras model ({type(error).__name__}: "
                             f"{str(error).splitlines()[0] if str(error) else ''})") from None
        generator = model.generator if isinstance(model, DCGAN) else model
        _check_is_generator(generator, keras_file)
        config_file = keras_file.parent / CONFIG_FILE
        cfg = Config.load(config_file) if config_file.exists() else None
        return generator, cfg
    raise ValueError(f"{path} is not a run directory with checkpoints, an export directory or a .keras file")


def _check_is_generator(model, path):
    """A generator maps z [batch, latent_dim] (and, if conditional, attributes [batch, count])
    to images [batch, H, W, 3]."""
    inputs, outputs = getattr(model, "inputs", None), getattr(model, "outputs", None)
    if (not inputs or not outputs or len(inputs) not in (1, 2) or len(outputs) != 1
            or any(len(i.shape) != 2 for i in inputs) or len(outputs[0].shape) != 4 or outputs[0].shape[-1] != 3):
        raise ValueError(f"{path} is a Keras model but not a generator (it must map z [batch, latent_dim], "
                         "or [z, attributes [batch, count]], to images [batch, H, W, 3])")


def load_directions(path, latent_dim):
    """Attribute name -> unit latent direction, from the directions.npz in the model's folder
    (model_dir: its run or export directory, or beside its .keras file); {} when there is none."""
    from .editing import Directions
    file = model_dir(path) / DIRECTIONS_FILE
    if not file.is_file():
        return {}
    directions = Directions.load(file, latent_dim)
    return dict(zip(directions.names, directions.vectors))
