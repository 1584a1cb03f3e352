"""Accuracy against latency of the sweep candidates: one labelled point per candidate.

    .venv/bin/python benchmarks/accuracy_vs_latency.py [--baseline-nme 22.56] \\
        [--mediapipe-us 1746]

Reads every *sweep*.json in --results (default configs/results), the RESULTS.json files
benchmarks/sweep.py writes (a list of candidates, each with `latency_median_us`, the
one-thread fp32 median, and per test cache `nme`), and writes --out (default
configs/results/accuracy_vs_latency.png): x = latency (us), y = inter-ocular NME (%) on
--data (default afw). --baseline-nme draws the mean-shape baseline as a horizontal line,
--mediapipe-us MediaPipe's face_landmark.tflite latency as a vertical one, each --shipped
model as a filled, labelled star (the stars alone when --results holds no sweep) and
each --trained another fully trained model as a hollow one (all as measured elsewhere,
e.g. by benchmarks/model_card.py). Prints the candidates as a markdown table.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def load(results: Path, data: str) -> list[dict]:
    """(file, candidate, latency, NME) of every candidate that has both figures."""
    points = []
    for path in sorted(results.glob("*sweep*.json")):
        for row in json.loads(path.read_text(encoding="utf-8")):
            nme = (row.get(data) or {}).get("nme")
            latency = row.get("latency_median_us")
            if nme is None or latency is None:
                print(f"{path.name}: {row.get('name')}: no {data} NME or latency, left out",
                      file=sys.stderr)
                continue
            points.append({"file": path.name, "name": row["name"], "us": float(latency),
                           "nme": float(nme), "row": row})
    return points


def table(points: list[dict]) -> str:
    """The candidates as a markdown table: the columns a model card's sweep table needs."""
    tests = sorted({k for p in points for k, v in p["row"].items()
                    if isinstance(v, dict) and "nme" in v})
    head = ["candidate", "overrides", *(f"{t} io NME %" for t in tests), "1-thread us",
            "MMACs", "fp16 KB", "train min", "best epoch"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for p in points:
        row = p["row"]
        cells = [p["name"], " ".join(row.get("overrides", []))]
        cells += [f"{row[t]['nme']:.2f}" if t in row else "-" for t in tests]
        cells += [f"{p['us']:.0f}", f"{row['macs'] / 1e6:.1f}",
                  f"{row['fp16_bytes'] / 1024:.0f}", f"{row['train_minutes']:.1f}",
                  str(row["best_epoch"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _label_heights(points: list[dict], x_span: float, y_span: float) -> list[float]:
    """A label height per point: its own NME, pushed up just enough that labels of points
    close in latency (within 6% of the x span) stay 4% of the y span apart."""
    gap, near = 0.04 * max(y_span, 1.0), 0.06 * x_span
    heights = [0.0] * len(points)
    placed: list[tuple[float, float]] = []  # (latency, label height)
    for i in sorted(range(len(points)), key=lambda i: points[i]["nme"]):
        y = points[i]["nme"]
        for us, other in sorted(placed, key=lambda item: item[1]):
            if abs(us - points[i]["us"]) < near and y < other + gap:
                y = other + gap
        heights[i] = y
        placed.append((points[i]["us"], y))
    return heights


def plot(points: list[dict], out: Path, data: str, baseline: float | None,
         mediapipe: float | None, shipped: tuple[tuple[str, float, float], ...] = (),
         trained: tuple[tuple[str, float, float], ...] = ()) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from face_keypoints.fileio import write_atomic

    files = sorted({p["file"] for p in points})
    fig, ax = plt.subplots(figsize=(7.5, 5.0), dpi=120)
    for k, name in enumerate(files):
        mine = [p for p in points if p["file"] == name]
        ax.scatter([p["us"] for p in mine], [p["nme"] for p in mine], s=36, zorder=3,
                   color=f"C{k}", label=Path(name).stem if len(files) > 1 else None)
    for k, (name, us, nme) in enumerate(shipped):
        ax.scatter([us], [nme], s=140, marker="*", color="black", zorder=4,
                   label="shipped models (full training)" if k == 0 else None)
        ax.annotate(name, (us, nme), xytext=(6, 3), textcoords="offset points", fontsize=9,
                    weight="bold")
    for name, us, nme in trained:
        ax.scatter([us], [nme], s=120, marker="*", facecolors="none", edgecolors="black",
                   zorder=4)
        ax.annotate(name, (us, nme), xytext=(6, -3), textcoords="offset points", fontsize=8)
    xs = ([p["us"] for p in points] + ([mediapipe] if mediapipe else [])
          + [us for _, us, _ in (*shipped, *trained)])
    # The y axis spans the models, not the mean shape, which is far above them: it is a
    # line when it fits and a note when it does not.
    ys = ([p["nme"] for p in points] + [nme for _, _, nme in (*shipped, *trained)])
    heights = _label_heights(points, max(xs), max(ys) - min(ys))
    for p, y in zip(points, heights, strict=True):
        ax.annotate(p["name"], (p["us"], p["nme"]), xytext=(p["us"] + 0.04 * max(xs), y),
                    textcoords="data", fontsize=8, va="center",
                    arrowprops={"arrowstyle": "-", "color": "0.6", "linewidth": 0.6})
    bottom, top = min(ys) - 0.3, max(ys + heights) + 0.4
    ax.set_ylim(bottom, top)
    if baseline is not None and baseline <= top:
        ax.axhline(baseline, color="0.4", linestyle="--", linewidth=1)
        ax.annotate(f"mean shape {baseline:.2f}%", (0.01, baseline), xytext=(0, 3),
                    xycoords=("axes fraction", "data"), textcoords="offset points",
                    fontsize=8, color="0.3")
    elif baseline is not None:
        ax.annotate(f"mean shape: {baseline:.2f}% (above the plot)", (0.01, 0.98),
                    xycoords="axes fraction", fontsize=8, color="0.3", va="top")
    if mediapipe is not None:
        ax.axvline(mediapipe, color="C3", linestyle=":", linewidth=1.2)
        ax.annotate(f"MediaPipe face_landmark {mediapipe:.0f} us", (mediapipe, 0.98),
                    xytext=(-4, 0), xycoords=("data", "axes fraction"),
                    textcoords="offset points", fontsize=8, color="C3", ha="right",
                    va="top", rotation=90)
    ax.set_xlabel("latency, 1 thread, fp32 .tflite, median (us)")
    ax.set_ylabel(f"NME inter-ocular on {data} (%)")
    source = (Path(files[0]).stem if len(files) == 1 else "sweeps" if files
              else "shipped models")
    ax.set_title(f"{source}: {data} NME against latency (lower left is better)", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.set_xlim(0, max(xs) * 1.15)
    if len(files) > 1 or shipped:
        ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0.36, 0.99))
    fig.tight_layout()
    write_atomic(out, lambda tmp: fig.savefig(tmp))
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=Path, default=REPO / "configs" / "results",
                        help="folder with the *sweep*.json files (default: %(default)s)")
    parser.add_argument("--data", default="afw", help="test cache to plot (default afw)")
    parser.add_argument("--baseline-nme", type=float, metavar="PERCENT",
                        help="the mean shape's NME on --data: a horizontal line")
    parser.add_argument("--mediapipe-us", type=float, metavar="US",
                        help="MediaPipe face_landmark.tflite's latency: a vertical line")
    parser.add_argument("--shipped", nargs=3, action="append", default=[],
                        metavar=("LABEL", "US", "PERCENT"),
                        help="a shipped model's latency and NME on --data: a filled, "
                             "labelled star (repeatable)")
    parser.add_argument("--trained", nargs=3, action="append", default=[],
                        metavar=("LABEL", "US", "PERCENT"),
                        help="another fully trained model: a hollow star (repeatable)")
    parser.add_argument("--out", type=Path,
                        default=REPO / "configs" / "results" / "accuracy_vs_latency.png")
    args = parser.parse_args(argv)
    points = load(args.results, args.data)
    if not points and not args.shipped:
        sys.exit(f"no candidate with a {args.data} NME and a latency in "
                 f"{args.results}/*sweep*.json")
    trained = tuple((label, float(us), float(nme)) for label, us, nme in args.trained)
    shipped = tuple((label, float(us), float(nme)) for label, us, nme in args.shipped)
    plot(points, args.out, args.data, args.baseline_nme, args.mediapipe_us, shipped,
         trained)
    if points:
        print(table(points))
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
