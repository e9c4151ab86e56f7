"""The face explorer's page in a real browser: headless Chromium loads it, pages, clicks two faces,
moves the walk slider and a dial, saves, and every face it shows is checked against the API.

  python -m pytest tests/test_explore_browser.py                       a tiny untrained model
  python -m pytest tests/test_explore_browser.py --explorer-model saved_models/NAME \\
      --explorer-screenshot docs/explorer.png                          the README's screenshot
"""

import io
import json
import time
import urllib.request
from pathlib import Path

import chromium
import numpy as np
import pytest
from PIL import Image

from dcgan_tf.explore.server import Explorer, running

BROWSER = chromium.find()
pytestmark = pytest.mark.skipif(BROWSER is None, reason="no Chromium found: install it (Debian: "
                                "apt-get install -y chromium) to test the explorer's page in a browser")
PIXELS = """(() => { const img = document.querySelector(%s);
    const [width, height] = [img.naturalWidth, img.naturalHeight];
    const context = Object.assign(document.createElement("canvas"), {width, height}).getContext("2d");
    context.drawImage(img, 0, 0);
    return [height, width, Array.from(context.getImageData(0, 0, width, height).data)];
})()"""


@pytest.fixture(scope="module")
def server(tiny_model, pytestconfig):
    with running(Explorer.load(pytestconfig.getoption("explorer_model") or tiny_model)) as server:
        yield server


@pytest.fixture
def browser(tmp_path):
    browser = chromium.Chromium(BROWSER, tmp_path / "profile", width=1000, height=850)
    yield browser
    browser.close()


def api_face(server, query):
    with urllib.request.urlopen(f"{server.url}api/face.png?{query}", timeout=60) as response:
        return np.asarray(Image.open(io.BytesIO(response.read())))


def shown(browser, selector):
    height, width, rgba = browser.evaluate(PIXELS % json.dumps(selector))
    return np.array(rgba, np.uint8).reshape(height, width, 4)[..., :3]


def loaded(selector, old_src=""):
    return (f"(() => {{ const img = document.querySelector({json.dumps(selector)}); return !img.hidden && "
            f"img.src !== {json.dumps(old_src)} && img.complete && img.naturalWidth > 0; }})()")


def src(browser, selector):
    return browser.evaluate(f"document.querySelector({json.dumps(selector)}).src")


def grid_ready(first_seed):
    return (f"document.querySelector('#grid figure')?.dataset.seed === '{first_seed}' && "
            "[...document.querySelectorAll('#grid img')].every(img => img.complete && img.naturalWidth > 0)")


def move(browser, selector, fraction):
    """Click a slider `fraction` of the way along; returns the current face's new pixels and the slider's value."""
    old = src(browser, "#current")
    browser.click(selector, fraction)
    browser.wait_for(loaded("#current", old))
    return shown(browser, "#current"), browser.evaluate(f"document.querySelector({json.dumps(selector)}).value")


def same_face(grid_face, single_face):
    """A face of a 16-face page against the same face made alone: the CPU's convolution kernels
    differ by batch size, so a value may round to the next level of 255 (seen: 1 of 768)."""
    np.testing.assert_allclose(grid_face.astype(int), single_face.astype(int), rtol=0, atol=1)


def test_the_page_in_a_browser(server, browser, tmp_path, pytestconfig):
    downloads = tmp_path / "downloads"
    browser.send("Browser.setDownloadBehavior", behavior="allow", downloadPath=str(downloads))
    browser.page("Page.navigate", url=server.url)
    browser.wait_for(grid_ready(0))
    assert browser.evaluate("document.querySelectorAll('#grid img').length") == 16
    same_face(shown(browser, "#grid figure:nth-child(4) img"), api_face(server, "seed=3"))

    browser.click("#next")  # next page and back
    browser.wait_for(grid_ready(16))
    assert browser.evaluate("document.getElementById('range').textContent") == "seeds 16-31"
    same_face(shown(browser, "#grid figure img"), api_face(server, "seed=16"))
    browser.click("#prev")
    browser.wait_for(grid_ready(0))

    browser.click("#grid figure:nth-child(3)")  # face A: seed 2
    browser.wait_for(loaded("#current"))
    np.testing.assert_array_equal(shown(browser, "#current"), api_face(server, "seed=2"))
    before = src(browser, "#current")
    browser.click("#grid figure:nth-child(7)")  # face B: seed 6, the walk starts at A
    browser.wait_for(loaded("#current", before))
    browser.wait_for(loaded("#end-b img"))
    assert not browser.evaluate("document.getElementById('walk-controls').hidden")
    at_a = shown(browser, "#current")
    np.testing.assert_array_equal(at_a, api_face(server, "seed=2&to=6&step=0&steps=16"))
    np.testing.assert_array_equal(shown(browser, "#end-b img"), api_face(server, "seed=6"))

    frame, step = move(browser, "#walk", 0.6)
    assert 6 <= int(step) <= 12 and not np.array_equal(frame, at_a)
    np.testing.assert_array_equal(frame, api_face(server, f"seed=2&to=6&step={step}&steps=16"))
    end, last = move(browser, "#walk", 0.99)
    assert last == "15" and not np.array_equal(end, frame)
    np.testing.assert_array_equal(end, shown(browser, "#end-b img"))  # the walk ends at B
    move(browser, "#walk", 0.6)

    attributes = browser.evaluate("[...document.querySelectorAll('#dials input')].map(i => i.ariaLabel)")
    assert attributes == ["Smiling", "Male"] or pytestconfig.getoption("explorer_model")  # the tiny model's
    if attributes:  # a model with directions.npz: one dial each
        dialled, strength = move(browser, f"#dials input[aria-label=\"{attributes[0]}\"]", 0.9)
        assert float(strength) > 1 and not np.array_equal(dialled, frame)
        np.testing.assert_array_equal(dialled, api_face(
            server, f"seed=2&to=6&step={step}&steps=16&dials={attributes[0]}:{strength}"))

    browser.click("#save")
    browser.wait_for("!document.getElementById('saved').hidden")
    command = browser.evaluate("document.getElementById('command').textContent")
    name = browser.evaluate("document.getElementById('png-link').textContent")
    assert command.startswith("python generate.py ") and name.endswith(".png"), command
    for file in (downloads / name, downloads / name.replace(".png", ".npy")):
        for _ in range(200):  # the browser writes its downloads after the click
            if file.is_file():
                break
            time.sleep(0.05)
        assert file.is_file(), f"{file.name} was not downloaded"
    assert np.load(downloads / name.replace(".png", ".npy")).shape == (server.explorer.generator.latent_dim,)
    assert browser.evaluate("document.getElementById('status').textContent") == ""

    screenshot = Path(pytestconfig.getoption("explorer_screenshot") or tmp_path / "explorer.png")
    browser.screenshot(screenshot)
    assert Image.open(screenshot).size == (1000, 850)
    print(f"screenshot: {screenshot}")
