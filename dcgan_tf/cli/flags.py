"""Command-line flags generated from the Config dataclass, so flags and config never drift."""

import argparse
import dataclasses

from dcgan_tf.config import NAME_LISTS, Config, field_type
from dcgan_tf.data.sources import holdout_count

HELP = {
    "data": ("builtin[:N], celeba (after dcgan-tf download celeba), an image directory, "
             "a .zip of images or a .npy/.npz array"),
    "crop": "auto, celeba, center, center:N, box:L,T,R,B or none",
    "limit": "train on the first N images only (0: all)",
    "conv_dim": "width multiplier of both networks",
    "label_smoothing": "one-sided: real targets become 1 - value",
    "d_lr": "D's Adam learning rate (default: the same as --lr)",
    "mixed_precision": ("float32 (default), mixed_float16 or mixed_bfloat16; bfloat16 steps are faster on CPUs "
                        "that compute it, but its faces were worse for the same steps (README: Performance)"),
    "strategy": "tf.distribute: auto (mirrored on >1 GPU), default, mirrored, multiworker (TF_CONFIG) or tpu",
    "on_nan": "on a NaN/Inf loss: rollback (to the last checkpoint, halving the learning rates once) or stop",
    "strict": "true: an unreadable image is an error instead of being skipped",
    "eval_every": "every N epochs, FID and KID of --eval-n faces, logged; keeps runs/NAME/best (0: off)",
    "eval_n": "faces (and real images: held-out ones with --holdout, else training ones) scored by --eval-every",
    "holdout": ("hold out the last N images (by file name) from training; evaluation scores against them. "
                "CelebA's list_eval_partition.txt (or celeba, downloaded) for its test images"),
    "ada_target": ("adaptive augmentation (StyleGAN2-ADA): apply each --diffaugment policy with a probability p "
                   "that rises while E[sign(D(real))] is above this target (0.6 in the paper) and falls below it "
                   "(0, the default: off)"),
    "ada_interval": "--ada-target: steps between two adjustments of p",
    "ada_kimg": "--ada-target: thousands of images over which p can go from 0 to 1",
    "d_lr_half_life": "halve D's learning rate every this many epochs (0, the default: constant)",
    "g_lr_half_life": "halve G's learning rate every this many epochs (0, the default: constant)",
    "d_norm": "D's normalisation: batch, layer or none (a gradient penalty needs layer or none)",
    "jit_compile": "XLA: auto (Keras decides: on for GPUs, off on CPU), on or off",
    "condition": "train a conditional GAN on these attributes of --attrs, e.g. Smiling,Male,Eyeglasses",
    "attrs": "the attribute labels of --data (CelebA's list_attr_celeba.txt format), for --condition",
    "d_condition": "how D sees the attributes: projection (Miyato & Koyama 2018) or concat (as input channels)",
    "log_every": ("steps.csv, the NaN check and the progress bar read a step's values every N steps (and at "
                  "each epoch's end); more than 1 spares a GPU a host round trip per step (docs/gpu.md)"),
    "ema_standing_batches": ("the EMA generator's BatchNorm statistics are its own, recomputed each epoch over "
                             "this many batches (0: copied from the trained generator)"),
    "fused_batchnorm": "TensorFlow's fused BatchNorm kernel on one replica (default true; README \"Performance\")",
}
NOT_FLAGS = {"preset"}  # chosen with --preset, applied before any other flag


class ArgumentParser(argparse.ArgumentParser):
    """argparse with one-line errors ("train.py: error: --n must be positive"), not the usage block;
    --help still shows the usage."""

    def __init__(self, **kwargs):
        kwargs.setdefault("formatter_class", argparse.RawDescriptionHelpFormatter)
        super().__init__(**kwargs)

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def _parse_bool(text):
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {text!r}")


def _parse_ints(text):
    try:
        return tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _parse_names(text):
    names = tuple(name.strip() for name in text.split(","))
    if not all(names):
        raise argparse.ArgumentTypeError(f"expected comma-separated names, got {text!r}")
    return names


def parse_holdout(text):
    try:
        return holdout_count(text)
    except ValueError as error:  # DataError, or NotDownloaded for "celeba"
        raise argparse.ArgumentTypeError(str(error)) from None


def _flag_type(field):
    if field.name == "holdout":
        return parse_holdout
    if field.name in NAME_LISTS:
        return _parse_names
    kind = field_type(field)
    return {bool: _parse_bool, tuple: _parse_ints}.get(kind, kind)


def add_config_flags(parser):
    """One --flag per Config field; unset flags stay None so the preset's value is kept."""
    group = parser.add_argument_group("model and training config (defaults: the chosen preset)")
    for f in dataclasses.fields(Config):
        if f.name in NOT_FLAGS:
            continue
        group.add_argument("--" + f.name.replace("_", "-"), dest=f.name, type=_flag_type(f), default=None,
                           metavar=f.name.upper(), help=HELP.get(f.name, f"default {f.default}"))


def config_overrides(args):
    return {f.name: getattr(args, f.name) for f in dataclasses.fields(Config)
            if f.name not in NOT_FLAGS and getattr(args, f.name, None) is not None}
