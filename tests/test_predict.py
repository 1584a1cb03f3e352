"""`face-keypoints predict` and FaceLandmarker on the sample photo, real fixture faces and
every bad input of the spec.

Tests that run the landmark model use the default model shipped in the package and skip,
saying so, while none is shipped. Bad inputs are made in tmp_path from real fixtures.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import (
    FIXTURES,
    REPO,
    needs_model,
    needs_shared,
    run_on_a_terminal,
    shared_path,
    tree_digest,
)
from PIL import Image

from face_keypoints.errors import BadInput
from face_keypoints.resolve import resolve_model
from face_keypoints.schemes import IBUG68
from face_keypoints.testing import shaken_clip
from face_keypoints.video import VideoWriter, ffmpeg_binary

SAMPLE = REPO / "examples" / "astronaut.jpg"
AFW = sorted((FIXTURES / "300w" / "afw").glob("*.jpg"))




def _pts(path: Path) -> np.ndarray:
    lines = path.with_suffix(".pts").read_text().splitlines()
    return np.array([[float(v) for v in line.split()] for line in lines[3:71]])


def _failed(err: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith("failed ")]


def _check_face(face: dict) -> None:
    assert set(face) == {"box", "score", "scheme", "points", "presence", "visible",
                         "roll"}
    assert 0.5 <= face["presence"] <= 1.0  # the shipped model's presence output
    assert len(face["visible"]) == 68 and all(0.0 <= v <= 1.0 for v in face["visible"])
    assert face["scheme"] == "ibug68"
    assert len(face["box"]) == 4 and 0.0 < face["score"] <= 1.0
    points = np.array(face["points"])
    assert points.shape == (68, 2)
    x0, y0, x1, y1 = face["box"]
    np.testing.assert_allclose([x0, y0, x1, y1], [*points.min(axis=0), *points.max(axis=0)],
                               atol=0.011)


def _clip(path: Path, frames: int, fourcc: str | None = None) -> None:
    """A shaken clip of a fixture face: through our VideoWriter, or OpenCV's `fourcc`."""
    photo = np.asarray(Image.open(AFW[0]).convert("RGB"))
    if fourcc is None:
        writer = VideoWriter(path, 25.0, 640, 480)
        for frame, _ in shaken_clip(photo, frames):
            writer.write(frame)
        writer.close()
        return
    raw = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), 25.0, (640, 480))
    for frame, _ in shaken_clip(photo, frames):
        raw.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    raw.release()


def test_the_default_model_is_found_or_missing_in_one_clear_line() -> None:
    try:
        path = resolve_model("default").path
    except BadInput as err:
        assert "\n" not in str(err) and "--model" in str(err)
    else:
        assert path.suffix == ".tflite" and path.is_file()
        assert (path.parent / "model.json").is_file()


def test_a_model_that_is_not_there_is_one_error_line(run_cli, tmp_path: Path) -> None:
    result = run_cli("predict", SAMPLE, "--model", tmp_path / "none.tflite")
    assert result.code == 2
    assert result.err.strip().count("\n") == 0 and "no such model file" in result.err


def test_nothing_to_do_is_an_error(run_cli) -> None:
    result = run_cli("predict")
    assert result.code == 2 and "nothing to do" in result.err


