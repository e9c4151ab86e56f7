"""The `web` export in a real browser: headless Chromium loads the static page from a plain file
server on 127.0.0.1 and its faces, made by onnxruntime-web, are the SavedModel's on the same latents
(its pages of seeds and its walk frames too, the walk's against Python's latent.interpolate).

Needs tf2onnx (pip install tf2onnx), onnxruntime-web's files (npm install onnxruntime-web@VERSION,
in the repository or anywhere with ONNXRUNTIME_WEB_DIST=.../node_modules/onnxruntime-web/dist) and
Chromium (Debian: apt-get install -y chromium); skipped without them.
"""

import functools
import http.server
import importlib.util
import json
import os
import threading
from pathlib import Path

import chromium
import numpy as np
import pytest

from dcgan_tf.model import latent
from dcgan_tf.serve import convert
from dcgan_tf.serve.web import ORT_DIR, ORT_FILES, ORT_VERSION, check_ort_dir, write_web

BROWSER = chromium.find()
ORT = Path(os.environ.get("ONNXRUNTIME_WEB_DIST", ORT_DIR))


def _missing():
    """Why the page cannot be tested here, or None."""
    if BROWSER is None:
        return "no Chromium found: install it (Debian: apt-get install -y chromium) to test the web export"
    if importlib.util.find_spec("tf2onnx") is None or importlib.util.find_spec("onnxruntime") is None:
        return "tf2onnx and onnxruntime are not installed: pip install 'dcgan-tf[onnx]'"
    try:
        check_ort_dir(ORT)
    except FileNotFoundError as error:
        return f"{error} (or set ONNXRUNTIME_WEB_DIST to it)"
    return None


MISSING = _missing()
in_browser = pytest.mark.skipif(MISSING is not None, reason=str(MISSING))
CANVAS = """(() => { const canvas = document.querySelector(%s);
    return Array.from(canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data); })()"""


@pytest.fixture(scope="module")
def web_dir(tiny_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("web")
    artefacts = convert.export_forms(tiny_model, ["web"], folder, ort_dir=ORT)  # dcgan-tf export --format web
    assert [a.form for a in artefacts] == ["savedmodel", "onnx", "web"] and artefacts[-1].path == folder / "web"
    return folder / "web"


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site(web_dir):
    """The folder served as written by Python's own static file server."""
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=web_dir))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


@pytest.fixture
def page(site, tmp_path):
    browser = chromium.Chromium(BROWSER, tmp_path / "profile")
    try:
        browser.page("Network.enable")
        browser.page("Page.navigate", url=site)
        browser.wait_for("window.firstPageMs || window.loadError")
        assert browser.evaluate("window.loadError") is None
        yield browser
    finally:
        browser.close()


def faces_in_page(page, z):
    pixels = page.evaluate(f"facesFor({json.dumps(np.asarray(z).tolist())})")
    return np.array(pixels, np.uint8).reshape(len(z), 16, 16, 3)


def canvas(page, selector):
    return np.array(page.evaluate(CANVAS % json.dumps(selector)), np.uint8).reshape(16, 16, 4)[..., :3]


def close(a, b):
    """Within one level of 255: the CPU's kernels differ by backend and batch size, a value may round either way."""
    return np.abs(a.astype(int) - b.astype(int)).max() <= 1


def saved_model_faces(model, z):
    import tensorflow as tf
    signature = tf.saved_model.load(str(model)).signatures["serving_default"]
    return signature(z=tf.constant(np.asarray(z, np.float32)))["images"].numpy()


@in_browser
def test_the_pages_faces_are_the_savedmodels(page, site, tiny_model):
    z = np.random.default_rng(0).normal(size=(8, 16)).astype(np.float32)
    expected = saved_model_faces(tiny_model, z)
    in_page = faces_in_page(page, z)
    assert close(in_page, expected)
    assert len({face.tobytes() for face in in_page}) == 8  # a face per latent, not one grey image

    assert page.evaluate("document.querySelectorAll('#grid canvas').length") == 16
    grid_z = page.evaluate("[3, 4].map(latentFor)")
    assert close(canvas(page, "#grid figure:nth-child(4) canvas"), faces_in_page(page, grid_z)[0])
    requested = [event["params"]["request"]["url"] for event in page.events
                 if event.get("method") == "Network.requestWillBeSent"]
    assert any(url.endswith(".wasm") for url in requested)
    assert all(url.startswith((site, "data:")) for url in requested), requested


