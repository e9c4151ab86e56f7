"""One configuration object shared by the CLI, the models and every saved artefact."""

import dataclasses
import json
import math
from pathlib import Path

from dcgan_tf.utils.files import regular_file, written_atomically

# Not config.json: generator.keras is a zip archive holding a config.json of its own, which a
# tool that extracts it in place (the tensorflowjs converter does) would write over the run's.
CONFIG_FILE = "dcgan_config.json"
LEGACY_CONFIG_FILE = "config.json"  # runs and exports made before the rename; still read
CONFIG_BYTES = 2**20  # a config is about 2 KB; a larger file is not one
JIT_MODES = {"auto": "auto", "on": True, "off": False}  # flag value -> keras compile(jit_compile=...)
# The names of the choices, here because a Config is checked before TensorFlow loads (--help,
# argument errors); the modules that implement them (model.losses, train.distribute) take
# their names from here. losses.LOSSES maps each loss name to its functions.
LOSSES = ("bce", "hinge", "lsgan", "wgan")
PENALTIES = ("none", "wgan-gp", "r1")
STRATEGIES = ("auto", "default", "mirrored", "multiworker", "tpu")
WEIGHT_DTYPES = ("float32", "float16")  # how an export may store the generator's weights (dcgan_tf.export)
EXPORT_FORMATS = ("savedmodel", "keras", "tflite", "onnx", "web")  # what dcgan-tf export writes (dcgan_tf.serve.convert)


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything a run needs; saved as JSON in each run directory and exported model.

    Layer widths are `conv_dim` times a multiplier, so one flag scales a whole
    architecture (width experiments).
    """

    preset: str = "keras64"
    # Images and latent space.
    image_size: int = 64
    latent_dim: int = 128
    # Generator: Dense -> (g_start x g_start x conv_dim*g_dense_mult) -> one stride-2
    # Conv2DTranspose per g_mult entry -> RGB layer.
    conv_dim: int = 64
    g_start: int = 8
    g_dense_mult: int = 2
    g_mult: tuple = (2, 4, 8)
    g_dense_norm: bool = False  # BatchNorm + activation right after the Dense layer
    g_activation: str = "leaky_relu"  # or "relu" (the DCGAN paper's generator)
    g_out: str = "conv"  # "conv": Conv2D(3, 5) at full size; "deconv": a last stride-2 Conv2DTranspose
    # Discriminator: one stride-2 Conv2D per d_mult entry, Flatten, Dropout, Dense(1) logit.
    d_mult: tuple = (1, 2, 2)
    d_dropout: float = 0.2
    kernel: int = 4
    # Optimisation (Adam per the DCGAN paper).
    batch_size: int = 32
    lr: float = 2e-4
    d_lr: float | None = None  # None: D learns at lr too
    beta1: float = 0.5
    beta2: float = 0.999
    label_smoothing: float = 0.0  # one-sided: real targets become 1 - label_smoothing
    loss: str = "bce"  # bce (non-saturating), hinge, lsgan or wgan (dcgan_tf.losses)
    gp: str = "none"  # gradient penalty on D: none, wgan-gp (on interpolates) or r1 (on reals)
    gp_weight: float = 10.0
    n_critic: int = 1  # D updates per G update (5 for WGAN-GP)
    spectral_norm: bool = False  # spectral normalisation of D's layers
    # D's normalisation after its 2nd and later convolutions: batch (the DCGAN paper), layer or none.
    # A gradient penalty needs a per-sample critic, so not batch (dcgan_tf.model.losses).
    d_norm: str = "batch"
    diffaugment: str = ""  # DiffAugment policies before D, e.g. "color,translation,cutout"
    # Adaptive augmentation (dcgan_tf.model.ada): each diffaugment policy is applied to each image
    # with a probability p that follows D's overfitting, r_t = E[sign(D(real))], towards ada_target
    # (0: off, every policy on every image). Every ada_interval steps p moves by as much as lets it
    # go from 0 to 1 in ada_kimg thousand images.
    ada_target: float = 0.0
    ada_interval: int = 4
    ada_kimg: float = 100.0  # StyleGAN2-ADA's 500 suits its far longer runs
    # Learning rates halve every this many epochs (0: constant), so a D that is winning slows down.
    d_lr_half_life: float = 0.0
    g_lr_half_life: float = 0.0
    ema: float = 0.999  # decay of the generator's weight average used for samples and export (0: off)
    # The average's BatchNorm statistics: "standing" (its own, recomputed each epoch over this
    # many batches of z: dcgan_tf.model.ema) or 0 batches to keep those copied from the raw G.
    ema_standing_batches: int = 20
    epochs: int = 10
    seed: int = 0
    # Speed.
    # XLA: "auto" lets Keras decide (on for GPUs, off on CPU, where it is slower than
    # oneDNN: README "Performance"), or "on" / "off".
    jit_compile: str = "auto"
    steps_per_execution: int = 1
    # The batch callbacks (steps.csv, the NaN check, the progress bar) see a step's values every
    # log_every steps and on each epoch's last: reading them waits for the device to finish the
    # step, so a GPU runs the steps in between without a host round trip (dcgan_tf.train.callbacks).
    log_every: int = 1
    reuse_fake: bool = True  # G update reuses the D step's fake batch (one G forward less)
    fused_batchnorm: bool = True  # TensorFlow's fused BatchNorm kernel on one replica (dcgan_tf.models)
    mixed_precision: str = "float32"  # or "mixed_float16" / "mixed_bfloat16"
    strategy: str = "auto"  # tf.distribute: auto, default, mirrored, multiworker or tpu (dcgan_tf.distribute)
    # Data.
    data: str = "builtin"
    crop: str = "auto"
    limit: int = 0  # 0 means all images
    # The last `holdout` images by file name (array order for arrays) are never trained on:
    # evaluation scores against them (dcgan_tf.data.split_part).
    holdout: int = 0
    strict: bool = False  # an unreadable image is an error instead of being skipped and reported
    # Conditional generation (dcgan_tf.conditioning): the attributes G and D are conditioned on, e.g.
    # ("Smiling", "Male", "Eyeglasses"), labelled per image in `attrs` (CelebA's list_attr_celeba.txt
    # format). Empty: an unconditional GAN.
    condition: tuple = ()
    attrs: str = ""
    d_condition: str = "projection"  # how D sees the attributes: projection (Miyato & Koyama 2018) or concat
    # Outputs.
    sample_count: int = 64
    tensorboard: bool = False  # also write losses, learning rates, FID/KID and sample grids for TensorBoard
    eval_every: int = 0  # every N epochs: FID and KID of eval_n faces (0: never); keeps the best checkpoint
    eval_n: int = 500
    checkpoints_to_keep: int = 3
    # Failures: on a NaN/Inf loss, "rollback" restores the last checkpoint and halves the
    # learning rates (once), "stop" ends the run with the step where it happened.
    on_nan: str = "rollback"

    def __post_init__(self):
        self._check_types()
        for name in ("g_mult", "d_mult", "condition"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        checks = {
            "image_size must equal g_start * 2**(number of upsamplings) (image_size="
            f"{self.image_size}, g_start={self.g_start}, g_mult={self.g_mult})": self.output_size() == self.image_size,
            "g_activation must be 'relu' or 'leaky_relu'": self.g_activation in ("relu", "leaky_relu"),
            "g_out must be 'conv' or 'deconv'": self.g_out in ("conv", "deconv"),
            "jit_compile must be 'auto', 'on' or 'off'": self.jit_compile in JIT_MODES,
            "label_smoothing must be in [0, 0.5)": 0 <= self.label_smoothing < 0.5,
            "batch_size, epochs, latent_dim and conv_dim must be positive": min(
                self.batch_size, self.epochs, self.latent_dim, self.conv_dim) > 0,
            "limit and holdout must be >= 0": self.limit >= 0 and self.holdout >= 0,
            "d_norm must be batch, layer or none": self.d_norm in ("batch", "layer", "none"),
            "a gradient penalty (gp) needs a per-sample critic: set d_norm to layer or none, not batch": (
                self.gp == "none" or self.d_norm != "batch"),
            "eval_every must be >= 0 and eval_n >= 4": self.eval_every >= 0 and self.eval_n >= 4,
            "on_nan must be 'rollback' or 'stop'": self.on_nan in ("rollback", "stop"),
            f"loss must be one of {', '.join(LOSSES)}": self.loss in LOSSES,
            f"gp must be one of {', '.join(PENALTIES)}": self.gp in PENALTIES,
            "n_critic must be >= 1 and ema in [0, 1)": self.n_critic >= 1 and 0 <= self.ema < 1,
            "condition needs attrs, the attribute file, and names each attribute once": (
                not self.condition or self.attrs) and len(set(self.condition)) == len(self.condition),
            "d_condition must be projection or concat": self.d_condition in ("projection", "concat"),
            f"strategy must be one of {', '.join(STRATEGIES)}": self.strategy in STRATEGIES,
            "mixed_precision must be float32, mixed_float16 or mixed_bfloat16": self.mixed_precision in (
                "float32", "mixed_float16", "mixed_bfloat16"),
            "lr and d_lr must be > 0": self.lr > 0 and (self.d_lr is None or self.d_lr > 0),
            "beta1 and beta2 must be in [0, 1)": 0 <= self.beta1 < 1 and 0 <= self.beta2 < 1,
            "d_lr_half_life and g_lr_half_life must be >= 0 (0: constant)": min(
                self.d_lr_half_life, self.g_lr_half_life) >= 0,
            "ada_target must be in [0, 1) (0: off), ada_interval >= 1 and ada_kimg > 0": (
                0 <= self.ada_target < 1 and self.ada_interval >= 1 and self.ada_kimg > 0),
            "ada_target needs diffaugment, the policies it applies with probability p (e.g. color,translation,cutout)":
                not self.ada_target or bool(self.diffaugment.strip(", ")),
            "ada_target reads the sign of D's logits, which a Wasserstein critic (loss wgan) leaves arbitrary": (
                not self.ada_target or self.loss != "wgan"),
            "sample_count, checkpoints_to_keep and steps_per_execution must be >= 1": min(
                self.sample_count, self.checkpoints_to_keep, self.steps_per_execution) >= 1,
            "log_every must be >= 1 and ema_standing_batches >= 0": (
                self.log_every >= 1 and self.ema_standing_batches >= 0),
            "d_dropout must be in [0, 1), gp_weight >= 0 and kernel >= 1": (
                0 <= self.d_dropout < 1 and self.gp_weight >= 0 and self.kernel >= 1),
            "g_start, g_dense_mult and every g_mult and d_mult entry must be >= 1": min(
                self.g_start, self.g_dense_mult, *self.g_mult, *self.d_mult) >= 1,
        }
        errors = [message for message, ok in checks.items() if not ok]
        if errors:
            raise ValueError(f"invalid config ({self.preset}): " + "; ".join(errors))

    def _check_types(self):
        """Each field has its default's type (an int is a float too), e.g. for a config file
        edited by hand: "epochs": "ten" is an error naming the field, not a TypeError later."""
        wrong = []
        for f in dataclasses.fields(self):
            value, kind = getattr(self, f.name), field_type(f)
            if value is None and f.name in OPTIONAL_FIELDS:
                ok = True
            elif f.name in NAME_LISTS:
                kind = list
                ok = isinstance(value, (list, tuple)) and all(isinstance(v, str) and v for v in value)
            elif kind is tuple:
                ok = isinstance(value, (list, tuple)) and all(_is_int(v) for v in value)
            elif kind is float:
                ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            else:
                ok = _is_int(value) if kind is int else isinstance(value, kind)
            if not ok:
                wrong.append(f"{f.name} must be {_KIND_NAMES[kind]}, got {repr(value)[:80]}")
        if wrong:
            raise ValueError(f"invalid config ({self.preset}): " + "; ".join(wrong))

    def output_size(self):
        upsamplings = len(self.g_mult) + (self.g_out == "deconv")
        return self.g_start * 2 ** upsamplings

    @property
    def discriminator_lr(self):
        return self.lr if self.d_lr is None else self.d_lr

    def replace(self, **changes):
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values):
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            shown = ", ".join(name[:40] for name in unknown[:5]) + (f" and {len(unknown) - 5} more" if len(unknown) > 5 else "")
            raise ValueError(f"unknown config keys: {shown}")
        if values.get("d_lr") == 0:  # how configs saved before d_lr could be None said "the same as lr"
            values = {**values, "d_lr": None}
        return cls(**values)

    def save(self, directory):
        path = Path(directory) / CONFIG_FILE
        with written_atomically(path) as (partial,):  # a crash never leaves a run with half a config
            partial.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
        (Path(directory) / LEGACY_CONFIG_FILE).unlink(missing_ok=True)  # superseded: one config per folder
        return path

    @classmethod
    def load(cls, directory):
        path = Path(directory)
        if path.is_dir():
            path = find_config(path) or path / CONFIG_FILE
        if not regular_file(path, "a config").is_file():
            raise FileNotFoundError(f"no {CONFIG_FILE} at {path}")
        try:
            if path.stat().st_size > CONFIG_BYTES:
                raise ValueError(f"{path.stat().st_size:,} bytes, more than a config's {CONFIG_BYTES:,}")
            values = json.loads(path.read_text(encoding="utf-8-sig"), parse_int=_json_int, parse_float=_json_float,
                                parse_constant=_json_float)
            if not isinstance(values, dict):
                raise ValueError("expected a JSON object of config fields")
            if {"class_name", "config"} <= values.keys():
                raise ValueError("this is a Keras model's config, not a dcgan-tf run's (was a .keras file "
                                 f"extracted here?); put the run's config back as {CONFIG_FILE}")
            return cls.from_dict(values)
        except RecursionError:  # "[[[[..." of any depth: json recurses per level
            raise ValueError(f"{path}: JSON nested too deeply for a config; fix the file "
                             "(python train.py --help lists the fields)") from None
        except (ValueError, UnicodeDecodeError) as error:  # json.JSONDecodeError is a ValueError
            raise ValueError(f"{path}: {error}; fix the file (python train.py --help lists the fields)") from None


def _json_int(text):
    if len(text.lstrip("-")) > 18:  # more than any config field holds (and than int() reads quickly)
        raise ValueError(f"an integer of {len(text):,} digits")
    return int(text)


def _json_float(text):
    """A finite float: NaN, Infinity and 1e999 are no learning rate."""
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:20]} is not a finite number")
    return value


def find_config(directory):
    """The config file saved in a run or export directory (under its old name if that is all
    there is), or None."""
    paths = [Path(directory) / name for name in (CONFIG_FILE, LEGACY_CONFIG_FILE)]
    return next((path for path in paths if path.exists()), None)  # a FIFO too: Config.load refuses it by name


_KIND_NAMES = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
               tuple: "a list of integers", list: "a list of names"}
NAME_LISTS = ("condition",)  # the tuple fields that hold names, not integers
OPTIONAL_FIELDS = {"d_lr": float}  # the fields that may be None, and the type of their other values


def field_type(field):
    """The type a Config field holds: its default's, or for an optional field that of its other values."""
    return OPTIONAL_FIELDS.get(field.name, type(field.default))


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


