"""The face explorer's HTTP server and API over a trained generator
(the dcgan-tf explore command is dcgan_tf/cli/explore.py).
"""

import base64
import contextlib
import dataclasses
import errno
import io
import ipaddress
import json
import re
import shlex
import socket
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from urllib.parse import parse_qsl, urlsplit

import numpy as np
from PIL import Image

from dcgan_tf.model import latent

DEFAULT_PORT = 8470
PORTS_TRIED = 20  # from --port on, when it is taken
SEED_MAX = 2**31 - 1
COUNT_MAX = 64  # faces per page request
STEPS_MAX = 64
TRUNCATION_RANGE = (0.05, 5.0)
DIAL_MAX = 5.0  # latent standard deviations along a unit direction
WAITING = 8  # requests that may wait for the one being generated
STATIC = {"/": ("index.html", "text/html; charset=utf-8"), "/app.js": ("app.js", "text/javascript; charset=utf-8"),
          "/style.css": ("style.css", "text/css; charset=utf-8")}
HEADERS = {  # the page may load only what this server serves, and nothing may frame it
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; base-uri 'none'; "
                               "form-action 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}


class BadRequest(ValueError):
    """400: a parameter is unknown, repeated, missing or out of range."""


class Forbidden(ValueError):
    """403: the request names another host than this one."""


class Busy(RuntimeError):
    """503: the queue of requests waiting for the generator is full."""


class Query:
    """A request's query parameters: only the allowed names, each at most once, each value checked."""

    def __init__(self, text, allowed):
        try:
            pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text), max_num_fields=16)
        except ValueError as error:
            raise BadRequest(f"malformed query string ({error})") from None
        self._values = {}
        for name, value in pairs:
            if name not in allowed:
                takes = ", ".join(sorted(allowed)) or "none"
                raise BadRequest(f"unknown parameter {name!r}; this request takes: {takes}")
            if name in self._values:
                raise BadRequest(f"{name} is given twice")
            self._values[name] = value

    def __contains__(self, name):
        return name in self._values

    def integer(self, name, low, high, default=None):
        text = self._values.get(name, None if default is None else str(default))
        if text is None:
            raise BadRequest(f"{name} is missing")
        if not re.fullmatch(r"-?\d{1,10}", text) or not low <= int(text) <= high:
            raise BadRequest(f"{name} must be a whole number from {low} to {high}, got {text!r}")
        return int(text)

    def number(self, name, low, high):
        """A float in [low, high], or None when the parameter is not given."""
        text = self._values.get(name)
        if text is None:
            return None
        if not _in_range(text, low, high):
            raise BadRequest(f"{name} must be a number from {low:g} to {high:g}, got {text!r}")
        return float(text)

    def dials(self, attributes):
        """?dials=Smiling:1.5,Male:-1 as ((name, strength), ...) for the non-zero strengths."""
        text = self._values.get("dials", "")
        dials = {}
        for item in filter(None, text.split(",")):
            name, _, value = item.partition(":")
            if name not in attributes:
                known = ", ".join(attributes) or "none: this model has no directions.npz"
                raise BadRequest(f"dials: unknown attribute {name!r} (attributes: {known})")
            if name in dials or not _in_range(value, -DIAL_MAX, DIAL_MAX):
                raise BadRequest(f"dials: each attribute once, as NAME:STRENGTH with STRENGTH from "
                                 f"{-DIAL_MAX:g} to {DIAL_MAX:g}, got {item!r}")
            dials[name] = float(value)
        return tuple((name, value) for name, value in dials.items() if value != 0)


def _in_range(text, low, high):
    try:
        return low <= float(text) <= high  # False for nan; inf is out of any range
    except ValueError:
        return False


@dataclasses.dataclass(frozen=True)
class Face:
    """One face: seed's, or frame `step` of the `steps`-frame walk from seed to `to`; then moved by the dials."""

    seed: int
    truncation: float | None = None
    to: int | None = None
    step: int = 0
    steps: int = 0
    dials: tuple = ()  # ((attribute, strength), ...)

    def latent(self, latent_dim, directions):
        if self.to is None:
            z = latent.from_seeds([self.seed], latent_dim, self.truncation)[0]
        else:
            z = latent.walk([self.seed, self.to], self.steps, latent_dim, self.truncation)[self.step]
        return latent.moved(z, directions, dict(self.dials)).astype(np.float32)

    def name(self):
        name = f"seed{self.seed}" if self.to is None else f"walk{self.seed}-{self.to}_{self.step + 1}of{self.steps}"
        if self.truncation is not None:
            name += f"_psi{self.truncation:g}"
        return name + "".join(f"_{attribute}{strength:+g}" for attribute, strength in self.dials)

    def command(self, model):
        """The generate.py command that makes this face again, and where it shows in its output."""
        name, psi = self.name(), [] if self.truncation is None else ["--truncation", repr(self.truncation)]
        if self.dials:
            args, shows = ["query", "--vector", f"{name}.npy"], f"the last of its 4 faces (run it beside {name}.npy)"
        elif self.to is None:
            args, shows = ["--n", "1", "--seed", str(self.seed), *psi], "the face alone"
        else:
            name = f"walk{self.seed}-{self.to}"
            args = ["interpolate", "--seeds", str(self.seed), str(self.to), "--steps", str(self.steps), *psi]
            shows = f"frame {self.step + 1} of {self.steps} (and {name}.gif)"
        return shlex.join(["python", "generate.py", str(model), *args, "--out", f"{name}.png"]), shows


