"""Generate faces from a trained model.

  python generate.py MODEL                          64 faces in one grid, faces.png
  python generate.py MODEL --n 1000 --individual    and each face as its own PNG in faces/
  python generate.py MODEL interpolate --seeds 1 2 3 --steps 8 --out walk.png   (+ walk.gif)
  python generate.py MODEL query --vector z.npy     G(0), G(0.5), G(1) and G(z)

MODEL is a run directory (its latest checkpoint), an export directory under saved_models/,
a SavedModel directory or a .keras file. The same --seed always gives the same faces.
"""

import sys
from pathlib import Path

from dcgan_tf.cli import ArgumentParser


def parse_args(argv=None):
    parser = ArgumentParser(description=__doc__)
    parser.add_argument("model", type=Path, help="run directory, export directory, SavedModel or .keras file")
    parser.add_argument("mode", nargs="?", choices=("grid", "interpolate", "query"), default="grid",
                        help="grid (default), interpolate (a latent walk) or query (fixed latent points)")
    parser.add_argument("--n", type=int, default=64, help="grid: number of faces (default 64)")
    parser.add_argument("--rows", type=int, default=None, help="grid rows (default: square-ish)")
    parser.add_argument("--seed", type=int, default=0, help="grid: the same seed gives the same faces")
    parser.add_argument("--truncation", type=float, default=None, metavar="PSI",
                        help="sample z from the normal truncated to [-PSI, PSI]: fewer, cleaner faces")
    parser.add_argument("--individual", action="store_true", help="grid: also write each face to OUT_STEM/")
    parser.add_argument("--batch-size", type=int, default=256, help="faces generated at a time (default 256)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1], help="interpolate: the seeds to walk through")
    parser.add_argument("--steps", type=int, default=8, help="interpolate: images from one seed to the next")
    parser.add_argument("--method", choices=("slerp", "linear"), default="slerp", help="interpolate: path")
    parser.add_argument("--vector", type=Path, help="query: a .npy latent vector to add to the queries")
    parser.add_argument("--out", type=Path, default=Path("faces.png"), help="PNG to write (default faces.png)")
    args = parser.parse_args(argv)
    for name in ("n", "batch_size", "steps", "rows"):
        if getattr(args, name) is not None and getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if args.truncation is not None and args.truncation <= 0:
        parser.error(f"--truncation must be positive, got {args.truncation}")
    if args.mode == "interpolate" and (len(args.seeds) < 2 or args.steps < 2):
        parser.error("interpolate needs at least two --seeds and --steps >= 2")
    if args.out.suffix.lower() != ".png" or args.out.is_dir():
        parser.error(f"--out must name a .png file, got {args.out}")  # the .gif and the faces/ folder go beside it
    if args.vector is not None and args.mode != "query":
        parser.error("--vector is for the query mode")
    if args.vector is not None and args.vector.suffix != ".npy":
        parser.error(f"--vector must be a .npy file, got {args.vector}")
    return args


def latent_points(args, latent_dim):
    import numpy as np

    from dcgan_tf import latent

    if args.mode == "grid":
        return latent.sample(args.n, latent_dim, args.seed, args.truncation).numpy()
    if args.mode == "interpolate":
        return latent.walk(args.seeds, args.steps, latent_dim, args.truncation, args.method)
    vector = None
    if args.vector is not None:
        try:
            vector = np.load(args.vector, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise ValueError(f"--vector {args.vector}: not a readable .npy file ({error})") from None
    return latent.query_points(latent_dim, vector)


def main(argv=None):
    args = parse_args(argv)
    from dcgan_tf.generation import FaceGenerator, write_grid, write_walk

    try:
        generator = FaceGenerator.load(args.model)
        z = latent_points(args, generator.latent_dim)
        if args.mode == "interpolate":
            written = write_walk(generator, z, args.out, args.out.with_suffix(".gif"), rows=args.rows)
        else:
            rows = args.rows or (1 if args.mode == "query" else None)
            individual = args.out.with_suffix("") if args.individual else None
            written = write_grid(generator, z, args.out, rows, args.batch_size, individual, progress=len(z) > 1000)
    except (ValueError, FileNotFoundError, OSError) as error:
        sys.exit(f"generate.py: error: {error}")
    print("wrote " + ", ".join(map(str, written)))


if __name__ == "__main__":
    main()
