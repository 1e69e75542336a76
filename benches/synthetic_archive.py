"""Writes a synthetic archive of small runs for the partitioned-audit
benchmark (docs/SCALE.md): N runs in folders of 100, each a run.json and a
metrics.jsonl of 200 steps whose loss falls, stalls, diverges or goes NaN,
at learning rates that make sweeps within a folder. Seeded; about 6 KB a run.

    python benches/synthetic_archive.py OUT N
"""

import json
import math
import random
import sys
from pathlib import Path

SHAPES = ("falls", "falls", "falls", "stalls", "diverges", "nan")


def metrics(rng, shape, steps=200):
    start = math.log(10) * rng.uniform(0.95, 1.05)
    lines = []
    for step in range(steps):
        noise = rng.gauss(0, 0.02)
        if shape == "falls":
            loss = 0.1 + (start - 0.1) * math.exp(-step / rng.uniform(20, 60)) + noise
        elif shape == "stalls":
            loss = start - 0.01 * step / steps + noise
        elif shape == "diverges":
            loss = start * math.exp(step / 40) + noise
        else:
            loss = float("nan") if step > steps // 2 else start - 0.005 * step + noise
        line = {"step": step, "loss": loss, "lr": 0.0}
        if step % 20 == 19:
            line["val_loss"] = loss * 1.05 if isinstance(loss, float) else loss
        lines.append(json.dumps(line))
    return "\n".join(lines) + "\n"


def main():
    out, count = Path(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(0)
    for i in range(count):
        run = out / f"team-{i // 10000:02d}" / f"exp-{i // 100:04d}" / f"run-{i % 100:02d}"
        run.mkdir(parents=True, exist_ok=True)
        lr = 10 ** -(1 + (i % 5))
        meta = {"format": "postmortem-run/1", "name": run.name, "status": "finished",
                "task": {"type": "classification", "num_classes": 10, "loss": "cross_entropy"},
                "hyperparameters": {"learning_rate": lr, "batch_size": 64, "optimizer": "adam", "seed": i // 5}}
        (run / "run.json").write_text(json.dumps(meta))
        (run / "metrics.jsonl").write_text(metrics(rng, rng.choice(SHAPES)).replace('"lr": 0.0', f'"lr": {lr}'))


if __name__ == "__main__":
    main()
