"""Write AFLW-21's annotation file without the faces of MERL-RAV's test split.

MERL-RAV re-annotates AFLW's crops, so a model that trains on AFLW-21 while testing on
MERL-RAV's test split would have seen the test faces. This keeps every AFLW-21 row whose
image is not in that split, in the same CSV format, for `prepare --annotations`:

    python tools/aflw21_without_merl_test.py ../shared/data caches/aflw21_without_merl_test.csv
    face-keypoints prepare --format aflw21 --input ../shared/data/aflw21 \\
        --annotations caches/aflw21_without_merl_test.csv --output caches/aflw21_train
"""

from __future__ import annotations

import csv
import sys
from pathlib import Path

from face_keypoints.fileio import write_text_atomic


def main(data: Path, out: Path) -> int:
    with open(data / "aflw_merl68" / "landmarks68.csv", newline="", encoding="utf-8") as f:
        test = {row["image"] for row in csv.DictReader(f) if row["merl_split"] == "testset"}
    source = data / "aflw21" / "landmarks21.csv"
    lines = source.read_text(encoding="utf-8").splitlines()
    kept = [lines[0]] + [line for line in lines[1:] if line.split(",", 1)[0] not in test]
    write_text_atomic(out, "\n".join(kept) + "\n")
    print(f"{out}: {len(kept) - 1} of {len(lines) - 1} faces "
          f"({len(test)} MERL-RAV test images left out)")
    return 0


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: aflw21_without_merl_test.py SHARED_DATA_DIR OUT.csv")
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
