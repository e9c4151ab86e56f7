"""Generate faces from a trained model.

  python generate.py MODEL                          64 faces in one grid, faces.png
  python generate.py MODEL --n 1000 --individual    and each face as its own PNG in faces/
  python generate.py MODEL interpolate --seeds 1 2 3 --steps 8          walk.png (+ walk.gif)
  python generate.py MODEL query --vector z.npy     G(0), G(0.5), G(1) and G(z), query.png
  python generate.py MODEL edit --attr Smiling --seed 5 --strength -3:3 --steps 7 [--keep Male]   edit.png
  python generate.py MODEL arithmetic 'Smiling,!Male' - '!Smiling,!Male' + '!Smiling,Male' --classifier C.keras
                                                    arithmetic.png
Each mode writes its own file unless --out names one, so one mode never replaces another's.

A conditional model (train.py --condition) makes faces with the attributes asked for:
  python generate.py MODEL --attrs Smiling=1,Male=0,Eyeglasses=1
  python generate.py MODEL --vary Smiling             rows keep z; left without, right with the attribute
Attributes left out of --attrs are drawn at random per face (present or absent, equal odds).

MODEL is a run directory (its latest checkpoint), an export directory under saved_models/,
a SavedModel directory or a .keras file. The same --seed always gives the same faces.

edit moves faces along an attribute's latent direction, fit beforehand with
dcgan-tf attributes directions MODEL --classifier C.keras (one strip per seed;
--keep projects other attributes' directions out). arithmetic finds the 3 faces the
classifier is most sure show each concept (! for absent; single quotes keep the shell off
the !), adds and subtracts their average z and shows the result with noise around it.
"""

import argparse
import sys
from pathlib import Path

from dcgan_tf.cli.flags import ArgumentParser

OUT = {"grid": "faces.png", "interpolate": "walk.png", "query": "query.png", "edit": "edit.png",
       "arithmetic": "arithmetic.png"}  # each mode's default --out