class Explorer:
    """A loaded generator and its attribute directions, answering the API one generation at a time."""

    def __init__(self, generator, directions=None, model="MODEL", waiting=WAITING):
        self.generator, self.directions, self.model = generator, directions or {}, model
        self._turn, self._waiting = threading.Lock(), waiting
        self._admitted = threading.BoundedSemaphore(waiting + 1)  # the one generating and those waiting
        for count in (16, 1):  # warm up: the first call of each batch size is slower
            self.image_size = self.images(np.zeros((count, generator.latent_dim), np.float32)).shape[1]
        self.routes = {"/api/model": (self.model_info, ()),
                       "/api/page": (self.page, ("start", "count", "truncation", "dials")),
                       "/api/face.png": (self.face_png, FACE_PARAMETERS),
                       "/api/save": (self.save, FACE_PARAMETERS)}

    @classmethod
    def load(cls, path):
        """The explorer of a model (anything generate.py takes) and the directions.npz beside it."""
        from dcgan_tf.edit.directions import load_directions
        from dcgan_tf.serve import loader
        generator = loader.load(path).faces.require_unconditional("the explorer")
        return cls(generator, load_directions(path, generator.latent_dim), str(path))

    def images(self, z):
        """uint8 faces of z, after the generations before it; Busy if too many are waiting."""
        if not self._admitted.acquire(blocking=False):
            raise Busy(f"the explorer is busy (one request generating, {self._waiting} waiting): try again")
        try:
            with self._turn:
                return self.generator(z)
        finally:
            self._admitted.release()

    def stop(self, timeout=60):
        """Wait for the generation in progress and let no other start. The server's request threads
        are daemons: Python leaves them at exit, and one left inside TensorFlow aborts the process."""
        self._turn.acquire(timeout=timeout)

    def model_info(self, query):
        return _json({"model": self.model, "latent_dim": self.generator.latent_dim, "image_size": self.image_size,
                      "attributes": list(self.directions),
                      "limits": {"seed": SEED_MAX, "count": COUNT_MAX, "steps": STEPS_MAX,
                                 "truncation": TRUNCATION_RANGE, "dial": DIAL_MAX}})

    def page(self, query):
        start = query.integer("start", 0, SEED_MAX)
        count = query.integer("count", 1, min(COUNT_MAX, SEED_MAX - start + 1), default=16)
        truncation, dials = self._look(query)
        seeds = range(start, start + count)
        z = np.stack([Face(seed, truncation, dials=dials).latent(self.generator.latent_dim, self.directions)
                      for seed in seeds])
        faces = [{"seed": seed, "png": _base64(_png(image))} for seed, image in zip(seeds, self.images(z))]
        return _json({"faces": faces})

    def face_png(self, query):
        _, _, image = self._one_face(query)
        return "image/png", _png(image)

    def save(self, query):
        face, z, image = self._one_face(query)
        vector = io.BytesIO()
        np.save(vector, z, allow_pickle=False)
        command, shows = face.command(self.model)
        return _json({"name": face.name(), "png": _base64(_png(image)), "npy": _base64(vector.getvalue()),
                      "command": command, "shows": shows})

    def _one_face(self, query):
        face = self._face(query)
        z = face.latent(self.generator.latent_dim, self.directions)
        return face, z, self.images(z[None])[0]

    def _face(self, query):
        seed = query.integer("seed", 0, SEED_MAX)
        truncation, dials = self._look(query)
        if not any(name in query for name in ("to", "step", "steps")):
            return Face(seed, truncation, dials=dials)
        steps = query.integer("steps", 2, STEPS_MAX)
        return Face(seed, truncation, query.integer("to", 0, SEED_MAX), query.integer("step", 0, steps - 1),
                    steps, dials)

    def _look(self, query):
        return query.number("truncation", *TRUNCATION_RANGE), query.dials(list(self.directions))


FACE_PARAMETERS = ("seed", "to", "step", "steps", "truncation", "dials")


def _png(image):
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


