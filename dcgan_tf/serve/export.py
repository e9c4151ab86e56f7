"""Exporting a trained generator (dcgan_tf.serve.loader loads one back).

An export directory (saved_models/NAME/) holds a TensorFlow SavedModel that needs
no dcgan_tf to run, the Keras generator (generator.keras) and the training config:
- its one signature, `serving_default`: z float32 [batch, latent_dim] (standard normal) ->
  images uint8 [batch, H, W, 3], which TFLite, tf2onnx and TF Serving take as it is;
- the function `sample` of the loaded object (tf.saved_model.load(path).sample, not a signature,
  so converters skip it): num int32, seed int64 scalars -> images uint8, the same for the same seed.
A conditional model's functions also take `attributes` float32, one value per attribute
(1 present, 0 absent): [batch, count] beside z, or [count] for all `num` faces of `sample`;
its function `attribute_names` () -> names string [count] says which, in order.

With weights="float16" both forms store the weights in half precision (half the size) and
compute in float32: the SavedModel casts its float16 variables on each call, and Keras casts
generator.keras's float16 weights into its float32 layers on loading (exports made before
that held float16 layers, which dcgan_tf.serve.loader turns back into float32 ones). The export
refuses to be written if its images differ from the float32 generator's by more than
MAX_MEAN_DIFFERENCE on average.
"""

import io
import zipfile
from pathlib import Path

import numpy as np
import tensorflow as tf

from dcgan_tf.config import WEIGHT_DTYPES
from dcgan_tf.model import latent
from dcgan_tf.serve import loader
from dcgan_tf.serve.loader import GENERATOR_FILE
from dcgan_tf.utils import precision
from dcgan_tf.utils.files import written_atomically
from dcgan_tf.utils.images import to_uint8

KERAS_WEIGHTS = "model.weights.h5"  # the weights member of a .keras archive
MAX_MEAN_DIFFERENCE = 1.0  # pixel levels of 255, averaged over CHECK_FACES faces
CHECK_FACES = 256
CHECK_BATCH = 32


def check_replaceable(out_dir):
    """An export replaces an earlier export, never a folder of something else."""
    if out_dir.exists() and (not out_dir.is_dir()
                             or (not (out_dir / "saved_model.pb").is_file() and any(out_dir.iterdir()))):
        raise ValueError(f"{out_dir} exists and is not an exported model; choose another export directory")


