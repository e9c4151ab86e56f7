"""Generation speed and memory: images/s of generate.py's batches, and the peak memory of a
generate.py process as --n grows (it should stay flat: one batch at a time, plus the grid).
An untrained generator of the preset is exported and used (speed does not depend on weights).

  python bench/generate_speed.py --preset dcgan32 --batch-size 256 --n 1024 10240
"""

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# Runs generate.py in a fresh process and prints that process's peak resident memory (KiB on Linux).
PEAK_RSS = """
import resource, runpy, sys
sys.argv = ["generate.py", *sys.argv[1:]]
runpy.run_path("generate.py", run_name="__main__")
print("peak_kib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def images_per_second(model, latent_dim, batch_size, n):
    from dcgan_tf.model import latent
    from dcgan_tf.serve import loader
    generator = loader.load(model).faces
    z = latent.sample(n, latent_dim, seed=0).numpy()
    generator(z[:batch_size])  # build and trace
    start = time.perf_counter()
    for _ in generator.batches(z, batch_size):
        pass
    return n / (time.perf_counter() - start)


def peak_memory_mib(model, n, batch_size, out):
    result = subprocess.run([sys.executable, "-c", PEAK_RSS, str(model), "--n", str(n), "--batch-size",
                             str(batch_size), "--out", str(out)], cwd=ROOT, capture_output=True, text=True, check=True)
    return int(result.stdout.split("peak_kib")[-1]) / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="dcgan32")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--n", type=int, nargs="+", default=[1024, 10240], help="faces per generate.py run")
    args = parser.parse_args()

    from dcgan_tf.config import preset
    from dcgan_tf.model.networks import build_generator
    from dcgan_tf.serve.export import export_generator

    cfg = preset(args.preset)
    with tempfile.TemporaryDirectory() as work:
        model = export_generator(build_generator(cfg), cfg, Path(work) / "model")
        rate = images_per_second(model, cfg.latent_dim, args.batch_size, n=8 * args.batch_size)
        print(f"{args.preset}: {rate:,.0f} images/s at batch {args.batch_size} (generation only, no PNG writing)")
        for n in args.n:
            peak = peak_memory_mib(model, n, args.batch_size, Path(work) / "grid.png")
            print(f"generate.py --n {n:,}: peak memory {peak:,.0f} MiB")


if __name__ == "__main__":
    main()
