"""Decode, crop and resize a data source once, into one uint8 .npy that training memory-maps.

  dcgan-tf prepare ~/data/img_align_celeba.zip celeba64.npy --image-size 64
  python train.py --data celeba64.npy ...

Decoding JPEGs is the slow part of reading CelebA (a few hundred images/s per core); a
prepared array is read at memory speed, every epoch, by any number of runs.
"""

import sys
from pathlib import Path

from dcgan_tf.cli.flags import ArgumentParser
from dcgan_tf.data.decoding import DataError
from dcgan_tf.data.prepare import prepare


def main(argv=None, prog="dcgan-tf prepare"):
    parser = ArgumentParser(prog=prog, description=__doc__)
    parser.add_argument("source", help="an image directory, a .zip of images, a .npy/.npz array, builtin[:N] or celeba")
    parser.add_argument("out", type=Path, help="the .npy file to write")
    parser.add_argument("--image-size", type=int, default=64, help="side of the square images (default 64)")
    parser.add_argument("--crop", default="auto", help="auto, celeba, center, center:N, box:L,T,R,B or none")
    parser.add_argument("--limit", type=int, default=0, help="the first N images only (0: all)")
    parser.add_argument("--strict", action="store_true", help="an unreadable image is an error")
    args = parser.parse_args(argv)
    if args.image_size < 4 or args.limit < 0:
        parser.error("--image-size must be >= 4 and --limit >= 0")
    try:
        path, report = prepare(args.source, args.out, args.image_size, args.crop, args.limit, args.strict)
    except (DataError, ValueError) as error:
        sys.exit(f"{prog}: error: {error}")
    print(report.summary())
    print(f"wrote {path} ({path.stat().st_size / 2**20:.1f} MiB)")


if __name__ == "__main__":
    main()
