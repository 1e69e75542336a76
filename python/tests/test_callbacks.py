"""The Trainer and Lightning callbacks on tiny models, a few steps each:
one line in the training script gives a run the analyzer reads."""

import json
import shutil

import pytest
import torch

from conftest import analyze, classification_data, fired, lines


def test_hugging_face_trainer(tmp_path, postmortem_bin):
    transformers = pytest.importorskip("transformers")
    from postmortem.transformers import PostmortemCallback

    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=64, hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=32, max_position_embeddings=16, num_labels=3)
    model = transformers.BertForSequenceClassification(config)
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(0, 64, (128, 12), generator=generator)
    examples = [{"input_ids": ids[i], "labels": ids[i, 0] % 3} for i in range(len(ids))]
    args = transformers.TrainingArguments(output_dir=str(tmp_path / "out"), max_steps=12, per_device_train_batch_size=16, learning_rate=1e-3,
                                          logging_steps=2, eval_strategy="steps", eval_steps=5, save_steps=10, report_to=[], use_cpu=True, seed=0)
    trainer = transformers.Trainer(model=model, args=args, train_dataset=examples, eval_dataset=examples[:32], callbacks=[PostmortemCallback()])
    trainer.train()

    run = tmp_path / "out" / "postmortem"
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "finished"
    assert meta["task"] == {"type": "classification", "num_classes": 3, "loss": "cross_entropy"}
    assert meta["model"]["architecture"] == "BertForSequenceClassification"
    assert meta["hyperparameters"]["batch_size"] == 16 and meta["hyperparameters"]["learning_rate"] == 1e-3
    metrics = lines(run / "metrics.jsonl")
    steps = sorted({m["step"] for m in metrics})
    assert steps == list(range(12))
    # The Trainer's own grad_norm (before clipping) and evaluations, at the steps they came after.
    assert [m["step"] for m in metrics if "grad_norm" in m] == [1, 3, 5, 7, 9, 11]
    # Every 5 steps, and at the last.
    assert [m["step"] for m in metrics if "val_loss" in m] == [4, 9, 11]
    assert all("loss" in m and "accuracy" in m for m in metrics if "grad_norm" not in m and "val_loss" not in m)
    tensors = lines(run / "tensors.jsonl")
    kinds = {t["kind"] for t in tensors if t["step"] == 10}
    # Token ids are no input statistics.
    assert kinds == {"weight", "grad", "update", "activation"}
    assert (run / "checkpoints" / "step-00000000.safetensors").exists()
    report = analyze(postmortem_bin, run)
    assert report["run"]["run"]["complete"] is True
    # The Trainer's checkpoints (checkpointing at its defaults) sit beside the
    # recorded run; the folder a user points at is output_dir.
    assert (tmp_path / "out" / "checkpoint-10").is_dir()
    assert analyze(postmortem_bin, tmp_path / "out")["run"]["run"]["source"] == str(run)
    # A second training in the same folder records a run of its own.
    trainer.train()
    assert json.loads((tmp_path / "out" / "postmortem-2" / "run.json").read_text())["status"] == "finished"


