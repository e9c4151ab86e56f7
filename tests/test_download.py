"""The CelebA downloader against an HTTP server on 127.0.0.1 that each test starts: a fake
Google Drive (direct small files, a confirmation page before large ones) and mirrors, serving
a small fake archive with its own checksum table. Nothing here touches the internet."""

import errno
import hashlib
import io
import os
import socket
import subprocess
import sys
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pytest
from conftest import ROOT, random_images
from PIL import Image

from dcgan_tf.cli import download as download_cli
from dcgan_tf.data import download, hosts
from dcgan_tf.data.download import (
    DownloadError,
    NotDownloaded,
    RemoteFile,
    resolve_dataset_path,
)
from dcgan_tf.data.hosts import KaggleSource, google_drive, mirror
from dcgan_tf.utils import locks

QUOTA_PAGE = b"""<html><head><title>Google Drive - Quota exceeded</title></head><body>
<p class="uc-error-caption">Sorry, you can't view or download this file at this time.</p>
<p class="uc-error-subcaption">Too many users have viewed or downloaded this file recently. Please try
accessing the file again later.</p></body></html>"""
DENIED_PAGE = b"<html><head><title>Google Drive</title></head><body><p>Access denied</p></body></html>"
CONFIRM_PAGE = """<html><head><title>Google Drive - Virus scan warning</title></head><body>
<p>Google Drive can't scan this file for viruses.</p>
<form id="download-form" action="/download" method="get">
<input type="submit" id="uc-download-link" value="Download anyway"/>
<input type="hidden" name="id" value="{id}"><input type="hidden" name="export" value="download">
<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="5f0e&amp;b"></form>
</body></html>"""


