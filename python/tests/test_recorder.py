"""The recorder on real PyTorch training (CPU): what each file holds, what
the analyzer makes of it, and what it costs inside the loop."""

import json
import math

import pytest
import torch
from safetensors import safe_open

from conftest import analyze, classification_data, fired, lines, train_step
from postmortem.torch import Policy, Recorder


def mlp(depth=2, width=32, activation=torch.nn.ReLU, features=8, classes=3):
    layers, size = [], features
    for _ in range(depth):
        layers += [torch.nn.Linear(size, width), activation()]
        size = width
    return torch.nn.Sequential(*layers, torch.nn.Linear(size, classes))


def train(run_dir, model, optimizer, steps, recorder_args=None, data=None):
    """The loop of the README, on a loader of batches of 32."""
    x, y = data or classification_data()
    loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0))
    rec = Recorder(run_dir, model=model, optimizer=optimizer, task={"type": "classification", "num_classes": 3, "loss": "cross_entropy"}, **(recorder_args or {}))
    step = 0
    while step < steps:
        for x, y in loader:
            if step == steps:
                break
            optimizer.zero_grad()
            logits = model(x)
            loss = torch.nn.functional.cross_entropy(logits, y)
            loss.backward()
            optimizer.step()
            rec.step(step, loss=loss, inputs=x, labels=y, logits=logits)
            step += 1
    rec.finish()
    return rec


def test_the_readme_loop_writes_every_file(tmp_path):
    torch.manual_seed(0)
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    run = tmp_path / "try-1"
    train(run, model, optimizer, steps=25)

    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "finished" and meta["format"] == "postmortem-run/1"
    layers = meta["model"]["layers"]
    assert [(l["name"], l["type"], l["activation"]) for l in layers] == [("0", "linear", "relu"), ("2", "linear", "relu"), ("4", "linear", "none")]
    assert layers[0]["params"] == ["0.weight", "0.bias"]
    hyper = meta["hyperparameters"]
    assert (hyper["optimizer"], hyper["learning_rate"], hyper["momentum"], hyper["batch_size"]) == ("sgd", 0.1, 0.9, 32)
    assert meta["framework"]["name"] == "pytorch" and meta["framework"]["device"] == "cpu"

    metrics = lines(run / "metrics.jsonl")
    assert [m["step"] for m in metrics] == list(range(25))
    assert all(k in metrics[3] for k in ("loss", "lr", "grad_norm", "accuracy"))
    # Class counts over the steps since the previous recording step.
    assert sum(metrics[10]["label_counts"]) == 10 * 32 and len(metrics[10]["pred_counts"]) == 3
    assert sum(metrics[0]["label_counts"]) == 32

    tensors = lines(run / "tensors.jsonl")
    assert sorted({t["step"] for t in tensors}) == [0, 10, 20]
    kinds = {(t["name"], t["kind"]) for t in tensors if t["step"] == 10}
    assert {("0.weight", "weight"), ("0.weight", "grad"), ("0.weight", "update"), ("2", "activation"), ("input", "input")} <= kinds
    weight = next(t for t in tensors if t["name"] == "0.weight" and t["kind"] == "weight")
    assert weight["shape"] == [32, 8] and weight["count"] == 256
    activation = next(t for t in tensors if t["name"] == "0" and t["kind"] == "activation")
    assert activation["min"] >= 0.0 and "dead_frac" in activation and "batch_std" in activation

    # Steps 0 and 1, and the last; each whole, with the step in its metadata.
    names = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert names == ["step-00000000.safetensors", "step-00000001.safetensors", "step-00000024.safetensors"]
    with safe_open(str(run / "checkpoints" / names[0]), "pt") as f:
        keys = set(f.keys())
        assert f.metadata()["step"] == "0"
    assert {"0.weight", "grad/0.weight", "act/0", "input", "labels", "logits"} <= keys


def test_update_is_one_optimizer_step(tmp_path):
    """Plain SGD moves a weight by lr times its gradient: the recorded update
    of a step is exactly that, not the change since the previous record."""
    torch.manual_seed(1)
    model = mlp(depth=1)
    train(tmp_path / "sgd", model, torch.optim.SGD(model.parameters(), lr=0.05), steps=21)
    tensors = lines(tmp_path / "sgd" / "tensors.jsonl")
    for step in (0, 10, 20):
        at = {t["kind"]: t for t in tensors if t["step"] == step and t["name"] == "2.weight"}
        assert at["update"]["span"] == 1
        assert at["update"]["l2"] == pytest.approx(0.05 * at["grad"]["l2"], rel=1e-5)