def parse_args(argv=None, prog="generate.py"):
    parser = ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("model", type=Path, help="run directory, export directory, SavedModel or .keras file")
    parser.add_argument("mode", nargs="?", choices=("grid", "interpolate", "query", "edit", "arithmetic"),
                        default="grid", help="grid (default), interpolate (a latent walk), query (fixed latent "
                        "points), edit (an attribute strip) or arithmetic (on concepts)")
    parser.add_argument("terms", nargs="*", help="arithmetic: concepts joined by + and -")
    parser.add_argument("--n", type=int, help="grid: number of faces (default 64; with --vary, 8 rows)")
    parser.add_argument("--rows", type=int, default=None, help="grid rows (default: square-ish)")
    parser.add_argument("--seed", type=int, default=0, help="the same seed gives the same faces (grid; edit: the "
                                                             "face to edit; arithmetic: the faces to choose from)")
    parser.add_argument("--truncation", type=float, default=None, metavar="PSI",
                        help="sample z from the normal truncated to [-PSI, PSI]: fewer, cleaner faces")
    parser.add_argument("--individual", action="store_true", help="grid: also write each face to OUT_STEM/")
    parser.add_argument("--batch-size", type=int, default=256, help="faces generated at a time (default 256)")
    parser.add_argument("--seeds", type=int, nargs="+",
                        help="interpolate: the seeds to walk through (default 0 1); edit: one strip per seed")
    parser.add_argument("--steps", type=int, help="interpolate: images from one seed to the next (default 8); "
                                                  "edit: images along the strength range (default 7)")
    parser.add_argument("--method", choices=("slerp", "linear"), default="slerp", help="interpolate: path")
    parser.add_argument("--vector", type=Path, help="query: a .npy latent vector to add to the queries")
    parser.add_argument("--attr", help="edit: the attribute to change, e.g. Smiling")
    parser.add_argument("--strength", type=strength_range, default=(-3.0, 3.0), metavar="LOW:HIGH",
                        help="edit: how far to move, in standard deviations of z (default -3:3)")
    parser.add_argument("--keep", type=lambda text: text.split(","), default=[], metavar="NAMES",
                        help="edit: attributes to hold (comma-separated): their directions are projected out")
    parser.add_argument("--directions", type=Path, help="edit: the directions file (default: the model's directions.npz)")
    parser.add_argument("--classifier", type=Path,
                        help="arithmetic: the attribute classifier (.keras); edit: also print its scores")
    parser.add_argument("--pool", type=int, default=2000, help="arithmetic: faces to choose exemplars from")
    parser.add_argument("--noise", type=float, default=0.25, help="arithmetic: +- uniform noise around the result")
    parser.add_argument("--attrs", metavar="NAME=1,NAME=0", help="conditional model: the faces' attributes")
    parser.add_argument("--vary", metavar="NAME", help="conditional model, grid: each row one z, without and "
                        "with this attribute")
    parser.add_argument("--out", type=Path, help="PNG to write (default: " + ", ".join(
        f"{name} for {mode}" for mode, name in OUT.items()) + ")")
    parser.add_argument("--trust-savedmodel", action="store_true",
                        help="run a SavedModel even if its graph holds ops a generator does not need (file, "
                             "process or network ops): only for a model from someone you trust")
    args = parser.parse_args(with_joined_negative_values(sys.argv[1:] if argv is None else argv))
    for name in ("n", "batch_size", "steps", "rows", "pool"):
        if getattr(args, name) is not None and getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive, got {getattr(args, name)}")
    if args.truncation is not None and args.truncation <= 0:
        parser.error(f"--truncation must be positive, got {args.truncation}")
    if args.vary is not None and args.mode != "grid":
        parser.error("--vary is for the grid mode")
    if args.attrs is not None and args.mode in ("edit", "arithmetic"):
        parser.error("--attrs is for a conditional model's grid, interpolate and query modes")
    args.n = args.n or (8 if args.vary else 64)
    args.out = args.out or Path(OUT[args.mode])
    args.steps = args.steps or (7 if args.mode == "edit" else 8)
    if args.mode == "interpolate" and (len(args.seeds or [0, 1]) < 2 or args.steps < 2):
        parser.error("interpolate needs at least two --seeds and --steps >= 2")
    if args.mode == "edit" and args.attr is None:
        parser.error("edit needs --attr, e.g. --attr Smiling")
    if args.mode == "arithmetic" and (args.classifier is None or not args.terms):
        parser.error("arithmetic needs concepts and --classifier, e.g. arithmetic 'Smiling,!Male' - "
                     "'!Smiling,!Male' + '!Smiling,Male' --classifier attr_classifier.keras")
    if args.terms and args.mode != "arithmetic":
        parser.error(f"unexpected arguments {' '.join(args.terms)} (concepts are for the arithmetic mode)")
    if (args.attr or args.keep or args.directions) and args.mode != "edit":
        parser.error("--attr, --keep and --directions are for the edit mode")
    if args.out.suffix.lower() != ".png" or args.out.is_dir():
        parser.error(f"--out must name a .png file, got {args.out}")  # the .gif and the faces/ folder go beside it
    if args.vector is not None and args.mode != "query":
        parser.error("--vector is for the query mode")
    vector = args.vector
    if vector is not None and (vector.suffix != ".npy" or (vector.exists() and not vector.is_file())):
        parser.error(f"--vector must be a .npy file, got {vector}")  # a FIFO would block
    return args


def strength_range(text):
    low, colon, high = text.partition(":")
    try:
        return float(low), float(high if colon else low)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected LOW:HIGH, e.g. -3:3, got {text!r}") from None


def with_joined_negative_values(argv):
    """argparse reads the -3:3 of `--strength -3:3` as an option: pass it on as --strength=-3:3."""
    joined, values = [], iter(argv)
    for arg in values:
        joined.append(f"{arg}={next(values, '')}" if arg == "--strength" else arg)
    return joined


