"""Records PyTorch training as a postmortem run (docs/FORMAT.md).

    from postmortem.torch import Recorder

    rec = Recorder("runs/try-1", model=model, optimizer=opt,
                   task={"type": "classification", "num_classes": 10, "loss": "cross_entropy"})
    for step, (x, y) in enumerate(loader):
        ...
        opt.step()
        rec.step(step, loss=loss, inputs=x, labels=y, logits=logits)
    rec.finish()

What it costs inside the loop: on a step that records nothing, the step's
scalars (loss, learning rate, gradient norm, accuracy, class counts) stay on
the device and nothing waits for it; they are written in batches. On a step
that records statistics (every 10 by default), weights, gradients, updates,
activations and the input are reduced on their device and cross to the host
in one transfer. Checkpoints (steps 0 and 1, every 1,000, the last) copy
tensors to the host and are rare for that reason.

Activations come from forward hooks on the model's layers; the update of a
parameter is its value after ``optimizer.step()`` minus its value before,
taken by the optimizer's step hooks on recording steps only. Both expect
``step`` to count optimizer steps one by one (0, 1, 2, ...), since they run
before ``rec.step`` says which step it was.

In multi-process training (DDP, FSDP) only rank 0 records unless ``rank`` is
given: the others get a recorder that does nothing.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

try:
    import torch
except ImportError as error:  # the analyzer alone needs no torch
    raise ImportError("postmortem.torch records PyTorch training and needs torch: pip install torch") from error

from . import _stats

FORMAT_VERSION = "postmortem-run/1"
#: Class counts are kept for at most this many classes (a language model's
#: vocabulary would make each line hundreds of kilobytes).
MAX_COUNTED_CLASSES = 1024

# Module types of layers, by docs/FORMAT.md's names.
_LAYER_TYPES = {
    torch.nn.Linear: "linear",
    torch.nn.Bilinear: "linear",
    torch.nn.Conv1d: "conv1d",
    torch.nn.Conv2d: "conv2d",
    torch.nn.Conv3d: "conv3d",
    torch.nn.ConvTranspose1d: "conv_transpose1d",
    torch.nn.ConvTranspose2d: "conv_transpose2d",
    torch.nn.ConvTranspose3d: "conv_transpose3d",
    torch.nn.BatchNorm1d: "batchnorm",
    torch.nn.BatchNorm2d: "batchnorm",
    torch.nn.BatchNorm3d: "batchnorm",
    torch.nn.LayerNorm: "layernorm",
    torch.nn.GroupNorm: "groupnorm",
    torch.nn.Embedding: "embedding",
    torch.nn.LSTM: "lstm",
    torch.nn.GRU: "gru",
    torch.nn.RNN: "rnn",
}

# Nonlinearity modules, by docs/FORMAT.md's names, with the function that
# applies each (for an activation given by name and applied in `forward`).
_ACTIVATIONS = {
    torch.nn.ReLU: "relu",
    torch.nn.ReLU6: "relu",
    torch.nn.LeakyReLU: "leaky_relu",
    torch.nn.Tanh: "tanh",
    torch.nn.Sigmoid: "sigmoid",
    torch.nn.GELU: "gelu",
    torch.nn.SiLU: "silu",
    torch.nn.ELU: "elu",
    torch.nn.Softplus: "softplus",
    torch.nn.Mish: "mish",
    torch.nn.Hardtanh: "hardtanh",
}
_FUNCTIONS = {
    "relu": torch.relu,
    "leaky_relu": torch.nn.functional.leaky_relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "gelu": torch.nn.functional.gelu,
    "silu": torch.nn.functional.silu,
    "elu": torch.nn.functional.elu,
    "softplus": torch.nn.functional.softplus,
    "mish": torch.nn.functional.mish,
}
_CONVOLUTIONS = (torch.nn.modules.conv._ConvNd, torch.nn.modules.batchnorm._BatchNorm, torch.nn.GroupNorm)


@dataclasses.dataclass
class Policy:
    """What to record and how often; an interval of 0 means never. The
    defaults are the Rust recorder's: every rule of the analyzer gets its
    data and a run stays small."""

    metrics_every: int = 1
    stats_every: int = 10
    checkpoint_every: int = 1000
    checkpoint_at: tuple = (0, 1)
    checkpoint_grads: bool = True
    checkpoint_activations: bool = True
    #: Steps of scalars kept on the device before they are written; a
    #: recording step writes them too.
    flush_every: int = 100

    @classmethod
    def off(cls) -> "Policy":
        return cls(metrics_every=0, stats_every=0, checkpoint_every=0, checkpoint_at=(), checkpoint_grads=False, checkpoint_activations=False)

    def wants_metrics(self, step: int) -> bool:
        return self.metrics_every > 0 and step % self.metrics_every == 0

    def wants_stats(self, step: int) -> bool:
        return self.stats_every > 0 and step % self.stats_every == 0

    def wants_checkpoint(self, step: int, last: bool = False) -> bool:
        enabled = self.checkpoint_every > 0 or bool(self.checkpoint_at)
        return (last and enabled) or (self.checkpoint_every > 0 and step % self.checkpoint_every == 0) or step in self.checkpoint_at


@dataclasses.dataclass
class _Layer:
    name: str
    module: torch.nn.Module
    type: str
    params: list
    #: The nonlinearity after the layer, and the module that applies it.
    activation: str = "none"
    activation_module: str | None = None
    #: An activation named by the user, applied to the layer's output here.
    applied: str | None = None


def _is_leaf(module: torch.nn.Module) -> bool:
    return next(module.children(), None) is None


def _layer_type(module: torch.nn.Module) -> str:
    for cls in type(module).__mro__:
        if cls in _LAYER_TYPES:
            return _LAYER_TYPES[cls]
    return type(module).__name__.lower()


def _activation_name(module: torch.nn.Module) -> str | None:
    for cls in type(module).__mro__:
        if cls in _ACTIVATIONS:
            return _ACTIVATIONS[cls]
    return None


def json_value(value: Any) -> Any:
    """A hyperparameter as JSON: numbers and strings as they are, tensors as
    numbers, tuples as lists."""
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return value.item()
    if isinstance(value, (tuple, list)):
        return [json_value(v) for v in value]
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    return str(value)


def free_run_dir(base: Path) -> Path:
    """``base``, or ``base-2``, ``base-3``, ... when a run is recorded there
    (a resumed training starts a run of its own)."""
    path, n = base, 1
    while (path / "run.json").exists():
        n += 1
        path = base.with_name(f"{base.name}-{n}")
    return path


def _append(file, lines: list[str]) -> None:
    """Appends lines with as few write(2) calls as the kernel allows (one,
    for a regular file)."""
    data = memoryview("".join(lines).encode("utf-8"))
    while data:
        data = data[file.write(data):]


def _write_atomically(path: Path, text: str) -> None:
    temporary = path.with_name(path.name + ".tmp")
    with open(temporary, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, path)


class Recorder:
    """Writes a postmortem run while a PyTorch model trains; see the module's
    documentation for what it records and what that costs.

    ``task``, ``dataset``, ``hyperparameters`` and ``model_meta`` are merged
    into ``run.json`` as docs/FORMAT.md names their fields; the optimizer's
    hyperparameters and the batch size are filled in. ``activations`` maps a
    layer's name to the nonlinearity its output goes through when ``forward``
    applies it as a function (``{"fc1": "relu"}``); a nonlinearity module
    that follows a layer is found by itself. ``grad_norm=False`` leaves the
    gradient norm to a trainer that logs its own (before clipping, as the
    format wants it).
    """

    def __init__(
        self,
        run_dir: str | os.PathLike,
        model: torch.nn.Module | None = None,
        optimizer: torch.optim.Optimizer | None = None,
        task: dict | None = None,
        *,
        name: str | None = None,
        purpose: str | None = None,
        dataset: dict | None = None,
        hyperparameters: dict | None = None,
        model_meta: dict | None = None,
        activations: dict | None = None,
        policy: Policy | None = None,
        rank: int | None = None,
        grad_norm: bool = True,
    ):
        if rank is None and torch.distributed.is_available() and torch.distributed.is_initialized():
            rank = torch.distributed.get_rank()
        self.enabled = rank in (None, 0)
        self.policy = policy or Policy()
        self._grad_norm = grad_norm
        if not self.enabled:
            return
        self.dir = Path(run_dir)
        (self.dir / "checkpoints").mkdir(parents=True, exist_ok=True)
        if (self.dir / "run.json").exists():
            raise FileExistsError(f"{self.dir}: a run is already recorded there")
        # DistributedDataParallel and FSDP wrap the model in `module`.
        self.model = getattr(model, "module", model) if model is not None else None
        self.optimizer = optimizer
        self._overrides = dict(activations or {})
        self._layers = self._find_layers()
        self._order: list[str] = []
        self.meta: dict = {"format": FORMAT_VERSION, "name": name or self.dir.name, "status": "running"}
        if purpose:
            self.meta["purpose"] = purpose
        if task:
            self.meta["task"] = dict(task)
        if dataset:
            self.meta["dataset"] = dict(dataset)
        self._hyper = dict(hyperparameters or {})
        self._model_meta = dict(model_meta or {})
        self._fill_meta()
        _write_atomically(self.dir / "run.json", json.dumps(self.meta, indent=2))
        # Unbuffered: each batch of lines is one write(2), so a process
        # killed between steps leaves whole lines (a buffered file writes a
        # large batch in pieces).
        self._metrics = open(self.dir / "metrics.jsonl", "ab", buffering=0)
        self._tensors = open(self.dir / "tensors.jsonl", "ab", buffering=0)
        # Scalars waiting on the device: (step, {key: tensor or number}).
        self._pending: list[tuple[int, dict]] = []
        self._class_counts: dict[str, torch.Tensor] = {}
        self._next_step = 0
        self._last_step: int | None = None
        self._last_checkpoint: int | None = None
        self._captured: dict[str, torch.Tensor] = {}
        self._update_rows: dict[str, torch.Tensor] = {}
        self._before: dict[str, torch.Tensor] | None = None
        self._hooks = []
        # Forward hooks are there only for the forward pass of a recording
        # step: other steps run the model as if no recorder were there.
        self._forward_hooks = []
        self._batch_size_known = False
        self._done = False
        self._arm(0)
        if optimizer is not None:
            self._hooks.append(optimizer.register_step_pre_hook(self._before_optimizer_step))
            self._hooks.append(optimizer.register_step_post_hook(self._after_optimizer_step))

    # --- what the model is -------------------------------------------------

    def _find_layers(self) -> dict[str, _Layer]:
        layers: dict[str, _Layer] = {}
        if self.model is None:
            return layers
        previous: _Layer | None = None
        for module_name, module in self.model.named_modules():
            if not module_name or not _is_leaf(module):
                continue
            params = [f"{module_name}.{p}" for p, _ in module.named_parameters(recurse=False)]
            activation = _activation_name(module)
            if params:
                previous = _Layer(module_name, module, _layer_type(module), params)
                layers[module_name] = previous
            elif activation is not None and previous is not None and previous.activation_module is None:
                previous.activation, previous.activation_module = activation, module_name
            else:
                previous = None
        for layer_name, activation in self._overrides.items():
            if layer_name in layers:
                layers[layer_name].activation = activation
                layers[layer_name].activation_module = None
                layers[layer_name].applied = activation if activation in _FUNCTIONS else None
        return layers

    def _fill_meta(self) -> None:
        hyper: dict = {}
        if self.optimizer is not None:
            hyper["optimizer"] = type(self.optimizer).__name__.lower()
            group = self.optimizer.param_groups[0]
            for key, value in group.items():
                if key == "params":
                    continue
                hyper["learning_rate" if key == "lr" else key] = json_value(value)
        hyper.update(self._hyper)
        if hyper:
            self.meta["hyperparameters"] = hyper
        if self.model is not None:
            first = next(self.model.parameters(), None)
            layers = sorted(self._layers.values(), key=lambda layer: self._order.index(layer.name) if layer.name in self._order else len(self._order))
            self.meta["model"] = {
                "name": type(self.model).__name__,
                "layers": [{"name": l.name, "type": l.type, "activation": l.activation, "params": l.params} for l in layers],
                **self._model_meta,
            }
            device = str(first.device) if first is not None else "cpu"
        else:
            device = "cpu"
        self.meta["framework"] = {"name": "pytorch", "version": torch.__version__, "device": device}

    # --- hooks -------------------------------------------------------------

    def _recording(self, step: int) -> bool:
        return self.policy.wants_stats(step) or (self.policy.checkpoint_activations and self.policy.wants_checkpoint(step))

    def _arm(self, step: int) -> None:
        """Puts the forward hooks on the model's layers when ``step``
        records, and takes them off when it does not."""
        if self.model is None:
            return
        wanted = self._recording(step)
        if wanted and not self._forward_hooks:
            for module_name, module in self.model.named_modules():
                if module_name and _is_leaf(module):
                    self._forward_hooks.append(module.register_forward_hook(self._forward_hook(module_name)))
        elif not wanted and self._forward_hooks:
            for hook in self._forward_hooks:
                hook.remove()
            self._forward_hooks = []

    def _forward_hook(self, module_name: str):
        def hook(module, inputs, output):
            # Only the step's training forward pass: the first call under
            # autograd (an evaluation pass runs without gradients).
            if not torch.is_grad_enabled() or module_name in self._captured:
                return
            if isinstance(output, torch.Tensor):
                if module_name not in self._order:
                    self._order.append(module_name)
                self._captured[module_name] = output.detach()

        return hook

    def _named_params(self) -> list[tuple[str, torch.nn.Parameter]]:
        return [(n, p) for n, p in self.model.named_parameters()] if self.model is not None else []

    def _before_optimizer_step(self, optimizer, args, kwargs) -> None:
        if self.policy.wants_stats(self._next_step) and self.model is not None:
            self._before = {n: p.detach().clone() for n, p in self._named_params()}

    def _after_optimizer_step(self, optimizer, args, kwargs) -> None:
        if self._before is None:
            return
        for n, p in self._named_params():
            if n in self._before:
                self._update_rows[n] = _stats.sums(p.detach() - self._before[n])
        self._before = None

    # --- the step ----------------------------------------------------------

    def step(self, step: int, loss=None, inputs=None, labels=None, logits=None, **metrics) -> None:
        """Records step ``step`` (after ``optimizer.step()``): ``loss`` and
        any other metrics as tensors or numbers (never waited for), and, on
        the steps the policy records, statistics of everything the recorder
        can see. ``labels`` and ``logits`` give accuracy and class counts."""
        if not self.enabled:
            return
        step = int(step)
        if step < 0:
            raise ValueError("step must be a non-negative integer")
        scalars: dict = {}
        if self.policy.wants_metrics(step):
            if loss is not None:
                scalars["loss"] = loss.detach() if isinstance(loss, torch.Tensor) else float(loss)
            if self.optimizer is not None:
                lr = self.optimizer.param_groups[0].get("lr")
                if lr is not None:
                    scalars["lr"] = lr.detach() if isinstance(lr, torch.Tensor) else float(lr)
            grads = [p.grad.detach() for _, p in self._named_params() if p.grad is not None] if self._grad_norm else []
            if grads:
                scalars["grad_norm"] = torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))
            if labels is not None and logits is not None and logits.dim() >= 1 and logits.shape[-1] > 1:
                predictions = logits.detach().reshape(-1, logits.shape[-1]).argmax(dim=-1)
                truth = labels.detach().reshape(-1)
                if predictions.shape == truth.shape:
                    # Negative labels (-100, as Hugging Face pads) are no example.
                    valid = truth >= 0
                    scalars["accuracy"] = ((predictions == truth) & valid).sum() / valid.sum().clamp(min=1)
                    if logits.shape[-1] <= MAX_COUNTED_CLASSES:
                        self._count_classes(truth, predictions, logits.shape[-1])
            for key, value in metrics.items():
                if value is not None:
                    scalars[key] = value.detach() if isinstance(value, torch.Tensor) else value
        if not self._batch_size_known and inputs is not None and isinstance(inputs, torch.Tensor) and inputs.dim() > 0:
            self._hyper.setdefault("batch_size", int(inputs.shape[0]))
            self._batch_size_known = True
        stats = self.policy.wants_stats(step)
        checkpoint = self.policy.wants_checkpoint(step)
        if stats and self._class_counts:
            scalars.update(self._class_counts)
            self._class_counts = {}
        if scalars:
            self._pending.append((step, scalars))
        if stats or checkpoint or len(self._pending) >= max(self.policy.flush_every, 1):
            self._flush()
        if stats:
            self._record_stats(step, inputs)
        if checkpoint:
            self._checkpoint(step, inputs, labels, logits)
        if self._last_step is None:
            # The layers' forward order is known after the first step.
            self._fill_meta()
            _write_atomically(self.dir / "run.json", json.dumps(self.meta, indent=2))
        self._last_step = step
        self._next_step = step + 1
        self._captured = {}
        self._update_rows = {}
        self._arm(self._next_step)

    def log(self, step: int, **metrics) -> None:
        """Metrics of step ``step`` from outside :meth:`step` (an evaluation's
        ``val_loss``, a trainer's own logged values): tensors or numbers,
        never waited for. ``step`` may not be before the last recorded one,
        which would read as a resumed run."""
        if not self.enabled or self._done:
            return
        step = int(step)
        if self._last_step is not None and step < self._last_step:
            raise ValueError(f"metrics for step {step} after step {self._last_step} would read as a resumed run")
        scalars = {k: (v.detach() if isinstance(v, torch.Tensor) else v) for k, v in metrics.items() if v is not None}
        if scalars:
            self._pending.append((step, scalars))

    def _count_classes(self, truth: torch.Tensor, predictions: torch.Tensor, classes: int) -> None:
        # scatter_add with out-of-range labels weighted 0: no host sync, as
        # boolean indexing would need.
        num_classes = int((self.meta.get("task") or {}).get("num_classes") or classes)
        for key, values in (("label_counts", truth), ("pred_counts", predictions)):
            values = values.long()
            inside = (values >= 0) & (values < num_classes)
            counts = self._class_counts.get(key)
            if counts is None:
                counts = torch.zeros(num_classes, dtype=torch.long, device=values.device)
            self._class_counts[key] = counts.scatter_add(0, values.clamp(0, num_classes - 1), inside.long())

    def _flush(self) -> None:
        """Writes the waiting scalars: one transfer per device, one write."""
        if not self._pending:
            return
        tensors = [v for _, scalars in self._pending for v in scalars.values() if isinstance(v, torch.Tensor)]
        host: dict[int, Any] = {}
        for t, values in zip(tensors, _stats.to_host(tensors)):
            if not (t.is_floating_point() or t.is_complex()):
                values = [int(v) for v in values]
            host[id(t)] = values[0] if t.dim() == 0 else values
        lines = []
        for step, scalars in self._pending:
            line = {"step": step}
            for key, value in scalars.items():
                line[key] = host[id(value)] if isinstance(value, torch.Tensor) else value
            lines.append(json.dumps(line) + "\n")
        _append(self._metrics, lines)
        self._pending = []

    def _activation_output(self, layer: _Layer) -> torch.Tensor | None:
        output = self._captured.get(layer.activation_module or layer.name)
        if output is not None and layer.applied is not None:
            output = _FUNCTIONS[layer.applied](output)
        return output

    def _record_stats(self, step: int, inputs) -> None:
        rows: list[tuple[str, str, list, torch.Tensor, dict]] = []
        for n, p in self._named_params():
            rows.append((n, "weight", list(p.shape), _stats.sums(p), {}))
            if p.grad is not None:
                rows.append((n, "grad", list(p.shape), _stats.sums(p.grad), {}))
            if n in self._update_rows:
                rows.append((n, "update", list(p.shape), self._update_rows[n], {"span": 1}))
        for layer in self._layers.values():
            output = self._activation_output(layer)
            if output is not None:
                channels_first = isinstance(layer.module, _CONVOLUTIONS)
                rows.append((layer.name, "activation", list(output.shape), _stats.sums(output, layer.activation, channels_first), {}))
        if isinstance(inputs, torch.Tensor) and inputs.is_floating_point():
            rows.append(("input", "input", list(inputs.shape), _stats.sums(inputs), {}))
        host = _stats.to_host([row for _, _, _, row, _ in rows])
        lines = []
        for (name, kind, shape, _, extra), values in zip(rows, host):
            count = math.prod(shape)
            line = {"step": step, "name": name, "kind": kind}
            if kind != "activation" and kind != "input":
                line["shape"] = shape
            line.update(extra)
            line.update(_stats.statistics(values, count))
            lines.append(json.dumps(line) + "\n")
        _append(self._tensors, lines)

    def _checkpoint(self, step: int, inputs, labels, logits, activations: bool = True) -> None:
        if self.model is None:
            return
        tensors: dict[str, torch.Tensor] = {}
        host = lambda t: t.detach().to("cpu", copy=True).contiguous()  # noqa: E731
        for n, t in self.model.state_dict().items():
            if isinstance(t, torch.Tensor):
                tensors[n] = host(t)
        if self.policy.checkpoint_grads:
            for n, p in self._named_params():
                if p.grad is not None:
                    tensors["grad/" + n] = host(p.grad)
        if activations and self.policy.checkpoint_activations:
            for layer in self._layers.values():
                output = self._activation_output(layer)
                if output is not None:
                    tensors["act/" + layer.name] = host(output)
            for key, value in (("input", inputs), ("labels", labels), ("logits", logits)):
                if isinstance(value, torch.Tensor):
                    tensors[key] = host(value)
        from safetensors.torch import save_file

        path = self.dir / "checkpoints" / f"step-{step:08d}.safetensors"
        temporary = path.with_name(path.name + ".tmp")
        save_file(tensors, str(temporary), metadata={"step": str(step)})
        os.replace(temporary, path)
        self._last_checkpoint = step

    # --- the end -----------------------------------------------------------

    def _close(self, status: str) -> None:
        if not self.enabled or self._done:
            return
        self._done = True
        self._flush()
        if status == "finished" and self._last_step is not None and self._last_checkpoint != self._last_step and self.policy.wants_checkpoint(self._last_step, last=True):
            # The last step's weights (its activations were not kept).
            self._checkpoint(self._last_step, None, None, None, activations=False)
        for hook in self._hooks + self._forward_hooks:
            hook.remove()
        self._forward_hooks = []
        self._metrics.close()
        self._tensors.close()
        self._fill_meta()
        self.meta["status"] = status
        _write_atomically(self.dir / "run.json", json.dumps(self.meta, indent=2))

    def finish(self) -> None:
        """Writes what is waiting, the last checkpoint and ``status: finished``."""
        self._close("finished")

    def crashed(self) -> None:
        """Writes what is waiting and ``status: crashed``, for a training loop
        that caught its own failure."""
        self._close("crashed")

    def __enter__(self) -> "Recorder":
        return self

    def __exit__(self, kind, error, traceback) -> None:
        self._close("finished" if kind is None else "crashed")
