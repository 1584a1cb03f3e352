"""`face-keypoints prepare` end to end, on real fixtures and on real data sets.

Every bad input is made in tmp_path from a copy of a real fixture; the run must report
that one face (file and line) and prepare the rest.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import FIXTURES, cli_command, needs_shared, shared_path, tree_digest
from PIL import Image

from face_keypoints.data.cache import open_cache
from face_keypoints.data.face import ABSENT
from face_keypoints.prepare import prepare
from face_keypoints.schemes import IBUG68, get_scheme

WFLW_LIST = Path("WFLW_annotations/list_98pt_rect_attr_train_test/list_98pt_rect_attr_test.txt")


def prepared(result, count: int, skipped: int) -> None:
    assert result.code == 0, result.err
    assert result.last_line == f"prepared {count} faces, skipped {skipped}", result.last_line
    assert "Traceback" not in result.err


def one_skip(result, where: str, reason: str, count: int) -> str:
    """Exit 0, exactly one report line naming `where` (FILE:LINE) and `reason`."""
    prepared(result, count, 1)
    assert len(result.skip_lines) == 1, result.err
    line = result.skip_lines[0]
    assert line.startswith(f"skipped {where}: "), line
    assert reason in line, line
    return line


def edit_line(path: Path, number: int, change) -> None:
    """Replace 1-based line `number` of a text file with change(old_line)."""
    lines = path.read_bytes().split(b"\n")
    lines[number - 1] = change(lines[number - 1])
    path.write_bytes(b"\n".join(lines))


def csv_fields(change):
    def edit(line: bytes) -> bytes:
        fields = line.decode().split(",")
        return ",".join(change(fields)).encode()
    return edit


def wflw_fields(change):
    def edit(line: bytes) -> bytes:
        return " ".join(change(line.decode().split(" "))).encode()
    return edit


def run_prepare(run_cli, format: str, input: Path, output: Path, *extra: object):
    return run_cli("prepare", "--format", format, "--input", input, "--output", output,
                   "--no-progress", *extra)


# --- The cache ---------------------------------------------------------------------------

def test_prepare_writes_a_cache_with_its_manifest(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "cache"
    result = run_prepare(run_cli, "wflw", FIXTURES / "wflw", out)
    prepared(result, 4, 0)
    assert sorted(p.name for p in out.iterdir()) == [
        "faces.jsonl", "images.npy", "manifest.json", "points.npy", "visibility.npy"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert {"scheme", "count", "size", "format", "source", "crop"} <= set(manifest)
    assert manifest["scheme"] == "wflw98"
    assert manifest["count"] == 4
    assert manifest["size"] == 160
    assert manifest["format"] == "wflw"
    assert manifest["source"] == str((FIXTURES / "wflw").resolve())
    assert manifest["crop"]["box"] == "WFLW rect"
    cache = open_cache(out)
    assert cache.images.shape == (4, 160, 160, 3) and cache.images.dtype == np.uint8
    assert cache.points.shape == (4, 98, 2) and cache.points.dtype == np.float32
    assert cache.visibility.shape == (4, 98) and cache.visibility.dtype == np.uint8
    assert [f["line"] for f in cache.faces] == [1, 2, 3, 4]
    assert cache.faces[0]["attributes"] == {"pose": 0, "expression": 0, "illumination": 0,
                                            "make-up": 0, "occlusion": 0, "blur": 0}
    assert not (tmp_path / ".cache.partial").exists()


@pytest.mark.parametrize(("format", "folder", "scheme", "count", "splits"), [
    ("wflw", "wflw", "wflw98", 4, {"test": 4}),
    ("300w", "300w/afw", "ibug68", 3, {"all": 3}),
    ("aflw21", "aflw21", "aflw21", 6, {"all": 6}),
    ("merl68", "aflw_merl68", "ibug68", 6, {"train": 4, "test": 2}),
    ("youtube68", "youtube_faces_68", "ibug68", 7, {"train": 5, "test": 2}),
    ("coco", "coco/cofw", "cofw29", 2, {"all": 2}),
    ("coco", "coco/aflw", "aflw19", 2, {"all": 2}),
    ("coco", "coco/300w", "ibug68", 2, {"all": 2}),
    ("coco", "coco/wflw", "wflw98", 4, {"all": 4}),
])
def test_prepare_reads_every_format(run_cli, tmp_path: Path, format: str, folder: str,
                                    scheme: str, count: int, splits: dict) -> None:
    out = tmp_path / "cache"
    prepared(run_prepare(run_cli, format, FIXTURES / folder, out), count, 0)
    cache = open_cache(out)
    assert cache.manifest["scheme"] == scheme and len(cache) == count
    assert cache.manifest["splits"] == splits
    assert cache.manifest["crop"]["box"] == ("WFLW rect" if format == "wflw" else "landmark box")


def test_points_in_crop_pixels_follow_the_crop_recorded_in_faces_jsonl(
        run_cli, tmp_path: Path) -> None:
    out = tmp_path / "cache"
    prepared(run_prepare(run_cli, "wflw", FIXTURES / "wflw", out), 4, 0)
    cache = open_cache(out)
    rows = [line.split() for line in (FIXTURES / "wflw" / WFLW_LIST).read_text().splitlines()]
    size = cache.size
    for i, (face, row) in enumerate(zip(cache.faces, rows, strict=True)):
        original = np.array(row[:196], float).reshape(98, 2)
        cx, cy, side = face["crop"]
        scale = size / side
        expected = (original - (cx, cy)) * scale + size / 2
        np.testing.assert_allclose(cache.points[i], expected, atol=0.01)
        # The crop is the square around the WFLW rect, 1.75 x its longer side.
        x0, y0, x1, y1 = np.array(row[196:200], float)
        assert (cx, cy) == pytest.approx(((x0 + x1) / 2, (y0 + y1) / 2), abs=1e-3)
        assert side == pytest.approx(1.75 * max(x1 - x0, y1 - y0), abs=1e-3)
        # The image went through the same affine: warping the photo ourselves gives the crop.
        photo = np.asarray(Image.open(face["image"]).convert("RGB"))
        matrix = np.array([[scale, 0, size / 2 - scale * cx], [0, scale, size / 2 - scale * cy]])
        ours = cv2.warpAffine(photo, matrix, (size, size), flags=cv2.INTER_LINEAR,
                              borderMode=cv2.BORDER_CONSTANT)
        difference = np.abs(ours.astype(int) - cache.images[i].astype(int))
        assert difference.mean() < 1.0


def test_eye_corners_land_inside_the_crop_on_the_eyes(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "cache"
    prepared(run_prepare(run_cli, "300w", FIXTURES / "300w" / "afw", out), 3, 0)
    cache = open_cache(out)
    scheme = get_scheme("ibug68")
    for i in range(len(cache)):
        points = cache.points[i]
        for corner in scheme.outer_eyes:
            x, y = points[corner]
            assert 0 <= x < cache.size and 0 <= y < cache.size
        # Face framed in the middle: eyes in the upper half, chin in the lower half.
        right, left = points[list(IBUG68.outer_eyes)]
        assert right[0] < cache.size / 2 < left[0]
        assert right[1] < cache.size / 2 and left[1] < cache.size / 2
        assert points[8][1] > cache.size / 2
        # Every point sees in the crop what it sees in the photo: the crop's colour at the
        # point equals the photo's colour at the annotated point (3x3 patch means).
        face = cache.faces[i]
        photo = np.asarray(Image.open(face["image"]).convert("RGB")).astype(np.float32)
        original = np.loadtxt(Path(face["source"]).read_text().splitlines()[3:71])
        crop = cache.images[i].astype(np.float32)
        zoom = cache.size / face["crop"][2]

        def colours(image, where, patch):
            return np.array([cv2.getRectSubPix(image, (patch, patch), (float(x), float(y)))
                             .reshape(-1, 3).mean(axis=0) for x, y in where])

        here = colours(crop, points, 3)
        there = colours(photo, original, max(3, round(3 / zoom) | 1))
        agree = np.abs(here - there).mean()
        shifted = np.abs(colours(crop, points + np.array([0.0, 6.0]), 3) - there).mean()
        assert agree < 12 and agree < shifted / 2, (agree, shifted)


def test_size_sets_the_crop_size_and_scales_the_points(run_cli, tmp_path: Path) -> None:
    big, small = tmp_path / "big", tmp_path / "small"
    prepared(run_prepare(run_cli, "300w", FIXTURES / "300w" / "afw", big), 3, 0)
    prepared(run_prepare(run_cli, "300w", FIXTURES / "300w" / "afw", small, "--size", 96), 3, 0)
    a, b = open_cache(big), open_cache(small)
    assert b.images.shape == (3, 96, 96, 3) and b.manifest["size"] == 96
    np.testing.assert_allclose(np.asarray(b.points), np.asarray(a.points) * 96 / 160, atol=1e-3)


def test_absent_points_stay_absent_with_zero_coordinates(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "cache"
    prepared(run_prepare(run_cli, "aflw21", FIXTURES / "aflw21", out), 6, 0)
    cache = open_cache(out)
    absent = np.asarray(cache.visibility) == ABSENT
    assert absent.sum() > 0
    assert (np.asarray(cache.points)[absent] == 0).all()


# --- Bad faces: reported, skipped, the rest prepared --------------------------------------

def test_corrupt_image_bytes_skip_that_face(run_cli, copy_fixture, tmp_path: Path) -> None:
    root = copy_fixture("aflw21")
    image = root / "images" / "image04522.jpg"
    data = image.read_bytes()
    noise = np.random.default_rng(0).integers(0, 256, len(data) // 2, dtype=np.uint8)
    image.write_bytes(data[: len(data) - len(noise)] + noise.tobytes())
    line = one_skip(run_prepare(run_cli, "aflw21", root, tmp_path / "out"),
                    f"{root / 'landmarks21.csv'}:4", "corrupt image", 5)
    assert str(image) in line


def test_garbage_in_place_of_an_image_skips_that_face(run_cli, copy_fixture,
                                                      tmp_path: Path) -> None:
    root = copy_fixture("aflw21")
    image = root / "images" / "image04561.jpg"
    data = bytearray(image.read_bytes())
    data[2:64] = bytes(62)  # the JPEG header
    image.write_bytes(bytes(data))
    line = one_skip(run_prepare(run_cli, "aflw21", root, tmp_path / "out"),
                    f"{root / 'landmarks21.csv'}:5", "not an image file", 5)
    assert str(image) in line


def test_truncated_jpeg_skips_that_face(run_cli, copy_fixture, tmp_path: Path) -> None:
    root = copy_fixture("youtube_faces_68")
    frame = root / "training" / "Ed_Smart_31.jpg"
    frame.write_bytes(frame.read_bytes()[: frame.stat().st_size * 6 // 10])
    one_skip(run_prepare(run_cli, "youtube68", root, tmp_path / "out"),
             f"{root / 'training_frames_keypoints.csv'}:6", "truncated", 6)


def test_zero_byte_image_skips_its_faces(run_cli, copy_fixture, tmp_path: Path) -> None:
    root = copy_fixture("wflw")
    (root / "WFLW_images/36--Football/36_Football_americanfootball_ball_36_415.jpg").write_bytes(
        b"")
    one_skip(run_prepare(run_cli, "wflw", root, tmp_path / "out"),
             f"{root / WFLW_LIST}:1", "empty image file (0 bytes)", 3)


def test_wflw_points_far_outside_the_image_skip_that_face_though_its_rect_is_inside(
        run_cli, copy_fixture, tmp_path: Path) -> None:
    """A line whose points were moved thousands of pixels out (its rect left in place)
    is refused, as the readers without a rect refuse a landmark box outside the image."""
    root = copy_fixture("wflw")

    def far_right(fields: list[str]) -> list[str]:
        return [f"{float(v) + 6000:.3f}" if i < 196 and i % 2 == 0 else v
                for i, v in enumerate(fields)]

    edit_line(root / WFLW_LIST, 2, wflw_fields(far_right))
    one_skip(run_prepare(run_cli, "wflw", root, tmp_path / "out"),
             f"{root / WFLW_LIST}:2", "lie mostly outside the", 3)


@pytest.fixture
def afw_reference(run_cli, tmp_path: Path):
    out = tmp_path / "reference"
    prepared(run_prepare(run_cli, "300w", FIXTURES / "300w" / "afw", out), 3, 0)
    return open_cache(out)


def _as_png(copy_fixture, make) -> Path:
    root = copy_fixture("300w/afw")
    jpg = root / "45092961_1.jpg"
    rgb = np.asarray(Image.open(jpg).convert("RGB"))
    make(rgb).save(root / "45092961_1.png")
    jpg.unlink()
    return root


def test_grayscale_png_is_converted_not_skipped(run_cli, copy_fixture, tmp_path: Path,
                                                afw_reference) -> None:
    gray = {}

    def make(rgb: np.ndarray) -> Image.Image:
        gray["l"] = Image.fromarray(rgb).convert("L")
        return gray["l"]

    root = _as_png(copy_fixture, make)
    prepared(run_prepare(run_cli, "300w", root, tmp_path / "out"), 3, 0)
    crop = open_cache(tmp_path / "out").images[2].astype(int)
    assert (crop[..., 0] == crop[..., 1]).all() and (crop[..., 1] == crop[..., 2]).all()
    expected = afw_reference.images[2].astype(float) @ [0.299, 0.587, 0.114]
    assert np.abs(crop[..., 0] - expected).mean() < 2.0


def test_rgba_png_is_converted_not_skipped(run_cli, copy_fixture, tmp_path: Path,
                                           afw_reference) -> None:
    def make(rgb: np.ndarray) -> Image.Image:
        alpha = np.full((*rgb.shape[:2], 1), 255, dtype=np.uint8)
        return Image.fromarray(np.concatenate([rgb, alpha], axis=2), "RGBA")

    root = _as_png(copy_fixture, make)
    prepared(run_prepare(run_cli, "300w", root, tmp_path / "out"), 3, 0)
    np.testing.assert_array_equal(open_cache(tmp_path / "out").images[2],
                                  afw_reference.images[2])


def test_16_bit_png_is_converted_not_skipped(run_cli, copy_fixture, tmp_path: Path) -> None:
    def make8(rgb: np.ndarray) -> Image.Image:
        return Image.fromarray(rgb).convert("L")

    def make16(rgb: np.ndarray) -> Image.Image:
        gray = np.asarray(Image.fromarray(rgb).convert("L")).astype(np.uint16) * 257
        return Image.fromarray(gray)  # mode I;16

    eight = _as_png(copy_fixture, make8)
    sixteen = copy_fixture("300w/afw", dest="afw16")
    (sixteen / "45092961_1.jpg").unlink()
    make16(np.asarray(Image.open(FIXTURES / "300w/afw/45092961_1.jpg").convert("RGB"))).save(
        sixteen / "45092961_1.png")
    assert Image.open(sixteen / "45092961_1.png").mode.startswith("I")
    prepared(run_prepare(run_cli, "300w", eight, tmp_path / "out8"), 3, 0)
    prepared(run_prepare(run_cli, "300w", sixteen, tmp_path / "out16"), 3, 0)
    np.testing.assert_array_equal(open_cache(tmp_path / "out16").images[2],
                                  open_cache(tmp_path / "out8").images[2])


def test_16_bit_rgb_png_is_converted_not_skipped(run_cli, copy_fixture, tmp_path: Path,
                                                 afw_reference) -> None:
    root = copy_fixture("300w/afw")
    bgr = cv2.imread(str(root / "45092961_1.jpg"))
    cv2.imwrite(str(root / "45092961_1.png"), bgr.astype(np.uint16) * 257)
    (root / "45092961_1.jpg").unlink()
    prepared(run_prepare(run_cli, "300w", root, tmp_path / "out"), 3, 0)
    difference = np.abs(open_cache(tmp_path / "out").images[2].astype(int)
                        - afw_reference.images[2].astype(int))
    assert difference.max() <= 1


def test_missing_image_file_skips_that_face(run_cli, copy_fixture, tmp_path: Path) -> None:
    images = copy_fixture("aflw21") / "images"
    root = copy_fixture("aflw_merl68")
    (images / "image04561.jpg").unlink()
    line = one_skip(run_prepare(run_cli, "merl68", root, tmp_path / "out"),
                    f"{root / 'landmarks68.csv'}:5", "image file not found", 5)
    assert "image04561.jpg" in line


def test_missing_image_beside_a_pts_skips_that_face(run_cli, copy_fixture,
                                                    tmp_path: Path) -> None:
    root = copy_fixture("300w/afw")
    (root / "261068_2.jpg").unlink()
    one_skip(run_prepare(run_cli, "300w", root, tmp_path / "out"),
             str(root / "261068_2.pts"), "no image beside it", 2)


def test_pts_with_67_points_is_skipped(run_cli, copy_fixture, tmp_path: Path) -> None:
    root = copy_fixture("300w/afw")
    pts = root / "261068_2.pts"
    lines = pts.read_text().splitlines()
    del lines[40]
    pts.write_text("\n".join(lines) + "\n")
    one_skip(run_prepare(run_cli, "300w", root, tmp_path / "out"),
             f"{pts}:2", "n_points says 68 but the file has 67 points", 2)


def test_pts_declaring_67_points_is_skipped(run_cli, copy_fixture, tmp_path: Path) -> None:
    root = copy_fixture("300w/afw")
    pts = root / "261068_2.pts"
    lines = pts.read_text().splitlines()
    del lines[40]
    lines[1] = "n_points:  67"
    pts.write_text("\n".join(lines) + "\n")
    one_skip(run_prepare(run_cli, "300w", root, tmp_path / "out"),
             f"{pts}:2", "67 points: no landmark scheme", 2)


def test_pts_with_a_non_numeric_value_is_skipped(run_cli, copy_fixture,
                                                 tmp_path: Path) -> None:
    root = copy_fixture("300w/afw")
    pts = root / "261068_2.pts"
    edit_line(pts, 10, lambda line: b"abc " + line.split()[1])
    one_skip(run_prepare(run_cli, "300w", root, tmp_path / "out"),
             f"{pts}:10", "not a number", 2)


def _nan_in_aflw21(root: Path) -> tuple[Path, int]:
    path = root / "landmarks21.csv"
    edit_line(path, 3, csv_fields(lambda f: [*f[:6], "nan", *f[7:]]))
    return path, 3


def _inf_in_wflw(root: Path) -> tuple[Path, int]:
    path = root / WFLW_LIST
    edit_line(path, 2, wflw_fields(lambda f: ["inf", *f[1:]]))
    return path, 2


def _nan_in_pts(root: Path) -> tuple[Path, int]:
    path = root / "261068_1.pts"
    edit_line(path, 20, lambda line: b"nan " + line.split()[1])
    return path, 20


def _inf_in_youtube(root: Path) -> tuple[Path, int]:
    path = root / "test_frames_keypoints.csv"
    edit_line(path, 2, csv_fields(lambda f: [f[0], "-inf", *f[2:]]))
    return path, 2


@pytest.mark.parametrize(("format", "folder", "make", "count"), [
    ("aflw21", "aflw21", _nan_in_aflw21, 5),
    ("wflw", "wflw", _inf_in_wflw, 3),
    ("300w", "300w/afw", _nan_in_pts, 2),
    ("youtube68", "youtube_faces_68", _inf_in_youtube, 6),
], ids=["nan-aflw21", "inf-wflw", "nan-pts", "inf-youtube"])
def test_nan_or_infinite_coordinate_is_skipped(run_cli, copy_fixture, tmp_path: Path,
                                               format, folder, make, count) -> None:
    root = copy_fixture(folder)
    path, line = make(root)
    one_skip(run_prepare(run_cli, format, root, tmp_path / "out"), f"{path}:{line}",
             "NaN or infinite", count)


@pytest.mark.parametrize(("format", "folder", "file", "line", "keep", "count"), [
    ("wflw", "wflw", str(WFLW_LIST), 3, 150, 3),
    ("aflw21", "aflw21", "landmarks21.csv", 6, 10, 5),
    ("merl68", "aflw_merl68", "landmarks68.csv", 2, 40, 5),
    ("youtube68", "youtube_faces_68", "training_frames_keypoints.csv", 3, 5, 6),
], ids=["wflw", "aflw21", "merl68", "youtube68"])
def test_annotation_line_with_too_few_fields_is_skipped(run_cli, copy_fixture, tmp_path,
                                                        format, folder, file, line, keep,
                                                        count) -> None:
    if format == "merl68":
        copy_fixture("aflw21")
    root = copy_fixture(folder)
    path = root / file
    separator = b" " if format == "wflw" else b","
    edit_line(path, line, lambda text: separator.join(text.split(separator)[:keep]))
    one_skip(run_prepare(run_cli, format, root, tmp_path / "out"), f"{path}:{line}",
             "expected", count)


def test_wflw_rect_outside_the_image_is_skipped(run_cli, copy_fixture, tmp_path: Path) -> None:
    root = copy_fixture("wflw")
    path = root / WFLW_LIST

    def move(fields: list[str]) -> list[str]:
        for i in (196, 198):
            fields[i] = f"{float(fields[i]) + 3000:.6f}"
        return fields

    edit_line(path, 4, wflw_fields(move))
    one_skip(run_prepare(run_cli, "wflw", root, tmp_path / "out"), f"{path}:4",
             "lies mostly outside", 3)


def test_landmarks_outside_the_image_are_skipped(run_cli, copy_fixture,
                                                 tmp_path: Path) -> None:
    root = copy_fixture("youtube_faces_68")
    path = root / "training_frames_keypoints.csv"
    edit_line(path, 2, csv_fields(
        lambda f: [f[0], *(f"{float(v) + 5000:.1f}" if i % 2 == 0 else v
                           for i, v in enumerate(f[1:]))]))
    one_skip(run_prepare(run_cli, "youtube68", root, tmp_path / "out"), f"{path}:2",
             "lies mostly outside", 6)


def _duplicate_aflw21(root: Path) -> tuple[str, str, int]:
    path = root / "landmarks21.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, lines[3]]) + "\n")
    return "aflw21", f"{path}:8", 6


def _duplicate_youtube(root: Path) -> tuple[str, str, int]:
    path = root / "test_frames_keypoints.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines[:2], lines[1], *lines[2:]]) + "\n")
    return "youtube68", f"{path}:3", 7


def _duplicate_wflw(root: Path) -> tuple[str, str, int]:
    path = root / WFLW_LIST
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, lines[1]]) + "\n")
    return "wflw", f"{path}:5", 4


def _duplicate_300w(root: Path) -> tuple[str, str, int]:
    Image.open(root / "261068_1.jpg").save(root / "261068_1.png")
    return "300w", str(root / "261068_1.pts"), 2


@pytest.mark.parametrize(("folder", "make"), [
    ("aflw21", _duplicate_aflw21), ("youtube_faces_68", _duplicate_youtube),
    ("wflw", _duplicate_wflw), ("300w/afw", _duplicate_300w),
], ids=["aflw21-row", "youtube-row", "wflw-line", "300w-jpg-and-png"])
def test_duplicate_names_are_reported_once(run_cli, copy_fixture, tmp_path: Path,
                                           folder, make) -> None:
    root = copy_fixture(folder)
    format, where, count = make(root)
    one_skip(run_prepare(run_cli, format, root, tmp_path / "out"), where, "duplicate", count)


def _latin1_in_aflw21(root: Path) -> tuple[str, str, int]:
    path = root / "landmarks21.csv"
    edit_line(path, 3, lambda line: line.replace(b"image", "imagé".encode("latin-1"), 1))
    return "aflw21", f"{path}:3", 5


def _latin1_in_pts(root: Path) -> tuple[str, str, int]:
    path = root / "45092961_1.pts"
    edit_line(path, 1, lambda line: line + " caf\xe9".encode("latin-1"))
    return "300w", f"{path}:1", 2


def _latin1_in_wflw(root: Path) -> tuple[str, str, int]:
    path = root / WFLW_LIST
    edit_line(path, 1, lambda line: line.replace(b"Football", b"F\xf6otball"))
    return "wflw", f"{path}:1", 3


def _latin1_in_youtube(root: Path) -> tuple[str, str, int]:
    path = root / "training_frames_keypoints.csv"
    edit_line(path, 4, lambda line: b"\xff" + line)
    return "youtube68", f"{path}:4", 6


@pytest.mark.parametrize(("folder", "make"), [
    ("aflw21", _latin1_in_aflw21), ("300w/afw", _latin1_in_pts), ("wflw", _latin1_in_wflw),
    ("youtube_faces_68", _latin1_in_youtube),
], ids=["aflw21", "pts", "wflw", "youtube"])
def test_non_utf8_bytes_skip_that_line(run_cli, copy_fixture, tmp_path: Path,
                                       folder, make) -> None:
    root = copy_fixture(folder)
    format, where, count = make(root)
    one_skip(run_prepare(run_cli, format, root, tmp_path / "out"), where, "not UTF-8", count)


def test_non_utf8_bytes_in_coco_json_skip_that_face(run_cli, copy_fixture,
                                                    tmp_path: Path) -> None:
    root = copy_fixture("coco/cofw")
    path = root / "test_cofw.json"
    path.write_bytes(path.read_bytes().replace(b'"001805.jpg"', b'"0018\xe905.jpg"'))
    one_skip(run_prepare(run_cli, "coco", root, tmp_path / "out"),
             f"{path}: annotation 2", "not UTF-8", 1)


# --- --strict ----------------------------------------------------------------------------

def test_strict_fails_with_exit_2_when_a_face_is_skipped(run_cli, copy_fixture,
                                                         tmp_path: Path) -> None:
    root = copy_fixture("300w/afw")
    (root / "261068_2.jpg").write_bytes(b"")
    out = tmp_path / "out"
    result = run_prepare(run_cli, "300w", root, out, "--strict")
    assert result.code == 2
    assert len(result.skip_lines) == 1
    assert result.err.strip().splitlines()[-1].startswith("face-keypoints prepare: error: ")
    assert "Traceback" not in result.err
    assert not out.exists() and not (tmp_path / ".out.partial").exists()


def test_strict_passes_when_nothing_is_skipped(run_cli, tmp_path: Path) -> None:
    prepared(run_prepare(run_cli, "300w", FIXTURES / "300w" / "afw", tmp_path / "out",
                         "--strict"), 3, 0)


def test_strict_rerun_on_a_cache_with_skips_fails(run_cli, copy_fixture,
                                                  tmp_path: Path) -> None:
    root = copy_fixture("300w/afw")
    (root / "261068_2.jpg").write_bytes(b"")
    out = tmp_path / "out"
    prepared(run_prepare(run_cli, "300w", root, out), 2, 1)
    result = run_prepare(run_cli, "300w", root, out, "--strict")
    assert result.code == 2
    assert "face-keypoints prepare: error: --strict" in result.err


# --- Input untouched, output atomic and resumable -----------------------------------------

def test_input_folder_is_byte_identical_after_prepare(run_cli, copy_fixture,
                                                      tmp_path: Path) -> None:
    root = copy_fixture("wflw")
    (root / "WFLW_images/36--Football/36_Football_americanfootball_ball_36_415.jpg").write_bytes(
        b"")
    before = tree_digest(tmp_path / "in")
    prepared(run_prepare(run_cli, "wflw", root, tmp_path / "out"), 3, 1)
    prepared(run_prepare(run_cli, "wflw", root, tmp_path / "out"), 3, 1)
    assert tree_digest(tmp_path / "in") == before


def test_output_inside_input_is_refused(run_cli, copy_fixture, tmp_path: Path) -> None:
    root = copy_fixture("300w/afw")
    before = tree_digest(root)
    for out in (root / "cache", root, root / "deeper" / "cache"):
        result = run_prepare(run_cli, "300w", root, out)
        assert result.code == 2
        assert result.err.count("\n") == 1, result.err
        assert result.err.startswith("face-keypoints prepare: error: ")
        assert "inside --input" in result.err
    assert tree_digest(root) == before


def test_second_run_on_a_finished_cache_is_a_no_op(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    prepared(run_prepare(run_cli, "aflw21", FIXTURES / "aflw21", out), 6, 0)
    before = tree_digest(out)
    stamps = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    result = run_prepare(run_cli, "aflw21", FIXTURES / "aflw21", out)
    prepared(result, 6, 0)
    assert "already prepared" in result.out
    assert tree_digest(out) == before
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == stamps


def test_changed_annotations_do_not_reuse_a_finished_cache(run_cli, copy_fixture,
                                                           tmp_path: Path) -> None:
    root = copy_fixture("300w/afw")
    out = tmp_path / "out"
    prepared(run_prepare(run_cli, "300w", root, out), 3, 0)
    edit_line(root / "261068_1.pts", 20, lambda line: b"1" + line)
    result = run_prepare(run_cli, "300w", root, out)
    assert result.code == 2
    assert "already holds a different cache" in result.err


def _killed_output_state(out: Path) -> str:
    """After a kill: "absent", or "complete" for a whole cache; anything else fails."""
    if not out.exists():
        return "absent"
    assert (out / "manifest.json").exists(), f"{out} exists without a manifest"
    cache = open_cache(out)  # checks that every array and faces.jsonl hold `count` faces
    assert len(cache) == cache.manifest["count"] == 870
    return "complete"


@needs_shared("300w", "helen_trainset")
def test_killed_prepare_leaves_no_half_cache_and_rerun_finishes(tmp_path: Path) -> None:
    source = shared_path("300w", "helen_trainset")
    # The clean run to compare with is made alongside, in this process.
    reference_dir = tmp_path / "reference"
    clean = threading.Thread(target=prepare, args=("300w", source, reference_dir),
                             kwargs={"progress": False, "log": lambda line: None})
    clean.start()
    out = tmp_path / "run" / "out"
    staging = out.with_name(".out.partial")
    command = [*cli_command(), "prepare", "--format", "300w", "--input", str(source),
               "--output", str(out), "--no-progress"]

    def chunks() -> int:  # finished chunks (a chunk being written has a hidden temp name)
        return sum(not p.name.startswith(".") for p in (staging / "chunks").glob("*.npz"))

    # Kill moments: right away, while cropping (each time one more chunk is saved),
    # while assembling the cache, and just after it is published.
    moments = [lambda start: True,
               lambda start: chunks() > start,
               lambda start: chunks() > start,
               lambda start: (staging / "cache").exists(),
               lambda start: out.exists()]
    states = []
    for ready in moments:
        start = chunks()
        process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        while process.poll() is None and not ready(start) and time.monotonic() < deadline:
            time.sleep(0.001)
        process.kill()
        process.wait()
        states.append(_killed_output_state(out))
    assert states[0] == "absent"
    rerun = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert rerun.stdout.strip().splitlines()[-1] == "prepared 870 faces, skipped 0"
    assert _killed_output_state(out) == "complete"
    assert not staging.exists()
    assert sorted(p.name for p in out.parent.iterdir()) == ["out"]
    clean.join()
    reference, resumed = open_cache(reference_dir), open_cache(out)
    np.testing.assert_array_equal(resumed.images, reference.images)
    np.testing.assert_array_equal(resumed.points, reference.points)
    np.testing.assert_array_equal(resumed.visibility, reference.visibility)
    assert resumed.faces == reference.faces


# --- Splits ------------------------------------------------------------------------------

def test_val_fraction_splits_by_person_and_keeps_the_test_split(run_cli,
                                                                tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_prepare(run_cli, "youtube68", FIXTURES / "youtube_faces_68", out,
                         "--val-fraction", "0.5")
    assert result.code == 0
    cache = open_cache(out)
    by_split: dict[str, set[str]] = {}
    for face in cache.faces:
        by_split.setdefault(face["split"], set()).add(face["identity"])
    assert set(by_split) == {"train", "val", "test"}
    assert by_split["train"].isdisjoint(by_split["val"])
    assert sum(1 for f in cache.faces if f["split"] == "test") == 2
    assert set(cache.indices("train")).isdisjoint(cache.indices("val"))


@needs_shared("300w", "afw")
def test_val_fraction_on_afw_never_splits_a_photo(run_cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    result = run_prepare(run_cli, "300w", shared_path("300w", "afw"), out,
                         "--val-fraction", "0.2")
    prepared_line = result.last_line
    assert result.code == 0 and prepared_line.startswith("prepared 337 faces, skipped 0")
    faces = open_cache(out).faces
    train = {f["identity"] for f in faces if f["split"] == "train"}
    val = {f["identity"] for f in faces if f["split"] == "val"}
    assert train and val and train.isdisjoint(val)
    assert 0.1 < len(val) / len(train | val) < 0.3
    # AFW's multi-face photos (NAME_1, NAME_2, ...) are one identity each.
    assert len(train | val) < 337


# --- Real data ---------------------------------------------------------------------------

@needs_shared("300w", "afw")
def test_prepare_afw_gives_337_faces_and_skips_none(run_cli, tmp_path: Path) -> None:
    source = shared_path("300w", "afw")
    result = run_prepare(run_cli, "300w", source, tmp_path / "out")
    prepared(result, 337, 0)
    cache = open_cache(tmp_path / "out")
    assert cache.manifest["scheme"] == "ibug68" and len(cache) == 337
    inside = (np.asarray(cache.points) >= 0) & (np.asarray(cache.points) < cache.size)
    assert inside.all()


# --- Errors about arguments and files: one line, exit 2 ---------------------------------

def _error_cases(tmp_path: Path) -> dict[str, list[object]]:
    a_file = tmp_path / "a_file"
    afw = FIXTURES / "300w" / "afw"
    return {
        "missing input": ["--format", "300w", "--input", tmp_path / "nope",
                          "--output", tmp_path / "o"],
        "size too small": ["--format", "300w", "--input", afw, "--output", tmp_path / "o",
                           "--size", "10"],
        "size too large": ["--format", "300w", "--input", afw, "--output", tmp_path / "o",
                           "--size", "100000"],
        "val fraction nan": ["--format", "300w", "--input", afw, "--output", tmp_path / "o",
                             "--val-fraction", "nan"],
        "split the format lacks": ["--format", "300w", "--input", afw,
                                   "--output", tmp_path / "o", "--split", "train"],
        "unknown split": ["--format", "wflw", "--input", FIXTURES / "wflw",
                          "--output", tmp_path / "o", "--split", "validation"],
        "val fraction 1.5": ["--format", "300w", "--input", afw, "--output", tmp_path / "o",
                             "--val-fraction", "1.5"],
        "output is a file": ["--format", "300w", "--input", afw, "--output", a_file],
        "output under a file": ["--format", "300w", "--input", afw,
                                "--output", a_file / "out"],
        "missing annotations": ["--format", "aflw21", "--input", FIXTURES / "aflw21",
                                "--annotations", tmp_path / "nope.csv",
                                "--output", tmp_path / "o"],
        "no pts files": ["--format", "300w", "--input", FIXTURES / "aflw21",
                         "--output", tmp_path / "o"],
        "wrong format for the folder": ["--format", "wflw", "--input", afw,
                                        "--output", tmp_path / "o"],
        "annotations is a folder (coco)": ["--format", "coco", "--input", afw,
                                           "--annotations", afw, "--output", tmp_path / "o"],
        "annotations is a folder (aflw21)": ["--format", "aflw21", "--input", afw,
                                             "--annotations", afw,
                                             "--output", tmp_path / "o"],
        "coco json that is not json": ["--format", "coco", "--input", afw,
                                       "--annotations", afw / "261068_1.pts",
                                       "--output", tmp_path / "o"],
    }


@pytest.mark.parametrize("case", list(_error_cases(Path("/x"))))
def test_bad_arguments_give_one_error_line_and_exit_2(run_cli, tmp_path: Path,
                                                      case: str) -> None:
    (tmp_path / "a_file").write_text("x")
    result = run_cli("prepare", *_error_cases(tmp_path)[case], "--no-progress")
    assert result.code == 2
    lines = result.err.splitlines()
    assert len(lines) == 1, result.err
    assert lines[0].startswith("face-keypoints prepare: error: ")
    assert not (tmp_path / "o").exists()


def test_every_face_unusable_is_an_error_not_an_empty_cache(run_cli, copy_fixture,
                                                            tmp_path: Path) -> None:
    root = copy_fixture("300w/afw")
    for image in root.glob("*.jpg"):
        image.write_bytes(b"")
    result = run_prepare(run_cli, "300w", root, tmp_path / "out")
    assert result.code == 2
    assert len(result.skip_lines) == 3
    assert result.err.splitlines()[-1].startswith("face-keypoints prepare: error: ")
    assert "no usable face" in result.err
    assert not (tmp_path / "out").exists() and not (tmp_path / ".out.partial").exists()


def test_argparse_errors_are_one_line_too(run_cli, tmp_path: Path) -> None:
    result = run_cli("prepare", "--format", "bogus", "--input", FIXTURES / "300w" / "afw",
                     "--output", tmp_path / "o")
    assert result.code == 2
    assert len(result.err.splitlines()) == 1, result.err


def test_argparse_errors_exit_2_with_the_error_line_last(run_cli, tmp_path: Path) -> None:
    for args in (["--format", "bogus", "--input", FIXTURES, "--output", tmp_path / "o"],
                 ["--format", "300w", "--output", tmp_path / "o"],
                 ["--format", "300w", "--input", FIXTURES, "--output", tmp_path / "o",
                  "--size", "big"]):
        result = run_cli("prepare", *args)
        assert result.code == 2
        assert result.err.splitlines()[-1].startswith("face-keypoints prepare: error: ")
        assert "Traceback" not in result.err


def test_cli_subprocess_prints_the_summary_last(tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    run = subprocess.run([*cli_command(), "prepare", "--format", "aflw21", "--input",
                          str(FIXTURES / "aflw21"), "--output", str(out), "--no-progress"],
                         capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "prepared 6 faces, skipped 0"


def test_unreadable_pts_skips_that_face(run_cli, copy_fixture, tmp_path: Path) -> None:
    root = copy_fixture("300w/afw")
    pts = root / "261068_2.pts"
    pts.unlink()
    pts.symlink_to(root / "gone.pts")  # a dangling link: listed, but cannot be read
    one_skip(run_prepare(run_cli, "300w", root, tmp_path / "out"), str(pts),
             "annotation file not found", 2)


# --- Inputs that once ended in a traceback: one line, exit 2, nothing left behind ------

def test_a_symlink_loop_in_a_300w_folder_counts_each_face_once(run_cli, copy_fixture,
                                                               tmp_path: Path) -> None:
    root = copy_fixture("300w/afw")
    (root / "loop").symlink_to(".")  # ln -s . loop
    (root / "sub").mkdir()
    (root / "sub" / "up").symlink_to("..")
    (root / "sub" / "again.pts").symlink_to(root / "261068_1.pts")  # a second name, one file
    (root / "sub" / "again.jpg").symlink_to(root / "261068_1.jpg")
    prepared(run_prepare(run_cli, "300w", root, tmp_path / "out"), 3, 0)


def _no_cache_left(tmp_path: Path, name: str = "out") -> None:
    assert not (tmp_path / name).exists()
    assert not (tmp_path / f".{name}.partial").exists()


def _one_failure(result, message: str) -> str:
    assert result.code == 2, result.err
    assert "Traceback" not in result.err
    lines = [line for line in result.err.splitlines() if not line.startswith("skipped ")]
    assert len(lines) == 1 and lines[0].startswith("face-keypoints prepare: error: "), \
        result.err
    assert message in lines[0], lines[0]
    return lines[0]


@pytest.mark.parametrize("strict", [(), ("--strict",)])
def test_an_aflw21_csv_of_unusable_rows_is_one_line_and_no_cache(
        run_cli, copy_fixture, tmp_path: Path, strict: tuple[str, ...]) -> None:
    root = copy_fixture("aflw21")
    csv_path = root / "landmarks21.csv"
    lines = csv_path.read_text().splitlines()
    short_rows = [",".join(line.split(",")[:10]) for line in lines[1:]]
    csv_path.write_text("\n".join([lines[0], *short_rows]) + "\n")
    result = run_prepare(run_cli, "aflw21", root, tmp_path / "out", *strict)
    _one_failure(result, "no usable face (skipped 6)")
    assert len(result.skip_lines) == 6
    _no_cache_left(tmp_path)


@pytest.mark.parametrize("strict", [(), ("--strict",)])
def test_a_semicolon_separated_csv_is_one_line_naming_the_separator(
        run_cli, copy_fixture, tmp_path: Path, strict: tuple[str, ...]) -> None:
    for format, folder, name in (("aflw21", "aflw21", "landmarks21.csv"),
                                 ("merl68", "aflw_merl68", "landmarks68.csv")):
        root = copy_fixture(folder)
        csv_path = root / name
        csv_path.write_text(csv_path.read_text().replace(",", ";"))
        result = run_prepare(run_cli, format, root, tmp_path / "out", *strict)
        _one_failure(result, f"{csv_path}:1: fields separated by ';'")
        _no_cache_left(tmp_path)


def test_csv_without_its_header(run_cli, copy_fixture, tmp_path: Path) -> None:
    # AFLW-21 rows are read by position: without the header every face is still there.
    root = copy_fixture("aflw21")
    csv_path = root / "landmarks21.csv"
    csv_path.write_text("\n".join(csv_path.read_text().splitlines()[1:]) + "\n")
    prepared(run_prepare(run_cli, "aflw21", root, tmp_path / "aflw"), 6, 0)
    # MERL-RAV rows are read by column name: without the header, one line says so.
    root = copy_fixture("aflw_merl68")
    csv_path = root / "landmarks68.csv"
    csv_path.write_text("\n".join(csv_path.read_text().splitlines()[1:]) + "\n")
    _one_failure(run_prepare(run_cli, "merl68", root, tmp_path / "out"),
                 f"{csv_path}:1: the header lacks the columns")
    _no_cache_left(tmp_path)


def _coco_damaged(copy_fixture, change) -> tuple[Path, Path]:
    root = copy_fixture("coco/300w")
    (path,) = root.glob("*.json")
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))
    return root, path


def _wrong_count(data: dict) -> None:
    for ann in data["annotations"]:
        ann["keypoints"] = ann["keypoints"][:-3]


def _keypoints_object(data: dict) -> None:
    for ann in data["annotations"]:
        ann["keypoints"] = {"x": 1, "y": 2}


def _ids_as_lists(data: dict) -> None:
    for entry in data["images"]:
        entry["id"] = [entry["id"]]
    for ann in data["annotations"]:
        ann["image_id"] = [ann["image_id"]]


def _ids_as_dicts(data: dict) -> None:
    for ann in data["annotations"]:
        ann["id"] = {"id": ann["id"]}


@pytest.mark.parametrize("change, reason", [
    (_wrong_count, "no landmark scheme has 67 points"),
    (_keypoints_object, "no keypoints list"),
    (_ids_as_lists, "is not a number or text"),
    (_ids_as_dicts, "is not a number or text"),
])
@pytest.mark.parametrize("strict", [(), ("--strict",)])
def test_coco_whose_every_annotation_is_unusable_is_one_line_and_no_cache(
        run_cli, copy_fixture, tmp_path: Path, change, reason: str,
        strict: tuple[str, ...]) -> None:
    root, path = _coco_damaged(copy_fixture, change)
    result = run_prepare(run_cli, "coco", root, tmp_path / "out", "--annotations", path,
                         *strict)
    _one_failure(result, "no usable face (skipped 2)")
    assert len(result.skip_lines) == 2 and all(reason in line for line in result.skip_lines)
    _no_cache_left(tmp_path)


def test_a_second_prepare_into_an_output_being_written_is_refused_in_one_line(
        run_cli, tmp_path: Path) -> None:
    """While a run holds the output, another prepare there names the other run (not a
    missing .partial file), writes nothing, and leaves no hidden staging folder."""
    from face_keypoints.fileio import owned

    out = tmp_path / "out"
    with owned(out):
        result = run_prepare(run_cli, "300w", FIXTURES / "300w" / "afw", out)
        assert result.code == 2
        lines = [line for line in result.err.splitlines() if line.strip()]
        assert len(lines) == 1 and "another run is writing there now" in lines[0], lines
        assert sorted(p.name for p in tmp_path.iterdir()) == [".out.lock"]
    prepared(run_prepare(run_cli, "300w", FIXTURES / "300w" / "afw", out), 3, 0)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]
