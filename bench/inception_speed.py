"""FID feature extraction speed: images/s of the Inception network at SIZE -> 299 on this machine,
and the time it implies for scoring 10,000 images (10,000 generated + 10,000 real, cached).

  python bench/inception_speed.py --size 64 --n 300
"""

import argparse
import time

import numpy as np

from dcgan_tf.metrics import inception


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=50)
    args = parser.parse_args()
    images = np.random.default_rng(0).integers(0, 256, (args.n, args.size, args.size, 3), dtype=np.uint8)
    inception.features(images[:args.batch_size], args.batch_size)  # build and trace
    start = time.perf_counter()
    inception.features(images, args.batch_size)
    rate = args.n / (time.perf_counter() - start)
    print(f"{rate:.1f} images/s at {args.size}->299, batch {args.batch_size}; "
          f"10,000 images: {10000 / rate / 60:.1f} min (twice that with uncached real statistics)")


if __name__ == "__main__":
    main()
