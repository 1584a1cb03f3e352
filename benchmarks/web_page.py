"""Times of the page that `face-keypoints serve` serves, in headless Chromium, beside the
Python runtime's on the same frames.

A fake camera plays a clip made from a real photo (tests/fixtures, filmed with shake and a
sideways sweep, testing.shaken_clip) to the page on each backend; after a warm-up, the page's
own figures (per frame, mean of its last 30 frames) are read once a second and their
medians printed: detector, landmarks, the landmark model alone (run and read-back), drawing,
the whole frame, fps, and the first frame's time after the page was opened. The Python row
is FaceLandmarker.track on the same frames (LiteRT, 1 thread), on the same file. Then
the page's points on the photos of the parity test (three photos, and the 1024 px, 2100 px
and RGBA ones made from the sample photo) are compared with FaceLandmarker.detect's. The
load average is printed: figures from a loaded machine are slower. WebGPU here is
SwiftShader, a CPU emulation of a GPU: its figures check that the page runs, not how fast a
phone's GPU is. `--screenshot PNG` also saves the page on a photo (the README's picture).

    python benchmarks/web_page.py [--model default] [--seconds 8] [--screenshot docs/serve.png]

Needs Chromium (/usr/bin/chromium), Playwright for Python and the page's npm packages
(`npm ci --prefix src/face_keypoints/web`).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "web"))

from browser import (  # noqa: E402  (tests/web/browser.py drives the page for the tests too)
    launch,
    open_page,
    photo_result,
    serving,
    why_no_browser,
    worst_error,
    write_hard_photos,
    write_y4m,
)

PHOTOS = [REPO / "examples" / "astronaut.jpg",
          REPO / "tests/fixtures/wflw/WFLW_images/7--Cheering/7_Cheering_Cheering_7_16.jpg",
          REPO / "tests/fixtures/coco/300w/indoor_029.png"]

FIELDS = {"detector": "#detector-ms", "landmarks": "#landmarks-ms", "drawing": "#drawing-ms",
          "frame": "#frame-ms", "fps": "#fps"}


def _numbers(text: str) -> list[float]:
    return [float(part.split()[0]) for part in text.replace("(", "").split(")")[0].split(" ms")
            if part.strip()]


def read_figures(page) -> dict[str, float]:
    landmarks, model = _numbers(page.text_content("#landmarks-ms"))
    return {"detector": _numbers(page.text_content("#detector-ms"))[0],
            "landmarks": landmarks, "model": model,
            "drawing": _numbers(page.text_content("#drawing-ms"))[0],
            "frame": _numbers(page.text_content("#frame-ms"))[0],
            "fps": float(page.text_content("#fps"))}


def page_row(playwright, url: str, clip: Path, backend: str, seconds: float) -> dict:
    browser = launch(playwright, camera_clip=clip)
    try:
        page = open_page(browser, url, backend)
        page.wait_for_function("document.getElementById('fps').textContent !== '-'",
                               timeout=120_000)
        first = float(page.text_content("#first-frame").split()[0])
        time.sleep(seconds)
        readings = []
        for _ in range(10):
            readings.append(read_figures(page))
            time.sleep(1.0)
        info = page.text_content("#backend-info")
    finally:
        browser.close()
    row = {key: statistics.median(r[key] for r in readings) for key in readings[0]}
    return {**row, "first": first, "info": info}


def python_row(model: str, frames: list) -> dict:
    from face_keypoints import FaceLandmarker
    from face_keypoints.serve import page_model

    landmarker = FaceLandmarker(page_model(model).tflite)  # the file the page runs
    model_ms, frame_ms = [], []
    for loop in range(3):
        landmarker.reset()
        for frame in frames:
            start = time.perf_counter()
            landmarker.track(frame)
            frame_ms.append((time.perf_counter() - start) * 1000)
        if loop == 0:
            frame_ms.clear()  # warm-up
    face = landmarker.detect(frames[0])[0]
    square = landmarker.landmarker.crop_square(face.points)  # turned for an aligned model
    for _ in range(100):
        start = time.perf_counter()
        landmarker.landmarker.points(frames[0], square)
        model_ms.append((time.perf_counter() - start) * 1000)
    return {"frame": statistics.median(frame_ms), "landmarks": statistics.median(model_ms)}


def parity(playwright, url: str, model: str, backends: list[str],
           photos: list[Path]) -> dict[str, float]:
    """The largest point error of the page against FaceLandmarker.detect on `photos`, in %
    of the inter-ocular distance, per backend."""
    from face_keypoints import FaceLandmarker
    from face_keypoints.serve import page_model

    landmarker = FaceLandmarker(page_model(model).tflite)
    expected = {photo.name: landmarker.detect(photo) for photo in photos}
    browser = launch(playwright)
    worst = {}
    try:
        for backend in backends:
            page = open_page(browser, url, backend)
            worst[backend] = 100 * max(worst_error(photo_result(page, photo),
                                                   expected[photo.name]) for photo in photos)
            page.close()
    finally:
        browser.close()
    return worst


def screenshot(playwright, url: str, path: Path) -> None:
    """The page on WASM with the sample photo, saved as a 256-colour PNG (small enough to
    commit)."""
    from PIL import Image

    browser = launch(playwright)
    try:
        page = browser.new_page(viewport={"width": 640, "height": 640})
        page.goto(f"{url}?backend=wasm")
        page.wait_for_function("document.getElementById('status').textContent"
                               ".startsWith('Waiting')", timeout=120_000)
        photo_result(page, REPO / "examples" / "astronaut.jpg")
        page.evaluate("document.getElementById('message').hidden = true")  # "no camera"
        with tempfile.TemporaryDirectory() as tmp:
            shot = Path(tmp) / "page.png"
            page.screenshot(path=str(shot), full_page=True)
            Image.open(shot).convert("RGB").quantize(256).save(path, optimize=True)
    finally:
        browser.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="default")
    parser.add_argument("--seconds", type=float, default=8.0, help="warm-up per backend")
    parser.add_argument("--backends", nargs="+", default=["wasm", "webgpu"])
    parser.add_argument("--screenshot", type=Path, help="save the page on a photo (PNG)")
    args = parser.parse_args()
    reason = why_no_browser()
    if reason:
        print(f"web_page: {reason}", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    from face_keypoints.data.images import read_rgb
    from face_keypoints.testing import shaken_clip

    photo = read_rgb(REPO / "tests" / "fixtures" / "300w" / "afw" / "261068_1.jpg")
    frames = [f for f, _ in shaken_clip(photo, 60, shake=0.7, sweep=20.0, seed=4)]
    load = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as playwright, \
            serving(args.model) as url:
        clip = write_y4m(Path(tmp) / "clip.y4m", frames)
        rows = {backend: page_row(playwright, url, clip, backend, args.seconds)
                for backend in args.backends}
        photos = [*PHOTOS, *write_hard_photos(Path(tmp))]
        worst = parity(playwright, url, args.model, args.backends, photos)
        if args.screenshot:
            screenshot(playwright, url, args.screenshot)
            print(f"screenshot: {args.screenshot} ({args.screenshot.stat().st_size} B)")
    python = python_row(args.model, frames)
    load = [max(a, b) for a, b in zip(load, os.getloadavg(), strict=True)]
    print(f"load average (1, 5, 15 min, the higher of start and end): "
          f"{load[0]:.1f}, {load[1]:.1f}, {load[2]:.1f} on {os.cpu_count()} cores")
    print(f"model {args.model}; 640x480 clip, one face tracked; ms per frame (medians of "
          "the page's 30-frame means)")
    print(f"{'runtime':<28}{'detector':>9}{'landmarks':>10}{'model':>8}{'drawing':>8}"
          f"{'frame':>8}{'fps':>7}{'first frame':>13}")
    for backend, r in rows.items():
        label = {"wasm": "page, WASM", "webgpu": "page, WebGPU (SwiftShader)"}[backend]
        print(f"{label:<28}{r['detector']:>9.1f}{r['landmarks']:>10.1f}{r['model']:>8.1f}"
              f"{r['drawing']:>8.1f}{r['frame']:>8.1f}{r['fps']:>7.1f}{r['first']:>10.0f} ms")
    print(f"{'Python, LiteRT 1 thread':<28}{'':>9}{python['landmarks']:>10.1f}{'':>8}{'':>8}"
          f"{python['frame']:>8.1f}")
    for backend, r in rows.items():
        print(f"{backend}: {r['info']}")
    print("largest point error against FaceLandmarker.detect on "
          f"{', '.join(p.name for p in photos)}: "
          + ", ".join(f"{b} {w:.3f} %" for b, w in worst.items()) + " of the inter-ocular "
          "distance")
    return 0


if __name__ == "__main__":
    sys.exit(main())
