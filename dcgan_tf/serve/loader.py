"""Loading a trained model from any path a user gives: the one place that decides what a path is.

- a checkpoint (runs/NAME/checkpoints/ckpt-12, runs/NAME/best/ckpt): that checkpoint of its run;
- a run directory with checkpoints: its newest readable checkpoint;
- an export directory: its generator.keras (Keras' safe mode); without one, its SavedModel,
  run only if its graph holds generator ops alone (savedmodel.check_ops) unless trusted;
- a .keras file of a generator, or of a whole DCGAN (its sampling generator: the EMA one).

The config comes from the model's folder (model_dir). Before a generator is built from a
config its size is checked (check_size), so a damaged or hostile config fails with one line
instead of allocating gigabytes.
"""

import dataclasses
from pathlib import Path

import keras

from dcgan_tf.config import Config, find_config
from dcgan_tf.model.gan import DCGAN
from dcgan_tf.model.networks import generator_weight_count
from dcgan_tf.serve.generation import FaceGenerator
from dcgan_tf.serve.savedmodel import check_ops
from dcgan_tf.train.checkpoints import (
    has_checkpoint,
    load_sampling_generator,
    readable_checkpoint,
)
from dcgan_tf.utils import memory
from dcgan_tf.utils.files import regular_files
from dcgan_tf.utils.keras_files import safe_mode_refusal

GENERATOR_FILE = "generator.keras"
SAVEDMODEL_FILE = "saved_model.pb"
DIRECTIONS_FILE = "directions.npz"  # attribute name -> latent direction, in the model's folder (dcgan_tf.edit)
MAX_GENERATOR_WEIGHTS = 2**28  # 1 GiB of float32; the shipped generators have a few million


@dataclasses.dataclass(frozen=True)
class LoadedModel:
    """generator: the Keras generator (float32), or None for a bare SavedModel;
    cfg: its Config, or None when its folder has none; faces: z -> uint8 images."""
    generator: keras.Model | None
    cfg: Config | None
    faces: FaceGenerator


def _run_and_checkpoint(path):
    """(run directory, checkpoint prefix or None): a checkpoint prefix (runs/NAME/checkpoints/ckpt-12,
    runs/NAME/best/ckpt) belongs to the run two levels up."""
    if path.with_name(path.name + ".index").is_file():
        return path.parent.parent, str(path)
    return path, None


def model_dir(path):
    """The folder a model's config and companion files (directions.npz) live in: a checkpoint's run,
    the directory of a run, an export or a SavedModel, or the folder of a .keras file."""
    run, _ = _run_and_checkpoint(Path(path))
    return run if run.is_dir() else run.parent


def export_name(path):
    """The folder name under saved_models/ for exporting `path`: its run's name, else the file's."""
    run, _ = _run_and_checkpoint(Path(path).resolve())
    return run.stem if run.suffix == ".keras" else run.name


def is_model(path):
    """Whether a folder holds a model (checkpoints, a generator.keras or a SavedModel), not images."""
    path = Path(path)
    return any((path / name).is_file() for name in (GENERATOR_FILE, SAVEDMODEL_FILE)) or has_checkpoint(path)


def load_config(path):
    """The Config saved in a model's folder, or None when it has none."""
    file = find_config(model_dir(path))
    return Config.load(file) if file is not None else None


def check_size(cfg, source):
    """ValueError before building a generator too large for any real model (or for this machine)."""
    weights = generator_weight_count(cfg)
    if weights > MAX_GENERATOR_WEIGHTS:
        raise ValueError(f"{source}: its config describes a generator of {weights:,} weights (latent_dim "
                         f"{cfg.latent_dim}, conv_dim {cfg.conv_dim}), more than the {MAX_GENERATOR_WEIGHTS:,} "
                         "dcgan-tf loads: the config is damaged or not a dcgan-tf model's; fix or replace it")
    memory.check(4 * weights, f"{source}: its generator", "load it on a machine with more memory")


def load(path, trust_savedmodel=False):
    """The LoadedModel at `path` (see the module docstring for what a path may be)."""
    path, checkpoint = _run_and_checkpoint(Path(path))
    if not path.exists():
        raise FileNotFoundError(f"no model at {path}")
    cfg = load_config(path)
    if cfg is not None:
        check_size(cfg, model_dir(path))
    generator = _from_checkpoint(path, checkpoint, cfg) if checkpoint or path.is_dir() else None
    if generator is None:
        keras_file = path / GENERATOR_FILE if path.is_dir() else path
        if path.is_dir() and not keras_file.is_file() and (path / SAVEDMODEL_FILE).is_file():
            return LoadedModel(None, cfg, _from_saved_model(path, trust_savedmodel))
        if keras_file.suffix != ".keras" or not keras_file.is_file():
            raise ValueError(f"{path} is not a run directory with checkpoints, an export directory or a .keras file")
        generator = _from_keras_file(keras_file)
    return LoadedModel(generator, cfg, FaceGenerator.from_keras(generator, cfg.condition if cfg else ()))


def _from_checkpoint(path, checkpoint, cfg):
    """The sampling generator of a checkpoint or run directory, or None if `path` is neither."""
    if checkpoint is None and not has_checkpoint(path):
        return None
    if cfg is None:
        raise FileNotFoundError(f"{path} has checkpoints but no config to build its generator from")
    return load_sampling_generator(cfg, readable_checkpoint(path, checkpoint))


def _from_saved_model(path, trust_savedmodel):
    if not trust_savedmodel:
        check_ops(path)
    regular_files(path, "a SavedModel")  # trusted or not, a FIFO among its files would hang the load
    return FaceGenerator.from_saved_model(path)


def _from_keras_file(keras_file):
    """A generator from a .keras file (of G, or of a whole DCGAN), computing in float32."""
    try:
        model = keras.saving.load_model(keras_file, safe_mode=True)
    except Exception as error:  # Keras raises many types for a damaged or foreign file
        raise ValueError(safe_mode_refusal(keras_file) or f"{keras_file}: not a readable .keras model "
                         f"({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})") from None
    generator = model.sampling_generator if isinstance(model, DCGAN) else model
    _check_is_generator(generator, keras_file)
    if any(w.dtype != "float32" for w in generator.weights):  # an export made before float32 layers
        generator = _recast(generator, "float32")
    return generator


def _recast(model, dtype):
    """A copy of a Keras model whose layers hold (and compute in) `dtype`, same weights."""
    def with_dtype(layer):
        return layer.__class__.from_config({**layer.get_config(), "dtype": dtype})
    copy = keras.models.clone_model(model, clone_function=with_dtype)
    copy.set_weights([w.astype(dtype) for w in model.get_weights()])
    return copy


def _check_is_generator(model, path):
    """A generator maps z [batch, latent_dim] (and, if conditional, attributes [batch, count])
    to images [batch, H, W, 3]."""
    inputs, outputs = getattr(model, "inputs", None), getattr(model, "outputs", None)
    if (not inputs or not outputs or len(inputs) not in (1, 2) or len(outputs) != 1
            or any(len(i.shape) != 2 for i in inputs) or len(outputs[0].shape) != 4 or outputs[0].shape[-1] != 3):
        raise ValueError(f"{path} is a Keras model but not a generator (it must map z [batch, latent_dim], "
                         "or [z, attributes [batch, count]], to images [batch, H, W, 3])")