def fake_archive():
    """A few KB: a zip of 3 tiny faces, named as in img_align_celeba.zip."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for i, image in enumerate(random_images(3, 20), 1):
            png = io.BytesIO()
            Image.fromarray(image).save(png, "PNG")
            archive.writestr(f"img_align_celeba/{i:06d}.png", png.getvalue())
    return buffer.getvalue()


def remote(name, data, drive_id):
    return RemoteFile(name, len(data), hashlib.sha256(data).hexdigest(), hashlib.md5(data).hexdigest(), drive_id)


ATTRS = b"3\nSmiling Male\n000001.png -1 1\n000002.png 1 -1\n000003.png 1 1\n"
ARCHIVE = fake_archive()
FILES = (remote("list_attr_celeba.txt", ATTRS, "attrs-id"), remote("img_align_celeba.zip", ARCHIVE, "zip-id"))
CONTENT = {"attrs-id": ATTRS, "zip-id": ARCHIVE}


class FakeServer:
    """Routes: path -> (status, content type, body); the Drive routes /uc and /download act like
    Google Drive's. `cut` counts the file responses to break off halfway; every request is logged."""

    def __init__(self):
        self.routes, self.requests, self.cut, self.drive = {}, [], 0, True
        server = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 5

            def do_GET(self):
                server.requests.append((self.path, self.headers.get("Range")))
                server.answer(self)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def answer(self, handler):
        path, query = urlsplit(handler.path).path, parse_qs(urlsplit(handler.path).query)
        if path == "/uc" and self.drive:
            file_id = query["id"][0]
            if file_id == "zip-id":  # a large file: the "can't scan for viruses" page first
                return self.send(handler, 200, "text/html; charset=utf-8", CONFIRM_PAGE.format(id=file_id).encode())
            return self.send_file(handler, CONTENT[file_id])
        if path == "/download" and query.get("confirm") == ["t"] and query.get("uuid") == ["5f0e&b"]:
            return self.send_file(handler, CONTENT[query["id"][0]])
        if callable(self.routes.get(path)):  # a route that answers in its own (misbehaving) way
            return self.routes[path](handler)
        if path in self.routes:
            status, kind, body = self.routes[path]
            return self.send_file(handler, body) if kind is None else self.send(handler, status, kind, body)
        self.send(handler, 404, "text/html", b"<html><title>404 Not Found</title></html>")

    @staticmethod
    def send(handler, status, kind, body, headers=()):
        handler.send_response(status)
        for name, value in [("Content-Type", kind), ("Content-Length", str(len(body))), *headers]:
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    def send_file(self, handler, data):
        """The file, from the Range start if asked (206); broken off halfway while `cut` > 0."""
        start = int(handler.headers.get("Range", "bytes=0-")[6:].rstrip("-"))
        headers = [("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")] if start else []
        body = data[start:]
        if self.cut > 0:
            self.cut -= 1
            handler.send_response(206 if start else 200)
            for name, value in [("Content-Length", str(len(body))), *headers]:
                handler.send_header(name, value)
            handler.end_headers()
            handler.wfile.write(body[:len(body) // 2])
            handler.wfile.flush()
            handler.connection.shutdown(socket.SHUT_RDWR)
            handler.close_connection = True
            return
        self.send(handler, 206 if start else 200, "application/octet-stream", body, headers)

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setattr(hosts, "TIMEOUT", 5)
    fake = FakeServer()
    yield fake
    fake.close()


def closed_port_url():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_downloads_through_drive_confirmation_page(server, tmp_path, capsys):
    paths = download.download(FILES, tmp_path, [google_drive(server.url + "/uc")])
    assert [p.read_bytes() for p in paths] == [ATTRS, ARCHIVE]
    assert leftovers(tmp_path) == []
    assert [path for path, _ in server.requests] == [
        "/uc?export=download&id=attrs-id", "/uc?export=download&id=zip-id",
        "/download?id=zip-id&export=download&confirm=t&uuid=5f0e%26b"]
    assert "img_align_celeba.zip: verified (size, SHA-256 and MD5)" in capsys.readouterr().err


def test_verified_copy_is_not_downloaded_again(server, tmp_path, capsys):
    download.download(FILES, tmp_path, [google_drive(server.url + "/uc")])
    server.requests.clear()
    download.download(FILES, tmp_path, [google_drive(server.url + "/uc")])
    assert server.requests == []
    assert "img_align_celeba.zip: already downloaded and verified" in capsys.readouterr().err


def test_resumes_after_a_connection_cut_mid_file(server, tmp_path, capsys):
    server.cut = 1
    path = download.fetch(FILES[1], tmp_path / "img_align_celeba.zip", [google_drive(server.url + "/uc")])
    assert path.read_bytes() == ARCHIVE
    half = len(ARCHIVE) // 2
    assert server.requests[-1] == ("/download?id=zip-id&export=download&confirm=t&uuid=5f0e%26b", f"bytes={half}-")
    assert (f"connection lost at {half / 1024:.1f} KiB of {len(ARCHIVE) / 1024:.1f} KiB "
            "(the server closed the connection early): resuming") in capsys.readouterr().err


def test_a_partial_file_is_kept_and_resumed_by_the_next_run(server, tmp_path, capsys):
    server.routes["/m/list_attr_celeba.txt"] = (200, None, ATTRS)
    server.cut = hosts.TRIES  # every connection of this run breaks
    target, partial = tmp_path / "list_attr_celeba.txt", tmp_path / ".list_attr_celeba.txt.partial"
    with pytest.raises(DownloadError, match="are kept for the next run to resume"):
        download.fetch(FILES[0], target, [mirror(server.url + "/m")])
    kept = partial.stat().st_size
    assert 0 < kept < len(ATTRS) and not target.exists()
    assert f"the connection broke 3 times, last at {kept / 1024:.1f} KiB of {len(ATTRS) / 1024:.1f} KiB" \
        in capsys.readouterr().err
    download.fetch(FILES[0], target, [mirror(server.url + "/m")])
    assert target.read_bytes() == ATTRS and not partial.exists()
    assert server.requests[-1] == ("/m/list_attr_celeba.txt", f"bytes={kept}-")


def test_checksum_mismatch_deletes_the_partial_file(server, tmp_path, capsys):
    wrong = bytes(reversed(ATTRS))  # same size, other bytes
    server.routes["/m/list_attr_celeba.txt"] = (200, None, wrong)
    with pytest.raises(DownloadError, match="no source delivered list_attr_celeba.txt"):
        download.fetch(FILES[0], tmp_path / "list_attr_celeba.txt", [mirror(server.url + "/m")])
    err = capsys.readouterr().err
    assert (f"checksum mismatch (SHA-256 {hashlib.sha256(wrong).hexdigest()}, expected {FILES[0].sha256}): "
            "deleted the partial file") in err
    assert list(tmp_path.iterdir()) == []


def test_a_wrong_size_is_refused_before_downloading(server, tmp_path, capsys):
    server.routes["/m/list_attr_celeba.txt"] = (200, None, ATTRS + b"more")
    with pytest.raises(DownloadError):
        download.fetch(FILES[0], tmp_path / "list_attr_celeba.txt", [mirror(server.url + "/m")])
    assert f"serves {len(ATTRS) + 4:,} bytes, expected {len(ATTRS):,}: not the official file" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("status, page, message", [
    (200, QUOTA_PAGE, "quota exceeded for this file: try again later, or use another source "
                      "(--mirror URL or --kaggle OWNER/DATASET)"),
    (403, DENIED_PAGE, "access denied: the file is not public (or was removed): use another source"),
])
def test_drive_quota_and_access_denied_pages_are_reported_never_saved(server, tmp_path, capsys, status, page,
                                                                      message):
    server.drive = False
    server.routes["/uc"] = (status, "text/html; charset=utf-8", page)
    with pytest.raises(DownloadError, match="no source delivered img_align_celeba.zip"):
        download.fetch(FILES[1], tmp_path / "img_align_celeba.zip", [google_drive(server.url + "/uc")])
    assert f"img_align_celeba.zip: Google Drive: {message}" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_page_served_as_data_is_recognised(server, tmp_path, capsys):
    server.routes["/m/img_align_celeba.zip"] = (200, "application/octet-stream", b"<!DOCTYPE html>" + QUOTA_PAGE)
    server.routes["/m/list_attr_celeba.txt"] = (200, "text/html", b"<html><title>Sign in</title></html>")
    with pytest.raises(DownloadError):
        download.download(FILES[1:], tmp_path, [mirror(server.url + "/m")])
    with pytest.raises(DownloadError):
        download.download(FILES[:1], tmp_path, [mirror(server.url + "/m")])
    err = capsys.readouterr().err
    assert "img_align_celeba.zip: " + server.url + "/m/: quota exceeded for this file" in err
    assert "list_attr_celeba.txt: " + server.url + "/m/: a web page ('Sign in') instead of the file" in err
    assert list(tmp_path.iterdir()) == []


def test_404_on_the_first_source_then_the_second(server, tmp_path, capsys):
    server.routes["/second/list_attr_celeba.txt"] = (200, None, ATTRS)
    sources = [mirror(server.url + "/first/"), mirror(server.url + "/second/")]
    path = download.fetch(FILES[0], tmp_path / "list_attr_celeba.txt", sources)
    assert path.read_bytes() == ATTRS
    assert f"list_attr_celeba.txt: {server.url}/first/: not found (HTTP 404)" in capsys.readouterr().err
    assert [p for p, _ in server.requests] == ["/first/list_attr_celeba.txt", "/second/list_attr_celeba.txt"]


def test_unreachable_host_is_a_clear_error(tmp_path, capsys):
    url = closed_port_url()
    with pytest.raises(DownloadError) as error:
        download.download(FILES, tmp_path, [mirror(url), google_drive(url + "/uc")])
    assert str(error.value) == "cannot reach any source of list_attr_celeba.txt: check the network connection"
    host = url.removeprefix("http://")
    assert (f"list_attr_celeba.txt: Google Drive: cannot connect to {host} (Connection refused): "
            "no network, or the host is down") in capsys.readouterr().err


def fake_kaggle(tmp_path, monkeypatch):
    """A `kaggle` command on PATH that copies files from a folder, and credentials in the environment."""
    store, bin_dir = tmp_path / "kaggle-store", tmp_path / "bin"
    store.mkdir()
    bin_dir.mkdir()
    script = bin_dir / "kaggle"
    script.write_text(f"""#!{sys.executable}
import shutil, sys
args = sys.argv[1:]
assert args[:4] == ["datasets", "download", "-d", "someone/celeba"], args
name, folder = args[args.index("-f") + 1], args[args.index("-p") + 1]
try:
    shutil.copy({str(store)!r} + "/" + name, folder)
except FileNotFoundError:
    sys.exit("404 - Not Found")
""")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("KAGGLE_USERNAME", "someone")
    monkeypatch.setenv("KAGGLE_KEY", "not-a-real-key")
    return store


def test_kaggle_after_a_drive_quota_page(server, tmp_path, capsys, monkeypatch):
    store = fake_kaggle(tmp_path, monkeypatch)
    (store / "list_attr_celeba.txt").write_bytes(ATTRS)
    server.drive = False
    server.routes["/uc"] = (200, "text/html", QUOTA_PAGE)
    folder = tmp_path / "celeba"
    sources = [google_drive(server.url + "/uc"), KaggleSource("someone/celeba")]
    assert download.fetch(FILES[0], folder / "list_attr_celeba.txt", sources).read_bytes() == ATTRS
    with pytest.raises(DownloadError):
        download.fetch(FILES[1], folder / "img_align_celeba.zip", sources)
    err = capsys.readouterr().err
    assert "list_attr_celeba.txt: verified" in err
    assert "img_align_celeba.zip: Kaggle someone/celeba: kaggle failed: 404 - Not Found" in err
    assert leftovers(folder) == []


def test_kaggle_needs_its_client(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(hosts.SourceError, match=r"the kaggle client is not installed \(pip install kaggle\)"):
        KaggleSource("someone/celeba").fetch(FILES[0], tmp_path / ".partial")


def test_cli_prints_the_paths(server, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(download, "CELEBA", FILES)
    server.routes["/m/list_attr_celeba.txt"] = (200, None, ATTRS)
    server.routes["/m/img_align_celeba.zip"] = (200, None, ARCHIVE)
    download_cli.main(["celeba", "--to", str(tmp_path), "--mirror", server.url + "/m"])
    out, err = capsys.readouterr()
    assert out.splitlines() == [str(tmp_path / "list_attr_celeba.txt"), str(tmp_path / "img_align_celeba.zip")]
    assert f"train on it: python train.py --preset dcgan32 --data {tmp_path / 'img_align_celeba.zip'}" in err


def test_cli_without_network(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(hosts, "DRIVE_URL", closed_port_url() + "/uc")
    with pytest.raises(SystemExit) as exit:
        download_cli.main(["celeba", "--to", str(tmp_path)])
    assert exit.value.code == ("dcgan-tf download: error: cannot reach any source of list_attr_celeba.txt: "
                               "check the network connection")


def test_data_celeba_resolves_to_the_download(tmp_path, monkeypatch):
    monkeypatch.setattr(download, "DEFAULT_DIR", tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(NotDownloaded, match=r"celeba: .*img_align_celeba.zip is not downloaded yet: "
                                            r"run `dcgan-tf download celeba`"):
        resolve_dataset_path("celeba")
    (tmp_path / "celeba").mkdir()
    with pytest.raises(NotDownloaded, match=r"\(for the folder named celeba here, write \./celeba\)"):
        resolve_dataset_path("celeba")
    assert resolve_dataset_path("faces.zip") == "faces.zip"
    (tmp_path / "img_align_celeba.zip").write_bytes(ARCHIVE)
    (tmp_path / "list_attr_celeba.txt").write_bytes(ATTRS)
    assert resolve_dataset_path("celeba", download.ATTRIBUTES) == str(tmp_path / "list_attr_celeba.txt")
    from dcgan_tf.data.sources import load_images
    images, report = load_images("celeba", 16, progress=False)
    assert images.shape == (3, 16, 16, 3) and report.source == str(tmp_path / "img_align_celeba.zip")
    assert np.array_equal(images, load_images(str(tmp_path / "img_align_celeba.zip"), 16, progress=False)[0])


# --- hostile servers, shared folders, bad --to (issue 33) --------------------------------

def download_cli_process(*args, cwd):
    """`dcgan-tf download celeba ARGS` in a subprocess: the real CELEBA table, so a test sees
    what the command does before any file is complete."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "dcgan_tf", "download", "celeba", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=60, check=False)


@pytest.mark.parametrize("link", ['<form id="download-form" action="file:///etc/hostname" method="get"></form>',
                                  '<a href="file:///etc/hostname?confirm=t">Download anyway</a>'])
def test_a_page_that_links_to_a_local_file_is_not_followed(server, tmp_path, capsys, link):
    """Case 3: a page's form action or confirm link is followed only to http(s)."""
    server.drive = False
    server.routes["/uc"] = (200, "text/html", f"<html><title>Google Drive</title><body>{link}</body></html>".encode())
    with pytest.raises(DownloadError):
        download.fetch(FILES[0], tmp_path / "list_attr_celeba.txt", [google_drive(server.url + "/uc")])
    assert "refusing to follow a file: link (file:///etc/hostname" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_a_second_download_into_the_same_folder_is_refused(server, tmp_path):
    """Case 4: while one process writes a file, another one into the same --to stops at once."""
    first = download.CELEBA[0].name
    with locks.exclusive(tmp_path / f".{first}.lock", "held", "by this test"):
        result = download_cli_process("--to", str(tmp_path), "--mirror", server.url + "/m", cwd=tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        f"dcgan-tf download: error: {tmp_path / first} is in use by process {os.getpid()}: another download writes it: "
        "wait for it to end, or choose another --to")
    assert server.requests == [] and sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_lock_is_not_left_behind_by_a_killed_process(tmp_path):
    """Cases 4 and 5: the kernel drops a killed owner's flock; the next process takes the lock."""
    code = ("import sys, time; from dcgan_tf.utils import locks\n"
            "with locks.exclusive(sys.argv[1], 'x', 'y'):\n    print('HELD', flush=True); time.sleep(60)")
    child = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / ".lock")], stdout=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT)})  # ended by SIGKILL, which it cannot catch
    assert child.stdout.readline() == "HELD\n"
    with pytest.raises(locks.InUse, match=f"the run is in use by process {child.pid}: wait"), \
            locks.exclusive(tmp_path / ".lock", "the run", "wait"):
        pass
    child.kill()
    child.wait()
    with locks.exclusive(tmp_path / ".lock", "the run", "wait"):
        assert (tmp_path / ".lock").read_text() == f"{os.getpid()}\n"
    assert not (tmp_path / ".lock").exists()


def lying_range(start):
    """A server that answers any Range with 206 and the file from byte `start` (whatever was asked)."""
    def answer(handler):
        if handler.headers.get("Range") is None:
            return FakeServer.send(handler, 200, "application/octet-stream", ATTRS)
        FakeServer.send(handler, 206, "application/octet-stream", ATTRS[start:],
                        [("Content-Range", f"bytes {start}-{len(ATTRS) - 1}/{len(ATTRS)}")])
    return answer


@pytest.mark.parametrize("start", [0, 3])
def test_a_resume_answered_from_another_byte_starts_again(server, tmp_path, start):
    """Case 8: 206 with a Content-Range that does not start where asked: never appended to what is kept."""
    server.routes["/m/list_attr_celeba.txt"] = lying_range(start)
    (tmp_path / ".list_attr_celeba.txt.partial").write_bytes(ATTRS[:10])
    path = download.fetch(FILES[0], tmp_path / "list_attr_celeba.txt", [mirror(server.url + "/m")])
    assert path.read_bytes() == ATTRS
    assert server.requests[0] == ("/m/list_attr_celeba.txt", "bytes=10-")


def endless_body(handler):
    """No Content-Length, and more bytes than the file has, until the client hangs up."""
    handler.send_response(200)
    handler.send_header("Content-Type", "application/octet-stream")
    handler.end_headers()
    handler.close_connection = True
    try:
        handler.wfile.write(ATTRS)
        for _ in range(1000):
            handler.wfile.write(bytes(1 << 16))
    except OSError:
        pass


def test_a_body_longer_than_the_file_is_cut_at_its_size(server, tmp_path, capsys, monkeypatch):
    """Case 9: with no length announced, no more than the file's size is written, then refused."""
    written = []
    copy = hosts._copy
    monkeypatch.setattr(hosts, "_copy", lambda response, out, size, progress: (
        copy(response, out, size, progress), written.append(out.tell())))
    server.routes["/m/list_attr_celeba.txt"] = endless_body
    with pytest.raises(DownloadError):
        download.fetch(FILES[0], tmp_path / "list_attr_celeba.txt", [mirror(server.url + "/m")])
    assert written == [len(ATTRS)]
    assert f"sends more than the {len(ATTRS):,} bytes expected: not the official file" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def trickle(handler):
    """The file's length announced, then a byte every 50 ms."""
    handler.send_response(200)
    handler.send_header("Content-Length", str(len(ATTRS)))
    handler.end_headers()
    try:
        for byte in ATTRS:
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            time.sleep(0.05)
    except OSError:
        pass


def test_a_trickling_server_counts_as_a_lost_connection(server, tmp_path, capsys, monkeypatch):
    """Case 15: bytes that keep coming, too slowly, do not keep the download waiting forever."""
    monkeypatch.setattr(hosts, "MIN_RATE", 100)
    monkeypatch.setattr(hosts, "RATE_WINDOW", 0.3)
    server.routes["/m/list_attr_celeba.txt"] = trickle
    started = time.monotonic()
    with pytest.raises(DownloadError, match="are kept for the next run to resume"):
        download.fetch(FILES[0], tmp_path / "list_attr_celeba.txt", [mirror(server.url + "/m")])
    assert time.monotonic() - started < 10
    assert "the connection broke 3 times, last at 0.0 KiB of 0.1 KiB (slower than 0.1 KiB/s for 0.3 s)" in capsys.readouterr().err


def test_bad_to_and_mirror_are_one_line_errors(tmp_path):
    """Case 17: the download CLI's arguments, each refused in one line before any network."""
    (tmp_path / "afile").write_text("x")
    (tmp_path / "dangling").symlink_to(tmp_path / "gone")
    (tmp_path / "d" / "list_attr_celeba.txt").mkdir(parents=True)  # a folder where a file goes
    cases = {
        ("--to", "afile"): "--to afile is a file, not a folder: choose another --to",
        ("--to", "dangling"): f"--to dangling is a link to {tmp_path / 'gone'}, which does not exist: "
                              "create that folder, or choose another --to",
        ("--to", "d"): "d/list_attr_celeba.txt is in the way of list_attr_celeba.txt: it is a folder, a dangling "
                       "link or not a regular file: move it away, or choose another --to",
        ("--mirror", "notaurl"): "--mirror 'notaurl': expected an http:// or https:// URL, "
                                 "e.g. https://example.org/celeba/",
    }
    for args, message in cases.items():
        mirror_args = [] if "--mirror" in args else ["--mirror", closed_port_url()]
        result = download_cli_process(*args, *mirror_args, cwd=tmp_path)
        assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.strip().splitlines()[-1] == f"dcgan-tf download: error: {message}", args


def test_a_read_only_or_full_disk_is_one_line(server, tmp_path, monkeypatch):
    """Case 17, as root can test it: a read-only --to and a disk that fills up mid-file."""
    monkeypatch.setattr(download, "CELEBA", FILES)
    server.routes["/m/list_attr_celeba.txt"] = (200, None, ATTRS)

    def read_only(**kwargs):
        raise OSError(errno.EROFS, "Read-only file system")
    with monkeypatch.context() as patch:
        patch.setattr("tempfile.TemporaryFile", read_only)
        with pytest.raises(SystemExit) as exit:
            download_cli.main(["celeba", "--to", str(tmp_path / "ro"), "--mirror", server.url + "/m"])
    assert exit.value.code == f"dcgan-tf download: error: --to {tmp_path / 'ro'} is not writable (Read-only file system): " \
                              "choose another --to"

    def full(response, out, size, progress):
        out.write(ATTRS[:5])
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(hosts, "_copy", full)
    with pytest.raises(SystemExit) as exit:
        download_cli.main(["celeba", "--to", str(tmp_path), "--mirror", server.url + "/m"])
    partial = tmp_path / ".list_attr_celeba.txt.partial"
    assert exit.value.code == (f"dcgan-tf download: error: could not write {partial} (No space left on device): free some "
                               "space, or choose another --to; 0.0 KiB are kept for the next run to resume")
