"""Driving the served page in Debian's Chromium with Playwright, for the web tests and
benchmarks/web_page.py: launch flags, a fake camera fed a .y4m clip, uploads, downloads.

Playwright's own browser download does not work here, so the system Chromium is driven
(`executable_path`). The flags keep it off the network (this machine has none) and give
it SwiftShader's WebGPU adapter, a CPU emulation: right answers, not phone speed.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import cv2
import numpy as np

CHROMIUM = Path("/usr/bin/chromium")
SAMPLE = Path(__file__).resolve().parents[2] / "examples" / "astronaut.jpg"
LAUNCH_ARGS = ["--no-sandbox", "--enable-unsafe-webgpu", "--disable-background-networking",
               "--disable-component-update", "--disable-sync", "--no-first-run",
               "--disable-quic"]
READY = ("Waiting for a camera", "Camera: tracking")  # the status once models are compiled
TIMEOUT_MS = 120_000  # SwiftShader's WebGPU compiles slowly on a loaded machine


def why_no_browser() -> str | None:
    """Why the page cannot be driven here, or None when it can."""
    from face_keypoints.errors import BadInput
    from face_keypoints.serve import litert_folder

    if not CHROMIUM.exists():
        return f"Chromium is not installed ({CHROMIUM}; apt-get install -y chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install -e '.[dev]')"
    try:
        litert_folder()
    except BadInput as err:
        return str(err)
    return None


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def launch(playwright, camera_clip: Path | None = None, webgpu: bool = True):
    """Headless Chromium; with `camera_clip` (.y4m) as its only camera, permission given;
    without `webgpu`, a browser that offers no WebGPU device."""
    args = [a for a in LAUNCH_ARGS if webgpu or a != "--enable-unsafe-webgpu"]
    if camera_clip is not None:
        args += ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                 f"--use-file-for-fake-video-capture={camera_clip}"]
    return playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=args)


def write_hard_photos(folder: Path) -> list[Path]:
    """Photos where the page's resampling once left Python's, made from the sample photo:
    1024 px wide (the detector's input averages 4 x 4 blocks, whose halves OpenCV rounds
    to even), 2100 px (8 x 8 blocks, and 4 x 4 for the zoomed pass and the face crop),
    and an RGBA PNG whose transparent pixels Python puts over black."""
    from face_keypoints.data.images import read_rgb

    photo = read_rgb(SAMPLE)
    paths = [folder / "wide_1024.jpg", folder / "large_2100.jpg", folder / "transparent.png"]
    for path, side in zip(paths[:2], (1024, 2100), strict=True):
        resized = cv2.resize(photo, (side, side), interpolation=cv2.INTER_CUBIC)
        cv2.imwrite(str(path), cv2.cvtColor(resized, cv2.COLOR_RGB2BGR),
                    [cv2.IMWRITE_JPEG_QUALITY, 95])
    y, x = np.mgrid[:photo.shape[0], :photo.shape[1]]
    distance = np.hypot(x - photo.shape[1] / 2, y - photo.shape[0] / 2) / photo.shape[0]
    alpha = np.clip(255 * (0.8 - distance) / 0.4, 0, 255).astype(np.uint8)  # clear corners
    cv2.imwrite(str(paths[2]), np.dstack([cv2.cvtColor(photo, cv2.COLOR_RGB2BGR), alpha]))
    return paths


def write_y4m(path: Path, frames: Iterable[np.ndarray], fps: int = 30) -> Path:
    """RGB frames (all one size, even sides) as an uncompressed 4:2:0 .y4m clip, the
    format Chromium's fake camera reads."""
    with open(path, "wb") as out:
        for i, frame in enumerate(frames):
            height, width = frame.shape[:2]
            if i == 0:
                out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path


@contextlib.contextmanager
def serving(model: str | Path = "default") -> Iterator[str]:
    """`face-keypoints serve` on a free loopback port, in a thread; yields its URL."""
    from face_keypoints.serve import make_server

    server = make_server(model, host="127.0.0.1", port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def open_page(browser, url: str, backend: str):
    """A new page on `backend`, once its models are compiled."""
    page = browser.new_page()
    page.goto(f"{url}?backend={backend}")
    wait_for_status(page, *READY)
    return page


def status(page) -> str:
    return page.text_content("#status") or ""


def message(page) -> str:
    """The page's alert line ('' when hidden)."""
    return "" if page.is_hidden("#message") else (page.text_content("#message") or "")


def wait_for_status(page, *starts: str) -> str:
    page.wait_for_function(
        "starts => starts.some(s => document.getElementById('status').textContent"
        ".startsWith(s))", arg=list(starts), timeout=TIMEOUT_MS)
    return status(page)


def upload(page, path: Path) -> None:
    page.set_input_files("#upload", str(path))


def photo_result(page, path: Path) -> dict:
    """Upload a photo and return the page's JSON for it (the download button's file)."""
    upload(page, path)
    page.wait_for_function(
        "name => { const s = document.getElementById('status').textContent;"
        " return s.startsWith(name + ': ') && !s.endsWith('…'); }",
        arg=path.name, timeout=TIMEOUT_MS)
    return download(page)


def download(page) -> dict:
    with page.expect_download(timeout=TIMEOUT_MS) as download:
        page.click("#download")
    return json.loads(Path(download.value.path()).read_text(encoding="utf-8"))


def ocular(points: np.ndarray, scheme: str) -> float:
    """The inter-ocular distance (outer eye corners) of a face's points."""
    from face_keypoints.schemes import get_scheme

    a, b = get_scheme(scheme).outer_eyes
    return float(np.linalg.norm(points[a] - points[b]))


def paired(record: dict, expected: list) -> list[tuple[dict, object]]:
    """(the page's face in its JSON, Python's runtime Face) pairs, by box centre; the two
    must find as many faces, in the same scheme."""
    assert len(record["faces"]) == len(expected), (len(record["faces"]), len(expected))
    pairs = []
    for face in expected:
        centre = (face.box[:2] + face.box[2:]) / 2
        page = min(record["faces"], key=lambda f: np.hypot(
            *(np.add(f["box"][:2], f["box"][2:]) / 2 - centre)))
        assert page["scheme"] == face.scheme
        pairs.append((page, face))
    return pairs


def worst_error(record: dict, expected: list) -> float:
    """The largest distance between a point of the page's faces (its JSON) and the same
    point of Python's (runtime Face objects), in inter-ocular distances."""
    worst = 0.0
    for page, face in paired(record, expected):
        error = np.linalg.norm(np.array(page["points"]) - face.points, axis=1)
        worst = max(worst, float(error.max()) / ocular(face.points, face.scheme))
    return worst
