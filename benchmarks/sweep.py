"""Train a set of candidate networks with the project's own commands and tabulate them.

Each candidate is the base config plus a few overrides. For each one this runs
`face-keypoints train` (a finished run is kept, an unfinished one resumed), then
`evaluate --json` on every test cache and `export` + `benchmark --json` (fp32, one
thread), and writes RESULTS.json and RESULTS.md beside the runs:

    python benchmarks/sweep.py --base configs/ibug68_a025_112.yaml --epochs 10 \
        --out runs/sweep --eval caches/afw caches/youtube_test \
        --candidate wing loss=wing --candidate l1 loss=l1 --candidate l2 loss=l2

A candidate is NAME followed by KEY=VALUE overrides of the config (values parsed as YAML).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import yaml

CLI = [sys.executable, "-m", "face_keypoints.cli"]


def run(command: list[str], log: Path | None = None) -> str:
    """Run a CLI command; its stdout, or exit with its error line."""
    done = subprocess.run(command, capture_output=True, text=True)
    if log is not None:
        with open(log, "a", encoding="utf-8") as handle:
            handle.write(done.stderr)
    if done.returncode != 0:
        sys.exit(f"failed ({done.returncode}): {' '.join(command)}\n{done.stderr[-2000:]}")
    return done.stdout


def candidate(base: dict, name: str, overrides: list[str], epochs: int, out: Path,
              evals: list[str]) -> dict:
    config = dict(base) | {"epochs": epochs}
    for item in overrides:
        key, _, value = item.partition("=")
        config[key] = yaml.safe_load(value)
    run_dir = out / name
    config_file = out / f"{name}.yaml"
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    log = out / f"{name}.log"
    if not (run_dir / "metrics.json").exists():
        resume = ["--resume"] if (run_dir / "state.json").exists() else []
        run([*CLI, "train", "--config", str(config_file), "--output", str(run_dir),
             "--no-progress", *resume], log)
    trained = json.loads((run_dir / "metrics.json").read_text())
    row = {"name": name, "overrides": overrides, "best_epoch": trained["best_epoch"],
           "val_nme": trained["best_val_nme"],
           "train_minutes": round(trained["train_seconds"] / 60, 1),
           "train_images_per_s": trained["train_images_per_s"]}
    for cache in evals:
        result = json.loads(run([*CLI, "evaluate", "--model", str(run_dir / "best.keras"),
                                 "--data", cache, "--json"]))
        row[Path(cache).name] = {k: result[k] for k in ("nme", "nme_box", "fr10", "auc10")}
    export_dir = run_dir / "export"
    if not (export_dir / "model.json").exists():
        run([*CLI, "export", "--model", str(run_dir / "best.keras"), "--output",
             str(export_dir), "--precision", "fp32", "fp16"], log)
    card = json.loads((export_dir / "model.json").read_text())
    fp32 = export_dir / card["files"]["fp32"]["file"]
    bench = json.loads(run([*CLI, "benchmark", "--model", str(fp32), "--threads", "1",
                            "--runs", "200", "--warmup", "20", "--json"]))
    row |= {"latency_median_us": bench["median_us"], "macs": bench["macs"],
            "fp16_bytes": card["files"]["fp16"]["size_bytes"],
            "fp32_bytes": card["files"]["fp32"]["size_bytes"]}
    return row


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def markdown(rows: list[dict], evals: list[str]) -> str:
    names = [Path(e).name for e in evals]
    head = (["candidate", "overrides"] + [f"NME {n} io / box (%)" for n in names]
            + ["latency 1 thread (us)", "MMACs", "fp16 KB", "train min", "best epoch"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        cells = [r["name"], " ".join(r["overrides"])]
        cells += [f"{_pct(r[n]['nme'])} / {_pct(r[n]['nme_box'])}" for n in names]
        cells += [f"{r['latency_median_us']:.0f}", f"{r['macs'] / 1e6:.1f}",
                  f"{r['fp16_bytes'] / 1024:.0f}", f"{r['train_minutes']}",
                  str(r["best_epoch"])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="base YAML config")
    parser.add_argument("--epochs", type=int, required=True)
    parser.add_argument("--out", required=True, help="folder for the runs and the tables")
    parser.add_argument("--eval", nargs="+", required=True, help="caches to score on")
    parser.add_argument("--candidate", nargs="+", action="append", required=True,
                        metavar="NAME [KEY=VALUE ...]")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    base = yaml.safe_load(Path(args.base).read_text())
    rows = []
    for name, *overrides in args.candidate:
        rows.append(candidate(base, name, overrides, args.epochs, out, args.eval))
        (out / "RESULTS.json").write_text(json.dumps(rows, indent=2) + "\n")
        (out / "RESULTS.md").write_text(markdown(rows, args.eval))
        print(markdown(rows, args.eval), flush=True)


if __name__ == "__main__":
    main()