def latent_points(args, latent_dim):
    from dcgan_tf.model import latent
    from dcgan_tf.utils.arrays import load_npy

    if args.mode == "grid":  # drawn a batch at a time, as the faces are
        return latent.LatentStream(args.n, latent_dim, args.seed, args.truncation)
    if args.mode == "interpolate":
        return latent.walk(args.seeds or [0, 1], args.steps, latent_dim, args.truncation, args.method)
    vector = None if args.vector is None else load_npy(args.vector, max_bytes=16 * latent_dim)  # one latent vector
    return latent.query_points(latent_dim, vector)


def with_attributes(args, generator, z):
    """A conditional model's input rows [z | attributes] (dcgan_tf.conditioning): the --attrs
    values, the others at random per face, or per walk/query so they stay fixed along it.
    z may be a latent.LatentStream; the rows are joined a batch at a time."""
    import numpy as np

    from dcgan_tf.edit import conditioning

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
        return conditioning.flipped_rows(z[:], conditioning.attribute_rows(len(z), names, request, args.seed),
                                         names.index(args.vary))
    per_face = args.mode == "grid"
    attributes = conditioning.attribute_rows(len(z) if per_face else 1, names, request, args.seed)
    return conditioning.JoinedRows(z, np.resize(attributes, (len(z), len(names))))


def edit(args, generator):
    """One strip per seed along --attr's direction; with --classifier, its scores along the strip."""
    import numpy as np

    from dcgan_tf.edit.directions import Directions, edit_points, strip_scores
    from dcgan_tf.model import latent
    from dcgan_tf.serve.generation import write_grid

    directions = Directions.of_model(args.model, generator, args.directions)
    seeds = args.seeds or [args.seed]
    z = latent.from_seeds(seeds, generator.latent_dim, args.truncation)
    strengths = np.linspace(*args.strength, args.steps)
    points = edit_points(z, directions.vector(args.attr, args.keep), strengths)
    written = write_grid(generator, points, args.out, rows=len(seeds))
    if args.classifier:
        print(strip_scores(classifier(args), generator.all(points), [args.attr, *args.keep], strengths))
    return written


def arithmetic(args, generator):
    """The DCGAN paper's figure 7 for the concepts given, and how the classifier sees the result."""
    from dcgan_tf.edit.arithmetic import parse_expression, vector_arithmetic
    from dcgan_tf.utils.images import save_png

    result = vector_arithmetic(generator, classifier(args), parse_expression(args.terms), args.pool, args.seed,
                               args.truncation, args.noise)
    print(result.report(args.terms[0::2]))
    return [save_png(result.figure(), args.out)]


def classifier(args):
    from dcgan_tf.edit.classifier import AttributeClassifier
    return AttributeClassifier.load(args.classifier)


def main(argv=None, prog="generate.py"):
    args = parse_args(argv, prog)
    from dcgan_tf.serve import loader
    from dcgan_tf.serve.generation import write_grid, write_walk
    from dcgan_tf.utils.files import check_writable

    try:
        check_writable(args.out.parent, "--out")  # before any work
        generator = loader.load(args.model, args.trust_savedmodel).faces
        if args.mode in ("edit", "arithmetic"):
            written = (edit if args.mode == "edit" else arithmetic)(args, generator.require_unconditional(args.mode))
            print("wrote " + ", ".join(map(str, written)))
            return
        z = with_attributes(args, generator, latent_points(args, generator.latent_dim))
        if args.mode == "interpolate":
            written = write_walk(generator, z, args.out, args.out.with_suffix(".gif"), rows=args.rows)
        else:
            rows = args.rows or (1 if args.mode == "query" else args.n if args.vary else None)
            individual = args.out.with_suffix("") if args.individual else None
            written = write_grid(generator, z, args.out, rows, args.batch_size, individual, progress=len(z) > 1000)
    except (ValueError, FileNotFoundError, OSError) as error:
        sys.exit(f"{prog}: error: {error}")
    print("wrote " + ", ".join(map(str, written)))


if __name__ == "__main__":
    main()