PRESETS = {
    # The design card; the keras.io "DCGAN to generate face images" architecture.
    "keras64": Config(),
    # The Udacity face-generation project's model: 32x32, conv_dim width, latent 100.
    "dcgan32": Config(
        preset="dcgan32", image_size=32, latent_dim=100, g_start=2, g_dense_mult=8, g_mult=(4, 2, 1),
        g_dense_norm=True, g_activation="relu", g_out="deconv", d_mult=(1, 2, 4, 8), d_dropout=0.0,
        batch_size=64),
    # The DCGAN paper's 64x64 network as pytorch/examples builds it (dcgan32's layers one size up):
    # G 4x4x512 -> ConvT 256/128/64 + BN + ReLU -> ConvT 3 tanh; D Conv 64/128/256/512 + BN + LeakyReLU.
    "dcgan64": Config(
        preset="dcgan64", image_size=64, latent_dim=100, g_start=4, g_dense_mult=8, g_mult=(4, 2, 1),
        g_dense_norm=True, g_activation="relu", g_out="deconv", d_mult=(1, 2, 4, 8), d_dropout=0.0,
        batch_size=64),
    # Small enough for tests and CPU smoke runs.
    "tiny": Config(
        preset="tiny", image_size=16, latent_dim=16, conv_dim=8, g_start=4, g_dense_mult=2, g_mult=(2, 1),
        d_mult=(1, 2), batch_size=16, epochs=1),
}


def preset(name, **overrides):
    """A preset with some fields changed. Another image_size keeps the preset's layers and
    scales the generator's starting grid (g_start) to match, e.g. dcgan32 at 64x64."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    base = PRESETS[name]
    upscale = base.output_size() // base.g_start
    if "image_size" in overrides and "g_start" not in overrides:
        size = overrides["image_size"]
        if not _is_int(size) or size < upscale or size % upscale:
            raise ValueError(f"image_size (--image-size) {size!r}: the {name} preset's generator grows its start "
                             f"grid {upscale}x, so the size must be a positive multiple of {upscale} "
                             f"(e.g. {', '.join(str(upscale * k) for k in (2, 4, 8))})")
        overrides["g_start"] = size // upscale
    return base.replace(**overrides)
