"""Records a Lightning training as a postmortem run, in one line:

    trainer = L.Trainer(..., callbacks=[PostmortemCallback()])

The run goes to the trainer's log directory (or its root directory), under
``postmortem`` (``-2``, ``-3``, ... when a run is already there).
Everything :class:`postmortem.torch.Recorder` records, from what each
training step hands Lightning: the loss (``training_step``'s return value, or
its ``"loss"``), the batch's inputs and labels when the batch is
``(inputs, labels, ...)``, and the logits when ``training_step`` returns
them as ``"logits"``. Validation metrics whose name starts with ``val``
are recorded at the step they were computed after. The module's
``hparams`` are the run's hyperparameters. Steps are the trainer's
``global_step`` counted from 0; only the process of global rank 0 records,
and a training that raises leaves ``status: crashed``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch

try:
    import lightning.pytorch as pl
except ImportError:  # the older package name
    import pytorch_lightning as pl

from .torch import Policy, Recorder, free_run_dir, json_value


class PostmortemCallback(pl.Callback):
    """``run_dir`` instead of the log directory's ``postmortem``; ``task``
    (as docs/FORMAT.md's `task`), ``policy`` and any other keyword go to
    :class:`postmortem.torch.Recorder`."""

    def __init__(self, run_dir: str | os.PathLike | None = None, task: dict | None = None, policy: Policy | None = None, **recorder_args):
        self.run_dir = run_dir
        self.task = task
        self.policy = policy
        self.recorder_args = recorder_args
        self.recorder: Recorder | None = None
        self._recorded_step = -1

    def on_train_start(self, trainer, pl_module):
        if trainer.global_rank != 0:
            return
        base = self.run_dir or os.path.join(trainer.log_dir or trainer.default_root_dir, "postmortem")
        hparams = {k: json_value(v) for k, v in dict(getattr(pl_module, "hparams", {}) or {}).items()}
        recorder_args = dict(self.recorder_args)
        hyper = {**hparams, **recorder_args.pop("hyperparameters", {})}
        optimizer = trainer.optimizers[0] if trainer.optimizers else None
        self.recorder = Recorder(free_run_dir(Path(base)), model=pl_module, optimizer=optimizer, task=self.task, hyperparameters=hyper, policy=self.policy, rank=0, **recorder_args)
        self._recorded_step = trainer.global_step - 1

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        # Under gradient accumulation a batch may end without an optimizer step.
        step = trainer.global_step - 1
        if self.recorder is None or step <= self._recorded_step:
            return
        self._recorded_step = step
        loss = outputs.get("loss") if isinstance(outputs, Mapping) else outputs
        logits = outputs.get("logits") if isinstance(outputs, Mapping) else None
        inputs = labels = None
        if isinstance(batch, (tuple, list)) and batch and isinstance(batch[0], torch.Tensor):
            inputs = batch[0]
            labels = batch[1] if len(batch) > 1 and isinstance(batch[1], torch.Tensor) else None
        elif isinstance(batch, torch.Tensor):
            inputs = batch
        self.recorder.step(step, loss=loss, inputs=inputs, labels=labels, logits=logits)

    def on_validation_end(self, trainer, pl_module):
        if self.recorder is None or trainer.sanity_checking or self._recorded_step < 0:
            return
        metrics = {}
        for key, value in trainer.callback_metrics.items():
            name = key.replace("/", "_")
            if name.startswith("val") and isinstance(value, (torch.Tensor, int, float)):
                metrics[name if name.startswith("val_") else "val_" + name[3:].lstrip("_")] = value
        if metrics:
            self.recorder.log(self._recorded_step, **metrics)

    def on_train_end(self, trainer, pl_module):
        if self.recorder is not None:
            self.recorder.finish()
            self.recorder = None

    def on_exception(self, trainer, pl_module, exception):
        if self.recorder is not None:
            self.recorder.crashed()
            self.recorder = None