def _base64(data):
    return base64.b64encode(data).decode("ascii")


def _json(value):
    return "application/json", json.dumps(value).encode()


class Handler(BaseHTTPRequestHandler):
    """One request: a file of the page, an API answer or a one-line JSON error."""

    server_version = "dcgan-tf-explore"
    timeout = 30  # seconds a silent client may hold its connection (and thread)

    def do_GET(self):
        url = urlsplit(self.path)
        try:
            self._check_host()
            if url.path in self.server.static:
                self._send(HTTPStatus.OK, *self.server.static[url.path])
                return
            if url.path not in self.server.explorer.routes:
                raise LookupError(f"no page {url.path}: the explorer is at /")
            answer, parameters = self.server.explorer.routes[url.path]
            self._send(HTTPStatus.OK, *answer(Query(url.query, parameters)))
        except ConnectionError:  # the client left mid-answer: nobody to answer
            raise
        except Forbidden as error:
            self._error(HTTPStatus.FORBIDDEN, error)
        except BadRequest as error:
            self._error(HTTPStatus.BAD_REQUEST, error)
        except LookupError as error:
            self._error(HTTPStatus.NOT_FOUND, error)
        except Busy as error:
            self._error(HTTPStatus.SERVICE_UNAVAILABLE, error, {"Retry-After": "1"})
        except Exception as error:  # a failed generation answers 500 and the server goes on
            self.log_error("%s failed: %s: %s", url.path, type(error).__name__, error)
            self._error(HTTPStatus.INTERNAL_SERVER_ERROR, f"{type(error).__name__}: {error}")

    def _check_host(self):
        host = self.headers.get("Host")
        if host is not None and not self.server.serves_host(host):
            raise Forbidden(f"the explorer answers requests for this machine only, not for Host {host[:80]!r}: "
                            f"open {self.server.url}")

    def send_error(self, code, message=None, explain=None):
        """Every error as one JSON line with the security headers, also those of http.server's own
        checks; a method other than GET (http.server's 501) is 405."""
        self.close_connection = True
        if code == HTTPStatus.NOT_IMPLEMENTED:
            self._error(HTTPStatus.METHOD_NOT_ALLOWED, f"the explorer answers GET only, not {self.command}",
                        {"Allow": "GET"})
        else:
            self._error(code, message or HTTPStatus(code).phrase)

    def _error(self, status, message, headers=None):
        self._send(status, *_json({"error": str(message)}), headers)

    def _send(self, status, content_type, body, headers=None):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, value in {**HEADERS, **(headers or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_message(self, format, *args):
        if self.server.verbose:
            super().log_message(format, *args)

    def log_error(self, format, *args):
        super().log_message(format, *args)  # errors are always printed


class ExplorerServer(ThreadingHTTPServer):
    """The explorer's HTTP server; the page's files are read once here, never on request."""

    def __init__(self, address, explorer, verbose=False):
        self.explorer, self.verbose = explorer, verbose
        folder = resources.files(__package__) / "static"
        self.static = {route: (content_type, (folder / name).read_bytes())
                       for route, (name, content_type) in STATIC.items()}
        self.host = address[0]
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, Handler)

    def serves_host(self, host):
        """Whether a Host header names this server: a loopback name, an IP address (rebinding needs
        a domain name) or the host it was asked to serve on, with any port."""
        name = host.rpartition(":")[0] if re.fullmatch(r".*:\d*", host) and not host.endswith("]") else host
        name = name.strip("[]").lower().rstrip(".")
        try:
            ipaddress.ip_address(name)
            return True
        except ValueError:
            return is_loopback(name) or name == self.host.lower()

    def handle_error(self, request, client_address):
        """A client that leaves mid-answer is nothing to report; anything else is."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    @property
    def url(self):
        host, port = self.server_address[:2]
        host = {"0.0.0.0": "127.0.0.1", "::": "::1"}.get(host, host)
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


def is_loopback(host):
    """localhost (and names under it) or a loopback address."""
    try:
        return host == "localhost" or host.endswith(".localhost") or ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def serve(explorer, host="127.0.0.1", port=DEFAULT_PORT, verbose=False):
    """An ExplorerServer on the first free port from `port` on (any free port for 0)."""
    for candidate in range(port, port + PORTS_TRIED) if port else [0]:
        try:
            return ExplorerServer((host, candidate), explorer, verbose)
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise OSError(f"cannot serve on {host} port {candidate}: {error.strerror or error}") from None
    raise OSError(f"ports {port}-{port + PORTS_TRIED - 1} on {host} are all taken: choose another --port")


@contextlib.contextmanager
def running(explorer, host="127.0.0.1", port=0):
    """serve() answering in a background thread while the block runs (tests and benchmarks); yields the server."""
    server = serve(explorer, host, port)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
