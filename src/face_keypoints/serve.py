"""The `serve` verb: a web page that runs a landmark model in the browser with LiteRT.js.

The page (web/ beside this file: plain JS modules, no build step) runs BlazeFace and the
landmark model on WebGPU or WASM, on a camera, a photo or a video. Everything it needs
comes from this server, so it works offline on a local network:

* the page's own files, and LiteRT.js (`@litertjs/core`) under /litert/: the copy an
  installed package carries (web/litert, made from the committed lockfile when the wheel
  is built, see litert_files.py), else a source checkout's `web/node_modules`, installed
  with `npm ci --prefix <web>` (never fetched from a CDN);
* the model's .tflite (fp16, what GPU delegates want) and its model.json, which tell the
  page how to crop, normalise and decode, so a user's own export works unchanged;
* BlazeFace's .tflite, and a copy of it resized to the photo path's zoomed input;
* page.json, built here from the Python constants the page must agree with (the
  detector's anchors and crop fit, tracking thresholds, One Euro defaults, each scheme's
  contours, eye corners and pupils (an aligned model's crops are levelled by them), how
  hidden points are drawn), so the page and `predict` cannot drift apart.

Responses carry COOP/COEP headers: the page is then cross-origin isolated, which
SharedArrayBuffer, and so LiteRT.js's threaded WASM, requires.
"""

from __future__ import annotations

import contextlib
import inspect
import io
import json
import socket
import ssl
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import unquote, urlsplit

from face_keypoints import litert_files
from face_keypoints.card import MODEL_JSON
from face_keypoints.errors import BadInput

ModelChoice = str | Path | Sequence[str | Path]  # one model, or several the page offers
WEB_PRECISIONS = ("fp16", "fp32")  # fp16 first: half the download, the same points
LITERT_URL = "/litert/"  # where the page finds LiteRT.js (web/index.html's import map)
MAX_PORT = 65535
HANDSHAKE_SECONDS = 10  # a TLS client that has not finished its handshake by then is dropped
IDLE_SECONDS = 60  # a kept-alive connection with no request for this long is closed
_SIOCGIFADDR = 0x8915  # Linux: an interface's IPv4 address
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".json": "application/json",
          ".wasm": "application/wasm", ".tflite": "application/octet-stream",
          ".png": "image/png", ".svg": "image/svg+xml"}


def web_folder() -> Path:
    """The page's files inside the installed package."""
    return Path(str(resources.files("face_keypoints").joinpath("web")))


def npm_command(web: Path | None = None) -> str:
    """The command that installs the page's npm packages from the lockfile."""
    return f"npm ci --prefix {web or web_folder()}"


def litert_folder(web: Path | None = None) -> Path:
    """The folder LiteRT.js is served from (the package's copy, else node_modules), or
    BadInput with the one command that installs it."""
    try:
        return litert_files.find(web or web_folder())
    except litert_files.LiteRtMissing as err:
        raise BadInput(str(err)) from None


@dataclass(frozen=True)
class PageModel:
    """The landmark model the page runs: its .tflite, the model.json beside it, and which
    of the card's precisions the file is."""

    label: str
    tflite: Path
    card: dict
    precision: str | None


def page_model(model: str | Path) -> PageModel:
    """Resolve `--model`: a shipped model's name (`default`, `lite`, ...), an export folder
    holding model.json, or a .tflite with its model.json beside it."""
    from face_keypoints.card import ModelCard
    from face_keypoints.resolve import resolve_model, shipped_names

    resolved = resolve_model(str(model), prefer=WEB_PRECISIONS)
    tflite = resolved.path
    if not tflite.exists():
        raise BadInput(f"{model}: no such model; --model takes {shipped_names()}, a "
                       "folder written by `face-keypoints export` or a .tflite in one")
    if tflite.suffix != ".tflite":
        raise BadInput(f"{tflite}: the page runs .tflite files, not {tflite.suffix or 'this'}")
    card = resolved.card if resolved.card is not None else ModelCard.read(tflite.parent)
    entry = card.entry(resolved.precision or "")
    if "input_dtype" in entry:
        raise BadInput(f"{tflite}: takes {entry['input_dtype']} input; the page feeds float "
                       "models (fp16 or fp32)")
    _check_loads(tflite)
    return PageModel(str(model), tflite, card.data, card.precision_of(tflite))


