"""Downloading CelebA's official files, verified and resumable
(the dcgan-tf download command is dcgan_tf/cli/download.py).
"""

import hashlib
import http.client
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from dataclasses import dataclass
from html.parser import HTMLParser
from http.cookiejar import CookieJar
from pathlib import Path

from dcgan_tf.utils import locks
from dcgan_tf.utils.files import CACHE_DIR, check_writable, partial_path


@dataclass(frozen=True)
class RemoteFile:
    name: str
    size: int
    sha256: str
    md5: str
    drive_id: str


# Google Drive ids, sizes and SHA-256 as in TensorFlow Datasets' celeb_a; MD5 as in torchvision's CelebA.
# The two small files first: a quota or network problem shows in seconds, not after 1.3 GiB.
CELEBA = (
    RemoteFile("list_attr_celeba.txt", 26_721_026,
               "f0e5da289d5ccf75ffe8811132694922b60f2af59256ed362afa03fefba324d0",
               "75e246fa4810816ffd6ee81facbd244c", "0B7EVK8r0v71pblRyaVFSWGxPY0U"),
    RemoteFile("list_eval_partition.txt", 2_836_386,
               "fc955bcb3ef8fbdf7d5640d9a8693a8431b5f2ee291a5c1449a1549e7e073fe7",
               "d32c9cbf5e040fd4025c592c306e6668", "0B7EVK8r0v71pY0NSMzRuSXJEVkk"),
    RemoteFile("img_align_celeba.zip", 1_443_490_838,
               "46fb89443c578308acf364d7d379fe1b9efb793042c0af734b6112e4fd3a8c74",
               "00d2c5bc6d35e252742224ab0c1e8fcb", "0B7EVK8r0v71pZjFTYXZWM3FlRnM"),
)
IMAGES, ATTRIBUTES, PARTITION = "img_align_celeba.zip", "list_attr_celeba.txt", "list_eval_partition.txt"
DEFAULT_DIR = CACHE_DIR / "celeba"
DRIVE_URL = "https://drive.google.com/uc"
TIMEOUT = 30  # seconds without a byte before a connection counts as lost
TRIES = 3  # connections per source and file; each one resumes where the last stopped
MIN_RATE, RATE_WINDOW = 1024, 60  # bytes a second, averaged over seconds: slower counts as a lost connection
SCHEMES = ("http", "https")  # the only links followed: a page may point at file:// or ftp://
CHUNK = 1 << 20
PAGE_LIMIT = 1 << 20  # bytes of a web page read to find out what it says
OTHER_SOURCES = "--mirror URL or --kaggle OWNER/DATASET"


class DownloadError(Exception):
    """No source delivered a file; the message says why and what to do."""


class SourceError(Exception):
    """One source cannot deliver a file (the next one is tried)."""


class Unreachable(SourceError):
    """No connection to the source at all: no network, or the host is down."""


class NotDownloaded(ValueError):
    """A dataset name (`--data celeba`) whose files are not downloaded yet."""


def say(message):
    print(message, file=sys.stderr, flush=True)


# --- resolving `--data celeba` ----------------------------------------------------------

def resolve_dataset_path(spec, name=IMAGES, root=None):
    """"celeba" -> the path of its downloaded file `name` (IMAGES for --data, ATTRIBUTES for
    --attrs, PARTITION for --holdout); any other spec is returned unchanged. NotDownloaded says how to get the file."""
    if spec != "celeba":
        return spec
    path = Path(root or DEFAULT_DIR) / name
    if not path.is_file():
        local = " (for the folder named celeba here, write ./celeba)" if Path("celeba").exists() else ""
        raise NotDownloaded(f"celeba: {path} is not downloaded yet: run `dcgan-tf download celeba` "
                            f"(with --to DIR, pass DIR/{name} instead){local}")
    return str(path)


# --- checking a file --------------------------------------------------------------------

