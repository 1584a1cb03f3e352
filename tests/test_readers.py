"""Each reader on its real fixture: what it yields must be what the file says."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import FIXTURES, needs_shared, shared_path

from face_keypoints.data.face import ABSENT, OCCLUDED, VISIBLE, AnnotatedFace, Skip
from face_keypoints.data.readers import FORMATS, wflw
from face_keypoints.errors import BadInput

WFLW_LIST = (FIXTURES / "wflw" / "WFLW_annotations" / "list_98pt_rect_attr_train_test"
             / "list_98pt_rect_attr_test.txt")
# The WFLW fixture photos are crops of the published ones: fixture = published - offset
# (tests/fixtures/build_fixtures.py, WFLW_PHOTOS).
WFLW_CROP_OFFSETS = {
    "36_Football_americanfootball_ball_36_415.jpg": (390, 72),
    "7_Cheering_Cheering_7_16.jpg": (428, 250),
}


def read(format: str, root: Path, annotations: Path | None = None,
         split: str | None = None) -> tuple[list[AnnotatedFace], list[Skip]]:
    reader = FORMATS[format][0]
    items = list(reader(root, annotations, split))
    return ([i for i in items if isinstance(i, AnnotatedFace)],
            [i for i in items if isinstance(i, Skip)])


def csv_table(path: Path) -> list[list[str]]:
    with open(path, newline="", encoding="utf-8") as handle:
        return list(csv.reader(handle))


def pairs(fields: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """x,y pairs of a CSV row: (points, present) with empty pairs absent."""
    xs, ys = fields[0::2], fields[1::2]
    present = np.array([x != "" for x in xs])
    points = np.array([[float(x or 0), float(y or 0)] for x, y in zip(xs, ys, strict=True)])
    return points, present


# --- WFLW --------------------------------------------------------------------------------

def test_wflw_reader_reads_the_four_faces_with_points_rect_and_attributes() -> None:
    faces, skips = read("wflw", FIXTURES / "wflw")
    assert skips == []
    assert len(faces) == 4
    rows = [line.split() for line in WFLW_LIST.read_text().splitlines()]
    for number, (face, row) in enumerate(zip(faces, rows, strict=True), start=1):
        assert face.scheme == "wflw98"
        assert face.points.shape == (98, 2) and face.points.dtype == np.float32
        np.testing.assert_allclose(face.points, np.array(row[:196], float).reshape(98, 2),
                                   atol=1e-4)
        np.testing.assert_allclose(face.box, np.array(row[196:200], float), atol=1e-6)
        assert face.attributes == dict.fromkeys(wflw.ATTRIBUTES, 0)
        assert (face.visibility == VISIBLE).all()
        assert face.split == "test"
        assert face.source == str(WFLW_LIST)
        assert face.line == number
        assert face.image == FIXTURES / "wflw" / "WFLW_images" / row[-1]
        assert face.image.is_file()
        assert face.identity == row[-1]  # faces of one photo share it
    # A value typed from the file: the Football face's first point and its rect.
    np.testing.assert_allclose(faces[0].points[0], (50.696106, 60.732559), atol=1e-5)
    np.testing.assert_allclose(faces[0].box, (42.305316, 41.750078, 142.994794, 142.825016))


def test_wflw_reader_keeps_attribute_flags_from_the_line(tmp_path: Path,
                                                         copy_fixture) -> None:
    root = copy_fixture("wflw")
    listing = next(root.rglob("list_98pt_rect_attr_test.txt"))
    lines = listing.read_text().splitlines()
    fields = lines[1].split()
    fields[200:206] = ["1", "0", "1", "0", "0", "1"]
    lines[1] = " ".join(fields)
    listing.write_text("\n".join(lines) + "\n")
    faces, _ = read("wflw", root)
    assert faces[1].attributes == {"pose": 1, "expression": 0, "illumination": 1,
                                   "make-up": 0, "occlusion": 0, "blur": 1}
    assert faces[0].attributes == dict.fromkeys(wflw.ATTRIBUTES, 0)


@needs_shared("fixtures", "wflw", "test_wflw.json")
def test_wflw_fixture_holds_the_published_points_moved_by_the_crop_offset() -> None:
    source = json.loads(shared_path("fixtures", "wflw", "test_wflw.json").read_text())
    names = {entry["id"]: entry["file_name"] for entry in source["images"]}
    faces, _ = read("wflw", FIXTURES / "wflw")
    for face, ann in zip(faces, source["annotations"], strict=True):
        name = names[ann["image_id"]]
        assert face.image.name == name
        offset = np.array(WFLW_CROP_OFFSETS[name], dtype=float)
        published = np.array(ann["keypoints"], float).reshape(-1, 3)[:, :2]
        np.testing.assert_allclose(face.points + offset, published, atol=1e-4)
        x, y, w, h = ann["bbox"]
        np.testing.assert_allclose(face.box + np.tile(offset, 2), (x, y, x + w, y + h),
                                   atol=1e-5)


def test_wflw_split_selects_the_list_file(copy_fixture) -> None:
    root = copy_fixture("wflw")
    folder = root / "WFLW_annotations" / "list_98pt_rect_attr_train_test"
    with pytest.raises(BadInput, match=r"list_98pt_rect_attr_train\.txt"):
        read("wflw", root, split="train")
    # A train list holding the Football face: each split reads its own file.
    football = (folder / "list_98pt_rect_attr_test.txt").read_text().splitlines()[0]
    (folder / "list_98pt_rect_attr_train.txt").write_text(football + "\n")
    train, _ = read("wflw", root, split="train")
    test, _ = read("wflw", root, split="test")
    both, _ = read("wflw", root)
    assert [f.split for f in train] == ["train"]
    assert [f.split for f in test] == ["test"] * 4
    assert sorted(f.split for f in both) == ["test"] * 4 + ["train"]
    assert train[0].source.endswith("list_98pt_rect_attr_train.txt")


def test_wflw_reader_accepts_the_list_file_as_annotations() -> None:
    faces, skips = read("wflw", FIXTURES / "wflw", annotations=WFLW_LIST)
    assert len(faces) == 4 and not skips
    assert {f.split for f in faces} == {"test"}
    assert all(f.image.is_file() for f in faces)


# --- 300-W .pts --------------------------------------------------------------------------

def test_300w_reader_reads_pts_beside_images() -> None:
    root = FIXTURES / "300w" / "afw"
    faces, skips = read("300w", root)
    assert skips == []
    assert [f.image.name for f in faces] == ["261068_1.jpg", "261068_2.jpg", "45092961_1.jpg"]
    for face in faces:
        pts = face.image.with_suffix(".pts")
        expected = np.loadtxt(pts.read_text().splitlines()[3:71])
        assert face.scheme == "ibug68"
        np.testing.assert_allclose(face.points, expected, atol=1e-4)
        assert (face.visibility == VISIBLE).all()
        assert face.source == str(pts) and face.line == 0
        assert face.box is None
    np.testing.assert_allclose(faces[0].points[0], (57.515, 64.088), atol=1e-4)


def test_300w_identity_is_the_photo_so_its_faces_stay_together() -> None:
    faces, _ = read("300w", FIXTURES / "300w" / "afw")
    assert [f.identity for f in faces] == ["261068", "261068", "45092961"]


# --- AFLW-21 -----------------------------------------------------------------------------

def test_aflw21_reader_marks_empty_pairs_absent() -> None:
    path = FIXTURES / "aflw21" / "landmarks21.csv"
    faces, skips = read("aflw21", FIXTURES / "aflw21")
    assert skips == []
    rows = csv_table(path)[1:]
    assert len(faces) == len(rows) == 6
    for number, (face, row) in enumerate(zip(faces, rows, strict=True), start=2):
        points, present = pairs(row[2:44])
        assert face.scheme == "aflw21"
        assert face.image == FIXTURES / "aflw21" / "images" / row[0]
        assert face.image.is_file()
        assert face.line == number and face.source == str(path)
        assert face.yaw == pytest.approx(float(row[1]))
        np.testing.assert_array_equal(face.visibility, np.where(present, VISIBLE, ABSENT))
        np.testing.assert_allclose(face.points[present], points[present], atol=1e-4)
    # image04378: RightBrowRightCorner (id 6) was left empty by the annotators.
    first = faces[0]
    assert np.flatnonzero(first.visibility == ABSENT).tolist() == [5]
    np.testing.assert_allclose(first.points[0], (22.60, 27.03), atol=1e-4)
    # The profile face image04405 has 8 empty pairs (both far-side brow/eye points, ears).
    assert (faces[1].visibility == ABSENT).sum() == 8


# --- MERL-RAV 68 -------------------------------------------------------------------------

def test_merl68_reader_maps_vis_0_1_2_to_absent_visible_occluded() -> None:
    path = FIXTURES / "aflw_merl68" / "landmarks68.csv"
    faces, skips = read("merl68", FIXTURES / "aflw_merl68")
    assert skips == []
    table = csv_table(path)
    header, rows = table[0], table[1:]
    assert len(faces) == len(rows) == 6
    states = {"0": ABSENT, "1": VISIBLE, "2": OCCLUDED}
    seen_states = set()
    for face, row in zip(faces, rows, strict=True):
        record = dict(zip(header, row, strict=True))
        first = header.index("x0")
        points, present = pairs(row[first : first + 136])
        expected = np.array([states[c] for c in record["vis"]], dtype=np.uint8)
        np.testing.assert_array_equal(face.visibility, expected)
        seen_states |= set(expected.tolist())
        assert (present == (expected != ABSENT)).all()
        np.testing.assert_allclose(face.points[present], points[present], atol=1e-4)
        assert face.scheme == "ibug68"
        # MERL labels sit on the AFLW-21 crops: ../aflw21/images/IMAGE.
        assert face.image == FIXTURES / "aflw21" / "images" / record["image"]
        assert face.image.is_file()
        assert face.split == {"trainset": "train", "testset": "test"}[record["merl_split"]]
    assert seen_states == {ABSENT, VISIBLE, OCCLUDED}
    # image04405 (a profile): its first 8 jaw points are hidden by the face itself.
    assert (faces[1].visibility[:8] == ABSENT).all()
    assert faces[1].visibility[16] == OCCLUDED


def test_merl68_vis_0_wins_over_a_stray_location(copy_fixture) -> None:
    copy_fixture("aflw21")
    root = copy_fixture("aflw_merl68")
    path = root / "landmarks68.csv"
    table = csv_table(path)
    header = table[0]
    row = table[3]  # image04522: every point located
    vis = list(row[header.index("vis")])
    vis[0] = "0"
    row[header.index("vis")] = "".join(vis)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        csv.writer(handle, lineterminator="\n").writerows(table)
    faces, _ = read("merl68", root)
    assert faces[2].visibility[0] == ABSENT


def test_merl68_split_selects_merl_split() -> None:
    train, _ = read("merl68", FIXTURES / "aflw_merl68", split="train")
    test, _ = read("merl68", FIXTURES / "aflw_merl68", split="test")
    assert sorted(f.image.name for f in test) == ["image04378.jpg", "image04711.jpg"]
    assert len(train) == 4 and {f.split for f in train} == {"train"}
    assert {f.split for f in test} == {"test"}


# --- YouTube Faces 68 --------------------------------------------------------------------

def test_youtube_reader_reads_both_parts_with_person_identity() -> None:
    root = FIXTURES / "youtube_faces_68"
    faces, skips = read("youtube68", root)
    assert skips == []
    expected = {}
    for part, folder in (("train", "training"), ("test", "test")):
        for row in csv_table(root / f"{folder}_frames_keypoints.csv")[1:]:
            expected[(part, row[0])] = np.array(row[1:], float).reshape(68, 2)
    assert len(faces) == len(expected) == 7
    for face in faces:
        folder = "training" if face.split == "train" else "test"
        assert face.image == root / folder / face.image.name
        assert face.image.is_file()
        np.testing.assert_allclose(face.points, expected[(face.split, face.image.name)])
        assert face.scheme == "ibug68"
        assert face.identity == face.image.stem.rsplit("_", 1)[0]
    assert {f.identity for f in faces} == {"Chris_Cooper", "Ed_Smart"}
    # Frames of two videos of one person (_0N, _4N) share the identity.
    chris = sorted(f.image.name for f in faces if f.identity == "Chris_Cooper"
                   and f.split == "train")
    assert chris == ["Chris_Cooper_00.jpg", "Chris_Cooper_01.jpg", "Chris_Cooper_40.jpg"]


def test_youtube_split_selects_the_csv() -> None:
    root = FIXTURES / "youtube_faces_68"
    train, _ = read("youtube68", root, split="train")
    test, _ = read("youtube68", root, split="test")
    assert len(train) == 5 and {f.split for f in train} == {"train"}
    assert sorted(f.image.name for f in test) == ["Chris_Cooper_41.jpg", "Ed_Smart_51.jpg"]
    assert all(f.source.endswith("test_frames_keypoints.csv") for f in test)
    assert [f.line for f in test] == [2, 3]


# --- COCO-style JSON (mmpose) -------------------------------------------------------------

@pytest.mark.parametrize(("folder", "scheme", "count"), [
    ("cofw", "cofw29", 2), ("aflw", "aflw19", 2), ("300w", "ibug68", 2), ("wflw", "wflw98", 4),
])
def test_coco_reader_reads_mmpose_json(folder: str, scheme: str, count: int) -> None:
    root = FIXTURES / "coco" / folder
    data = json.loads(next(root.glob("*.json")).read_text())
    faces, skips = read("coco", root)
    assert skips == []
    assert len(faces) == count
    names = {entry["id"]: entry["file_name"] for entry in data["images"]}
    for face, ann in zip(faces, data["annotations"], strict=True):
        triples = np.array(ann["keypoints"], float).reshape(-1, 3)
        assert face.scheme == scheme
        np.testing.assert_allclose(face.points, triples[:, :2], atol=1e-3)
        assert face.image == root / names[ann["image_id"]] and face.image.is_file()


def test_coco_cofw_flag_1_is_occluded_and_2_visible() -> None:
    root = FIXTURES / "coco" / "cofw"
    data = json.loads((root / "test_cofw.json").read_text())
    faces, _ = read("coco", root)
    for face, ann in zip(faces, data["annotations"], strict=True):
        flags = np.array(ann["keypoints"][2::3])
        np.testing.assert_array_equal(face.visibility, np.where(flags == 2, VISIBLE, OCCLUDED))
    # Einstein's tongue covers the mouth (points 22-27); the hand covers 001805's right eye.
    assert (faces[0].visibility[22:28] == OCCLUDED).all()
    assert faces[1].visibility[8] == OCCLUDED and faces[1].visibility[9] == VISIBLE


def test_coco_reader_with_0_1_flags_treats_1_as_visible() -> None:
    faces, _ = read("coco", FIXTURES / "coco" / "aflw")
    assert all((f.visibility == VISIBLE).all() for f in faces)


# --- Errors about the input as a whole ----------------------------------------------------

@pytest.mark.parametrize(("format", "folder"), [
    ("wflw", "300w/afw"), ("300w", "aflw21/images"), ("aflw21", "300w/afw"),
    ("merl68", "300w/afw"), ("youtube68", "300w/afw"),
])
def test_reader_on_the_wrong_folder_is_a_one_line_bad_input(format: str, folder: str) -> None:
    with pytest.raises(BadInput) as raised:
        read(format, FIXTURES / folder)
    assert "\n" not in str(raised.value)


def test_coco_reader_needs_one_json(tmp_path: Path) -> None:
    shutil.copy(FIXTURES / "coco" / "cofw" / "test_cofw.json", tmp_path / "a.json")
    shutil.copy(FIXTURES / "coco" / "cofw" / "test_cofw.json", tmp_path / "b.json")
    with pytest.raises(BadInput, match="--annotations"):
        read("coco", tmp_path)


def test_coco_duplicate_ids_are_skips_not_silent_choices(tmp_path: Path) -> None:
    root = FIXTURES / "coco" / "cofw"
    data = json.loads((root / "test_cofw.json").read_text())
    data["images"].append({**data["images"][0], "file_name": "001805.jpg"})  # id 1766 again
    data["annotations"].append(dict(data["annotations"][1]))  # annotation id 1805 again
    path = tmp_path / "dup.json"
    path.write_text(json.dumps(data))
    faces, skips = read("coco", root, annotations=path)
    assert [f.image.name for f in faces] == ["001805.jpg"]
    assert [s.reason.split(":")[0] for s in skips] == ["annotation 1", "annotation 3"]
    assert "duplicate image id 1766" in skips[0].reason
    assert "duplicate annotation id 1805" in skips[1].reason


def test_split_that_contradicts_the_annotation_file_is_refused() -> None:
    with pytest.raises(BadInput, match="is the test list"):
        read("wflw", FIXTURES / "wflw", annotations=WFLW_LIST, split="train")
    root = FIXTURES / "youtube_faces_68"
    with pytest.raises(BadInput, match="is the test part"):
        read("youtube68", root, annotations=root / "test_frames_keypoints.csv", split="train")
    faces, _ = read("youtube68", root, annotations=root / "test_frames_keypoints.csv",
                    split="test")
    assert len(faces) == 2 and {f.split for f in faces} == {"test"}


def test_aflw21_reader_refuses_a_csv_of_another_layout() -> None:
    with pytest.raises(BadInput, match="an AFLW-21 file has"):
        read("aflw21", FIXTURES / "aflw21",
             annotations=FIXTURES / "aflw_merl68" / "landmarks68.csv")


def test_wflw_faces_are_held_out_by_photo() -> None:
    """One-face crops `<photo>_<k>.jpg` of one photo share an identity, so a validation
    split never has a photo on both sides; a published name is its photo already."""
    assert wflw.photo("0--Parade/0_Parade_Parade_0_29_277_3.jpg") == \
        "0--Parade/0_Parade_Parade_0_29_277"
    assert wflw.photo("51--Dresses/51_Dresses_wearingdress_51_377.jpg") == \
        "51--Dresses/51_Dresses_wearingdress_51_377.jpg"
    assert wflw.photo("portrait_2.jpg") == "portrait_2.jpg"


@needs_shared("wflw_partial")
def test_wflw_partial_has_one_identity_per_photo() -> None:
    root = shared_path("wflw_partial")
    faces = [f for f in wflw.read(root, None, "train") if isinstance(f, AnnotatedFace)]
    assert len(faces) == 279
    assert len({f.identity for f in faces}) == 233  # the README's photo count