def _check_loads(tflite: Path) -> None:
    """BadInput, as `predict` gives it, for a .tflite that LiteRT cannot load or whose
    tensors disagree with its model.json: the page would only fail later, in a browser."""
    from face_keypoints.quiet import native_stderr_silenced
    from face_keypoints.runtime.predictor import load_predictor

    with native_stderr_silenced():
        load_predictor(tflite)


def page_settings(*cards: dict) -> dict:
    """What the page must share with Python beyond model.json (page.json); `cards` are the
    model.json of every model served, whose schemes the page may draw."""
    from face_keypoints import draw
    from face_keypoints.runtime import api, detector, smoothing, tracker
    from face_keypoints.schemes import SCHEMES

    spec = detector.SHORT_RANGE
    schemes = {}
    for output in (o for card in cards for o in card["outputs"]
                   if o.get("kind", "points") == "points"):
        scheme = SCHEMES.get(output["scheme"])
        if scheme is None:  # an unknown scheme is still drawn: points, no contours
            continue
        schemes[scheme.name] = {"contours": [list(c) for c in scheme.contours],
                                "closed": list(scheme.closed),
                                "outer_eyes": list(scheme.outer_eyes),
                                "pupils": [list(group) for group in scheme.pupils],
                                "description": scheme.description}
    params = smoothing.OneEuroParams()
    return {
        "detector": {"size": spec.size, "strides": list(spec.strides),
                     "anchors_per_layer": spec.anchors_per_layer, "min_score": spec.min_score,
                     "iou_threshold": _default(detector.BlazeFace, "iou_threshold"),
                     "range": [-1.0, 1.0],  # BlazeFace.detect: pixel / 127.5 - 1
                     "zoom": detector.ZOOM, "zoom_min_score": detector.ZOOM_MIN_SCORE,
                     "close_up": detector.CLOSE_UP,
                     "keypoints": list(detector.KEYPOINTS),
                     "box_fit": detector.BOX_FIT.tolist(),
                     "box_range": [r.tolist() for r in detector.BOX_RANGE]},
        "tracking": {"side_range": list(tracker.SIDE_RANGE), "max_offset": tracker.MAX_OFFSET,
                     "min_inside": tracker.MIN_INSIDE,
                     "track_min_score": tracker.TRACK_MIN_SCORE,
                     "min_tracking_confidence": _default(api.FaceLandmarker,
                                                         "min_tracking_confidence"),
                     "shrink_limit": tracker.SHRINK_LIMIT,
                     "match_iou": tracker.MATCH_IOU, "same_face_iou": tracker.SAME_FACE_IOU,
                     "redetect_every": _default(api.FaceLandmarker, "redetect_every"),
                     "stream_step": api.STREAM_STEP},
        "smoothing": {"min_cutoff": params.min_cutoff, "beta": params.beta,
                      "d_cutoff": params.d_cutoff},
        "schemes": schemes,
        "drawing": {"points": list(draw.POINT_COLOUR), "lines": list(draw.LINE_COLOUR),
                    "hidden": list(draw.HIDDEN_COLOUR), "hidden_below": api.HIDDEN_BELOW},
    }


class PageServer(ThreadingHTTPServer):
    """The page's HTTP(S) server; `urls()` says where to open it.

    Over https the TLS handshake runs in the connection's own thread, with a timeout: in
    `accept()` (a wrapped listening socket) one client that connects and sends nothing
    would hold the only serving thread, and every other client with it.
    """

    daemon_threads = True
    models: list[PageModel]  # every model the page offers, `model` (the first) among them

    def __init__(self, address: tuple[str, int], handler: Callable,
                 context: ssl.SSLContext | None, model: PageModel) -> None:
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, handler)
        self.scheme = "https" if context else "http"
        self.context = context
        self.model = model

    def finish_request(self, request: socket.socket, client_address: tuple) -> None:
        if self.context is None:
            super().finish_request(request, client_address)
            return
        request.settimeout(HANDSHAKE_SECONDS)
        try:
            secure = self.context.wrap_socket(request, server_side=True)
        except (OSError, ValueError):  # no handshake in time, not TLS, or the client left
            return
        try:
            super().finish_request(secure, client_address)
        finally:
            secure.close()

    def handle_error(self, request: object, client_address: tuple) -> None:
        """A client that leaves mid-reply (a reload while the model downloads) is normal:
        no traceback; anything else is reported as usual."""
        if isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError, ssl.SSLError)):
            return
        super().handle_error(request, client_address)

    def urls(self) -> list[tuple[str, str]]:
        """(url, where it works) for this machine and, when bound to every interface or a
        LAN address, for other devices on the network."""
        host, port = self.server_address[:2]
        local = f"{self.scheme}://localhost:{port}/"
        if host in ("0.0.0.0", "", "::"):
            return [(local, "this machine")] + [
                (f"{self.scheme}://{address}:{port}/", "other devices on the network")
                for address in lan_addresses()]
        if host.startswith("127.") or host == "::1":
            return [(local, "this machine only")]
        shown = f"[{host}]" if ":" in host else host
        return [(f"{self.scheme}://{shown}:{port}/", "devices that reach this address")]