def mismatch(file, path):
    """None if `path` holds exactly `file` (size, SHA-256, MD5), else what differs."""
    size = path.stat().st_size
    if size != file.size:
        return f"{size:,} bytes, expected {file.size:,}"
    sha256, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            sha256.update(chunk)
            md5.update(chunk)
    for name, digest, expected in (("SHA-256", sha256, file.sha256), ("MD5", md5, file.md5)):
        if digest.hexdigest() != expected:
            return f"{name} {digest.hexdigest()}, expected {expected}"
    return None


def _size(count):
    return f"{count / 2**20:.1f} MiB" if count >= 2**20 else f"{count / 2**10:.1f} KiB"


class Progress:
    """A one-line byte counter on stderr, redrawn on a terminal and printed once at the end elsewhere."""

    def __init__(self, name, total, done):
        self.name, self.total, self.start_done, self.done = name, total, done, done
        self.start = self.drawn = time.monotonic()
        self.live = sys.stderr.isatty()

    def add(self, count):
        self.done += count
        if self.live and time.monotonic() - self.drawn > 0.2:
            self.drawn = time.monotonic()
            print(f"\r{self.line()}", end="", file=sys.stderr, flush=True)

    def line(self):
        rate = (self.done - self.start_done) / max(time.monotonic() - self.start, 1e-6)
        return (f"{self.name}: {100 * self.done / self.total:3.0f}% {_size(self.done)} of {_size(self.total)}"
                f" at {_size(rate)}/s")

    def close(self):
        print(f"\r{self.line()}", file=sys.stderr, flush=True)


# --- web pages instead of data ----------------------------------------------------------

class _Page(HTMLParser):
    """What a web page holds for us: its title and text, and Google Drive's way on to the file
    (the hidden fields of its "download anyway" form, or an older confirm=... link)."""

    def __init__(self, html):
        super().__init__()
        self.title, self.text, self.form_action, self.form_fields, self.confirm_link = "", [], None, {}, None
        self._in_title = self._in_form = False
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "form" and attrs.get("id") == "download-form":
            self.form_action, self._in_form = attrs.get("action") or "", True
        elif tag == "input" and self._in_form and attrs.get("type") == "hidden" and attrs.get("name"):
            self.form_fields[attrs["name"]] = attrs.get("value") or ""
        elif tag == "a" and self.confirm_link is None and "confirm=" in (attrs.get("href") or ""):
            self.confirm_link = attrs["href"]
        self._in_title = tag == "title"

    def handle_endtag(self, tag):
        self._in_title = False
        if tag == "form":
            self._in_form = False

    def handle_data(self, data):
        if self._in_title:
            self.title += data
        self.text.append(data)

    def next_url(self, page_url):
        """The URL that confirms the download, or None."""
        if self.form_action is not None:
            action = urllib.parse.urljoin(page_url, self.form_action)
            return action + ("&" if "?" in action else "?") + urllib.parse.urlencode(self.form_fields)
        return self.confirm_link and urllib.parse.urljoin(page_url, self.confirm_link)

    def problem(self):
        """Why the page stands where the file should be, when it says so; else None."""
        text = " ".join(self.text + [self.title]).lower()
        if "quota exceeded" in text or "too many users have viewed or downloaded" in text:
            return f"quota exceeded for this file: try again later, or use another source ({OTHER_SOURCES})"
        if any(words in text for words in ("access denied", "you need access", "request access",
                                           "can't view or download", "you need permission")):
            return f"access denied: the file is not public (or was removed): use another source ({OTHER_SOURCES})"
        return None


def _is_page(content_type, first_bytes):
    return "text/html" in content_type or first_bytes.lstrip()[:15].lower().startswith((b"<!doctype html", b"<html"))


# --- sources ----------------------------------------------------------------------------

def _range_start(response):
    """The first byte a 206 response holds, from its Content-Range; None if it does not say."""
    match = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range", "").strip())
    return int(match.group(1)) if match else None


