"""A training process killed with SIGKILL mid-run leaves a run the analyzer
reads: whole lines, whole checkpoints, status `running`."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from conftest import analyze, lines

CHILD = textwrap.dedent(
    """
    import sys, torch
    from conftest import train_step
    from postmortem.torch import Policy, Recorder
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 64), torch.nn.ReLU(), torch.nn.Linear(64, 3))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    x, y = torch.randn(64, 8), torch.randint(0, 3, (64,))
    # Scalars written every 5 steps; checkpoints often, to be caught mid-write.
    rec = Recorder(sys.argv[1], model=model, optimizer=optimizer,
                   task={"type": "classification", "num_classes": 3, "loss": "cross_entropy"},
                   policy=Policy(flush_every=5, checkpoint_every=7))
    step = 0
    while True:
        loss, logits = train_step(model, optimizer, x, y)
        rec.step(step, loss=loss, inputs=x, labels=y, logits=logits)
        step += 1
    """
)


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="SIGKILL is POSIX")
def test_killed_training_leaves_a_readable_run(tmp_path, postmortem_bin):
    run = tmp_path / "killed"
    tests = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.dirname(tests), tests, os.environ.get("PYTHONPATH", "")]))
    child = subprocess.Popen([sys.executable, "-c", CHILD, str(run)], env=env)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            metrics = run / "metrics.jsonl"
            if metrics.exists() and metrics.read_text().count("\n") >= 200 and len(list((run / "checkpoints").glob("*.safetensors"))) >= 5:
                break
            assert child.poll() is None, "the training process ended by itself"
            time.sleep(0.05)
        else:
            pytest.fail("the run did not grow")
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    assert json.loads((run / "run.json").read_text())["status"] == "running"
    text = (run / "metrics.jsonl").read_text()
    # Every line that was written is whole.
    assert text.endswith("\n") and all(json.loads(line)["step"] >= 0 for line in text.splitlines())
    report = analyze(postmortem_bin, run)
    summary = report["run"]
    assert summary["run"]["status"] == "running" and summary["run"]["complete"] is False
    assert summary["steps"]["last"] >= 199
    assert len(lines(run / "tensors.jsonl")) > 0