def shown_after(page, action, expected):
    page.evaluate(action)
    page.wait_for(f"document.getElementById('current').dataset.shown === {json.dumps(expected)}")
    return canvas(page, "#current")


@in_browser
def test_pages_and_a_walk(page, tiny_model):
    page.click("#next")
    page.wait_for("document.querySelector('#grid figure').dataset.seed === '16'")
    assert page.evaluate("document.getElementById('range').textContent") == "seeds 16-31"
    face_b = canvas(page, "#grid figure:nth-child(5) canvas")  # seed 20
    page.click("#prev")
    page.wait_for("document.querySelector('#grid figure').dataset.seed === '0'")
    face_a = canvas(page, "#grid figure:nth-child(3) canvas")  # seed 2

    page.click("#grid figure:nth-child(3)")
    page.wait_for("document.getElementById('current').dataset.shown === '2'")
    assert page.evaluate("document.getElementById('walk-controls').hidden")
    page.click("#next")
    page.wait_for("document.querySelector('#grid figure').dataset.seed === '16'")
    start = shown_after(page, "document.querySelector('#grid figure:nth-child(5)').click()", "2-20:0")
    assert not page.evaluate("document.getElementById('walk-controls').hidden")
    assert close(start, face_a)
    move = "(() => { const walk = document.getElementById('walk'); walk.value = %d; walk.dispatchEvent(new Event('input')); })()"
    assert close(shown_after(page, move % 15, "2-20:15"), face_b)

    ends = page.evaluate("[2, 20].map(latentFor)")  # frame 8 of 16 is Python's, along the arc and the line
    expected = {method: saved_model_faces(tiny_model, latent.interpolate(ends, 16, method)[8:9])[0]
                for method in ("slerp", "linear")}
    assert not close(expected["slerp"], expected["linear"])
    assert close(shown_after(page, move % 8, "2-20:8"), expected["slerp"])
    page.evaluate("document.getElementById('method').value = 'linear'")
    assert close(shown_after(page, move % 7, "2-20:7"), saved_model_faces(
        tiny_model, latent.interpolate(ends, 16, "linear")[7:8])[0])


def test_without_onnxruntime_web_the_error_names_the_npm_command(tmp_path):
    (tmp_path / "gen.onnx").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match=f"npm install onnxruntime-web@{ORT_VERSION}"):
        write_web(tmp_path / "gen.onnx", tmp_path / "site", 16, 16, ort_dir=tmp_path / "nothing")
    assert not (tmp_path / "site").exists()


def test_a_folder_of_something_else_is_not_replaced(tmp_path):
    ort_dir, other = tmp_path / "dist", tmp_path / "notes"
    for folder in (ort_dir, other):
        folder.mkdir()
    for name in ORT_FILES:
        (ort_dir / name).write_text(name)
    (other / "todo.txt").write_text("keep me")
    (tmp_path / "gen.onnx").write_bytes(b"onnx")
    with pytest.raises(ValueError, match="not a web export"):
        write_web(tmp_path / "gen.onnx", other, 16, 16, ort_dir=ort_dir)
    assert (other / "todo.txt").read_text() == "keep me"
    site = write_web(tmp_path / "gen.onnx", tmp_path / "site", 16, 16, ort_dir=ort_dir)
    assert json.loads((site / "model.json").read_text()) == {"latent_dim": 16, "image_size": 16}
    assert (site / "ort" / ORT_FILES[-1]).read_text() == ORT_FILES[-1]
    write_web(tmp_path / "gen.onnx", site, 16, 16, ort_dir=ort_dir)  # an earlier web export is replaced