def _expected_total(response, offset):
    """The full file size the response announces (Content-Range, else offset + Content-Length), or None."""
    content_range = response.headers.get("Content-Range", "")
    if "/" in content_range and content_range.rsplit("/", 1)[1].isdigit():
        return int(content_range.rsplit("/", 1)[1])
    length = response.headers.get("Content-Length")
    return offset + int(length) if length and length.isdigit() else None


class HttpSource:
    """Files over HTTP(S): a mirror, or Google Drive (whose confirmation page is followed)."""

    def __init__(self, label, url_for):
        self.label, self.url_for = label, url_for

    def fetch(self, file, partial):
        """Write `file` to `partial`, resuming what is there; a lost connection resumes up to TRIES times."""
        for attempt in range(1, TRIES + 1):
            done = partial.stat().st_size if partial.exists() else 0
            try:
                return self._fetch_once(file, partial, done)
            except (http.client.HTTPException, ConnectionError, TimeoutError) as error:
                done = partial.stat().st_size if partial.exists() else 0
                if attempt == TRIES:
                    raise SourceError(f"the connection broke {TRIES} times, last at {_size(done)} of "
                                      f"{_size(file.size)} ({_reason(error)})") from None
                say(f"{file.name}: connection lost at {_size(done)} of {_size(file.size)} ({_reason(error)}): resuming")

    def _fetch_once(self, file, partial, done):
        if done > file.size:  # not the file we expect: start again
            partial.unlink()
            done = 0
        if done == file.size:  # complete from an earlier run, only the check is left
            return
        with self._open(self.url_for(file), done) as response:
            start = _range_start(response) if response.status == 206 else 0  # 200: the server ignored Range
            if start != done:
                if start != 0:  # neither where we asked nor the beginning: ask for the whole file next
                    partial.unlink(missing_ok=True)
                    raise ConnectionResetError(f"the server resumed at byte {start}, not at byte {done} as asked; "
                                               "starting again from the beginning")
                done = 0
            total = _expected_total(response, done)
            if total is not None and total != file.size:
                raise SourceError(f"serves {total:,} bytes, expected {file.size:,}: not the official file")
            say(f"{file.name}: {'resuming at ' + _size(done) + ' of' if done else 'downloading'} "
                f"{_size(file.size)} from {self.label}")
            progress = Progress(file.name, file.size, done)
            with open(partial, "ab" if done else "wb") as out:
                try:
                    _copy(response, out, file.size, progress)
                finally:
                    progress.close()
                if out.tell() < file.size:  # http.client returns a short body, without an error
                    raise ConnectionResetError("the server closed the connection early")
            if response.read1(1):  # a server that sends no length may send more than the file
                partial.unlink()
                raise SourceError(f"sends more than the {file.size:,} bytes expected: not the official file")

    def _open(self, url, offset):
        """A response that streams the file from `offset`; follows Google Drive's confirmation
        page, turns other pages and HTTP errors into a SourceError."""
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()), _HttpRedirects)
        headers = {"User-Agent": "Mozilla/5.0 (compatible; dcgan-tf)"}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        for _ in range(2):  # Google Drive's confirmation page, then the confirmed download
            _check_scheme(url)
            try:
                response = opener.open(urllib.request.Request(url, headers=headers), timeout=TIMEOUT)
            except urllib.error.HTTPError as error:
                raise SourceError(_http_problem(error)) from None
            except (urllib.error.URLError, OSError) as error:
                raise Unreachable(f"cannot connect to {urllib.parse.urlsplit(url).netloc} ({_reason(error)}): "
                                  "no network, or the host is down") from None
            if not _is_page(response.headers.get("Content-Type", ""), response.peek(64)):
                return response
            with response:
                page = _Page(response.read(PAGE_LIMIT).decode("utf-8", "replace"))
            url = page.next_url(response.url)
            if url is None:
                raise SourceError(page.problem() or f"a web page ({page.title.strip()!r}) instead of the file")
        raise SourceError("a second confirmation page instead of the file")


