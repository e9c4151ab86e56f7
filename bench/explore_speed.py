"""Face explorer latency: p50 and p95 of one face (/api/face.png) and of a 16-face page (/api/page),
over HTTP on loopback as the page asks for them, one request at a time, each for new seeds.

  python bench/explore_speed.py saved_models/NAME        a trained model (anything generate.py takes)
  python bench/explore_speed.py --preset keras64         an untrained generator of a preset, exported
                                                         (speed does not depend on the weights)
"""

import argparse
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np


def latencies(url, paths):
    times = []
    for path in paths:
        start = time.perf_counter()
        with urllib.request.urlopen(url + path, timeout=60) as response:
            response.read()
        times.append(time.perf_counter() - start)
    return np.array(times)


def report(name, seconds):
    p50, p95 = np.percentile(seconds, [50, 95]) * 1000
    print(f"{name:<22} p50 {p50:7.1f} ms   p95 {p95:7.1f} ms   ({len(seconds)} requests)")


def measure(model, requests):
    from dcgan_tf.explore.server import Explorer, running

    explorer = Explorer.load(model)
    with running(explorer) as server:
        print(f"{model}: {explorer.image_size}x{explorer.image_size} faces, latent {explorer.generator.latent_dim}")
        report("one face", latencies(server.url, [f"api/face.png?seed={seed}" for seed in range(requests)]))
        report("walk frame + 2 dials" if explorer.directions else "walk frame", latencies(server.url, [
            f"api/face.png?seed=1&to=2&steps=64&step={step % 64}" + _dials(explorer.directions)
            for step in range(requests)]))
        report("16-face page", latencies(server.url, [f"api/page?start={16 * page}&count=16"
                                                      for page in range(requests)]))


def _dials(directions):
    return "&dials=" + ",".join(f"{name}:1.5" for name in list(directions)[:2]) if directions else ""


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", type=Path, help="a trained model (default: --preset, untrained)")
    parser.add_argument("--preset", default="keras64", help="the untrained generator's preset (default keras64)")
    parser.add_argument("--requests", type=int, default=50, help="requests of each kind (default 50)")
    args = parser.parse_args()
    if args.model is not None:
        measure(args.model, args.requests)
        return
    from dcgan_tf.config import preset
    from dcgan_tf.model.networks import build_generator
    from dcgan_tf.serve.export import export_generator
    cfg = preset(args.preset)
    with tempfile.TemporaryDirectory() as work:
        measure(export_generator(build_generator(cfg), cfg, Path(work) / f"{args.preset}-untrained"), args.requests)


if __name__ == "__main__":
    main()
