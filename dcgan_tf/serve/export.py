"""Exporting a trained generator, and loading one back from any saved form.

An export directory (saved_models/NAME/) holds a TensorFlow SavedModel that needs
no dcgan_tf to run, the Keras generator (generator.keras) and the training config:
- signature `serving_default`: z float32 [batch, latent_dim] -> images uint8 [batch, H, W, 3];
- signature `sample`: num int32, seed int64 scalars -> images uint8, the same for the same seed.
A conditional model's signatures also take `attributes` float32, one value per attribute
(1 present, 0 absent): [batch, count] beside z, or [count] for all `num` faces of `sample`;
signature `attribute_names` () -> names string [count] says which, in order.

With weights="float16" both forms store the weights in half precision (half the size) and
compute in float32: the SavedModel casts its float16 variables on each call, and
load_generator turns a float16 generator.keras back into a float32 model. The export
refuses to be written if its images differ from the float32 generator's by more than
MAX_MEAN_DIFFERENCE on average.
"""

from pathlib import Path

import keras
import numpy as np
import tensorflow as tf

from dcgan_tf.config import CONFIG_FILE, WEIGHT_DTYPES, Config
from dcgan_tf.model import latent, precision
from dcgan_tf.utils import tf32
from dcgan_tf.utils.files import written_atomically

GENERATOR_FILE = "generator.keras"
DIRECTIONS_FILE = "directions.npz"  # attribute name -> latent direction, beside the generator (dcgan_tf.editing)
MAX_MEAN_DIFFERENCE = 1.0  # pixel levels of 255, averaged over CHECK_FACES faces
CHECK_FACES = 256


def check_replaceable(out_dir):
    """An export replaces an earlier export, never a folder of something else."""
    if out_dir.exists() and (not out_dir.is_dir()
                             or (not (out_dir / "saved_model.pb").is_file() and any(out_dir.iterdir()))):
        raise ValueError(f"{out_dir} exists and is not an exported model; choose another export directory")


def export_generator(generator, cfg, out_dir, weights="float32"):
    """Write the SavedModel, generator.keras and config.json, their weights stored as
    `weights` (WEIGHT_DTYPES); replaces out_dir only once complete and checked."""
    if weights not in WEIGHT_DTYPES:
        raise ValueError(f"export weights must be one of {', '.join(WEIGHT_DTYPES)}, not {weights!r}")
    out_dir = Path(out_dir)
    check_replaceable(out_dir)
    generator = _with_keras_layers(generator, cfg)
    with written_atomically(out_dir) as (partial,):
        _write_export(generator, cfg, partial, weights)
        _check_export_matches(generator, cfg, partial)
    return out_dir


def _with_keras_layers(generator, cfg):
    """The generator rebuilt from Keras' own layers (no fused BatchNorm) with the same
    weights, so generator.keras loads in Keras without dcgan_tf; it computes in float32
    whatever the generator was trained or built in, so the model makes the same faces everywhere."""
    from dcgan_tf.model.networks import build_generator
    with precision.policy("float32"):
        plain = build_generator(cfg, fused_batchnorm=False)
    plain.set_weights(generator.get_weights())
    return plain


def _recast(model, dtype):
    """A copy of a Keras model whose layers hold (and compute in) `dtype`, same weights."""
    def with_dtype(layer):
        return layer.__class__.from_config({**layer.get_config(), "dtype": dtype})
    copy = keras.models.clone_model(model, clone_function=with_dtype)
    copy.set_weights([w.astype(dtype) for w in model.get_weights()])
    return copy


def _on_half_weights(generator, archive):
    """The generator run in float32 on float16 copies of its weights, which the archive
    stores instead of the float32 ones (the returned function captures only the copies)."""
    half = lambda variables: [tf.Variable(tf.cast(v, tf.float16), trainable=False) for v in variables]
    store = tf.Module()
    store.trainable, store.non_trainable = half(generator.trainable_variables), half(generator.non_trainable_variables)
    archive.track(store)

    def run(inputs):
        full = lambda variables: [tf.cast(v, tf.float32) for v in variables]
        images, _ = generator.stateless_call(full(store.trainable), full(store.non_trainable), inputs, training=False)
        return images
    return run


def _write_export(generator, cfg, directory, weights):
    # No archive.track(generator): the endpoints' variables are tracked anyway, and tracking
    # the model too stored every weight twice (23.7 MB for dcgan32's 11.9 MB).
    archive = keras.export.ExportArchive()
    count = len(cfg.condition)
    if weights == "float16":
        run = _on_half_weights(generator, archive)
    else:
        def run(inputs):
            return generator(inputs, training=False)

    def images_from_z(z, *attributes):  # attributes: none, or [batch, count] for a conditional generator
        return {"images": latent.to_uint8(run([z, *attributes] if attributes else z))}

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
    (_recast(generator, weights) if weights != "float32" else generator).save(directory / GENERATOR_FILE)
    cfg.save(directory)


@tf32.disabled()  # a TF32 difference would not be the export's
def _check_export_matches(generator, cfg, directory):
    """Both saved forms must make the generator's images (to MAX_MEAN_DIFFERENCE)."""
    z = latent.sample(CHECK_FACES, cfg.latent_dim, seed=0)
    attributes = tf.zeros([CHECK_FACES, len(cfg.condition)])
    inputs = [z, attributes] if cfg.condition else z
    signature = tf.saved_model.load(str(directory)).signatures["serving_default"]
    reloaded, _ = load_generator(directory)
    expected = latent.to_uint8(generator(inputs, training=False)).numpy().astype(np.float32)
    named = {"z": z, "attributes": attributes} if cfg.condition else {"z": z}
    for form, images in (("SavedModel", signature(**named)["images"]),
                         (GENERATOR_FILE, latent.to_uint8(reloaded(inputs, training=False)))):
        difference = np.abs(images.numpy() - expected).mean()
        if difference > MAX_MEAN_DIFFERENCE:
            raise ValueError(f"the exported {form} makes images {difference:.2f} levels of 255 from the "
                             f"generator's on average (at most {MAX_MEAN_DIFFERENCE}); export float32 weights")


def export_run(path, out_dir, weights="float32"):
    """Export the generator of a run directory or checkpoint (see load_generator) to out_dir."""
    generator, cfg = load_generator(path)
    if cfg is None:
        raise ValueError(f"{path}: no config.json beside the model, cannot export it")
    return export_generator(generator, cfg, out_dir, weights)


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
    from dcgan_tf.model.gan import DCGAN
    from dcgan_tf.train.checkpoints import (
        has_checkpoint,
        load_sampling_generator,
        readable_checkpoint,
    )

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
        if any(w.dtype != "float32" for w in generator.weights):  # stored in half precision: compute in float32
            generator = _recast(generator, "float32")
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
    from dcgan_tf.edit.directions import Directions
    file = model_dir(path) / DIRECTIONS_FILE
    if not file.is_file():
        return {}
    directions = Directions.load(file, latent_dim)
    return dict(zip(directions.names, directions.vectors))
