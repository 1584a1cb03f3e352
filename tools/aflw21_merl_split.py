"""Split AFLW-21's annotation file by MERL-RAV's train/test split.

MERL-RAV re-annotates AFLW's crops, so a model that trains on AFLW-21 while testing on
MERL-RAV's test split would have seen the test faces. This writes the AFLW-21 rows whose
image is outside that split (for training) and the rows inside it (a 21-point validation
set for pretraining on AFLW-21 alone), in the same CSV format, for `prepare --annotations`:

    python tools/aflw21_merl_split.py ../shared/data caches/aflw21_without_merl_test.csv \\
        caches/aflw21_merl_test.csv
    face-keypoints prepare --format aflw21 --input ../shared/data/aflw21 \\
        --annotations caches/aflw21_without_merl_test.csv --output caches/aflw21_train
    face-keypoints prepare --format aflw21 --input ../shared/data/aflw21 \\
        --annotations caches/aflw21_merl_test.csv --output caches/aflw21_test
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from face_keypoints.fileio import write_text_atomic


def main(data: Path, train_out: Path, test_out: Path) -> int:
    with open(data / "aflw_merl68" / "landmarks68.csv", newline="", encoding="utf-8") as f:
        test = {row["image"] for row in csv.DictReader(f) if row["merl_split"] == "testset"}
    source = data / "aflw21" / "landmarks21.csv"
    header, *rows = source.read_text(encoding="utf-8").splitlines()
    inside = [row for row in rows if row.split(",", 1)[0] in test]
    outside = [row for row in rows if row.split(",", 1)[0] not in test]
    for out, kept, where in ((train_out, outside, "outside"), (test_out, inside, "inside")):
        write_text_atomic(out, "\n".join([header, *kept]) + "\n")
        print(f"{out}: {len(kept)} of {len(rows)} faces {where} MERL-RAV's test split")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: aflw21_merl_split.py SHARED_DATA_DIR TRAIN_OUT.csv TEST_OUT.csv")
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])))