def make_server(model: ModelChoice = "default", host: str = "0.0.0.0", port: int = 8000,
                cert: str | Path | None = None, key: str | Path | None = None) -> PageServer:
    """A server for the page and `model` (one, or several the page offers in a menu, the
    first chosen at start), bound but not yet serving (`serve_forever`)."""
    check_port(port)
    web = web_folder()
    litert = litert_folder(web)
    chosen = [page_model(m) for m in _model_list(model)]
    detector = _detector_path()
    settings = page_settings(*(m.card for m in chosen))
    zoomed = settings["detector"]["zoom"] * settings["detector"]["size"]
    # Model i at /model/i/; the first also at /model/, where the page starts.
    entries = [{"label": m.label, "file": m.tflite.name, "precision": m.precision,
                "card": f"/model/{i}/{MODEL_JSON}", "tflite": f"/model/{i}/landmarks.tflite"}
               for i, m in enumerate(chosen)]
    generated = {"/model/model.json": _json_bytes(chosen[0].card),
                 "/model/page.json": _json_bytes({**settings, "model": entries[0],
                                                  "models": entries}),
                 "/model/detector_zoom.tflite": resized_model(detector, zoomed)}
    generated |= {entry["card"]: _json_bytes(m.card) for entry, m in zip(entries, chosen,
                                                                         strict=True)}
    files = {"/model/landmarks.tflite": chosen[0].tflite, "/model/detector.tflite": detector}
    files |= {entry["tflite"]: m.tflite for entry, m in zip(entries, chosen, strict=True)}
    context = _tls_context(cert, key)
    handler = partial(_PageHandler, web=web.resolve(), litert=litert.resolve(), files=files,
                      generated=generated)
    try:
        server = PageServer((host, port), handler, context, chosen[0])
    except OSError as err:
        raise BadInput(f"cannot serve on {host}:{port}: {err.strerror or err}") from None
    server.models = chosen
    return server


def _model_list(model: ModelChoice) -> list[str | Path]:
    """`--model`'s models as a list: one name or path, or several."""
    models = [model] if isinstance(model, str | Path) else list(model)
    if not models:
        raise BadInput("--model needs at least one model")
    return models


def check_port(port: int) -> int:
    """`port` when it is a TCP port (0 means any free one), else BadInput."""
    if not 0 <= port <= MAX_PORT:
        raise BadInput(f"--port {port}: a TCP port is 0 to {MAX_PORT} (0: any free port)")
    return port


def serve(model: ModelChoice = "default", port: int = 8000, host: str = "0.0.0.0",
          cert: str | Path | None = None, key: str | Path | None = None,
          on_ready: Callable[[str], None] | None = None) -> None:
    """Serve the page until interrupted; `on_ready` gets the lines that say where to open
    it (default: printed)."""
    server = make_server(model, host, port, cert, key)
    say = on_ready or partial(print, flush=True)
    served = ", ".join(f"{m.label} ({m.tflite})" for m in server.models)
    lines = [f"serving model{'s' if len(server.models) > 1 else ''} {served}; open the page "
             "at"]
    lines += [f"  {url}  ({where})" for url, where in server.urls()]
    if server.scheme == "http" and server.urls()[0][1] != "this machine only":
        lines.append("  phones need https for the camera and WebGPU: pass --cert and --key "
                     "(see the README's serve section); photos and WASM work over http")
    lines.append("Ctrl-C stops the server")
    for line in lines:
        say(line)
    try:
        server.serve_forever()
    finally:
        server.server_close()


