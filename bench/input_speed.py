"""Input pipeline speed alone (no model): decoding a source, and iterating make_dataset.

  python bench/input_speed.py                          # ../shared/data/celeba_10k.zip
  python bench/input_speed.py --data ~/data/img_align_celeba.zip --limit 20000

For the zip, the same images extracted to a directory, and the array dcgan_tf.prepare
writes from them: decode images/s (load_images: read, decode, crop, resize) and epoch
images/s of make_dataset at --image-size and --batch-size (shuffle, gather, scale).
"""

import argparse
import sys
import tempfile
import time
import zipfile
from pathlib import Path

from dcgan_tf.data.pipeline import make_dataset
from dcgan_tf.data.prepare import prepare
from dcgan_tf.data.sources import load_images

DEFAULT_ZIP = Path(__file__).resolve().parents[2] / "shared" / "data" / "celeba_10k.zip"


def epoch_rate(images, batch_size, epochs=3):
    dataset = make_dataset(images, batch_size)
    for _ in dataset.take(2):  # warm up
        pass
    start, seen = time.perf_counter(), 0
    for _ in range(epochs):
        for batch in dataset:
            seen += int(batch.shape[0])
    return seen / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=DEFAULT_ZIP)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--limit", type=int, default=0)
    args = parser.parse_args()
    if not args.data.exists():
        sys.exit(f"input_speed: {args.data} not found; pass --data (a zip of images)")
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "images"
        with zipfile.ZipFile(args.data) as archive:
            archive.extractall(folder)
        prepared = Path(scratch) / "prepared.npy"
        start = time.perf_counter()
        prepare(str(args.data), prepared, args.image_size, limit=args.limit, progress=False)
        print(f"prepare: {time.perf_counter() - start:.1f} s\n")
        print(f"| source | images | decode img/s | make_dataset img/s ({args.image_size}px, batch {args.batch_size}) |")
        print("|---|---|---|---|")
        for name, source in (("zip", args.data), ("JPEG directory", folder), ("prepared .npy", prepared)):
            start = time.perf_counter()
            images, _ = load_images(str(source), args.image_size, limit=args.limit, progress=False)
            decode = len(images) / (time.perf_counter() - start)
            print(f"| {name} | {len(images)} | {decode:,.0f} | {epoch_rate(images, args.batch_size):,.0f} |", flush=True)


if __name__ == "__main__":
    main()
