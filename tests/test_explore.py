"""The face explorer's HTTP API (dcgan-tf explore) on a tiny model: pages, walks, dials,
saves, bad parameters, the bounded queue, and the command line."""

import base64
import http.client
import io
import json
import os
import shlex
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request

import numpy as np
import pytest
from conftest import ROOT
from PIL import Image

from dcgan_tf.cli import generate
from dcgan_tf.edit.directions import load_directions
from dcgan_tf.explore.server import Explorer, running
from dcgan_tf.model import latent
from dcgan_tf.serve.generation import FaceGenerator


@pytest.fixture(scope="module")
def server(tiny_model):
    with running(Explorer.load(tiny_model)) as server:
        yield server


@pytest.fixture(scope="module")
def model(server):
    explorer = server.explorer
    return explorer.model, explorer.generator, explorer.directions


def get(server, path):
    """(status, content type, body) of GET path."""
    try:
        with urllib.request.urlopen(server.url + path, timeout=60) as response:
            return response.status, response.headers["Content-Type"], response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers["Content-Type"], error.read()


def get_json(server, path):
    status, content_type, body = get(server, path)
    assert status == 200 and content_type == "application/json", (status, body)
    return json.loads(body)


def face(server, query):
    status, content_type, body = get(server, "api/face.png?" + query)
    assert status == 200 and content_type == "image/png", (status, body)
    return decode_png(body)


def decode_png(data):
    return np.asarray(Image.open(io.BytesIO(data)))


def assert_same_image(a, b):
    assert a.shape == b.shape and np.abs(a.astype(int) - b).max() <= 1  # batch sizes may differ by rounding


def test_model_info_lists_the_attribute_dials(server):
    info = get_json(server, "api/model")
    assert info["attributes"] == ["Smiling", "Male"]
    assert info["latent_dim"] == 16 and info["image_size"] == 16
    assert info["limits"]["count"] == 64 and info["limits"]["dial"] == 5.0


def test_a_page_holds_each_seeds_face(server, model):
    _, generator, _ = model
    faces = get_json(server, "api/page?start=5&count=3")["faces"]
    assert [f["seed"] for f in faces] == [5, 6, 7]
    expected = generator(latent.from_seeds([5, 6, 7], 16))
    for got, want in zip(faces, expected):
        assert_same_image(decode_png(base64.b64decode(got["png"])), want)
    assert len(get_json(server, "api/page?start=0")["faces"]) == 16  # the default page size
    assert not np.array_equal(expected[0], expected[1])


def test_the_walk_goes_from_one_face_to_the_other_along_the_slerp(server, model):
    _, generator, _ = model
    frames = [face(server, f"seed=3&to=9&step={step}&steps=5") for step in range(5)]
    assert_same_image(frames[0], face(server, "seed=3"))
    assert_same_image(frames[-1], face(server, "seed=9"))
    middle = generator(latent.walk([3, 9], 5, 16)[2:3])[0]
    assert_same_image(frames[2], middle)
    assert not np.array_equal(frames[1], frames[0]) and not np.array_equal(frames[2], frames[4])


def test_truncation_and_dials_move_the_face(server, model):
    _, generator, directions = model
    plain, truncated = face(server, "seed=4"), face(server, "seed=4&truncation=0.5")
    assert_same_image(truncated, generator(latent.from_seeds([4], 16, 0.5))[0])
    assert not np.array_equal(plain, truncated)
    smiling = face(server, "seed=4&dials=Smiling:2.5")
    unit = np.random.default_rng(1).normal(size=(2, 16))[0]
    unit /= np.linalg.norm(unit)  # the conftest's direction, normalised: a dial moves in standard deviations
    z = latent.from_seeds([4], 16) + 2.5 * unit
    assert_same_image(smiling, generator(z.astype(np.float32))[0])
    assert not np.array_equal(smiling, plain)
    assert_same_image(face(server, "seed=4&dials=Smiling:0,Male:0"), plain)
    both = face(server, "seed=4&dials=Smiling:2.5,Male:-1")
    assert not np.array_equal(both, smiling)


@pytest.mark.parametrize("query", ["seed=12", "seed=3&to=9&step=2&steps=6&truncation=0.7",
                                   "seed=5&truncation=0.8&dials=Smiling:1.5,Male:-2"],
                         ids=["seed", "walk", "dials"])
