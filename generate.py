"""Generate faces from a trained model.

  python generate.py MODEL                          64 faces in one grid, faces.png
  python generate.py MODEL --n 1000 --individual    and each face as its own PNG in faces/
  python generate.py MODEL interpolate --seeds 1 2 3 --steps 8 --out walk.png   (+ walk.gif)
  python generate.py MODEL query --vector z.npy     G(0), G(0.5), G(1) and G(z)

A conditional model (train.py --condition) makes faces with the attributes asked for:
  python generate.py MODEL --attrs Smiling=1,Male=0,Eyeglasses=1
  python generate.py MODEL --vary Smiling             rows keep z; left without, right with the attribute
Attributes left out of --attrs are drawn at random per face (present or absent, equal odds).

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
    parser.add_argument("--n", type=int, help="grid: number of faces (default 64; with --vary, 8 rows)")
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
    parser.add_argument("--attrs", metavar="NAME=1,NAME=0", help="conditional model: the faces' attributes")
    parser.add_argument("--vary", metavar="NAME", help="conditional model, grid: each row one z, without and "
                        "with this attribute")
    parser.add_argument("--out", type=Path, default=Path("faces.png"), help="PNG to write (default faces.png)")
    args = parser.parse_args(argv)
    for name in ("n", "batch_size", "steps", "rows"):
        if getattr(args, name) is not None and getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if args.truncation is not None and args.truncation <= 0:
        parser.error(f"--truncation must be positive, got {args.truncation}")
    if args.vary is not None and args.mode != "grid":
        parser.error("--vary is for the grid mode")
    args.n = args.n or (8 if args.vary else 64)
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
        ends = [latent.sample(1, latent_dim, seed, args.truncation).numpy()[0] for seed in args.seeds]
        return latent.interpolate(ends, args.steps, args.method)
    vector = None
    if args.vector is not None:
        try:
            vector = np.load(args.vector, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise ValueError(f"--vector {args.vector}: not a readable .npy file ({error})") from None
    return latent.query_points(latent_dim, vector)


def with_attributes(args, generator, z):
    """A conditional model's input rows [z | attributes] (dcgan_tf.conditioning): the --attrs
    values, the others at random per face, or per walk/query so they stay fixed along it."""
    import numpy as np

    from dcgan_tf import conditioning

    names = generator.attributes
    if not names:
        if args.attrs is not None or args.vary is not None:
            raise ValueError(f"{args.model} is not a conditional model: --attrs and --vary need one trained "
                             "with --condition")
        return z
    request = conditioning.parse_request(args.attrs, names) if args.attrs is not None else {}
    if args.vary is not None:
        if args.vary not in names:
            raise ValueError(f"--vary: the model is not conditioned on {args.vary!r}; it knows {', '.join(names)}")
        if args.vary in request:
            raise ValueError(f"--vary {args.vary}: leave it out of --attrs, the grid shows it both ways")
        return conditioning.flipped_rows(z, conditioning.attribute_rows(len(z), names, request, args.seed),
                                         names.index(args.vary))
    per_face = args.mode == "grid"
    attributes = conditioning.attribute_rows(len(z) if per_face else 1, names, request, args.seed)
    return conditioning.join_rows(z, np.resize(attributes, (len(z), len(names))))


def main(argv=None):
    args = parse_args(argv)
    from dcgan_tf.generation import FaceGenerator, write_grid, write_walk

    try:
        generator = FaceGenerator.load(args.model)
        z = with_attributes(args, generator, latent_points(args, generator.latent_dim))
        if args.mode == "interpolate":
            written = write_walk(generator, z, args.out, args.out.with_suffix(".gif"), rows=args.rows)
        else:
            rows = args.rows or (1 if args.mode == "query" else args.n if args.vary else None)
            individual = args.out.with_suffix("") if args.individual else None
            written = write_grid(generator, z, args.out, rows, args.batch_size, individual, progress=len(z) > 1000)
    except (ValueError, FileNotFoundError, OSError) as error:
        sys.exit(f"generate.py: error: {error}")
    print("wrote " + ", ".join(map(str, written)))


if __name__ == "__main__":
    main()