@needs_model
def test_the_sample_photo_gives_one_face_a_json_and_an_annotated_copy(run_cli,
                                                                       tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_cli("predict", SAMPLE, "--output", out)
    assert result.code == 0, result.err
    assert result.out.strip() == f"{SAMPLE}: 1 face"
    record = json.loads((out / "astronaut.json").read_text())
    assert set(record) == {"image", "width", "height", "precision", "scheme", "faces"}
    assert (record["image"], record["width"], record["height"]) == (str(SAMPLE), 512, 512)
    (face,) = record["faces"]
    _check_face(face)
    x0, y0, x1, y1 = face["box"]  # Eileen Collins' face in the NASA portrait
    assert 150 < x0 < x1 < 300 and 60 < y0 < y1 < 210
    annotated = np.asarray(Image.open(out / "astronaut.png").convert("RGB"))
    original = np.asarray(Image.open(SAMPLE).convert("RGB"))
    assert annotated.shape == original.shape
    changed = np.abs(annotated.astype(int) - original).sum(axis=2) > 60
    ys, xs = np.nonzero(changed)
    assert changed.sum() > 300 and x0 - 5 <= xs.min() and xs.max() <= x1 + 5
    assert y0 - 5 <= ys.min() and ys.max() <= y1 + 5


@needs_model
def test_without_output_or_json_it_says_that_nothing_was_saved_and_how_to_save(
        run_cli, tmp_path: Path) -> None:
    result = run_cli("predict", SAMPLE)
    assert result.code == 0, result.err
    assert result.out.strip() == f"{SAMPLE}: 1 face"
    assert "nothing was saved; --output DIR writes" in result.err
    for extra in (("--json",), ("--output", tmp_path / "out")):
        assert "nothing was saved" not in run_cli("predict", SAMPLE, *extra).err


@needs_model
def test_json_prints_one_object_per_input_and_matches_the_python_api(run_cli) -> None:
    from face_keypoints import FaceLandmarker

    result = run_cli("predict", SAMPLE, AFW[0], "--json")
    assert result.code == 0, result.err
    lines = result.out.strip().splitlines()
    assert len(lines) == 2
    records = [json.loads(line) for line in lines]
    assert [r["image"] for r in records] == [str(SAMPLE), str(AFW[0])]
    faces = FaceLandmarker().detect(SAMPLE)
    assert [f.to_dict() for f in faces] == records[0]["faces"]
    assert faces[0].points.shape == (68, 2) and faces[0].scheme == "ibug68"


@needs_model
def test_points_on_real_faces_are_near_the_annotation(run_cli) -> None:
    """NME (inter-ocular) of detect -> crop -> model against the 300-W .pts."""
    result = run_cli("predict", *AFW, "--json")
    assert result.code == 0, result.err
    for path, line in zip(AFW, result.out.strip().splitlines(), strict=True):
        truth = _pts(path)
        ocular = np.linalg.norm(np.subtract(*truth[list(IBUG68.outer_eyes)]))
        errors = [np.linalg.norm(np.array(f["points"]) - truth, axis=1).mean() / ocular
                  for f in json.loads(line)["faces"]]
        assert min(errors) < 0.10, (path.name, errors)


@needs_model
def test_grayscale_rgba_and_huge_images_give_the_same_face(run_cli, tmp_path: Path) -> None:
    source = Image.open(AFW[0]).convert("RGB")
    source.convert("L").save(tmp_path / "gray.png")
    rgba = source.convert("RGBA")
    rgba.putalpha(255)
    rgba.save(tmp_path / "rgba.png")
    factor = 4000 / max(source.size)
    source.resize((round(source.width * factor), round(source.height * factor)),
                  Image.BILINEAR).save(tmp_path / "huge.jpg", quality=90)
    result = run_cli("predict", AFW[0], tmp_path / "gray.png", tmp_path / "rgba.png",
                     tmp_path / "huge.jpg", "--json")
    assert result.code == 0, result.err
    base, gray, rgba_, huge = (json.loads(line) for line in result.out.strip().splitlines())
    truth = np.array(base["faces"][0]["points"])
    ocular = np.linalg.norm(np.subtract(*truth[list(IBUG68.outer_eyes)]))
    for record, scale in ((gray, 1.0), (rgba_, 1.0), (huge, factor)):
        assert len(record["faces"]) == len(base["faces"])
        points = (np.array(record["faces"][0]["points"]) + 0.5) / scale - 0.5
        assert np.linalg.norm(points - truth, axis=1).mean() < 0.05 * ocular
    assert huge["width"] == round(source.width * factor)


@needs_model
def test_an_image_without_a_face_gives_no_faces_and_exit_0(run_cli, tmp_path: Path) -> None:
    Image.fromarray(np.full((240, 320, 3), 128, np.uint8)).save(tmp_path / "wall.png")
    result = run_cli("predict", tmp_path / "wall.png", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["faces"] == []


@needs_model
@pytest.mark.parametrize("damage", ["truncated", "not_an_image", "empty", "missing"])
def test_a_bad_image_is_one_line_and_the_rest_are_processed(run_cli, tmp_path: Path,
                                                           damage: str) -> None:
    bad = tmp_path / "bad.jpg"
    if damage == "truncated":
        data = AFW[0].read_bytes()
        bad.write_bytes(data[: len(data) // 3])
    elif damage == "not_an_image":
        bad.write_text("version: 1\nthis is not a picture\n")
    elif damage == "empty":
        bad.write_bytes(b"")
    result = run_cli("predict", bad, SAMPLE, "--output", tmp_path / "out")
    assert result.code == 1
    (line,) = _failed(result.err)
    assert line.startswith(f"failed {bad}: ")
    assert result.err.strip() == line
    assert (tmp_path / "out" / "astronaut.json").is_file()
    assert not (tmp_path / "out" / "bad.json").exists()


@needs_model
def test_an_empty_folder_is_one_line(run_cli, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no pictures here")
    result = run_cli("predict", tmp_path / "empty", SAMPLE, "--json")
    assert result.code == 1
    assert _failed(result.err) == [f"failed {tmp_path / 'empty'}: no images or videos in "
                                   "this folder"]
    assert len(result.out.strip().splitlines()) == 1


@needs_model
def test_a_folder_is_searched_recursively_and_outputs_inside_it_are_not_inputs(
        run_cli, tmp_path: Path) -> None:
    photos = tmp_path / "photos"
    (photos / "trip").mkdir(parents=True)
    shutil.copy(AFW[0], photos / "a.jpg")
    shutil.copy(AFW[1], photos / "trip" / "a.jpg")
    for _ in range(2):
        result = run_cli("predict", photos, "--output", photos / "out")
        assert result.code == 0, result.err
        assert len(result.out.strip().splitlines()) == 2
    assert sorted(p.relative_to(photos / "out").as_posix()
                  for p in (photos / "out").rglob("*")) == [
        "a.json", "a.png", "trip", "trip/a.json", "trip/a.png"]


@needs_model
def test_an_output_that_would_overwrite_an_input_is_refused(run_cli, tmp_path: Path) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(AFW[0], folder / "face.png")
    shutil.copy(AFW[1], folder / "other.jpg")
    before = tree_digest(folder)
    result = run_cli("predict", folder, "--output", folder)
    assert result.code == 2
    assert "would overwrite the input" in result.err and result.err.count("\n") == 1
    assert tree_digest(folder) == before


@needs_model
def test_a_video_is_tracked_frame_by_frame(run_cli, tmp_path: Path) -> None:
    _clip(tmp_path / "clip.mp4", 20)
    result = run_cli("predict", tmp_path / "clip.mp4", "--output", tmp_path / "out", "--json")
    assert result.code == 0, result.err
    record = json.loads(result.out)
    assert set(record) == {"video", "width", "height", "fps", "precision", "scheme",
                           "codec", "frames"}
    assert (record["width"], record["height"], record["fps"]) == (640, 480, 25.0)
    assert [f["frame"] for f in record["frames"]] == list(range(20))
    for frame in record["frames"]:
        (face,) = frame["faces"]
        _check_face(face)
    assert json.loads((tmp_path / "out" / "clip.json").read_text()) == record
    written = cv2.VideoCapture(str(tmp_path / "out" / "clip.mp4"))
    assert written.get(cv2.CAP_PROP_FRAME_COUNT) == 20


@needs_model
def test_videos_that_cannot_be_opened_or_end_early_are_one_line_each(run_cli,
                                                                     tmp_path: Path) -> None:
    _clip(tmp_path / "whole.avi", 16, "MJPG")
    data = (tmp_path / "whole.avi").read_bytes()
    (tmp_path / "cut.avi").write_bytes(data[: len(data) // 2])
    (tmp_path / "text.mp4").write_text("not a video")
    result = run_cli("predict", tmp_path / "cut.avi", tmp_path / "text.mp4", SAMPLE,
                     "--output", tmp_path / "out")
    assert result.code == 1
    cut, text = _failed(result.err)
    assert cut.startswith(f"failed {tmp_path / 'cut.avi'}: the video ended early: ")
    assert text == (f"failed {tmp_path / 'text.mp4'}: cannot be opened as a video (not a "
                    "video file, or a damaged one)")
    assert len(result.err.strip().splitlines()) == 2
    kept = json.loads((tmp_path / "out" / "cut.json").read_text())
    assert 0 < len(kept["frames"]) < 16
    assert (tmp_path / "out" / "astronaut.json").is_file()


@needs_model
def test_a_missing_camera_is_one_line(run_cli, tmp_path: Path) -> None:
    result = run_cli("predict", "--camera", "57", SAMPLE, "--json")
    assert result.code == 1
    assert _failed(result.err) == ["failed camera 57: cannot be opened (no such camera, or "
                                   "it is busy)"]
    assert len(result.out.strip().splitlines()) == 1


@needs_model
def test_max_faces_keeps_the_best_faces(run_cli) -> None:
    two = FIXTURES / "300w" / "afw" / "261068_1.jpg"
    everything = json.loads(run_cli("predict", two, "--json").out)["faces"]
    best = json.loads(run_cli("predict", two, "--json", "--max-faces", "1").out)["faces"]
    assert len(best) == 1 and best[0] == max(everything, key=lambda f: f["score"])


@needs_model
@needs_shared("aflw_merl68", "landmarks68.csv")
def test_the_second_pass_frames_large_poses_better_than_the_detection() -> None:
    """On 40 MERL-RAV test faces with |yaw| >= 45 degrees, placed 2x larger on a grey
    frame: box NME of the crop the detection implies vs the second pass on the crop
    around the first pass's landmarks (what detect and new tracks use)."""
    from face_keypoints import geometry
    from face_keypoints.data.face import AnnotatedFace
    from face_keypoints.data.readers import merl68
    from face_keypoints.metrics import present_mask
    from face_keypoints.runtime.api import FaceLandmarker, as_rgb

    landmarker = FaceLandmarker()
    faces = [f for f in merl68.read(shared_path("aflw_merl68"), None, "test")
             if isinstance(f, AnnotatedFace) and abs(f.yaw) >= 45]
    errors: dict[str, list[float]] = {"detection": [], "second_pass": []}
    for face in faces:
        image = as_rgb(face.image)
        frame = np.full((480, 640, 3), 110, np.uint8)
        big = cv2.resize(image, None, fx=2.0, fy=2.0, interpolation=cv2.INTER_LINEAR)
        frame[100:100 + big.shape[0], 150:150 + big.shape[1]] = big
        present = present_mask(face.visibility)
        truth = face.points[present] * 2.0 + [150, 100]
        x0, y0, x1, y1 = geometry.landmark_box(truth)
        size = np.sqrt((x1 - x0) * (y1 - y0))
        found = landmarker.detector.detect(frame)
        if not found:
            continue
        guesses = {"detection": landmarker.landmarker.points(
                       frame, landmarker.landmarker.detection_square(found[0])),
                   "second_pass": landmarker.landmarker.detected_points(frame, found[0])}
        for name, points in guesses.items():
            errors[name].append(np.linalg.norm(points[present] - truth, axis=1).mean() / size)
        if len(errors["detection"]) == 40:
            break
    assert len(errors["detection"]) == 40
    first, second = (100 * np.mean(errors[n]) for n in ("detection", "second_pass"))
    assert second < first - 0.2, (first, second)


def _decoded_frames(path: Path) -> int:
    capture = cv2.VideoCapture(str(path))
    count = 0
    while capture.grab():
        count += 1
    capture.release()
    return count


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob(".*"))


def _no_ffmpeg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A machine without an ffmpeg binary: imageio-ffmpeg is pointed at nothing."""
    monkeypatch.setenv("IMAGEIO_FFMPEG_EXE", str(tmp_path / "no-ffmpeg"))


@needs_model
def test_videos_are_h264_that_read_back_whole(run_cli, tmp_path: Path) -> None:
    binary = ffmpeg_binary()
    if binary is None:
        pytest.skip("imageio-ffmpeg (a dependency) is not installed")
    _clip(tmp_path / "clip.mp4", 12)
    result = run_cli("predict", tmp_path / "clip.mp4", "--output", tmp_path / "out", "--json")
    assert result.code == 0 and result.err == "", result.err
    assert json.loads(result.out)["codec"] == "h264"
    probe = subprocess.run([binary, "-hide_banner", "-i", str(tmp_path / "out" / "clip.mp4")],
                           capture_output=True, text=True, check=False)
    assert "Video: h264" in probe.stderr and "yuv420p" in probe.stderr, probe.stderr
    assert _decoded_frames(tmp_path / "out" / "clip.mp4") == 12


@needs_model
def test_without_ffmpeg_videos_fall_back_to_mp4v_with_one_note(
        run_cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _clip(tmp_path / "clip.mp4", 12)
    _no_ffmpeg(monkeypatch, tmp_path)
    result = run_cli("predict", tmp_path / "clip.mp4", "--output", tmp_path / "out", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)["codec"] == "mp4v"
    (note,) = result.err.strip().splitlines()
    assert note.startswith("note: ") and "mp4v" in note and "imageio-ffmpeg" in note
    written = cv2.VideoCapture(str(tmp_path / "out" / "clip.mp4"))
    fourcc = int(written.get(cv2.CAP_PROP_FOURCC)).to_bytes(4, "little").decode()
    written.release()
    assert fourcc in ("mp4v", "FMP4")  # MPEG-4 Part 2, as OpenCV names it writing, reading
    assert _decoded_frames(tmp_path / "out" / "clip.mp4") == 12


@pytest.fixture
def tmpfs(tmp_path: Path):
    """mount(KiB) -> a tmpfs of that size under tmp_path, unmounted afterwards; skips
    where mounting is not permitted (it needs root)."""
    mounted: list[Path] = []

    def mount(kib: int) -> Path:
        target = tmp_path / "disk"
        target.mkdir()
        try:
            run = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={kib}k", "tmpfs",
                                  str(target)], capture_output=True, text=True, check=False)
        except FileNotFoundError:
            pytest.skip("no mount command here to make a small disk")
        if run.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs as a small disk (needs root): "
                        f"{run.stderr.strip()}")
        mounted.append(target)
        return target

    yield mount
    for target in mounted:
        subprocess.run(["umount", str(target)], check=False)


@needs_model
@pytest.mark.parametrize("codec", ["h264", "mp4v"])
def test_a_full_disk_keeps_the_earlier_video_and_fails_in_one_line(
        run_cli, tmp_path: Path, tmpfs, monkeypatch: pytest.MonkeyPatch, codec: str) -> None:
    """The same 30-frame clip predicted twice onto a disk that holds one run's output and
    half a video more: the second run cannot finish its video, says so in one line (exit
    1), and the first run's video is still there, whole. OpenCV's mp4v writer does not
    report the full disk at all; the read-back check does."""
    clip = tmp_path / "clip.mp4"
    _clip(clip, 30)
    if codec == "mp4v":
        _no_ffmpeg(monkeypatch, tmp_path)
    sizes = run_cli("predict", clip, "--output", tmp_path / "sizes")
    assert sizes.code == 0, sizes.err
    video, data = ((tmp_path / "sizes" / n).stat().st_size for n in ("clip.mp4", "clip.json"))
    disk = tmpfs((video + data + video // 2) // 1024 + 8)
    first = run_cli("predict", clip, "--output", disk)
    assert first.code == 0, first.err
    good = (disk / "clip.mp4").read_bytes()
    second = run_cli("predict", clip, "--output", disk)
    assert second.code == 1
    (line,) = _failed(second.err)
    assert line.startswith(f"failed {clip}: ") and "\n" not in line
    assert "Traceback" not in second.err
    assert (disk / "clip.mp4").read_bytes() == good
    assert _decoded_frames(disk / "clip.mp4") == 30
    assert _hidden(disk) == []


@needs_model
def test_a_full_output_disk_names_the_output_and_stops_once(run_cli, tmp_path: Path,
                                                           tmpfs) -> None:
    """Photos onto a disk that holds one result: the input that cannot be written names
    the file it could not write, and the run stops there in one more line, instead of
    failing every remaining input the same way."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for name in ("a", "b", "c", "d"):
        (photos / f"{name}.jpg").write_bytes(SAMPLE.read_bytes())
    sizes = run_cli("predict", photos / "a.jpg", "--output", tmp_path / "sizes")
    one = sum(p.stat().st_size for p in (tmp_path / "sizes").iterdir())
    disk = tmpfs(one * 3 // 2 // 1024)
    result = run_cli("predict", photos, "--output", disk)
    assert sizes.code == 0 and result.code == 1, result.err
    failed = _failed(result.err)
    assert len(failed) == 2, result.err
    assert failed[0].startswith(f"failed {photos / 'b.jpg'}: cannot write {disk / 'b.png'}: ")
    assert failed[1] == (f"failed --output {disk}: No space left on device; stopped, 2 "
                         f"inputs after {photos / 'b.jpg'} not processed")
    assert result.out.strip() == f"{photos / 'a.jpg'}: 1 face"


@needs_model
def test_a_video_shows_its_frames_progress_on_a_terminal(tmp_path: Path) -> None:
    clip = tmp_path / "clip.mp4"
    _clip(clip, 20)
    code, out, terminal = run_on_a_terminal("predict", clip)
    assert code == 0, terminal
    assert out.strip() == f"{clip}: 20 frames, faces in 20 (1 at most)"
    assert f"{clip}: " in terminal and "/20 [" in terminal and "frame" in terminal


@needs_model
def test_a_rerun_removes_the_temporary_video_a_killed_run_left(run_cli, tmp_path: Path) -> None:
    """kill -9 of a predict job (Python and its ffmpeg) while it writes a video leaves
    the hidden temporary file; the next run into that folder removes it."""
    clip, out = tmp_path / "long.mp4", tmp_path / "out"
    frame = next(shaken_clip(np.asarray(Image.open(AFW[0]).convert("RGB")), 1))[0]
    writer = VideoWriter(clip, 25.0, frame.shape[1], frame.shape[0])
    for _ in range(300):  # a still face: quick to write, seconds to predict
        writer.write(frame)
    writer.close()
    job = subprocess.Popen([sys.executable, "-m", "face_keypoints.cli", "predict", str(clip),
                            "--output", str(out)], stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        while job.poll() is None and not list(out.glob(".long.*.tmp.mp4")):
            time.sleep(0.05)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(job.pid, signal.SIGKILL)
        job.wait()
    assert job.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    assert [n for n in _hidden(out) if n.endswith(".tmp.mp4")]
    result = run_cli("predict", SAMPLE, "--output", out)
    assert result.code == 0, result.err
    assert _hidden(out) == [] and not (out / "long.mp4").exists()


def test_threads_beyond_twice_the_cpus_are_one_line_exit_2(run_cli) -> None:
    result = run_cli("predict", SAMPLE, "--threads", "100000")
    assert result.code == 2
    (line,) = result.err.strip().splitlines()
    assert "threads 100000" in line and f"1 to {2 * (os.cpu_count() or 1)}" in line
    with pytest.raises(BadInput, match="threads 100000"):
        from face_keypoints import FaceLandmarker

        FaceLandmarker(threads=100000)


@needs_model
def test_json_into_a_pipe_closed_early_stops_quietly() -> None:
    """`predict ... --json | head -1`: once the reader has gone, predict stops without a
    traceback, with the shell's code for a tool stopped by a closed pipe (141)."""
    inputs = [str(SAMPLE)] * 60  # more JSON than a pipe holds, so the writer must wait
    job = subprocess.Popen([sys.executable, "-m", "face_keypoints.cli", "predict", *inputs,
                            "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert job.stdout is not None and job.stderr is not None
    first = job.stdout.readline()
    job.stdout.close()
    err = job.stderr.read().decode()
    assert job.wait() == 141, err
    assert json.loads(first)["image"] == str(SAMPLE)
    assert err == ""
