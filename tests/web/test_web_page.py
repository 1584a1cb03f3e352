"""The served page in a real browser (headless Chromium, Playwright): on real photos its
points equal FaceLandmarker.detect's on both LiteRT.js backends, a fake camera fed a clip
is tracked frame after frame, a bad upload gets one clear message, and an export folder
is served as the shipped model is.

Skips, saying why, where Chromium, Playwright or the page's npm packages are missing;
fails instead in CI (CI=true), where .ci/run installs them.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from browser import (
    download,
    in_ci,
    launch,
    message,
    ocular,
    open_page,
    photo_result,
    serving,
    status,
    upload,
    wait_for_status,
    why_no_browser,
    worst_error,
    write_y4m,
)
from conftest import FIXTURES, REPO

from face_keypoints.data.images import read_rgb

ASTRONAUT = REPO / "examples" / "astronaut.jpg"  # the detector's input is averaged
PHOTOS = [ASTRONAUT,
          FIXTURES / "wflw" / "WFLW_images" / "7--Cheering" / "7_Cheering_Cheering_7_16.jpg",
          FIXTURES / "coco" / "300w" / "indoor_029.png"]  # a palette PNG
PARITY = 0.001  # of the inter-ocular distance, every point (the issue 21 target)


@pytest.fixture(scope="module")
def playwright():
    reason = why_no_browser()
    if reason:
        if in_ci():
            pytest.fail(f"the web tests must run in CI: {reason}")
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright):
    """Chromium without a camera: the page waits for an upload."""
    chromium = launch(playwright)
    yield chromium
    chromium.close()


@pytest.fixture(scope="module")
def url():
    with serving("default") as address:
        yield address


@pytest.fixture(scope="module")
def wasm_page(browser, url):
    """One page on WASM for the uploads, one after the other, as a user makes them."""
    page = open_page(browser, url, "wasm")
    yield page
    page.close()


@pytest.fixture(scope="module")
def small_face(tmp_path_factory) -> Path:
    """The astronaut shrunk into a large grey frame: a face only the detector's second,
    zoomed pass finds."""
    import cv2

    photo = read_rgb(ASTRONAUT)
    frame = np.full((600, 800, 3), 120, np.uint8)
    frame[50:390, 350:690] = cv2.resize(photo, (340, 340), interpolation=cv2.INTER_AREA)
    path = tmp_path_factory.mktemp("photos") / "small_face.png"
    cv2.imwrite(str(path), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return path


@pytest.fixture(scope="module")
def hard_photos(tmp_path_factory) -> list[Path]:
    """Photos where the page's resampling once left Python's: 1024-1279 px wide (the
    detector's input averages 4 x 4 blocks, whose halves OpenCV rounds to even), 2048+ px
    (8 x 8 blocks, and 4 x 4 for the zoomed pass and the face crop), and an RGBA PNG
    whose transparent pixels Python puts over black."""
    import cv2

    folder = tmp_path_factory.mktemp("hard_photos")
    photo = read_rgb(ASTRONAUT)
    wide = cv2.resize(photo, (1024, 1024), interpolation=cv2.INTER_CUBIC)
    large = cv2.resize(photo, (2100, 2100), interpolation=cv2.INTER_CUBIC)
    y, x = np.mgrid[:photo.shape[0], :photo.shape[1]]
    distance = np.hypot(x - photo.shape[1] / 2, y - photo.shape[0] / 2) / photo.shape[0]
    alpha = np.clip(255 * (0.8 - distance) / 0.4, 0, 255).astype(np.uint8)  # clear corners
    paths = [folder / "wide_1024.jpg", folder / "large_2100.jpg", folder / "transparent.png"]
    cv2.imwrite(str(paths[0]), cv2.cvtColor(wide, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 95])
    cv2.imwrite(str(paths[1]), cv2.cvtColor(large, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 95])
    rgba = np.dstack([cv2.cvtColor(photo, cv2.COLOR_RGB2BGR), alpha])
    cv2.imwrite(str(paths[2]), rgba)
    return paths


@pytest.fixture(scope="module")
def python_faces(small_face: Path, hard_photos: list[Path]) -> dict[str, list]:
    from face_keypoints import FaceLandmarker
    from face_keypoints.serve import page_model

    landmarker = FaceLandmarker(page_model("default").tflite)  # the file the page runs
    faces = {photo.name: landmarker.detect(photo)
             for photo in [*PHOTOS, small_face, *hard_photos]}
    first_pass = landmarker.detector.detect(read_rgb(small_face))
    assert not first_pass and len(faces[small_face.name]) == 1  # the zoomed pass's face
    return faces


@pytest.mark.parametrize("backend", ["wasm", "webgpu"])
def test_the_page_finds_the_same_points_as_python_on_photos(browser, url, wasm_page,
                                                            python_faces, small_face,
                                                            hard_photos, backend) -> None:
    """Every point of every face within 0.1 % of the inter-ocular distance of Python's,
    on every photo and both backends."""
    page = wasm_page if backend == "wasm" else open_page(browser, url, backend)
    info = page.text_content("#backend-info")
    name = {"wasm": "WASM", "webgpu": "WebGPU"}[backend]
    assert info.count(name) == 2 and info.count("fully accelerated") == 2, info
    for photo in [*PHOTOS, small_face, *hard_photos]:
        record = photo_result(page, photo)
        assert record["image"] == photo.name
        assert record["faces"], f"{photo.name}: no face found on {backend}"
        assert worst_error(record, python_faces[photo.name]) < PARITY, photo.name
    if page is not wasm_page:
        page.close()


def test_every_scheme_of_the_model_is_offered_and_matches_python(wasm_page) -> None:
    """The scheme choice lists model.json's outputs (enabled when there are several), and
    each scheme's points are Python's for that scheme."""
    from face_keypoints import FaceLandmarker
    from face_keypoints.serve import page_model

    served = page_model("default")
    schemes = [output["scheme"] for output in served.card["outputs"]]
    offered = wasm_page.eval_on_selector_all("#scheme option", "os => os.map(o => o.value)")
    assert offered == schemes
    assert wasm_page.is_disabled("#scheme") == (len(schemes) == 1)
    for scheme in schemes:
        if len(schemes) > 1:
            wasm_page.select_option("#scheme", scheme)
        record = photo_result(wasm_page, ASTRONAUT)
        assert {face["scheme"] for face in record["faces"]} == {scheme}
        expected = FaceLandmarker(served.tflite, scheme=scheme).detect(ASTRONAUT)
        assert worst_error(record, expected) < PARITY, scheme
    if len(schemes) > 1:
        wasm_page.select_option("#scheme", schemes[0])


def test_the_camera_is_tracked_frame_after_frame(playwright, url, tmp_path) -> None:
    """A fake camera plays a real photo filmed with shake and a sideways sweep: the face
    stays found in every frame, and the whole frame is searched only about every tenth
    frame (the last frame's points place the next crop)."""
    from face_keypoints import FaceLandmarker
    from face_keypoints.serve import page_model
    from face_keypoints.video import shaken_clip

    photo = read_rgb(FIXTURES / "300w" / "afw" / "261068_1.jpg")
    frames = [frame for frame, _ in shaken_clip(photo, 60, shake=0.7, sweep=20.0, seed=4)]
    clip = write_y4m(tmp_path / "clip.y4m", frames)
    (expected,) = FaceLandmarker(page_model("default").tflite).detect(frames[0])
    chromium = launch(playwright, camera_clip=clip)
    try:
        page = open_page(chromium, url, "wasm")
        assert status(page) == "Camera: tracking"
        page.wait_for_function("Number(document.getElementById('frames').textContent"
                               ".split(',')[0]) >= 20", timeout=60_000)
        record = download(page)
        frames_seen, searches = (int(v) for v in page.text_content("#frames").split(","))
    finally:
        chromium.close()
    assert (record["width"], record["height"]) == (640, 480)
    counts = [len(f["faces"]) for f in record["frames"]]
    assert len(counts) >= 20 and all(c == 1 for c in counts), counts
    indices = [f["frame"] for f in record["frames"]]
    assert indices == list(range(indices[0], indices[0] + len(indices)))
    # 1 + frames / 10 when the track never breaks; a break costs one search more
    assert searches <= frames_seen // 5 + 1, (frames_seen, searches)
    # every frame's face is the photo's face, wherever the sweep has moved it
    distance = ocular(expected.points, expected.scheme)
    for frame in record["frames"]:
        points = np.array(frame["faces"][0]["points"])
        assert abs(ocular(points, expected.scheme) / distance - 1) < 0.1
        offset = points.mean(axis=0) - expected.points.mean(axis=0)
        assert abs(offset[0]) < 20 + 5 and abs(offset[1]) < 5


def test_an_uploaded_video_is_tracked_frame_after_frame(wasm_page, tmp_path) -> None:
    """A WebM clip (VP8, written by OpenCV) of a real photo with shake and a sweep: the
    page plays it in a loop and finds the face in every frame it tracks."""
    import cv2

    from face_keypoints.video import shaken_clip

    photo = read_rgb(FIXTURES / "300w" / "afw" / "261068_1.jpg")
    path = tmp_path / "clip.webm"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"VP80"), 30, (320, 240))
    if not writer.isOpened():
        pytest.skip("this OpenCV cannot write VP8 WebM")
    for frame, _ in shaken_clip(photo, 30, size=(320, 240), shake=0.7, sweep=10.0, seed=5):
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    page = wasm_page
    upload(page, path)
    wait_for_status(page, "clip.webm: tracking")
    page.wait_for_function("Number(document.getElementById('frames').textContent"
                           ".split(',')[0]) >= 10", timeout=60_000)
    record = download(page)
    assert record["video"] == "clip.webm" and (record["width"], record["height"]) == (320, 240)
    assert len(record["frames"]) >= 10
    assert all(len(f["faces"]) == 1 for f in record["frames"])