def export_generator(generator, cfg, out_dir, weights="float32"):
    """Write the SavedModel, generator.keras and dcgan_config.json, their weights stored as
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


def _save_keras(generator, path, weights):
    """generator.keras, float32 layers; with weights="float16" its weights file stores each
    weight in half precision and Keras casts it into the layer's float32 variable on loading,
    so even plain keras.saving.load_model gives a model that computes in float32."""
    generator.save(path)
    if weights != "float32":
        with zipfile.ZipFile(path) as archive:
            members = [(info, archive.read(info)) for info in archive.infolist()]
        with written_atomically(path) as (partial,), zipfile.ZipFile(partial, "w") as archive:
            for info, data in members:
                archive.writestr(info, _weights_as(data, weights) if info.filename == KERAS_WEIGHTS else data)


def _weights_as(h5_bytes, dtype):
    """A Keras weights file (HDF5) with its float32 arrays stored as `dtype`, all else as it was."""
    import h5py
    out = io.BytesIO()
    with h5py.File(io.BytesIO(h5_bytes), "r") as source, h5py.File(out, "w") as copy:
        copy.attrs.update(source.attrs)

        def copy_item(name, item):
            if isinstance(item, h5py.Dataset):
                array = item[()]
                copy.create_dataset(name, data=array.astype(dtype) if array.dtype == np.float32 else array)
            else:
                copy.require_group(name)
            copy[name].attrs.update(item.attrs)
        source.visititems(copy_item)
    return out.getvalue()


def _stored_as(generator, module, weights):
    """The generator run in float32 on copies of its weights stored as `weights` in `module`
    (the returned function captures only the copies, so each weight is saved once)."""
    stored = lambda variables: [tf.Variable(tf.cast(v, weights), trainable=False) for v in variables]
    module.trainable, module.non_trainable = stored(generator.trainable_variables), stored(generator.non_trainable_variables)

    def run(inputs):
        full = lambda variables: [tf.cast(v, tf.float32) for v in variables]
        images, _ = generator.stateless_call(full(module.trainable), full(module.non_trainable), inputs, training=False)
        return images
    return run


def _write_savedmodel(generator, cfg, directory, weights):
    """The SavedModel's one signature is serving_default: converters (TFLite, tf2onnx) and TF Serving
    take every signature, and the random ops of `sample` convert to nothing that runs. So `sample`
    (and a conditional model's `attribute_names`) are functions of the loaded object instead."""
    module = tf.Module()
    run = _stored_as(generator, module, weights)
    z = tf.TensorSpec([None, cfg.latent_dim], tf.float32, name="z")
    num, seed = tf.TensorSpec([], tf.int32, name="num"), tf.TensorSpec([], tf.int64, name="seed")
    if cfg.condition:
        count = len(cfg.condition)

        def images_from_z(z, attributes):
            return {"images": to_uint8(run([z, attributes]))}

        def sample(num, seed, attributes):  # the same attribute values for all num faces
            return images_from_z(latent.sample(num, cfg.latent_dim, seed), tf.broadcast_to(attributes, [num, count]))
        serving = [z, tf.TensorSpec([None, count], tf.float32, name="attributes")]
        sampling = [num, seed, tf.TensorSpec([count], tf.float32, name="attributes")]
        module.attribute_names = tf.function(lambda: {"names": tf.constant(cfg.condition)}, input_signature=[])
    else:
        def images_from_z(z):
            return {"images": to_uint8(run(z))}

        def sample(num, seed):
            return images_from_z(latent.sample(num, cfg.latent_dim, seed))
        serving, sampling = [z], [num, seed]
    module.serving_default = tf.function(images_from_z, input_signature=serving)
    module.sample = tf.function(sample, input_signature=sampling)
    tf.saved_model.save(module, str(directory), signatures={"serving_default": module.serving_default})


def _write_export(generator, cfg, directory, weights):
    _write_savedmodel(generator, cfg, directory, weights)
    _save_keras(generator, directory / GENERATOR_FILE, weights)
    without_machine_paths(cfg).save(directory)


def without_machine_paths(cfg):
    """The config an export records: its data and labels by file name, not by the path they had on
    the machine it trained on (an export is shared; `evaluate --data` names the user's own copy)."""
    def name(source):
        return Path(source).name if "/" in source or "\\" in source else source
    return cfg.replace(data=name(cfg.data), attrs=name(cfg.attrs))


@precision.tf32_disabled()  # a TF32 difference would not be the export's
def _check_export_matches(generator, cfg, directory):
    """Both saved forms must make the generator's images (to MAX_MEAN_DIFFERENCE), checked
    CHECK_BATCH faces at a time: 256 faces at 64x64 at once take gigabytes."""
    signature = tf.saved_model.load(str(directory)).signatures["serving_default"]
    forms = {"SavedModel": lambda inputs: signature(**inputs)["images"].numpy(),
             GENERATOR_FILE: uint8_images(loader.load(directory).generator)}
    totals = dict.fromkeys(forms, 0.0)
    z = latent.sample(CHECK_FACES, cfg.latent_dim, seed=0)
    for start in range(0, CHECK_FACES, CHECK_BATCH):
        inputs = {"z": z[start:start + CHECK_BATCH]}
        if cfg.condition:
            inputs["attributes"] = tf.zeros([len(inputs["z"]), len(cfg.condition)])
        expected = uint8_images(generator)(inputs).astype(np.float32)
        for form, images in forms.items():
            totals[form] += np.abs(images(inputs) - expected).sum()
    for form, total in totals.items():
        difference = total / (CHECK_FACES * expected[0].size)
        if difference > MAX_MEAN_DIFFERENCE:
            raise ValueError(f"the exported {form} makes images {difference:.2f} levels of 255 from the "
                             f"generator's on average (at most {MAX_MEAN_DIFFERENCE}); export float32 weights")


def uint8_images(model):
    """A Keras generator as inputs {"z"[, "attributes"]} -> uint8 image array."""
    return lambda inputs: to_uint8(model(list(inputs.values()) if len(inputs) > 1 else inputs["z"],
                                    training=False)).numpy()


def export_run(path, out_dir, weights="float32"):
    """Export the generator of any model path (dcgan_tf.serve.loader: a run, a checkpoint, an export...) to out_dir."""
    model = loader.load(path)
    if model.generator is None or model.cfg is None:
        raise ValueError(f"{path}: cannot export it: an export needs a Keras generator (checkpoints or a "
                         f"generator.keras) and its config beside it")
    return export_generator(model.generator, model.cfg, out_dir, weights)