def test_lightning(tmp_path, postmortem_bin):
    L = pytest.importorskip("lightning")
    from postmortem.lightning import PostmortemCallback

    L.seed_everything(0)
    x, y = classification_data()

    class Net(L.LightningModule):
        def __init__(self, lr=0.05, hidden=16):
            super().__init__()
            self.save_hyperparameters()
            self.net = torch.nn.Sequential(torch.nn.Linear(8, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 3))

        def training_step(self, batch, _):
            inputs, labels = batch
            logits = self.net(inputs)
            return {"loss": torch.nn.functional.cross_entropy(logits, labels), "logits": logits}

        def validation_step(self, batch, _):
            inputs, labels = batch
            self.log("val_loss", torch.nn.functional.cross_entropy(self.net(inputs), labels))

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=self.hparams.lr)

    data = torch.utils.data.TensorDataset(x, y)
    train = torch.utils.data.DataLoader(data, batch_size=32, shuffle=True)
    val = torch.utils.data.DataLoader(data, batch_size=128)
    trainer = L.Trainer(max_epochs=3, default_root_dir=str(tmp_path), logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu", callbacks=[PostmortemCallback(task={"type": "classification", "num_classes": 3, "loss": "cross_entropy"})])
    trainer.fit(Net(), train, val)

    run = tmp_path / "postmortem"
    meta = json.loads((run / "run.json").read_text())
    assert meta["status"] == "finished" and meta["hyperparameters"]["hidden"] == 16 and meta["hyperparameters"]["learning_rate"] == 0.05
    assert [l["name"] for l in meta["model"]["layers"]] == ["net.0", "net.2"]
    metrics = lines(run / "metrics.jsonl")
    assert sorted({m["step"] for m in metrics}) == list(range(24))
    # Validation after each epoch of 8 steps, sanity check left out.
    assert [m["step"] for m in metrics if "val_loss" in m] == [7, 15, 23]
    assert any("label_counts" in m for m in metrics)
    assert {t["kind"] for t in lines(run / "tensors.jsonl")} == {"weight", "grad", "update", "activation", "input"}
    assert analyze(postmortem_bin, run)["run"]["run"]["complete"] is True


def test_lightning_failure_leaves_crashed(tmp_path):
    L = pytest.importorskip("lightning")
    from postmortem.lightning import PostmortemCallback

    class Failing(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Linear(8, 3)

        def training_step(self, batch, index):
            if index == 3:
                raise RuntimeError("out of memory, say")
            return torch.nn.functional.cross_entropy(self.net(batch[0]), batch[1])

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    x, y = classification_data(n=128)
    trainer = L.Trainer(max_epochs=1, default_root_dir=str(tmp_path), logger=False, enable_checkpointing=False, enable_progress_bar=False,
                        enable_model_summary=False, accelerator="cpu", callbacks=[PostmortemCallback()])
    with pytest.raises(RuntimeError):
        trainer.fit(Failing(), torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=16))
    run = tmp_path / "postmortem"
    assert json.loads((run / "run.json").read_text())["status"] == "crashed"
    assert [m["step"] for m in lines(run / "metrics.jsonl")] == [0, 1, 2]


def _lightning_mlp(L, bias: float):
    """A Lightning MLP whose ReLU is a function in ``forward``, the common
    style; ``bias`` is the first layer's starting bias."""

    class Mlp(L.LightningModule):
        def __init__(self):
            super().__init__()
            self.fc1 = torch.nn.Linear(8, 32)
            self.fc2 = torch.nn.Linear(32, 32)
            self.fc3 = torch.nn.Linear(32, 3)
            torch.nn.init.constant_(self.fc1.bias, bias)

        def forward(self, x):
            return self.fc3(torch.relu(self.fc2(torch.relu(self.fc1(x)))))

        def training_step(self, batch, _):
            inputs, labels = batch
            logits = self(inputs)
            loss = torch.nn.functional.cross_entropy(logits, labels)
            self.log("train_loss", loss, on_epoch=True)
            return {"loss": loss, "logits": logits}

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters(), lr=3e-3)

    return Mlp()


@pytest.mark.parametrize("bias", [0.0, -10.0], ids=["healthy", "dead-first-layer"])
def test_lightning_at_default_settings(tmp_path, postmortem_bin, bias):
    """The Trainer as most scripts make it (its default logger and
    checkpointing), the callback added, and the folders a user would name."""
    L = pytest.importorskip("lightning")
    from postmortem.lightning import PostmortemCallback

    L.seed_everything(0)
    x, y = classification_data(n=512)
    train = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(x, y), batch_size=32, shuffle=True)
    trainer = L.Trainer(max_epochs=4, default_root_dir=str(tmp_path), enable_progress_bar=False, enable_model_summary=False,
                        accelerator="cpu", callbacks=[PostmortemCallback()])
    trainer.fit(_lightning_mlp(L, bias), train)

    version = tmp_path / "lightning_logs" / "version_0"
    assert list((version / "checkpoints").glob("*.ckpt")), "the default checkpointing wrote nothing"
    recorded = version / "postmortem"
    for folder in (tmp_path, tmp_path / "lightning_logs", version):
        assert analyze(postmortem_bin, folder)["run"]["run"]["source"] == str(recorded), folder
    report = analyze(postmortem_bin, tmp_path)
    dead = [f for f in report["findings"] if f["rule"] == "dead-relus"]
    if bias < 0:
        assert len(dead) == 1 and "fc1" in dead[0]["message"], dead
    else:
        assert dead == [] and "error" not in fired(report).values(), report["findings"]
    # A recorded run that cannot be read at all costs its extras: the CSV
    # log beside it is read, with a warning.
    for name in ("metrics.jsonl", "tensors.jsonl"):
        (recorded / name).write_text("not json\n")
    shutil.rmtree(recorded / "checkpoints")
    fallback = analyze(postmortem_bin, version)
    assert fallback["run"]["run"]["source"] == str(version / "metrics.csv"), fallback["run"]
    assert any("log beside it was read instead" in w["message"] for w in fallback["warnings"]), fallback["warnings"]
