"""Generate faces from a trained model: python generate.py MODEL --n 64 --seed 0 --out faces.png

MODEL is a run directory (its latest checkpoint), an export directory under
saved_models/, or a .keras file.
"""

import argparse
import sys
from pathlib import Path


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="run directory, export directory or .keras file")
    parser.add_argument("--n", type=int, default=64, help="number of faces (default 64)")
    parser.add_argument("--rows", type=int, default=None, help="grid rows (default: square-ish)")
    parser.add_argument("--seed", type=int, default=0, help="the same seed gives the same faces")
    parser.add_argument("--out", type=Path, default=Path("faces.png"), help="PNG grid to write")
    args = parser.parse_args(argv)
    if args.n <= 0:
        parser.error(f"--n must be positive, got {args.n}")
    return args


def main(argv=None):
    args = parse_args(argv)
    from dcgan_tf import latent
    from dcgan_tf.export import load_generator
    from dcgan_tf.images import save_grid

    try:
        generator, _ = load_generator(args.model)
    except (ValueError, FileNotFoundError) as error:
        sys.exit(f"generate.py: error: {error}")
    z = latent.sample(args.n, generator.input_shape[-1], args.seed)
    images = latent.to_uint8(generator(z, training=False)).numpy()
    print(f"wrote {save_grid(images, args.out, args.rows)}")


if __name__ == "__main__":
    main()
