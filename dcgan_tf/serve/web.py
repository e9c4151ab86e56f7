"""The `web` export: a static folder that makes faces in the browser, with no Python server.

The page (index.html, faces.js) runs the ONNX generator, converted from the SavedModel's
serving_default signature (z float32 [N, latent_dim] -> images uint8 [N, H, W, 3]), with
onnxruntime-web's WebAssembly backend. Its JavaScript and WebAssembly files are copied from
the npm package into ort/, so nothing is loaded from the internet: any static file server
(python -m http.server, GitHub Pages) serves the folder as it is written.
"""

import json
import shutil
from pathlib import Path

from dcgan_tf.utils.files import written_atomically

ORT_VERSION = "1.31.1"  # the onnxruntime-web the page is tested with
ORT_DIR = Path("node_modules/onnxruntime-web/dist")  # where `npm install onnxruntime-web` puts it
# the WebAssembly-only build: its script, the loader it imports and the compiled runtime
ORT_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
PAGE_DIR = Path(__file__).with_name("web_page")
MODEL_FILE = "generator.onnx"
SHAPES_FILE = "model.json"


def check_ort_dir(ort_dir):
    missing = [name for name in ORT_FILES if not (Path(ort_dir) / name).is_file()]
    if missing:
        raise FileNotFoundError(f"no onnxruntime-web in {ort_dir} ({missing[0]} missing): run "
                                f"`npm install onnxruntime-web@{ORT_VERSION}` here, or give the "
                                "node_modules/onnxruntime-web/dist folder of one")


def _check_replaceable(out_dir):
    """A web export replaces an earlier web export, never a folder of something else."""
    if out_dir.exists() and (not out_dir.is_dir()
                             or (not (out_dir / MODEL_FILE).is_file() and any(out_dir.iterdir()))):
        raise ValueError(f"{out_dir} exists and is not a web export; choose another folder")


def write_web(onnx_file, out_dir, latent_dim, image_size, ort_dir=ORT_DIR):
    """Write the static faces page for an unconditional generator's ONNX file to out_dir."""
    check_ort_dir(ort_dir)
    out_dir = Path(out_dir)
    _check_replaceable(out_dir)
    with written_atomically(out_dir) as (partial,):
        shutil.copytree(PAGE_DIR, partial)
        shutil.copyfile(onnx_file, partial / MODEL_FILE)
        (partial / "ort").mkdir()
        for name in ORT_FILES:
            shutil.copyfile(Path(ort_dir) / name, partial / "ort" / name)
        shapes = {"latent_dim": int(latent_dim), "image_size": int(image_size)}
        (partial / SHAPES_FILE).write_text(json.dumps(shapes) + "\n")
    return out_dir
