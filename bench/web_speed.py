"""The web export's speed in headless Chromium: time from opening the page to its first 16 faces
(page, onnxruntime-web, the ONNX generator and one 16-face run; a fresh browser profile each time,
so nothing is cached), then a 16-face page and one face (a walk frame) once loaded.

  python bench/web_speed.py saved_models/NAME          an export (its SavedModel is converted with tf2onnx)
  python bench/web_speed.py --preset tiny              an untrained generator of a preset, exported

Needs tf2onnx, Chromium and onnxruntime-web's files (--ort-dir, default ./node_modules/onnxruntime-web/dist).
"""

import argparse
import functools
import http.server
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the project's Chromium driver
import chromium

from dcgan_tf.config import Config
from dcgan_tf.serve.web import MODEL_FILE, ORT_DIR, write_web

ONE_PAGE = "(async () => { const t = performance.now(); await showPage(state.start + PAGE); return performance.now() - t; })()"
ONE_FACE = "(async () => { const t = performance.now(); await faces([zFor(7)]); return performance.now() - t; })()"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def web_export(model, work, ort_dir):
    cfg = Config.load(model)
    onnx_file = Path(work) / "generator.onnx"
    subprocess.run([sys.executable, "-m", "tf2onnx.convert", "--saved-model", str(model), "--signature_def",
                    "serving_default", "--output", str(onnx_file)], check=True, capture_output=True)
    return write_web(onnx_file, Path(work) / "site", cfg.latent_dim, cfg.image_size, ort_dir)


def measure(model, loads, repeats, ort_dir):
    with tempfile.TemporaryDirectory() as work:
        site = web_export(model, work, ort_dir)
        files = [f for f in site.rglob("*") if f.is_file()]
        print(f"{Path(model).name}: {(site / MODEL_FILE).stat().st_size / 1e6:.1f} MB ONNX, "
              f"{sum(f.stat().st_size for f in files) / 1e6:.1f} MB folder")
        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=site))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        first, page, face = [], [], []
        for load in range(loads):
            browser = chromium.Chromium(chromium.find(), Path(work) / f"profile{load}")
            try:
                browser.page("Page.navigate", url=f"http://127.0.0.1:{server.server_port}/")
                first.append(browser.wait_for("window.firstPageMs || window.loadError", timeout=300))
                if not isinstance(first[-1], float | int):
                    raise SystemExit(f"the page failed: {first[-1]}")
                page += [browser.evaluate(ONE_PAGE) for _ in range(repeats)]
                face += [browser.evaluate(ONE_FACE) for _ in range(repeats)]
            finally:
                browser.close()
        server.shutdown()
    for name, times in (("first 16 faces", first), ("next 16-face page", page), ("one face", face)):
        p50, p95 = np.percentile(times, [50, 95])
        print(f"{name:<18} p50 {p50:8.1f} ms   p95 {p95:8.1f} ms   ({len(times)} times)")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", type=Path, help="an export (default: --preset, untrained)")
    parser.add_argument("--preset", default="tiny", help="the untrained generator's preset (default tiny)")
    parser.add_argument("--loads", type=int, default=3, help="page loads, each in a fresh profile (default 3)")
    parser.add_argument("--repeats", type=int, default=10, help="pages and faces timed per load (default 10)")
    parser.add_argument("--ort-dir", type=Path, default=ORT_DIR, help="onnxruntime-web's dist folder")
    args = parser.parse_args()
    if args.model is not None:
        measure(args.model, args.loads, args.repeats, args.ort_dir)
        return
    from dcgan_tf.config import preset
    from dcgan_tf.model.networks import build_generator
    from dcgan_tf.serve.export import export_generator
    cfg = preset(args.preset)
    with tempfile.TemporaryDirectory() as work:
        model = export_generator(build_generator(cfg), cfg, Path(work) / f"{args.preset}-untrained")
        measure(model, args.loads, args.repeats, args.ort_dir)


if __name__ == "__main__":
    main()
