"""The figures of MODEL_CARD.md for the shipped landmark models, all from one run.

    .venv/bin/python benchmarks/model_card.py --out configs/results/model_card

For every validation cache (--eval) it scores, with evaluate's own code and framing, every
precision in each model folder (--model-dir, repeated; default: the shipped `default` and
`lite`; each .tflite that model.json names, and any .keras there),
the mean-shape baseline of the training caches (--baseline-data) and dlib's 68-point
predictor: NME by the inter-ocular distance and by the landmark box, FR@10% and AUC@10%,
and on caches that record yaw (MERL-RAV) the box NME per |yaw| bin.

dlib is given, on every face, the box that the mean relation between its HOG detector's
box and the landmark box predicts (peers.fit_dlib_box, fitted in this run on --dlib-fit;
peers.DlibPredictor), as ours is given a crop made from the landmark box. For
information, the faces where HOG fires are scored again: dlib from HOG's own box, dlib
from the fitted box, and our first precision, on those same faces.

Then one interleaved latency run at --threads (default 1): every .tflite of the folders,
MediaPipe's face_landmark.tflite and dlib (bench.benchmark_models), with file sizes and
MACs. A peer that is not installed is reported and the rest goes on. Prints the tables
and writes OUT/model_card.json and OUT/model_card.md (atomically).
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import sys
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

EVAL = ["caches/afw", "caches/youtube_test", "caches/merl68_test"]
BASELINE = ["caches/helen", "caches/lfpw", "caches/merl68_train", "caches/youtube_train"]
DLIB_FIT = ["caches/helen"]
YAW_BINS = ("yaw_0_30", "yaw_30_60", "yaw_60_90")
DLIB_ROW = "dlib 68 (fitted box)"
NOTES = [
    "dlib's 68-point model was trained on iBUG 300-W, which includes AFW and HELEN's "
    "training set: its AFW figures are on faces it has seen in training.",
    "Our models were trained on 300-W's HELEN and LFPW training parts, MERL-RAV's "
    "training split, YouTube-Faces' training frames and (98-point head) WFLW faces, and "
    "AFW was their validation set (the epoch kept is the one best on AFW): their AFW "
    "figures are not from an untouched test set either.",
    "Every model sees each face framed from its ground-truth landmark box (centre and "
    "longer side); no face detector is involved, so these are landmark errors alone.",
    "dlib from the fitted box is far worse than from HOG's own box on the same faces, "
    "mostly on turned heads: HOG's box moves sideways with the head's yaw relative to the "
    "landmark box, which a box predicted from the landmark box alone cannot follow, and "
    "dlib's cascade, trained on HOG's boxes, does "
    "not recover from a start that far off. The HOG rows are dlib at its best, on the "
    "faces its own detector accepts; the fitted-box rows are dlib on every face, framed "
    "with the same information ours gets.",
    "io = inter-ocular (outer eye corners); box = sqrt(w*h) of the landmark box. FR and "
    "AUC are at 10% of the io NME (box: of the box NME). On MERL-RAV, faces with an outer "
    "eye absent (profiles) have no io NME and count only in the box columns.",
]


def _shipped_dirs() -> list[Path]:
    """The shipped model folders that hold a model.json (default, then lite)."""
    from face_keypoints.card import ModelCard
    from face_keypoints.resolve import SHIPPED, shipped_folder

    return [shipped_folder(name) for name in SHIPPED if ModelCard.exists(shipped_folder(name))]


def _model_files(folder: Path) -> dict[str, Path]:
    """{precision: file}: the files model.json names (in its order), then any other .keras
    file in the folder."""
    from face_keypoints.card import ModelCard

    card = ModelCard.read(folder)
    files = {p: folder / name for p, name in card.own_files().items()
             if (folder / name).is_file()}
    for path in sorted(folder.glob("*.keras")):
        if path not in files.values():
            files["keras" if "keras" not in files else path.stem] = path
    return files


class OnlyFaces:
    """Another predictor's points on the faces `keep` marks (in evaluate's face order, which
    does not shuffle), NaN on the others, which evaluate then leaves out."""

    def __init__(self, inner, keep: list[bool], label: str) -> None:
        self.inner, self.keep = inner, np.asarray(keep, bool)
        self.path = Path(label)
        self.kind = inner.kind
        self.input_size, self.schemes = inner.input_size, inner.schemes
        self._next = 0

    def predict(self, images: np.ndarray) -> dict[str, np.ndarray]:
        keep = self.keep[self._next:self._next + len(images)]
        self._next += len(images)
        from face_keypoints.schemes import get_scheme

        out = {}
        picked = self.inner.predict(images[keep]) if keep.any() else None
        for scheme in self.schemes:
            points = np.full((len(images), get_scheme(scheme).num_points, 2), np.nan,
                             np.float32)
            if picked is not None:
                points[keep] = picked[scheme]
            out[scheme] = points
        return out


def _row(name: str, result: dict) -> dict:
    row = {"name": name, "model": result["model"], "faces": result["n"]}
    row |= {k: result[k] for k in ("n_nme", "nme", "n_box", "nme_box", "fr10", "auc10",
                                   "fr10_box", "auc10_box")}
    yaw = {b: {k: result["subsets"][b][k] for k in ("n", "n_box", "nme_box", "nme")}
           for b in YAW_BINS if b in result["subsets"]}
    if yaw:
        row["yaw"] = yaw
    return row


def _score(evaluate, name: str, predictor, cache: str, log, align: bool = False) -> dict:
    start = time.monotonic()
    row = _row(name, evaluate(predictor, cache, batch_size=64, align=align))
    log(f"  {name:<34} io {_pct(row['nme'])}  box {_pct(row['nme_box'])}  "
        f"({time.monotonic() - start:.0f} s)")
    return row


def _pct(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _auc(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _faces(row: dict) -> str:
    io, box = row["n_nme"], row["n_box"]
    return str(box) if io == box else f"{box} ({io} io)"


def accuracy_table(rows: list[dict]) -> str:
    head = ["model", "faces", "NME io %", "NME box %", "FR@10% io %", "AUC@10% io",
            "FR@10% box %", "AUC@10% box"]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for r in rows:
        if "missing" in r:
            lines.append(f"| {r['name']} | not measured: {r['missing']} |" + " |" * 6)
            continue
        lines.append(f"| {r['name']} | {_faces(r)} | {_pct(r['nme'])} | {_pct(r['nme_box'])} "
                     f"| {_pct(r['fr10'])} | {_auc(r['auc10'])} | {_pct(r['fr10_box'])} "
                     f"| {_auc(r['auc10_box'])} |")
    return "\n".join(lines)


def yaw_table(rows: list[dict]) -> str:
    rows = [r for r in rows if "yaw" in r]
    if not rows:
        return ""
    bins = list(rows[0]["yaw"])
    labels = [b.removeprefix("yaw_").replace("_", "-") + " deg" for b in bins]
    head = ["model", *[f"box NME % {label}" for label in labels]]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|",
             "| faces | " + " | ".join(str(rows[0]["yaw"][b]["n_box"]) for b in bins) + " |"]
    for r in rows:
        lines.append(f"| {r['name']} | "
                     + " | ".join(_pct(r["yaw"][b]["nme_box"]) for b in bins) + " |")
    return "\n".join(lines)


def latency_table(latency: dict) -> str:
    entries = list(latency["models"].items()) + list(latency["peers"].items())
    first, reference = entries[0][0], entries[0][1]["median_us"]
    head = ["model", "size (bytes)", "MMACs", "median us", "avg us", "p90 us", "std us",
            f"median vs {first}"]
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for name, r in entries:
        if "missing" in r:
            lines.append(f"| {name} | not measured: {r['missing']} |" + " |" * 6)
            continue
        macs = "-" if r["macs"] is None else f"{r['macs'] / 1e6:.1f}"
        lines.append(f"| {name} | {r['size_bytes']:,} | {macs} | {r['median_us']:.0f} | "
                     f"{r['avg_us']:.0f} | {r['p90_us']:.0f} | {r['std_us']:.0f} | "
                     f"{r['median_us'] / reference:.2f}x |")
    return "\n".join(lines)


def markdown(card: dict) -> str:
    box = card["dlib_box"]
    parts = [f"```\n$ {card['command']}\n```", ""]
    for name, block in card["eval"].items():
        parts += [f"### {name} ({block['faces']} faces, split {block['split']})", "",
                  accuracy_table(block["rows"]), ""]
        yaw = yaw_table(block["rows"])
        if yaw:
            parts += [f"Box NME by |yaw| on {name}:", "", yaw, ""]
        if block.get("hog"):
            parts += [f"For information: the {block['hog']['faces']} faces of {name} where "
                      "dlib's HOG detector fires:", "", accuracy_table(block["hog"]["rows"]),
                      ""]
    parts += ["### Files", "", "| precision | file | size (bytes) |", "|---|---|---|",
              *[f"| {p} | {Path(f['path']).name} | {f['size_bytes']:,} |"
                for p, f in card["files"].items()], ""]
    lat = card["latency"]
    first = next(iter(lat["models"].values()))
    parts += [f"### Latency ({first['threads']} thread, {first['runs']} interleaved runs "
              f"after {first['warmup']} warm-up, one process)", "", latency_table(lat), "",
              f"Machine: {card['machine']['cpus']} CPUs ({card['machine']['processor']}), "
              f"load average {card['machine']['load_before']} before and "
              f"{card['machine']['load_after']} after the latency run. dlib's time is its "
              "predictor alone on a 192 px crop; MediaPipe's model takes 192 px and gives "
              "468 points; ours take "
              + ", ".join(f"{size} px ({name})" for name, size in card["input_sizes"].items())
              + ".", ""]
    if box:
        parts += ["### dlib's box", "",
                  f"Fitted on {', '.join(box['fitted_on'])}: HOG fired on {box['n_fired']} "
                  f"of {box['n_faces']} faces. With L the landmark box's longer side, the "
                  f"box given to dlib is centred at the landmark box's centre + "
                  f"({box['dx']:+.4f} L, {box['dy']:+.4f} L) and is {box['scale']:.4f} L "
                  f"wide (per-face spread of HOG's box around that: {box['std'][0]:.3f}, "
                  f"{box['std'][1]:.3f}, {box['std'][2]:.3f} L).", ""]
    parts += ["### Notes", "", *[f"- {n}" for n in card["notes"]], ""]
    return "\n".join(parts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", type=Path, action="append",
                        help="an export folder with model.json; repeat for several "
                             "(default: the shipped default and lite models)")
    parser.add_argument("--eval", nargs="+", default=EVAL, metavar="CACHE",
                        help="validation caches (default: %(default)s)")
    parser.add_argument("--baseline-data", nargs="+", default=BASELINE, metavar="CACHE",
                        help="training caches of the mean shape (default: %(default)s)")
    parser.add_argument("--dlib-fit", nargs="+", default=DLIB_FIT, metavar="CACHE",
                        help="caches to fit dlib's box on (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=500, help="timed runs (default 500)")
    parser.add_argument("--warmup", type=int, default=50, help="warm-up runs (default 50)")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (default 1)")
    parser.add_argument("--out", type=Path, required=True,
                        help="folder for model_card.json and model_card.md")
    args = parser.parse_args(argv)

    from face_keypoints.baseline import MeanShapePredictor
    from face_keypoints.benchmark import benchmark_models
    from face_keypoints.data.cache import open_cache
    from face_keypoints.evaluate import evaluate
    from face_keypoints.fileio import write_json_atomic, write_text_atomic
    from face_keypoints.peers import DlibPredictor, PeerMissing, fit_dlib_box
    from face_keypoints.resolve import resolve_model
    from face_keypoints.runtime.predictor import load_predictor

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    folders = args.model_dir or _shipped_dirs()
    files = {f"{folder.name} {p}": path for folder in folders
             for p, path in _model_files(folder).items()}
    ours = {p: load_predictor(path, threads=1) for p, path in files.items()}
    # Framed as each model was trained (levelled crops for an aligned model's card).
    aligned = {p: resolve_model(path).aligned for p, path in files.items()}
    first = next(iter(ours))
    input_size = ours[first].input_size
    baseline_caches = [open_cache(Path(c)) for c in args.baseline_data]
    mean_shape = MeanShapePredictor(baseline_caches, input_size, ours[first].schemes)
    mean_name = f"mean shape ({'+'.join(c.path.name for c in baseline_caches)})"

    dlib_box, dlib_missing = None, None
    try:
        log(f"fitting dlib's box on {' '.join(args.dlib_fit)}")
        dlib_box = fit_dlib_box([open_cache(Path(c)) for c in args.dlib_fit])
        log(f"  {dlib_box.as_dict()}")
    except PeerMissing as err:
        dlib_missing = str(err)
        log(f"dlib not measured: {err}")

    card: dict = {
        "command": shlex.join(["python", "benchmarks/model_card.py", *(argv or sys.argv[1:])]),
        "model_dirs": [str(folder) for folder in folders],
        "files": {p: {"path": str(path), "size_bytes": path.stat().st_size}
                  for p, path in files.items()},
        "input_sizes": {folder.name: ours[next(p for p in files if p.startswith(
            f"{folder.name} "))].input_size for folder in folders},
        "dlib_box": None if dlib_box is None else dlib_box.as_dict(),
        "eval": {},
    }
    for cache_path in args.eval:
        cache = open_cache(Path(cache_path))
        indices = cache.indices("val")
        name = cache.path.name
        log(f"{name}: {len(indices)} faces")
        rows = [_score(evaluate, f"ours {p}", predictor, cache_path, log, aligned[p])
                for p, predictor in ours.items()]
        rows.append(_score(evaluate, mean_name, mean_shape, cache_path, log))
        block = {"faces": len(indices),
                 "split": ",".join(sorted({cache.faces[i]["split"] for i in indices})),
                 "rows": rows}
        if dlib_box is None:
            rows.append({"name": DLIB_ROW, "missing": dlib_missing})
        else:
            rows.append(_score(evaluate, DLIB_ROW, DlibPredictor(dlib_box), cache_path, log))
            hog = DlibPredictor(dlib_box, hog=True)
            hog_row = _score(evaluate, "dlib 68 (HOG's own box)", hog, cache_path, log)
            fired = hog.hog_fired
            block["hog"] = {"faces": int(sum(fired)), "rows": [
                _score(evaluate, f"ours {first}", OnlyFaces(ours[first], fired, "ours"),
                       cache_path, log, aligned[first]),
                _score(evaluate, DLIB_ROW, OnlyFaces(DlibPredictor(dlib_box), fired, "dlib"),
                       cache_path, log),
                hog_row]}
        card["eval"][name] = block

    tflite = {f"ours {p}": path for p, path in files.items() if path.suffix == ".tflite"}
    log(f"latency: {', '.join(tflite)} and the peers, {args.runs} runs, "
        f"{args.threads} thread(s)")
    load_before = [round(v, 2) for v in os.getloadavg()]
    card["latency"] = benchmark_models(tflite, threads=args.threads, runs=args.runs,
                                       warmup=args.warmup, compare=True)
    card["machine"] = {"cpus": os.cpu_count(), "processor": platform.processor() or
                       platform.machine(), "load_before": load_before,
                       "load_after": [round(v, 2) for v in os.getloadavg()]}
    card["notes"] = list(NOTES)
    if dlib_missing:
        card["notes"].append(f"dlib not measured: {dlib_missing}")

    text = markdown(card)
    print(text)
    write_json_atomic(args.out / "model_card.json", card)
    write_text_atomic(args.out / "model_card.md", text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
