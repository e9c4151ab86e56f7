"""Train a DCGAN: python train.py --preset dcgan32 --data img_align_celeba.zip --epochs 10

Every Config field is a flag (python train.py --help). --resume continues a run from its
last checkpoint with the config saved in the run (flags given again override it, e.g. a
larger --epochs). --export RUN exports a run's latest checkpoint, or a chosen one
(runs/NAME/checkpoints/ckpt-12), to saved_models/NAME without training.
"""

import sys
from pathlib import Path

from dcgan_tf.cli import ArgumentParser, add_config_flags, config_overrides
from dcgan_tf.config import PRESETS, Config, preset


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("--preset", choices=PRESETS, help="architecture and defaults (default keras64; "
                        "a resumed run keeps its own)")
    parser.add_argument("--out", type=Path, help="run directory (default runs/PRESET-DATA)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out from its last checkpoint")
    parser.add_argument("--export-dir", type=Path, default=Path("saved_models"),
                        help="exported models land in EXPORT_DIR/RUN_NAME (default saved_models)")
    parser.add_argument("--no-export", action="store_true", help="skip the SavedModel export at the end")
    parser.add_argument("--export", type=Path, metavar="RUN",
                        help="only export RUN (a run directory or one of its checkpoints) to EXPORT_DIR/RUN_NAME")
    add_config_flags(parser)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from dcgan_tf.checkpoints import CheckpointError
    from dcgan_tf.training import TrainingStopped, default_run_name, train  # imports TensorFlow: after --help

    overrides = config_overrides(args)
    try:
        if args.export is not None:
            from dcgan_tf.export import export_name, export_run
            print(f"exported the generator to {export_run(args.export, args.export_dir / export_name(args.export))}")
            return
        if args.resume:
            if args.out is None:
                raise ValueError("--resume needs --out RUN_DIR")
            cfg = Config.load(args.out)
            if args.preset not in (None, cfg.preset):
                raise ValueError(f"--resume continues {args.out} with its own preset {cfg.preset}; "
                                 f"drop --preset {args.preset}, or start a new run with another --out")
            cfg = cfg.replace(**overrides)
        else:
            cfg = preset(args.preset or "keras64", **overrides)
        run_dir = args.out or Path("runs") / default_run_name(cfg)
        export_dir = None if args.no_export else args.export_dir / run_dir.name
        train(cfg, run_dir, resume=args.resume, export_dir=export_dir)
    except (ValueError, FileNotFoundError, FileExistsError, CheckpointError) as error:
        sys.exit(f"train.py: error: {error}")
    except TrainingStopped as stopped:
        print(f"train.py: {stopped}", file=sys.stderr)
        sys.exit(stopped.exit_code)
    except KeyboardInterrupt:  # before training started (loading data, building): nothing to save yet
        print("train.py: interrupted before training started; nothing was saved", file=sys.stderr)
        sys.exit(130)


if __name__ == "__main__":
    main()
