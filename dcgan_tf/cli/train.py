"""Train a DCGAN: python train.py --preset dcgan32 --data img_align_celeba.zip --epochs 10

Every Config field is a flag (python train.py --help). --resume continues a run from its
last checkpoint with the config saved in the run (flags given again override it, e.g. a
larger --epochs). --export RUN exports a run's latest checkpoint, or a chosen one
(runs/NAME/checkpoints/ckpt-12), to saved_models/NAME without training.
"""

import sys
from pathlib import Path

from dcgan_tf.cli.flags import ArgumentParser, add_config_flags, config_overrides
from dcgan_tf.config import PRESETS, WEIGHT_DTYPES, Config, preset
from dcgan_tf.utils import locks
from dcgan_tf.utils.files import check_writable
from dcgan_tf.utils.signals import stop_signals

LOCK_FILE = ".lock"  # in the run directory: one process trains a run at a time


def parse_args(argv=None, prog="train.py"):
    parser = ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("--preset", choices=PRESETS, help="architecture and defaults (default keras64; "
                        "a resumed run keeps its own)")
    parser.add_argument("--out", type=Path, help="run directory (default runs/PRESET-DATA)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--export-dir", type=Path, default=Path("saved_models"),
                        help="exported models land in EXPORT_DIR/RUN_NAME (default saved_models)")
    parser.add_argument("--no-export", action="store_true", help="skip the SavedModel export at the end")
    parser.add_argument("--export", type=Path, metavar="RUN",
                        help="only export RUN (a run directory or one of its checkpoints) to EXPORT_DIR/RUN_NAME")
    parser.add_argument("--export-weights", choices=WEIGHT_DTYPES, default="float32",
                        help="store the exported weights in this precision; float16 halves the size, computes "
                        "in float32 and is checked to make the same images within one level of 255 on average "
                        "(default float32)")
    add_config_flags(parser)
    return parser.parse_args(argv)


def run_config(args):
    """The run's Config from the flags (and, with --resume, the run's dcgan_config.json)."""
    overrides = config_overrides(args)
    if not args.resume:
        return preset(args.preset or "keras64", **overrides)
    if args.out is None:
        raise ValueError("--resume needs --out RUN_DIR")
    cfg = Config.load(args.out)
    if args.preset not in (None, cfg.preset):
        raise ValueError(f"--resume continues {args.out} with its own preset {cfg.preset}; "
                         f"drop --preset {args.preset}, or start a new run with another --out")
    return cfg.replace(**overrides)


def fail(prog, error):
    sys.exit(f"{prog}: error: {error}")


def main(argv=None, prog="train.py"):
    with stop_signals() as stop:  # before TensorFlow loads: Ctrl-C or SIGTERM then ends the same way
        try:
            run(parse_args(argv, prog), prog)
        except KeyboardInterrupt as interrupt:
            stopped_before_training(prog, getattr(interrupt, "exit_code", 130))
        except Exception:
            if stop.exit_code is None:
                raise
            stopped_before_training(prog, stop.exit_code)  # the interrupt came wrapped, raised inside an import


def stopped_before_training(prog, exit_code):
    """Ctrl-C or SIGTERM while loading data or building the model: nothing to save yet."""
    print(f"{prog}: interrupted before training started; nothing was saved", file=sys.stderr)
    sys.exit(exit_code)


def run(args, prog):
    try:
        cfg = None if args.export is not None else run_config(args)  # a bad flag or config file fails first
    except (ValueError, OSError) as error:
        fail(prog, error)
    from dcgan_tf.metrics.inception import WeightsError
    from dcgan_tf.train.checkpoints import CheckpointError
    from dcgan_tf.train.run import TrainingStopped, default_run_name, train

    try:
        if args.export is not None:
            from dcgan_tf.serve.export import export_run
            from dcgan_tf.serve.loader import export_name
            print(f"exported the generator to {export_run(args.export, args.export_dir / export_name(args.export), args.export_weights)}")
            return
        run_dir = args.out or Path("runs") / default_run_name(cfg)
        export_dir = None if args.no_export else args.export_dir / run_dir.name
        check_writable(run_dir, "--out")  # the lock file goes there: a bad --out is named, not an OSError
        with locks.exclusive(run_dir / LOCK_FILE, f"the run {run_dir}",
                             "wait for that training to end (or stop it), or choose another --out"):
            train(cfg, run_dir, resume=args.resume, export_dir=export_dir, export_weights=args.export_weights)
    except (ValueError, OSError, CheckpointError, WeightsError, locks.InUse) as error:
        fail(prog, error)
    except TrainingStopped as stopped:
        print(f"{prog}: {stopped}", file=sys.stderr)
        sys.exit(stopped.exit_code)


if __name__ == "__main__":
    main()