def lan_addresses() -> list[str]:
    """IPv4 addresses of this machine's network interfaces, loopback excluded (read from
    the interfaces; nothing is sent)."""
    found: list[str] = []
    with contextlib.suppress(OSError, ImportError):
        import fcntl
        import struct

        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
            for _, name in socket.if_nameindex():
                with contextlib.suppress(OSError):
                    request = struct.pack("256s", name[:15].encode())
                    reply = fcntl.ioctl(probe.fileno(), _SIOCGIFADDR, request)
                    found.append(socket.inet_ntoa(reply[20:24]))
    if not found:
        with contextlib.suppress(OSError):
            found = [info[4][0] for info in
                     socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)]
    return sorted({a for a in found if not a.startswith("127.")})


def resized_model(path: Path, size: int) -> bytes:
    """The .tflite at `path` with its square image input resized to `size`, every tensor's
    shape as LiteRT propagates it. The photo path runs BlazeFace (fully convolutional) at
    twice its input size; Python's interpreter resizes an input, LiteRT.js cannot, so the
    page gets a file made for that size."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as schema

    from face_keypoints.runtime.predictor import open_interpreter

    interpreter = open_interpreter(path)
    (image,) = interpreter.get_input_details()
    interpreter.resize_tensor_input(image["index"], [1, size, size, int(image["shape"][3])])
    interpreter.allocate_tensors()
    shapes = {t["index"]: t["shape"] for t in interpreter.get_tensor_details()}
    model = schema.ModelT.InitFromPackedBuf(bytearray(path.read_bytes()), 0)
    for index, tensor in enumerate(model.subgraphs[0].tensors):
        if index in shapes:
            tensor.shape = shapes[index].astype("int32")
            tensor.shapeSignature = None
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def _default(cls: type, parameter: str) -> object:
    """The default of a constructor's parameter: the value Python runs with."""
    return inspect.signature(cls).parameters[parameter].default


def _detector_path() -> Path:
    from face_keypoints.runtime.detector import detector_model_path

    return detector_model_path()


def _json_bytes(data: object) -> bytes:
    return json.dumps(data).encode("utf-8")


def _tls_context(cert: str | Path | None, key: str | Path | None) -> ssl.SSLContext | None:
    if cert is None and key is None:
        return None
    if cert is None or key is None:
        raise BadInput("--cert and --key go together: a certificate and its private key")
    for path in (cert, key):
        if not Path(path).is_file():
            raise BadInput(f"{path}: no such file")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_cert_chain(str(cert), str(key))
    except (ssl.SSLError, ValueError) as err:
        raise BadInput(f"{cert}, {key}: not a PEM certificate and its key: {err}") from None
    return context


class _PageHandler(SimpleHTTPRequestHandler):
    """Files of web/ (node_modules aside), LiteRT.js's under /litert/, the model's files and
    the generated JSON; no directory listings."""

    timeout = IDLE_SECONDS

    def __init__(self, *args, web: Path, litert: Path, files: dict[str, Path],
                 generated: dict[str, bytes], **kwargs) -> None:
        self.web, self.litert, self.files, self.generated = web, litert, files, generated
        super().__init__(*args, **kwargs)

    def send_head(self):  # type: ignore[override]
        path = unquote(urlsplit(self.path).path)
        body = self.generated.get(path)
        if body is None:
            return super().send_head()
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        return io.BytesIO(body)

    def translate_path(self, path: str) -> str:
        path = unquote(urlsplit(path).path)
        if "\x00" in path:  # no file has a NUL in its name; the os module raises on one
            return str(self.web / ".missing")
        if path in self.files:
            return str(self.files[path])
        if path == "/":
            path = "/index.html"
        root = self.web
        if path.startswith(LITERT_URL):
            root, path = self.litert, path.removeprefix(LITERT_URL)
        elif path.startswith("/node_modules/"):
            return str(self.web / ".missing")  # one route to LiteRT.js: /litert/
        target = (root / path.lstrip("/")).resolve()
        if not target.is_relative_to(root) or not target.is_file():
            return str(self.web / ".missing")  # send_head answers 404
        return str(target)

    def guess_type(self, path: str | Path) -> str:
        return _TYPES.get(Path(path).suffix, "application/octet-stream")

    def end_headers(self) -> None:
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: a page load is dozens of requests."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        if isinstance(code, int) and code >= 400:  # failed requests only (HTTPStatus too)
            sys.stderr.write(f"{self.address_string()}: {self.requestline}: {code}\n")
