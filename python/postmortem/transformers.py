"""Records a Hugging Face ``Trainer`` run as a postmortem run, in one line:

    trainer = Trainer(..., callbacks=[PostmortemCallback()])

The run goes to ``OUTPUT_DIR/postmortem`` (``-2``, ``-3``, ... when a run is
already there, as after a resumed training); ``postmortem analyze OUTPUT_DIR``
reads it rather than ``trainer_state.json``. Everything
:class:`postmortem.torch.Recorder` records, plus what the Trainer knows: its
own gradient norm (before clipping), evaluation metrics (``eval_loss``
becomes ``val_loss``), the task from the model's config (number of labels,
problem type) and the training arguments as hyperparameters. The loss, the
inputs, the labels and the logits of each step come from the model's own
forward pass (the last micro-batch under gradient accumulation). Steps are
the Trainer's optimizer steps counted from 0. Only the main process records.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from transformers import TrainerCallback

from .torch import Policy, Recorder, free_run_dir

# Keys of the Trainer's logs kept, and their names in the format. The
# logged `loss` is an average over the logging interval: the recorder writes
# each step's own.
_LOGGED = {"grad_norm": "grad_norm", "epoch": "epoch"}
# The model inputs that are the examples, in order of preference.
_INPUT_KEYS = ("pixel_values", "input_values", "input_features", "input_ids", "inputs_embeds")


def _architecture(model, config) -> str:
    """The model's class, as `config.architectures` names it once saved."""
    return (getattr(config, "architectures", None) or [type(model).__name__])[0]


def _task(model, config) -> dict | None:
    labels = getattr(config, "num_labels", None)
    architectures = _architecture(model, config)
    if "Classification" not in architectures or not labels:
        return None
    problem = getattr(config, "problem_type", None)
    loss = {"multi_label_classification": "bce", "regression": "mse"}.get(problem, "cross_entropy")
    return {"type": "regression" if problem == "regression" else "classification", "num_classes": int(labels), "loss": loss}


def _model_meta(model, config) -> dict:
    meta = {"architecture": _architecture(model, config)}
    origin = getattr(config, "_name_or_path", "")
    if origin:
        meta["pretrained"] = origin
    return meta


class PostmortemCallback(TrainerCallback):
    """``run_dir`` instead of ``OUTPUT_DIR/postmortem``; ``policy`` and any
    other keyword go to :class:`postmortem.torch.Recorder`."""

    def __init__(self, run_dir: str | os.PathLike | None = None, policy: Policy | None = None, **recorder_args):
        self.run_dir = run_dir
        self.policy = policy
        self.recorder_args = recorder_args
        self.recorder: Recorder | None = None
        self._hooks = []
        self._batch: dict = {}

    def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
        if not state.is_world_process_zero or model is None:
            return
        config = getattr(model, "config", None)
        recorder_args = dict(self.recorder_args)
        task = recorder_args.pop("task", None) or _task(model, config)
        hyper = {
            "learning_rate": args.learning_rate,
            "batch_size": args.per_device_train_batch_size * max(1, args.gradient_accumulation_steps) * max(1, args.world_size),
            "weight_decay": args.weight_decay,
            "epochs": args.num_train_epochs,
            "grad_clip": args.max_grad_norm,
            "optimizer": str(getattr(args.optim, "value", args.optim)),
            "warmup_steps": args.warmup_steps,
            **recorder_args.pop("hyperparameters", {}),
        }
        run_dir = free_run_dir(Path(self.run_dir or os.path.join(args.output_dir, "postmortem")))
        # Accelerate wraps the optimizer; the step hooks go on the real one.
        inner = getattr(optimizer, "optimizer", optimizer)
        self.recorder = Recorder(
            run_dir, model=model, optimizer=inner, task=task, name=recorder_args.pop("name", None) or args.run_name,
            hyperparameters=hyper, model_meta={**_model_meta(model, config), **recorder_args.pop("model_meta", {})},
            policy=self.policy, rank=0, grad_norm=False, **recorder_args,
        )
        self._hooks = [model.register_forward_pre_hook(self._inputs, with_kwargs=True), model.register_forward_hook(self._outputs)]

    def _inputs(self, module, args, kwargs):
        if not (module.training and torch.is_grad_enabled()):
            return
        examples = next((kwargs[k] for k in _INPUT_KEYS if isinstance(kwargs.get(k), torch.Tensor)), None)
        if examples is None and args and isinstance(args[0], torch.Tensor):
            examples = args[0]
        self._batch = {"inputs": examples, "labels": kwargs.get("labels")}

    def _outputs(self, module, args, output):
        if not (module.training and torch.is_grad_enabled()):
            return
        get = output.get if hasattr(output, "get") else lambda key, default=None: getattr(output, key, default)
        self._batch["loss"] = get("loss", None)
        self._batch["logits"] = get("logits", None)

    def on_optimizer_step(self, args, state, control, **kwargs):
        if self.recorder is None:
            return
        batch, self._batch = self._batch, {}
        self.recorder.step(state.global_step, **batch)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if self.recorder is None or not logs or "train_runtime" in logs or state.global_step == 0:
            return
        metrics = {}
        for key, value in logs.items():
            if key in _LOGGED:
                metrics[_LOGGED[key]] = value
            elif key.startswith("eval_") and isinstance(value, (int, float)) and not key.endswith(("_runtime", "_per_second")):
                metrics["val_" + key[len("eval_"):]] = value
        if metrics:
            # Logged after the step that made global_step what it is.
            self.recorder.log(state.global_step - 1, **metrics)

    def on_train_end(self, args, state, control, **kwargs):
        if self.recorder is None:
            return
        for hook in self._hooks:
            hook.remove()
        self.recorder.finish()
        self.recorder = None