def test_save_gives_png_latent_and_the_command_that_makes_it_again(server, model, tmp_path, query):
    _, generator, _ = model
    saved = get_json(server, "api/save?" + query)
    png, z = decode_png(base64.b64decode(saved["png"])), np.load(io.BytesIO(base64.b64decode(saved["npy"])))
    assert z.shape == (16,) and z.dtype == np.float32
    assert_same_image(png, generator(z[None])[0])
    assert_same_image(png, face(server, query))
    np.save(tmp_path / f"{saved['name']}.npy", z)  # where the page's download puts it
    argv = shlex.split(saved["command"])
    assert argv[:2] == ["python", "generate.py"]
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        generate.main(argv[2:])
    finally:
        os.chdir(cwd)
    made = np.asarray(Image.open(tmp_path / argv[-1]))
    tiles = [made[2:18, 2 + 18 * i:18 + 18 * i] for i in range(made.shape[1] // 18)]
    if "dials" in query:  # query --vector: G(0), G(0.5), G(1), then this face
        assert saved["shows"].startswith("the last of its 4 faces") and len(tiles) == 4
        assert_same_image(tiles[-1], png)
    elif "to=" in query:  # interpolate: frame 3 of the 6-frame walk, in a 3x2 grid
        assert saved["shows"].startswith("frame 3 of 6")
        assert_same_image(tiles[2], png)
    else:
        assert saved["shows"] == "the face alone" and made.shape == (20, 20, 3)
        assert_same_image(tiles[0], png)


@pytest.mark.parametrize("path, status, message", [
    ("api/page?start=-1", 400, "start must be a whole number from 0 to 2147483647, got '-1'"),
    ("api/page?start=0&count=65", 400, "count must be a whole number from 1 to 64"),
    ("api/page?start=2147483647&count=2", 400, "count must be a whole number from 1 to 1"),
    ("api/page?start=2147483647", 400, "count must be a whole number from 1 to 1, got '16'"),
    ("api/page?start=1e3", 400, "start must be a whole number"),
    ("api/face.png", 400, "seed is missing"),
    ("api/face.png?seed=1&seed=2", 400, "seed is given twice"),
    ("api/face.png?seed=1&file=/etc/passwd", 400, "unknown parameter 'file'"),
    ("api/face.png?seed=../../x", 400, "seed must be a whole number"),
    ("api/face.png?seed=99999999999", 400, "seed must be a whole number"),
    ("api/face.png?seed=1&to=2", 400, "steps is missing"),
    ("api/face.png?seed=1&to=2&steps=1&step=0", 400, "steps must be a whole number from 2 to 64"),
    ("api/face.png?seed=1&to=2&steps=8&step=8", 400, "step must be a whole number from 0 to 7"),
    ("api/face.png?seed=1&truncation=0", 400, "truncation must be a number from 0.05 to 5"),
    ("api/face.png?seed=1&truncation=nan", 400, "truncation must be a number"),
    ("api/face.png?seed=1&truncation=inf", 400, "truncation must be a number"),
    ("api/face.png?seed=1&dials=Bald:1", 400, "dials: unknown attribute 'Bald' (attributes: Smiling, Male)"),
    ("api/face.png?seed=1&dials=Male:9", 400, "STRENGTH from -5 to 5, got 'Male:9'"),
    ("api/face.png?seed=1&dials=Male:1,Male:2", 400, "each attribute once"),
    ("api/save?seed=1&dials=Male", 400, "got 'Male'"),
    ("api/model?start=1", 400, "unknown parameter 'start'; this request takes: none"),
    ("api/face.png?seed", 400, "malformed query string"),
    ("api/nothing", 404, "no page /api/nothing"),
    ("../dcgan_tf/config.py", 404, "no page"),
    ("explore.py", 404, "no page /explore.py"),
    ("index.html", 404, "no page /index.html"),
    ("explore_static/app.js", 404, "no page"),
])
def test_bad_requests_get_a_status_and_one_line_message(server, path, status, message):
    got, content_type, body = get(server, path)
    assert got == status and content_type == "application/json"
    error = json.loads(body)["error"]
    assert message in error and "\n" not in error, error


def test_only_get_is_answered(server):
    request = urllib.request.Request(server.url + "api/page?start=0", data=b"x", method="POST")
    with pytest.raises(urllib.error.HTTPError) as error:
        urllib.request.urlopen(request, timeout=30)
    assert error.value.code == 405
    assert json.loads(error.value.read())["error"].startswith("the explorer answers GET only")


def get_with_host(port, path, host, method="GET"):
    """(status, headers, body) of a request with this Host header (urllib would send the URL's)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.putrequest(method, "/" + path, skip_host=True)
        connection.putheader("Host", host)
        connection.endheaders()
        response = connection.getresponse()
        return response.status, response.headers, response.read()
    finally:
        connection.close()


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:8470", "127.0.0.1.attacker.example",
                                  "localhost.attacker.example:80"])
def test_another_host_name_gets_403(server, host):
    """DNS rebinding (issue 33, case 2): a page on another name must not reach the API."""
    port = server.server_address[1]
    for path in ("api/model", "api/page?start=0&count=1", "api/save?seed=1", ""):
        status, headers, body = get_with_host(port, path, host)
        assert status == 403 and "default-src 'self'" in headers["Content-Security-Policy"]
        assert json.loads(body)["error"].startswith("the explorer answers requests for this machine only")
        assert str(server.explorer.model).encode() not in body  # the model's absolute path stays private


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1:{port}", "[::1]:{port}", "LOCALHOST.:{port}",
                                  "app.localhost:{port}", "192.168.1.20:{port}"])
def test_this_machines_names_and_addresses_are_answered(server, host):
    port = server.server_address[1]
    assert get_with_host(port, "api/model", host.format(port=port))[0] == 200


@pytest.mark.parametrize("method", ["HEAD", "OPTIONS", "get", "PUT", "TRACE"])
def test_other_methods_get_405_with_the_security_headers(server, method):
    """Issue 33, case 18: not http.server's 501 HTML page."""
    port = server.server_address[1]
    status, headers, body = get_with_host(port, "api/model", "127.0.0.1", method)
    assert status == 405 and headers["Allow"] == "GET" and headers["X-Content-Type-Options"] == "nosniff"
    assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
    if method != "HEAD":
        assert json.loads(body)["error"] == f"the explorer answers GET only, not {method}"


def test_the_page_is_served_with_a_policy_that_allows_nothing_from_elsewhere(server):
    for path, kind in [("", "text/html"), ("app.js", "text/javascript"), ("style.css", "text/css")]:
        with urllib.request.urlopen(server.url + path, timeout=30) as response:
            assert response.headers["Content-Type"].startswith(kind)
            assert "default-src 'self'" in response.headers["Content-Security-Policy"]
            text = response.read().decode()
        assert "http://" not in text and "https://" not in text  # nothing fetched from the internet


def slow_generator(started, release, concurrent):
    """Grey faces; the first call after `release` is armed waits for it, counting concurrent calls."""
    active = []

    def fn(z):
        active.append(1)
        concurrent.append(len(active))
        started.set()
        release.wait(30)
        active.pop()
        return np.full((len(z), 8, 8, 3), 128, np.uint8)

    return FaceGenerator(fn, latent_dim=4)


def test_a_client_that_leaves_mid_answer_is_not_reported(capfd):
    """Issue 33, case 18: the client resets the connection while its faces are made."""
    started, release, concurrent = threading.Event(), threading.Event(), []
    release.set()  # the warm-up passes
    explorer = Explorer(slow_generator(started, release, concurrent))
    release.clear()
    with running(explorer) as server:
        for _ in range(2):
            started.clear()
            leave_mid_answer(server.server_address[1])
            assert started.wait(30)
            time.sleep(0.1)  # the reset arrives while the faces are made
            release.set()
            time.sleep(0.3)
            release.clear()
        release.set()
        assert get(server, "api/model")[0] == 200
    err = capfd.readouterr().err
    assert "Traceback" not in err and "failed" not in err, err


def test_one_generation_at_a_time_and_a_full_queue_answers_503():
    started, release, concurrent = threading.Event(), threading.Event(), []
    release.set()  # the warm-up passes
    explorer = Explorer(slow_generator(started, release, concurrent), waiting=2)
    release.clear()
    started.clear()
    with running(explorer) as server:
        results = []

        def request(seed):
            results.append(get(server, f"api/face.png?seed={seed}"))

        threads = [threading.Thread(target=request, args=(seed,)) for seed in range(6)]
        threads[0].start()
        assert started.wait(30)  # one generating; of the five others two may wait, three are refused
        for thread in threads[1:]:
            thread.start()
        for _ in range(600):
            if len(results) == 3:
                break
            time.sleep(0.05)
        refused = list(results)
        assert [status for status, _, _ in refused] == [503] * 3
        assert all("busy" in json.loads(body)["error"] for _, _, body in refused)
        release.set()
        for thread in threads:
            thread.join(30)
        assert sorted(status for status, _, _ in results) == [200] * 3 + [503] * 3
        assert max(concurrent) == 1  # never two generations at once
        assert get(server, "api/face.png?seed=9")[0] == 200  # the queue drained


def test_directions_must_fit_the_model(tiny_model, tmp_path):
    broken = tmp_path / "model"
    broken.mkdir()
    (broken / "saved_model.pb").write_bytes(b"")
    assert load_directions(broken, 16) == {}
    np.savez(broken / "directions.npz", Smiling=np.ones(8))
    with pytest.raises(ValueError, match="direction 'Smiling' must be 16 finite values.*got 8"):
        load_directions(broken, 16)
    np.savez(broken / "directions.npz", **{"no-dash": np.ones(16)})
    with pytest.raises(ValueError, match="attribute name 'no-dash' must be letters, digits and _"):
        load_directions(broken, 16)
    np.savez(broken / "directions.npz", Smiling=np.zeros(16))
    with pytest.raises(ValueError, match="not all 0"):
        load_directions(broken, 16)
    (broken / "directions.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="not a readable .npz of directions"):
        load_directions(broken, 16)
    loaded = load_directions(tiny_model / "generator.keras", 16)  # beside a .keras file too
    assert list(loaded) == ["Smiling", "Male"] and np.isclose(np.linalg.norm(loaded["Male"]), 1)


def explore_process(*args, **env):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1", **env)
    return subprocess.Popen([sys.executable, "-m", "dcgan_tf", "explore", *map(str, args)], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


@pytest.mark.slow
def test_command_line_serves_on_loopback_next_free_port_opens_and_stops_on_ctrl_c(tiny_model, tmp_path):
    opened = tmp_path / "opened"  # --open runs $BROWSER (Python's webbrowser), here a script that notes the URL
    browser = f"{sys.executable} -c \"import sys; open('{opened}', 'w').write(sys.argv[1])\" %s"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        process = explore_process(tiny_model, "--port", port, "--open", BROWSER=browser)
        try:
            line = process.stdout.readline()
            assert line.startswith(f"Face explorer for {tiny_model} (16 px, dials: Smiling, Male) at http://127.0.0.1:")
            url = line.split(" at ")[1].split()[0]
            served_port = int(url.rsplit(":", 1)[1].strip("/"))
            assert port < served_port < port + 20  # the next free one
            with urllib.request.urlopen(url + "api/model", timeout=30) as response:
                assert json.loads(response.read())["image_size"] == 16
            for _ in range(200):
                if opened.exists() and opened.read_text():
                    break
                time.sleep(0.05)
            assert opened.read_text() == url
            for _ in range(3):  # clients that leave mid-answer (issue 33, case 18): no BrokenPipe traceback
                leave_mid_answer(served_port)
            assert get_with_host(served_port, "api/model", f"127.0.0.1:{served_port}")[0] == 200
        finally:
            process.send_signal(signal.SIGINT)
            out, err = process.communicate(timeout=60)
    assert process.returncode == 0 and out.strip() == "stopped" and "Traceback" not in err


def leave_mid_answer(port):
    """Ask for a page of faces and reset the connection before the answer comes."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as client:
        client.sendall(b"GET /api/page?start=0&count=64 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = reset


@pytest.mark.slow
@pytest.mark.parametrize("args, message", [
    (["missing_model"], "dcgan-tf explore: error: no model at missing_model"),
    (["missing_model", "--host", "0.0.0.0"], "dcgan-tf explore: error: no model at missing_model"),
    (["model", "--port", "70000"], "--port must be from 0 to 65515, got 70000"),
])
def test_command_line_errors_are_one_line(args, message):
    process = explore_process(*args)
    out, err = process.communicate(timeout=120)
    assert process.returncode != 0 and out == ""
    lines = [line for line in err.splitlines() if "explore" in line]  # not TensorFlow's start-up log
    assert message in lines[-1] and "Traceback" not in err, err
    if "0.0.0.0" in args:  # warned before anything else
        assert lines[0].startswith("dcgan-tf explore: warning: serving on 0.0.0.0: anyone who can reach this machine")
    assert len(lines) == 1 + ("0.0.0.0" in args), err