def test_a_bad_upload_shows_one_clear_message_and_the_page_goes_on(wasm_page,
                                                                   tmp_path) -> None:
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    text = tmp_path / "notes.jpg"
    text.write_text("not a photo\n", encoding="utf-8")
    other = tmp_path / "notes.txt"
    other.write_text("not a photo either\n", encoding="utf-8")
    page = wasm_page
    before = status(page)
    expected = {empty: "empty.jpg: the file is empty (0 bytes)",
                text: "notes.jpg: not an image this browser can decode (image/jpeg)",
                other: "notes.txt: not an image or a video this browser can open "
                       "(text/plain)"}
    for path, line in expected.items():
        upload(page, path)
        page.wait_for_function("line => document.getElementById('message').textContent "
                               "=== line", arg=line, timeout=30_000)
        assert "\n" not in message(page)
        assert status(page) == before  # what the page showed goes on
    record = photo_result(page, ASTRONAUT)
    assert len(record["faces"]) == 1 and message(page) == ""


def test_an_export_folder_is_served_like_the_shipped_model(browser, python_faces,
                                                           tmp_path) -> None:
    from face_keypoints.models import default_folder

    export = tmp_path / "my_export"
    export.mkdir()
    for name in ("model.json", "mobilenet_a0.5_d13_128px_gap_fp16.tflite"):
        shutil.copy(default_folder() / name, export / name)
    with serving(export) as address:
        page = open_page(browser, address, "wasm")
        shown = page.text_content("#model-name")
        assert export.name in shown and shown.endswith("_fp16.tflite"), shown
        record = photo_result(page, ASTRONAUT)
        page.close()
    assert worst_error(record, python_faces[ASTRONAUT.name]) < PARITY
