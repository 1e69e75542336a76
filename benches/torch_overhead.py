"""The PyTorch recorder's cost inside a realistic training step: a ResNet-18
(the CIFAR variant: 3x3 stem, no max-pool) on 32x32 images, batches of 128,
SGD with momentum, recording on at the default policy against recording off,
side by side in one process.

    python benches/torch_overhead.py [--device cpu|cuda] [--rounds N] [--steps K]

Rounds alternate K steps without the recorder and K steps with it (so that
the machine's drift hits both alike); the step numbers run on, so one step
in 10 records statistics. Checkpoints (steps 0, 1, every 1,000, the last)
are timed apart and spread over a 10,000-step run, as the default policy
spreads them. Run by `cargo bench --bench speed` when torch is importable.
"""

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "python"))
from postmortem.torch import Policy, Recorder  # noqa: E402


class Block(torch.nn.Module):
    def __init__(self, inputs, outputs, stride):
        super().__init__()
        self.conv1 = torch.nn.Conv2d(inputs, outputs, 3, stride, 1, bias=False)
        self.bn1 = torch.nn.BatchNorm2d(outputs)
        self.relu1 = torch.nn.ReLU()
        self.conv2 = torch.nn.Conv2d(outputs, outputs, 3, 1, 1, bias=False)
        self.bn2 = torch.nn.BatchNorm2d(outputs)
        self.shortcut = torch.nn.Sequential()
        if stride != 1 or inputs != outputs:
            self.shortcut = torch.nn.Sequential(torch.nn.Conv2d(inputs, outputs, 1, stride, bias=False), torch.nn.BatchNorm2d(outputs))
        self.relu2 = torch.nn.ReLU()

    def forward(self, x):
        y = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(y + self.shortcut(x))


def resnet18(classes=10):
    layers = [torch.nn.Conv2d(3, 64, 3, 1, 1, bias=False), torch.nn.BatchNorm2d(64), torch.nn.ReLU()]
    inputs = 64
    for outputs, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        layers += [Block(inputs, outputs, stride), Block(outputs, outputs, 1)]
        inputs = outputs
    layers += [torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(512, classes)]
    return torch.nn.Sequential(*layers)


def synchronize(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    args = parser.parse_args()
    device = torch.device(args.device)
    torch.manual_seed(0)
    model = resnet18().to(device)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    x = torch.randn(args.batch_size, 3, 32, 32, device=device)
    y = torch.randint(0, 10, (args.batch_size,), device=device)

    # Time spent in the optimizer's step (where the update hooks run) and in
    # `rec.step`, per step.
    optimizer_times = {False: [], True: []}
    recorder_times = []

    def step(rec, number):
        optimizer.zero_grad()
        logits = model(x)
        loss = torch.nn.functional.cross_entropy(logits, y)
        loss.backward()
        synchronize(device)
        start = time.perf_counter()
        optimizer.step()
        synchronize(device)
        optimizer_times[rec is not None].append(time.perf_counter() - start)
        if rec is not None:
            start = time.perf_counter()
            rec.step(number, loss=loss, inputs=x, labels=y, logits=logits)
            synchronize(device)
            recorder_times.append(time.perf_counter() - start)

    with tempfile.TemporaryDirectory() as scratch:
        for _ in range(2):
            step(None, 0)
        optimizer_times[False].clear()
        # Checkpoints apart: the default policy's steps 0 and 1 at full size.
        rec = Recorder(Path(scratch) / "recorded", model=model, optimizer=optimizer, task={"type": "classification", "num_classes": 10, "loss": "cross_entropy"},
                       policy=Policy(checkpoint_every=0, checkpoint_at=()))
        synchronize(device)
        off, on = [], []

        def timed(recorder, number, into):
            synchronize(device)
            start = time.perf_counter()
            step(recorder, number)
            synchronize(device)
            into.append(time.perf_counter() - start)

        number = 1
        for _ in range(args.rounds):
            for _ in range(args.steps):
                timed(None, number, off)
            for _ in range(args.steps):
                timed(rec, number, on)
                number += 1
        rec.finish()
        checkpoint_rec = Recorder(Path(scratch) / "checkpoint", model=model, optimizer=optimizer, task={"type": "classification", "num_classes": 10})
        measured_optimizer = {k: list(v) for k, v in optimizer_times.items()}
        checkpoints = []
        for number in (0, 1):
            step(None, number)
            logits = model(x)
            synchronize(device)
            start = time.perf_counter()
            checkpoint_rec._checkpoint(number, x, y, logits)
            synchronize(device)
            checkpoints.append(time.perf_counter() - start)
        checkpoint_rec.finish()
        size = sum(p.stat().st_size for p in (Path(scratch) / "checkpoint" / "checkpoints").glob("*.safetensors")) / 2 / 2**20
    off_mean, on_mean = statistics.mean(off), statistics.mean(on)
    checkpoint = statistics.mean(checkpoints)
    run_steps = 10_000
    per_step_checkpoints = checkpoint * (2 + run_steps // 1000) / run_steps
    # The recorder's own cost: its calls, and what its hooks add to the
    # optimizer's step (the forward hooks return at once on steps that record
    # nothing and keep a reference on those that do).
    recording = [t for i, t in enumerate(recorder_times) if (i + 1) % 10 == 0] or [math.nan]
    ordinary = [t for i, t in enumerate(recorder_times) if (i + 1) % 10 != 0] or [math.nan]
    hooks = statistics.mean(measured_optimizer[True]) - statistics.mean(measured_optimizer[False])
    inside = statistics.mean(recorder_times) + max(hooks, 0.0)
    print(f"device {args.device}, torch {torch.__version__}, ResNet-18 on 32x32, batch {args.batch_size}, {len(off)} + {len(on)} steps, interleaved in rounds of {args.steps}")
    print(f"step without the recorder: {off_mean * 1e3:.1f} ms (median {statistics.median(off) * 1e3:.1f})")
    print(f"step with the recorder: {on_mean * 1e3:.1f} ms (median {statistics.median(on) * 1e3:.1f}); difference {(on_mean - off_mean) / off_mean * 100:+.2f}%")
    print(f"inside the recorder: {statistics.mean(ordinary) * 1e3:.1f} ms on a step that records nothing, {statistics.mean(recording) * 1e3:.0f} ms on one that records statistics (1 in 10), update hooks {hooks * 1e3:+.0f} ms on the optimizer's step")
    print(f"checkpoint with gradients and activations: {checkpoint * 1e3:.0f} ms, {size:.0f} MiB")
    print(f"overhead at the default policy over {run_steps} steps: {(inside + per_step_checkpoints) / off_mean * 100:.2f}% ({inside * 1e3:.1f} ms/step in the recorder, {per_step_checkpoints * 1e3:.1f} ms/step of checkpoints)")


if __name__ == "__main__":
    main()