def _copy(response, out, size, progress):
    """Write the response's body to `out` until it holds `size` bytes or the body ends;
    TimeoutError when fewer than MIN_RATE bytes a second arrive over RATE_WINDOW seconds
    (a server that trickles a byte now and then never trips the socket's timeout)."""
    window_start, window_bytes = time.monotonic(), 0
    while (left := size - out.tell()) > 0 and (chunk := response.read1(min(CHUNK, left))):
        out.write(chunk)
        progress.add(len(chunk))
        window_bytes += len(chunk)
        if time.monotonic() - window_start >= RATE_WINDOW:
            if window_bytes < MIN_RATE * RATE_WINDOW:
                raise TimeoutError(f"slower than {_size(MIN_RATE)}/s for {RATE_WINDOW} s")
            window_start, window_bytes = time.monotonic(), 0


def _check_scheme(url):
    scheme = urllib.parse.urlsplit(url).scheme
    if scheme not in SCHEMES:
        raise SourceError(f"refusing to follow a {scheme or 'relative'}: link ({url[:80]}): only http and https")


class _HttpRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects to http(s) only (urllib's own also follow ftp://)."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):
        _check_scheme(newurl)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _reason(error):
    reason = getattr(error, "reason", None) or error
    return getattr(reason, "strerror", None) or str(reason) or type(reason).__name__


def _http_problem(error):
    body = error.read(PAGE_LIMIT) if error.fp else b""
    if _is_page(error.headers.get("Content-Type", ""), body):
        problem = _Page(body.decode("utf-8", "replace")).problem()
        if problem:
            return problem
    if error.code in (401, 403):
        return f"access denied (HTTP {error.code}): use another source ({OTHER_SOURCES})"
    if error.code == 404:
        return "not found (HTTP 404)"
    if error.code == 429:
        return "too many requests (HTTP 429): try again later"
    return f"HTTP {error.code} {error.reason}"


def mirror(base):
    """A source that holds the files by name under the URL `base`."""
    parts = urllib.parse.urlsplit(base)
    if parts.scheme not in SCHEMES or not parts.netloc:
        raise ValueError(f"--mirror {base!r}: expected an http:// or https:// URL, e.g. https://example.org/celeba/")
    base = base if base.endswith("/") else base + "/"
    return HttpSource(base, lambda file: urllib.parse.urljoin(base, urllib.parse.quote(file.name)))


def google_drive(url):
    """Google Drive's download endpoint `url` (DRIVE_URL), files by their Drive ids."""
    return HttpSource("Google Drive",
                      lambda file: f"{url}?{urllib.parse.urlencode({'export': 'download', 'id': file.drive_id})}")


def _kaggle_credentials():
    if os.environ.get("KAGGLE_API_TOKEN") or (os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY")):
        return True
    folders = [os.environ.get("KAGGLE_CONFIG_DIR"), Path.home() / ".kaggle", Path.home() / ".config" / "kaggle"]
    return any((Path(folder) / name).is_file() for folder in folders if folder
               for name in ("kaggle.json", "access_token"))


class KaggleSource:
    """A Kaggle dataset that holds the files under their own names, through the kaggle client."""

    def __init__(self, dataset):
        self.dataset, self.label = dataset, f"Kaggle {dataset}"

    def fetch(self, file, partial):
        if shutil.which("kaggle") is None:
            raise SourceError("the kaggle client is not installed (pip install kaggle)")
        if not _kaggle_credentials():
            raise SourceError("no Kaggle credentials: put kaggle.json in ~/.kaggle, "
                              "or set KAGGLE_USERNAME and KAGGLE_KEY")
        say(f"{file.name}: downloading {_size(file.size)} from {self.label}")
        with tempfile.TemporaryDirectory(prefix=".kaggle-", dir=partial.parent) as folder:
            # -d works with old and new clients; their progress goes to stderr, as ours (stdout is for the paths)
            run = subprocess.run(["kaggle", "datasets", "download", "-d", self.dataset, "-f", file.name, "-p", folder],
                                 stdout=2, stderr=subprocess.PIPE, text=True)
            if run.returncode:
                lines = run.stderr.strip().splitlines()
                raise SourceError(f"kaggle failed: {lines[-1] if lines else f'exit status {run.returncode}'}")
            got, zipped = Path(folder) / file.name, Path(folder) / (file.name + ".zip")
            if not got.exists() and zipfile.is_zipfile(zipped):  # the client may get a file zipped
                with zipfile.ZipFile(zipped) as archive:
                    if file.name in archive.namelist():
                        archive.extract(file.name, folder)
            if not got.exists():
                raise SourceError(f"the kaggle client wrote no {file.name}")
            os.replace(got, partial)


# --- downloading ------------------------------------------------------------------------

def _check_space(file, partial):
    needed = file.size - (partial.stat().st_size if partial.exists() else 0)
    free = shutil.disk_usage(partial.parent).free
    if needed > free:
        raise DownloadError(f"{file.name} needs {_size(needed)} more, but {partial.parent} has {_size(free)} free: "
                            "free some space or choose another folder with --to DIR")


def fetch(file, path, sources):
    """Put `file` at `path`, verified: keep a verified copy, else try `sources` in order.
    One process at a time (locks.InUse for a second one)."""
    path = Path(path)
    with locks.exclusive(path.with_name(f".{path.name}.lock"), path,
                         "another download writes it: wait for it to end, or choose another --to"):
        return _fetch(file, path, sources)


def _fetch(file, path, sources):
    if (path.exists() or path.is_symlink()) and not path.is_file():
        raise DownloadError(f"{path} is in the way of {file.name}: it is a folder, a dangling link or not a "
                            "regular file: move it away, or choose another --to")
    if path.exists():
        problem = mismatch(file, path)
        if problem is None:
            say(f"{file.name}: already downloaded and verified")
            return path
        say(f"{file.name}: the copy in {path.parent} does not match ({problem}): downloading it again")
        path.unlink()
    partial = partial_path(path)
    _check_space(file, partial)
    failures = []
    for source in sources:
        try:
            source.fetch(file, partial)
        except SourceError as error:
            say(f"{file.name}: {source.label}: {error}")
            failures.append(error)
            continue
        except OSError as error:  # writing the partial file: a full disk, an I/O error
            raise DownloadError(f"could not write {partial} ({error.strerror or error}): free some space, "
                                f"or choose another --to; {_kept(partial)}") from None
        problem = mismatch(file, partial)
        if problem is not None:
            partial.unlink()
            say(f"{file.name}: {source.label}: checksum mismatch ({problem}): deleted the partial file")
            failures.append(SourceError(problem))
            continue
        os.replace(partial, path)
        say(f"{file.name}: verified (size, SHA-256 and MD5)")
        return path
    kept = f"; {_kept(partial)}" if partial.exists() else ""
    if failures and all(isinstance(failure, Unreachable) for failure in failures):
        raise DownloadError(f"cannot reach any source of {file.name}: check the network connection{kept}")
    raise DownloadError(f"no source delivered {file.name} (reasons above){kept}: try again later, add a "
                        f"source ({OTHER_SOURCES}), or download it by hand (README: Training on CelebA)")


def _kept(partial):
    return f"{_size(partial.stat().st_size if partial.exists() else 0)} are kept for the next run to resume"


def download(files, folder, sources):
    """Fetch each of `files` into `folder` (see fetch); returns their paths."""
    folder = Path(folder).expanduser()
    check_writable(folder, "--to")
    return [fetch(file, folder / file.name, sources) for file in files]