def test_the_analyzer_finds_vanishing_gradients(tmp_path, postmortem_bin):
    torch.manual_seed(0)
    model = mlp(depth=12, width=16, activation=torch.nn.Sigmoid)
    train(tmp_path / "deep", model, torch.optim.SGD(model.parameters(), lr=0.1), steps=40)
    report = analyze(postmortem_bin, tmp_path / "deep")
    assert fired(report).get("vanishing-gradients") == "error", fired(report)
    # Saturation and the layers' own outputs are read from the activations.
    assert report["run"]["run"]["complete"] is True


def test_a_healthy_run_stays_quiet(tmp_path, postmortem_bin):
    torch.manual_seed(0)
    model = mlp(depth=2, width=32)
    train(tmp_path / "healthy", model, torch.optim.Adam(model.parameters(), lr=0.01), steps=120)
    loud = {rule: severity for rule, severity in fired(analyze(postmortem_bin, tmp_path / "healthy")).items() if severity != "info"}
    assert loud == {}


def test_no_host_sync_on_steps_that_record_nothing(tmp_path, monkeypatch):
    """Between recording steps the recorder neither reads a tensor's value
    nor moves one to the host: the loss and the other scalars wait on the
    device until a recording step writes them in one transfer."""
    torch.manual_seed(0)
    model = mlp()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    rec = Recorder(tmp_path / "sync", model=model, optimizer=optimizer, task={"type": "classification", "num_classes": 3}, policy=Policy(checkpoint_at=(0,)))
    x, y = classification_data(n=32)
    reads = []
    inside = [False]
    for method in ("item", "cpu", "tolist", "numpy", "__float__", "__int__", "__bool__"):
        original = getattr(torch.Tensor, method)

        def counting(self, *args, _original=original, _method=method, **kwargs):
            if inside[0]:
                reads.append(_method)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, method, counting)
    per_step = []
    for step in range(12):
        loss, logits = train_step(model, optimizer, x, y)
        inside[0] = True
        rec.step(step, loss=loss, inputs=x, labels=y, logits=logits)
        inside[0] = False
        per_step.append(len(reads))
        reads.clear()
    monkeypatch.undo()
    rec.finish()
    assert all(n == 0 for i, n in enumerate(per_step) if i not in (0, 10)), per_step
    assert per_step[10] > 0
    assert len(lines(tmp_path / "sync" / "metrics.jsonl")) == 12


def test_functional_activations_named_by_hand(tmp_path):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = torch.nn.Linear(8, 16), torch.nn.Linear(16, 3)

        def forward(self, x):
            return self.fc2(torch.tanh(self.fc1(x)))

    model = Net()
    train(tmp_path / "functional", model, torch.optim.SGD(model.parameters(), lr=0.1), steps=11, recorder_args={"activations": {"fc1": "tanh"}})
    layers = json.loads((tmp_path / "functional" / "run.json").read_text())["model"]["layers"]
    assert layers[0]["activation"] == "tanh"
    activation = next(t for t in lines(tmp_path / "functional" / "tensors.jsonl") if t["name"] == "fc1" and t["kind"] == "activation")
    # tanh applied to the layer's output: within (-1, 1), with a saturation figure.
    assert -1.0 <= activation["min"] and activation["max"] <= 1.0 and "saturated_frac" in activation


def test_other_ranks_and_failures(tmp_path):
    model = mlp()
    silent = Recorder(tmp_path / "rank1", model=model, rank=1)
    silent.step(0, loss=torch.tensor(1.0))
    silent.finish()
    assert not (tmp_path / "rank1").exists()
    with pytest.raises(RuntimeError):
        with Recorder(tmp_path / "crash", model=model) as rec:
            rec.step(0, loss=torch.tensor(math.nan))
            raise RuntimeError("the loop failed")
    assert json.loads((tmp_path / "crash" / "run.json").read_text())["status"] == "crashed"
    # A NaN loss is evidence: written as NaN, not left out.
    assert math.isnan(lines(tmp_path / "crash" / "metrics.jsonl")[0]["loss"])
    with pytest.raises(FileExistsError):
        Recorder(tmp_path / "crash", model=model)
