"""The wheel route: `pip install ./python` puts the analyzer on the PATH
next to the recorder, with no Rust toolchain needed to run it."""

import importlib.metadata
import json
import subprocess
import sys

import pytest
import torch

from conftest import classification_data, fired, train_step

try:
    importlib.metadata.version("postmortem")
    INSTALLED = True
except importlib.metadata.PackageNotFoundError:
    INSTALLED = False


@pytest.mark.skipif(not INSTALLED, reason="the postmortem package is not installed (pip install ./python)")
def test_the_installed_command_analyzes_a_recorded_run(tmp_path):
    from postmortem import find_bin
    from postmortem.torch import Recorder

    binary = find_bin()
    version = subprocess.run([binary, "--version"], capture_output=True, text=True, check=True).stdout
    assert version.startswith("postmortem ")
    # A learning rate far too high: the loss blows up.
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 32), torch.nn.ReLU(), torch.nn.Linear(32, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=50.0)
    x, y = classification_data(n=64)
    rec = Recorder(tmp_path / "lr50", model=model, optimizer=optimizer, task={"type": "classification", "num_classes": 3, "loss": "cross_entropy"})
    for step in range(30):
        loss, logits = train_step(model, optimizer, x, y)
        rec.step(step, loss=loss, inputs=x, labels=y, logits=logits)
    rec.finish()
    # `python -m postmortem` is the same command.
    result = subprocess.run([sys.executable, "-m", "postmortem", "analyze", str(tmp_path / "lr50"), "--format", "json"], capture_output=True, text=True)
    assert result.returncode == 1, result.stderr  # findings at or above --fail-on's default
    errors = [rule for rule, severity in fired(json.loads(result.stdout)).items() if severity == "error"]
    assert errors, result.stdout
