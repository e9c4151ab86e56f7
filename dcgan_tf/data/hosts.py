"""Where CelebA's files come from: HTTP(S) mirrors, Google Drive (its confirmation page followed)
and Kaggle, each a source that writes one file, resuming what is there (dcgan_tf.data.download
verifies it and tries the next source when one fails).
"""

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
from html.parser import HTMLParser
from http.cookiejar import CookieJar
from pathlib import Path

DRIVE_URL = "https://drive.google.com/uc"
TIMEOUT = 30  # seconds without a byte before a connection counts as lost
TRIES = 3  # connections per source and file; each one resumes where the last stopped
MIN_RATE, RATE_WINDOW = 1024, 60  # bytes a second, averaged over seconds: slower counts as a lost connection
SCHEMES = ("http", "https")  # the only links followed: a page may point at file:// or ftp://
CHUNK = 1 << 20
PAGE_LIMIT = 1 << 20  # bytes of a web page read to find out what it says
OTHER_SOURCES = "--mirror URL or --kaggle OWNER/DATASET"


class SourceError(Exception):
    """One source cannot deliver a file (the next one is tried)."""


class Unreachable(SourceError):
    """No connection to the source at all: no network, or the host is down."""


def say(message):
    print(message, file=sys.stderr, flush=True)


def size_text(count):
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
        return (f"{self.name}: {100 * self.done / self.total:3.0f}% {size_text(self.done)} of {size_text(self.total)}"
                f" at {size_text(rate)}/s")

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
                    raise SourceError(f"the connection broke {TRIES} times, last at {size_text(done)} of "
                                      f"{size_text(file.size)} ({_reason(error)})") from None
                say(f"{file.name}: connection lost at {size_text(done)} of {size_text(file.size)} ({_reason(error)}): resuming")

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
            say(f"{file.name}: {'resuming at ' + size_text(done) + ' of' if done else 'downloading'} "
                f"{size_text(file.size)} from {self.label}")
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
                raise TimeoutError(f"slower than {size_text(MIN_RATE)}/s for {RATE_WINDOW} s")
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
        say(f"{file.name}: downloading {size_text(file.size)} from {self.label}")
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
