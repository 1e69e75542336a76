"""Shared helpers: the analyzer binary (built by cargo from this checkout
unless POSTMORTEM_BIN names one) and small training loops."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def postmortem_bin() -> str:
    given = os.environ.get("POSTMORTEM_BIN")
    if given:
        return given
    subprocess.run(["cargo", "build", "--quiet", "--bin", "postmortem"], cwd=REPO, check=True)
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    return str(target / "debug" / "postmortem")


def analyze(binary: str, run_dir: Path) -> dict:
    """`postmortem analyze --format json` of a run; fails on exit code 2."""
    result = subprocess.run([binary, "analyze", str(run_dir), "--format", "json", "--fail-on", "never"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def fired(report: dict) -> dict:
    """Rule id to the highest severity it reported."""
    order = ["info", "warning", "error"]
    out: dict = {}
    for finding in report["findings"]:
        rule, severity = finding["rule"], finding["severity"]
        if rule not in out or order.index(severity) > order.index(out[rule]):
            out[rule] = severity
    return out


def classification_data(n=256, features=8, classes=3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(n, features, generator=generator)
    w = torch.randn(features, classes, generator=generator)
    return x, (x @ w).argmax(dim=1)


def lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def train_step(model, optimizer, x, y):
    """One step of the README's loop, up to `rec.step`: the loss and logits."""
    optimizer.zero_grad()
    logits = model(x)
    loss = torch.nn.functional.cross_entropy(logits, y)
    loss.backward()
    optimizer.step()
    return loss, logits
