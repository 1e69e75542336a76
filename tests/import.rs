//! The importers on files the real writers made (fixtures/import/, written
//! by generate.py with transformers' Trainer, Lightning, Keras, MLflow and a
//! nanoGPT-style loop), and on hand-made edge cases: each becomes the run the
//! format says, a converted run analyzes as its source does, and an audit
//! over a mixed tree lists every run once.

mod common;

use common::copy_dir;
use postmortem::analysis::analyze;
use postmortem::config::Config;
use postmortem::import::{self, detect, ImportOptions, SourceFormat};
use postmortem::Run;
use std::path::{Path, PathBuf};

fn postmortem(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_postmortem")).args(args).output().unwrap()
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/import").join(name)
}

fn load(path: &Path) -> Run {
    import::load(path, &ImportOptions::default()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn warnings(run: &Run) -> String {
    run.warnings.iter().map(|w| w.to_string()).collect::<Vec<_>>().join("\n")
}

#[test]
fn hugging_face_trainer_output_folder() {
    let dir = fixture("hf-lr1e-3");
    assert_eq!(detect(&dir).unwrap().0, SourceFormat::HfTrainer);
    let run = load(&dir);
    // Logged every 2 steps, evaluated every 10.
    assert_eq!(run.metrics.series("loss").unwrap().len(), 20);
    assert_eq!(run.metrics.series("val_loss").unwrap().iter().map(|p| p.0).collect::<Vec<_>>(), [10, 20, 30, 40]);
    for name in ["grad_norm", "lr", "epoch", "val_accuracy"] {
        assert!(run.metrics.series(name).is_some(), "no {name} in {:?}", run.metrics.names());
    }
    assert!(run.metrics.series("learning_rate").is_none() && run.metrics.series("eval_loss").is_none());
    // Each checkpoint-N folder is a checkpoint at step N, its weights read from safetensors.
    assert_eq!(run.checkpoints.iter().map(|c| c.step).collect::<Vec<_>>(), [Some(20), Some(40)]);
    assert!(run.checkpoints[0].tensor("classifier.weight").is_some());
    // config.json: a 3-class classifier built from a config, not pretrained.
    let task = run.meta.task.as_ref().unwrap();
    assert_eq!((task.num_classes, task.loss.as_deref()), (Some(3), Some("cross_entropy")));
    assert_eq!(run.meta.model.as_ref().unwrap().architecture.as_deref(), Some("BertForSequenceClassification"));
    assert!(run.is_complete());
    // The pickles Trainer writes are named and never opened.
    let text = warnings(&run);
    assert!(text.contains("not read: optimizer.pt, rng_state.pth, scheduler.pt, training_args.bin (pickle files"), "{text}");
    // One checkpoint folder alone, and its trainer_state.json alone, read the same history.
    let one = load(&dir.join("checkpoint-40"));
    assert_eq!(one.metrics.series("loss"), run.metrics.series("loss"));
    assert_eq!(one.checkpoints.len(), 1);
    let state = load(&dir.join("checkpoint-20/trainer_state.json"));
    assert_eq!(state.metrics.series("loss").unwrap().len(), 10);
}

/// Weights sharded over two files read as one checkpoint, the same tensors
/// with the same statistics as the single file they were split from.
#[test]
fn sharded_weights_are_one_checkpoint() {
    let single = fixture("hf-lr1e-3/checkpoint-40");
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("checkpoint-40");
    std::fs::create_dir(&folder).unwrap();
    for file in ["trainer_state.json", "config.json"] {
        std::fs::copy(single.join(file), folder.join(file)).unwrap();
    }
    let bytes = std::fs::read(single.join("model.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<String> = tensors.names().into_iter().map(str::to_string).collect();
    names.sort();
    let mut weight_map = serde_json::Map::new();
    for (k, part) in names.chunks(names.len() / 2 + 1).enumerate() {
        let file = format!("model-0000{}-of-00002.safetensors", k + 1);
        let views: Vec<(String, safetensors::tensor::TensorView<'_>)> = part.iter().map(|n| (n.clone(), tensors.tensor(n).unwrap())).collect();
        safetensors::serialize_to_file(views, None, &folder.join(&file)).unwrap();
        for name in part {
            weight_map.insert(name.clone(), file.clone().into());
        }
    }
    std::fs::write(folder.join("model.safetensors.index.json"), serde_json::json!({"metadata": {}, "weight_map": weight_map}).to_string()).unwrap();
    let (sharded, whole) = (load(&folder), load(&single));
    let (a, b) = (&sharded.checkpoints[0], &whole.checkpoints[0]);
    assert_eq!(a.step, Some(40));
    assert_eq!(a.tensors.iter().map(|t| &t.name).collect::<Vec<_>>(), b.tensors.iter().map(|t| &t.name).collect::<Vec<_>>());
    for name in ["bert.embeddings.word_embeddings.weight", "classifier.weight"] {
        assert_eq!(a.stats(a.tensor(name).unwrap()).unwrap(), b.stats(b.tensor(name).unwrap()).unwrap(), "{name}");
    }
    // A shard named outside the folder is refused, not followed.
    std::fs::write(folder.join("model.safetensors.index.json"), r#"{"weight_map": {"w": "../elsewhere.safetensors"}}"#).unwrap();
    let run = load(&folder);
    assert!(run.checkpoints.is_empty() && warnings(&run).contains("not a file name beside the index"), "{}", warnings(&run));
}

#[test]
fn a_learning_rate_far_too_high_is_found_in_the_imported_run() {
    let run = load(&fixture("hf-lr5"));
    let analysis = analyze(&run, &Config::default());
    let rules: Vec<&str> = analysis.findings.iter().map(|f| f.rule).collect();
    assert!(rules.contains(&"loss-not-decreasing"), "{rules:?}");
}

#[test]
fn lightning_csv_logger_version_folder() {
    let dir = fixture("lightning/mlp/version_0");
    assert_eq!(detect(&fixture("lightning")).unwrap(), (SourceFormat::LightningCsv, dir.clone()));
    let run = load(&dir);
    assert_eq!(run.name(), "mlp/version_0");
    // train_loss_step is the loss; the epoch means stay under their own name.
    let loss = run.metrics.series("loss").unwrap();
    assert!(loss.len() >= 20, "{loss:?}");
    assert_eq!(run.metrics.series("val_loss").unwrap().len(), 6);
    for name in ["val_accuracy", "train_loss_epoch", "epoch"] {
        assert!(run.metrics.series(name).is_some(), "no {name} in {:?}", run.metrics.names());
    }
    assert_eq!(run.meta.hyperparameters.as_ref().unwrap().learning_rate, Some(0.05));
}

#[test]
fn keras_csv_logger_with_two_appended_fits() {
    let file = fixture("keras/training.log");
    assert_eq!(detect(&file).unwrap().0, SourceFormat::KerasCsv);
    let last = load(&file);
    assert!(warnings(&last).contains("holds 2 fits"), "{}", warnings(&last));
    let first = import::load(&file, &ImportOptions { fit: Some(1), ..Default::default() }).unwrap();
    assert_eq!(first.metrics.steps(), (0..8).collect::<Vec<u64>>());
    // The second fit ran at a learning rate 300 times higher: its losses differ.
    assert_ne!(first.metrics.series("loss"), last.metrics.series("loss"));
    assert!(first.metrics.series("accuracy").is_some() && first.metrics.series("val_accuracy").is_some());
    let error = import::load(&file, &ImportOptions { fit: Some(3), ..Default::default() }).unwrap_err().to_string();
    assert!(error.contains("--fit 3: the file holds 2 fit(s)"), "{error}");
    // The History of the first fit, written by pandas without an epoch column, is the same run.
    let history = load(&fixture("keras/history.csv"));
    assert_eq!(history.metrics.series("val_loss"), first.metrics.series("val_loss"));
}

#[test]
fn keras_progress_output_is_read_as_a_text_log() {
    let file = fixture("keras/stdout.txt");
    assert_eq!(detect(&file).unwrap().0, SourceFormat::TextLog);
    let first = import::load(&file, &ImportOptions { fit: Some(1), ..Default::default() }).unwrap();
    let csv = import::load(&fixture("keras/training.log"), &ImportOptions { fit: Some(1), ..Default::default() }).unwrap();
    // Printed with 4 decimals, logged in full: the same epochs, nearly the same values.
    let (printed, logged) = (first.metrics.series("val_loss").unwrap(), csv.metrics.series("val_loss").unwrap());
    assert_eq!(printed.len(), logged.len());
    for (p, l) in printed.iter().zip(&logged) {
        assert_eq!(p.0, l.0);
        assert!((p.1 - l.1).abs() < 1e-3, "{p:?} {l:?}");
    }
}

#[test]
fn mlflow_file_store_run() {
    let root = fixture("mlflow");
    let (format, run_dir) = detect(&root).unwrap();
    assert_eq!(format, SourceFormat::Mlflow);
    let run = load(&run_dir);
    assert_eq!(run.name(), "mlp-adam");
    assert!(run.is_complete());
    assert_eq!(run.metrics.series("loss").unwrap().len(), 30);
    assert!(run.metrics.series("accuracy").is_some());
    let hyper = run.meta.hyperparameters.as_ref().unwrap();
    assert_eq!((hyper.learning_rate, hyper.batch_size, hyper.optimizer.as_deref()), (Some(0.01), Some(256), Some("Adam")));
}

#[test]
fn mlflow_sqlite_database() {
    let database = fixture("mlflow-sqlite/mlflow.db");
    assert_eq!(detect(&database).unwrap().0, SourceFormat::Mlflow);
    // Two runs: the database is an archive, and the error names both.
    let error = import::load(&database, &ImportOptions::default()).unwrap_err().to_string();
    assert!(error.contains("holds several runs") && error.contains("(adam-1e-2)") && error.contains("(adam-1e-7)"), "{error}");
    let runs = import::mlflow::database_runs(&database).unwrap();
    let run_path = |name: &str| database.join(&runs.iter().find(|(_, n)| n == name).unwrap().0);
    let fast = load(&run_path("adam-1e-2"));
    assert_eq!(fast.name(), "adam-1e-2");
    assert!(fast.is_complete());
    assert_eq!(fast.metrics.series("loss").unwrap().len(), 30);
    // MLflow keeps NaN as a flag beside a value of 0.
    assert!(fast.metrics.series("val_loss").unwrap()[0].1.is_nan());
    assert_eq!(fast.meta.hyperparameters.as_ref().unwrap().learning_rate, Some(0.01));
    // The run at a learning rate of 1e-7 does not learn, and is told so.
    let slow = load(&run_path("adam-1e-7"));
    let rules: Vec<&str> = analyze(&slow, &Config::default()).findings.iter().map(|f| f.rule).collect();
    assert!(rules.contains(&"loss-not-decreasing"), "{rules:?}");
    assert!(import::load(&database.join("no-such-run"), &ImportOptions::default()).unwrap_err().to_string().contains("no run"));
}

/// Event files of PyTorch's SummaryWriter: histograms of weights and
/// gradients drive the gradient and weight rules; a restarted writer follows
/// the resume rule; broken files cost only what they hold.
#[test]
fn tensorboard_event_files() {
    let dir = fixture("tensorboard/sigmoid-12");
    assert_eq!(detect(&dir).unwrap().0, SourceFormat::Tensorboard);
    let run = load(&dir);
    // Steps 0-29 from the first writer, 20-39 again from the second: 40 steps, the later ones kept.
    assert_eq!(run.metrics.series("loss").unwrap().len(), 40);
    assert!(warnings(&run).contains("a resumed run"), "{}", warnings(&run));
    // 13 weight matrices, weights and gradients, every 5 steps, each step once.
    assert_eq!(run.tensors.len(), 13 * 2 * 8);
    let grad = run.tensors.iter().find(|t| t.name == "0.weight" && t.kind == postmortem_recorder::TensorKind::Grad).unwrap();
    assert!(grad.stats.l2 < 1e-6 && grad.stats.count == 128, "{:?}", grad.stats);
    let rules: Vec<&str> = analyze(&run, &Config::default()).findings.iter().map(|f| f.rule).collect();
    assert!(rules.contains(&"vanishing-gradients"), "{rules:?}");
    // The hparams plugin's session start: the run's hyperparameters.
    let hyper = run.meta.hyperparameters.as_ref().unwrap();
    assert_eq!((hyper.learning_rate, hyper.optimizer.as_deref()), (Some(0.1), Some("sgd")));
    assert_eq!(hyper.extra["layers"], 12.0);
    // Keras' layout: train/ and validation/ are one run, epoch_loss is loss and val_loss.
    let keras = load(&fixture("tensorboard/keras-style"));
    assert_eq!(keras.metrics.names(), ["accuracy", "loss", "val_accuracy", "val_loss"]);
    // A record with a wrong checksum is skipped; a file cut mid-record ends there; an empty file is nothing.
    let broken = tempfile::tempdir().unwrap();
    let source = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).min().unwrap();
    let mut bytes = std::fs::read(&source).unwrap();
    let first_len = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let second = 12 + first_len + 4;
    bytes[second + 12] ^= 0xff;
    std::fs::write(broken.path().join("events.out.tfevents.1.host"), &bytes).unwrap();
    std::fs::write(broken.path().join("events.out.tfevents.2.host"), &bytes[..bytes.len() - 7]).unwrap();
    std::fs::write(broken.path().join("events.out.tfevents.3.host"), b"").unwrap();
    let run = load(broken.path());
    let text = warnings(&run);
    // Both files hold the record with the flipped byte.
    assert!(text.contains("2 record(s) with a wrong checksum") && text.contains("cut short at byte"), "{text}");
    assert!(!run.metrics.series("loss").unwrap().is_empty());
    let empty = tempfile::tempdir().unwrap();
    std::fs::write(empty.path().join("events.out.tfevents.3.host"), b"").unwrap();
    assert!(import::load(empty.path(), &ImportOptions::default()).unwrap_err().to_string().contains("nothing could be analyzed"));
}

/// A W&B run folder written by `wandb` offline, whose name ends with `suffix`.
fn wandb_run(suffix: &str) -> PathBuf {
    let runs = fixture("wandb/wandb");
    let found = std::fs::read_dir(&runs).unwrap().flatten().map(|e| e.path()).find(|p| !p.is_symlink() && p.to_string_lossy().ends_with(suffix));
    found.unwrap_or_else(|| panic!("no run folder ending {suffix} in {}", runs.display()))
}

/// W&B's offline log: `wandb.watch` histograms drive the gradient rules, the
/// config is the run's hyperparameters, the exit record its status; broken
/// logs cost only what they hold.
#[test]
fn wandb_run_folders() {
    let dir = wandb_run("-sigmoid12");
    assert_eq!(detect(&dir).unwrap().0, SourceFormat::Wandb);
    let run = load(&dir);
    assert_eq!(run.meta.name.as_deref(), Some("sigmoid-12"));
    assert_eq!(run.meta.status, Some(postmortem_recorder::RunStatus::Finished));
    let hyper = run.meta.hyperparameters.as_ref().unwrap();
    assert_eq!((hyper.learning_rate, hyper.optimizer.as_deref(), hyper.batch_size), (Some(0.1), Some("sgd"), Some(128)));
    // `train/loss` is the loss; W&B's own `_step`, `_runtime` and `_timestamp` are not metrics.
    assert_eq!(run.metrics.names(), ["loss", "lr"]);
    assert_eq!(run.metrics.series("loss").unwrap().len(), 40);
    // 13 layers of weight and bias, values and gradients, logged twice by wandb.watch.
    assert_eq!(run.tensors.len(), 13 * 2 * 2 * 2);
    let grad = run.tensors.iter().find(|t| t.name == "0.weight" && t.kind == postmortem_recorder::TensorKind::Grad).unwrap();
    assert!(grad.stats.count == 128 && grad.stats.abs_mean < 1e-9, "{:?}", grad.stats);
    let rules: Vec<&str> = analyze(&run, &Config::default()).findings.iter().map(|f| f.rule).collect();
    assert!(rules.contains(&"vanishing-gradients"), "{rules:?}");
    // The summary keeps plain values, not the histograms W&B copies into it.
    let summary = run.meta.extra["wandb_summary"].as_object().unwrap();
    assert!(summary.keys().all(|k| !k.starts_with("gradients/") && !k.starts_with("parameters/")), "{:?}", summary.keys().collect::<Vec<_>>());
    assert!(summary.contains_key("train/loss") && summary.contains_key("best_loss"), "{:?}", summary.keys().collect::<Vec<_>>());
    // The healthy run stays quiet; its summary is kept as run facts.
    let healthy = load(&wandb_run("-healthy1"));
    assert_eq!(healthy.metrics.names(), ["accuracy", "loss", "val_loss"]);
    assert!(healthy.meta.extra["wandb_summary"]["loss"].as_f64().unwrap() < 0.1);
    let findings = analyze(&healthy, &Config::default()).findings;
    assert!(findings.iter().all(|f| f.severity < postmortem::rules::Severity::Warning), "{findings:?}");
    // `latest-run` is the same run, read through its link.
    assert_eq!(load(&fixture("wandb/wandb/latest-run")).metrics.series("loss"), healthy.metrics.series("loss"));

    // A flipped byte costs its block; a log cut mid-record ends there; an empty log is nothing.
    let log = std::fs::read_dir(&dir).unwrap().flatten().map(|e| e.path()).find(|p| p.extension().is_some_and(|e| e == "wandb")).unwrap();
    let bytes = std::fs::read(&log).unwrap();
    let broken = tempfile::tempdir().unwrap();
    let write = |bytes: &[u8]| {
        std::fs::write(broken.path().join("run-x.wandb"), bytes).unwrap();
        import::load(broken.path(), &ImportOptions::default())
    };
    let mut flipped = bytes.clone();
    flipped[3 * 32 * 1024 + 40] ^= 0xff;
    let run = write(&flipped).unwrap();
    assert!(warnings(&run).contains("with a wrong checksum, length or content were skipped"), "{}", warnings(&run));
    assert!(run.metrics.series("loss").unwrap().len() >= 30);
    let run = write(&bytes[..bytes.len() / 2]).unwrap();
    assert!(warnings(&run).contains("cut short at byte"), "{}", warnings(&run));
    // Still running as far as the log knows: no exit record.
    assert_eq!(run.meta.status, Some(postmortem_recorder::RunStatus::Running));
    assert!(write(b"").unwrap_err().to_string().contains("nothing could be analyzed"));

    // A log without config or summary records: files/config.yaml and
    // files/wandb-summary.json (bare NaN included) stand in.
    let records: Vec<import::wandb::Record> = (0..3)
        .map(|step| import::wandb::Record {
            history: Some(import::wandb::HistoryRecord {
                item: vec![
                    import::wandb::HistoryItem { key: "loss".into(), value_json: format!("{}", 1.0 - step as f64 * 0.1), ..Default::default() },
                    import::wandb::HistoryItem { key: "_step".into(), value_json: step.to_string(), ..Default::default() },
                    // An older SDK: a histogram as one JSON object.
                    import::wandb::HistoryItem {
                        key: "gradients/fc.weight".into(),
                        value_json: r#"{"_type": "histogram", "values": [2, 2], "bins": [-0.5, 0.0, 0.5]}"#.into(),
                        ..Default::default()
                    },
                ],
                step: None,
            }),
            ..Default::default()
        })
        .collect();
    let plain = tempfile::tempdir().unwrap();
    std::fs::create_dir(plain.path().join("files")).unwrap();
    std::fs::write(plain.path().join("run-y.wandb"), import::wandb::write_log(&records)).unwrap();
    std::fs::write(plain.path().join("files/config.yaml"), "_wandb:\n  value: {}\nlr:\n  desc: null\n  value: 0.003\nepochs:\n  value: 5\n").unwrap();
    std::fs::write(plain.path().join("files/wandb-summary.json"), r#"{"loss": 0.8, "best": NaN, "_step": 2}"#).unwrap();
    let metadata = r#"{"program": "train.py", "host": "gpu-node-7", "gpu": "NVIDIA H100 80GB HBM3", "gpu_count": 8, "root": "/home/someone/project"}"#;
    std::fs::write(plain.path().join("files/wandb-metadata.json"), metadata).unwrap();
    let run = load(plain.path());
    assert_eq!(run.metrics.series("loss").unwrap(), [(0, 1.0), (1, 0.9), (2, 0.8)]);
    let hyper = run.meta.hyperparameters.as_ref().unwrap();
    assert_eq!((hyper.learning_rate, hyper.epochs), (Some(0.003), Some(5)));
    assert_eq!(run.meta.extra["wandb_summary"]["loss"], 0.8);
    assert!(run.meta.extra["wandb_summary"]["best"].as_str().is_some_and(|v| v.eq_ignore_ascii_case("nan")), "{:?}", run.meta.extra);
    // What ran on what is kept; the host and paths are not.
    assert_eq!(run.meta.framework.as_ref().unwrap().device.as_deref(), Some("NVIDIA H100 80GB HBM3"));
    assert_eq!(run.meta.extra["wandb_metadata"], serde_json::json!({"program": "train.py", "gpu": "NVIDIA H100 80GB HBM3", "gpu_count": 8}));
    assert_eq!(run.tensors.len(), 3);
    assert!((run.tensors[0].stats.abs_mean - 0.25).abs() < 1e-12);
}

#[test]
fn nanogpt_style_log_after_a_printed_configuration() {
    let run = load(&fixture("text/nanogpt.log"));
    assert_eq!(run.metrics.series("loss").unwrap().len(), 121);
    assert_eq!(run.metrics.series("val_loss").unwrap().iter().map(|p| p.0).collect::<Vec<_>>(), [0, 40, 80, 120]);
    // "time 2.31ms" has a unit: a measurement of the machine, not kept.
    assert_eq!(run.metrics.names(), ["loss", "val_loss"]);
}

/// Hand-made cases: what the writers above do not produce.
#[test]
fn edge_cases_of_the_formats() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        path
    };
    // A resumed history: the step goes back, and the later entries win.
    let state = write(
        "resumed/trainer_state.json",
        r#"{"global_step": 30, "max_steps": 30, "log_history": [
            {"step": 10, "loss": 2.0, "grad_norm": NaN}, {"step": 20, "loss": 1.8}, {"step": 30, "loss": 1.7},
            {"step": 20, "loss": 1.5}, {"step": 30, "loss": 1.2, "eval_loss": 1.3, "eval_f1": 0.5},
            {"step": 30, "train_runtime": 12.5, "train_loss": 1.6, "total_flos": 1e12}, [1, 2], {"loss": 3.0}]}"#,
    );
    let run = load(&state);
    assert_eq!(run.metrics.series("loss").unwrap(), [(10, 2.0), (20, 1.5), (30, 1.2)]);
    assert!(run.metrics.series("grad_norm").unwrap()[0].1.is_nan());
    assert_eq!(run.metrics.series("val_f1").unwrap(), [(30, 0.5)]);
    assert_eq!(run.meta.extra["trainer_summary"]["train_loss"], 1.6);
    let text = warnings(&run);
    // The array entry and the entry without a step are skipped like bad lines of metrics.jsonl.
    assert!(text.contains("a resumed run") && text.contains("expected a JSON object, found an array"), "{text}");
    assert!(text.contains("1 line(s) without a non-negative integer \"step\""), "{text}");
    // A Lightning CSV: sparse rows, an optimizer-named learning rate column.
    let csv = write("lightning/metrics.csv", "epoch,lr-AdamW,step,train_loss,val_loss\n,0.001,9,,\n0,,9,0.9,\n0,,9,,0.95\n1,,19,0.7,\n1,,19,,tensor(0.8)\n2,,\"29\",\"0.5\",\n");
    let run = load(&csv);
    assert_eq!(run.metrics.series("lr").unwrap(), [(9, 0.001)]);
    assert_eq!(run.metrics.series("loss").unwrap(), [(9, 0.9), (19, 0.7), (29, 0.5)]);
    assert_eq!(run.metrics.series("val_loss").unwrap(), [(9, 0.95)]);
    assert!(warnings(&run).contains("values of \"val_loss\" that are not numbers were ignored"), "{}", warnings(&run));
    // Keras on Windows: \r\r\n endings, `acc` naming, no trailing newline.
    let keras = write("keras.log", "epoch,acc,loss,val_acc,val_loss\r\r\n0,0.5,1.0,0.4,1.1\r\r\n1,0.6,0.8,0.5,0.9\r\r\n2,0.7,0.6,0.6,0.7");
    let run = load(&keras);
    assert_eq!(run.metrics.series("accuracy").unwrap(), [(0, 0.5), (1, 0.6), (2, 0.7)]);
    assert!(run.warnings.is_empty(), "{}", warnings(&run));
    // llm.c: s:N trl/tel lines.
    let log = write("main.log", "s:0 tel:11.01\ns:0 trl:11.00 lr:0.000001 norm:15.4\ns:1 trl:10.9 lr:0.000002 norm:15.2\n");
    let run = load(&log);
    assert_eq!(run.metrics.names(), ["grad_norm", "loss", "lr", "val_loss"]);
    // A pattern for a shape no preset reads; a name mapped by [metrics].
    let custom = write("custom.out", "noise\nE 1 | total 0.9 | heldout 1.0\nE 2 | total 0.7 | heldout 0.8\n");
    let options = ImportOptions {
        pattern: Some(r"^E (?P<step>\d+) \| total (?P<total>[0-9.]+) \| heldout (?P<val_loss>[0-9.]+)".into()),
        rename: [("total".to_string(), "loss".to_string())].into(),
        ..Default::default()
    };
    let run = import::load(&custom, &options).unwrap();
    assert_eq!(run.metrics.series("loss").unwrap(), [(1, 0.9), (2, 0.7)]);
    assert!(import::load(&custom, &ImportOptions { pattern: Some("(?P<loss>x)".into()), ..Default::default() }).is_err());
    // A folder of several runs is an archive: the error names them.
    let error = import::load(dir.path(), &ImportOptions::default()).unwrap_err().to_string();
    assert!(error.contains("holds several runs") && error.contains("postmortem audit"), "{error}");
}

/// A run recorded by the Python package's callbacks beside the tool's own
/// log (`OUTPUT_DIR/postmortem/`) is the run read: it holds more.
#[test]
fn a_recorded_run_beside_a_log_is_read_instead() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("out");
    copy_dir(&fixture("hf-lr1e-3"), &output);
    assert_eq!(detect(&output).unwrap(), (SourceFormat::HfTrainer, output.clone()));
    let healthy = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/runs/healthy");
    copy_dir(&healthy, &output.join("postmortem"));
    copy_dir(&healthy, &output.join("postmortem-2"));
    assert_eq!(detect(&output).unwrap(), (SourceFormat::Native, output.join("postmortem-2")));
    let found = import::discover(dir.path(), 8).runs;
    assert_eq!(found, [(output.join("postmortem-2"), SourceFormat::Native)]);
}

/// `convert` writes the native format; the converted run analyzes as its source does.
#[test]
fn converted_runs_analyze_as_their_sources() {
    let sources = [
        "hf-lr1e-3",
        "hf-lr5",
        "lightning",
        "keras/training.log",
        "keras/history.csv",
        "keras/stdout.txt",
        "mlflow",
        "text/nanogpt.log",
        "tensorboard/sigmoid-12",
        "tensorboard/keras-style",
        "wandb/wandb/latest-run",
    ];
    let sources = sources.into_iter().map(fixture).chain([wandb_run("-sigmoid12")]);
    for source in sources {
        let out = tempfile::tempdir().unwrap();
        let converted = out.path().join("run");
        let result = postmortem(&["convert", source.to_str().unwrap(), "--out", converted.to_str().unwrap()]);
        assert_eq!(result.status.code(), Some(0), "{}: {}", source.display(), String::from_utf8_lossy(&result.stderr));
        assert_eq!(detect(&converted).unwrap().0, SourceFormat::Native);
        let (original, copy) = (load(&source), Run::load(&converted).unwrap());
        let findings = |run: &Run| {
            analyze(run, &Config::default()).findings.iter().map(|f| (f.rule, f.severity, f.message.clone())).collect::<Vec<_>>()
        };
        assert_eq!(findings(&copy), findings(&original), "{}", source.display());
        for name in original.metrics.names() {
            assert_eq!(copy.metrics.series(&name), original.metrics.series(&name), "{}: {name}", source.display());
        }
        assert_eq!(copy.checkpoints.len(), original.checkpoints.len());
        assert_eq!(copy.tensors.len(), original.tensors.len(), "{}", source.display());
    }
}

/// An audit over a mixed tree lists every run once: one Hugging Face output
/// folder is one run however many checkpoints it has.
#[test]
fn audit_lists_every_run_of_a_mixed_tree_once() {
    let (found, errors) = postmortem::audit::discover(&fixture(""));
    assert!(errors.is_empty(), "{errors:?}");
    let listed: Vec<(&str, SourceFormat)> = found.iter().map(|f| (f.relative.as_str(), f.format)).collect();
    let mlflow_runs: Vec<&str> = listed.iter().filter(|(_, f)| *f == SourceFormat::Mlflow).map(|(r, _)| *r).collect();
    let [mlflow_run, database_a, database_b] = mlflow_runs[..] else { panic!("{mlflow_runs:?}") };
    assert!(mlflow_run.starts_with("mlflow/mlruns/"), "{mlflow_run}");
    // Each run of a database is a run of its own.
    assert!(database_a.starts_with("mlflow-sqlite/mlflow.db/") && database_b.starts_with("mlflow-sqlite/mlflow.db/"));
    // Each W&B run folder once: `latest-run` is a link to one of them, not a run of its own.
    let wandb_runs: Vec<String> = ["-sigmoid12", "-healthy1"].map(|s| format!("wandb/wandb/{}", wandb_run(s).file_name().unwrap().to_string_lossy())).into();
    let mut wandb_runs: Vec<&str> = wandb_runs.iter().map(String::as_str).collect();
    wandb_runs.sort();
    assert_eq!(
        listed,
        [
            ("hf-lr1e-3", SourceFormat::HfTrainer),
            ("hf-lr5", SourceFormat::HfTrainer),
            ("keras/history.csv", SourceFormat::KerasCsv),
            ("keras/stdout.txt", SourceFormat::TextLog),
            ("keras/training.log", SourceFormat::KerasCsv),
            ("lightning/mlp/version_0", SourceFormat::LightningCsv),
            (mlflow_run, SourceFormat::Mlflow),
            (database_a, SourceFormat::Mlflow),
            (database_b, SourceFormat::Mlflow),
            ("tensorboard/keras-style", SourceFormat::Tensorboard),
            ("tensorboard/sigmoid-12", SourceFormat::Tensorboard),
            ("text/nanogpt.log", SourceFormat::TextLog),
            (wandb_runs[0], SourceFormat::Wandb),
            (wandb_runs[1], SourceFormat::Wandb),
        ]
    );
    let out = tempfile::tempdir().unwrap();
    let result = postmortem(&["audit", fixture("").to_str().unwrap(), "--out", out.path().to_str().unwrap(), "--quiet", "--fail-on", "never"]);
    assert_eq!(result.status.code(), Some(0), "{}", String::from_utf8_lossy(&result.stderr));
    let rows: serde_json::Value = serde_json::from_slice(&std::fs::read(out.path().join("summary.json")).unwrap()).unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 14);
    assert!(rows.as_array().unwrap().iter().all(|r| r["error"].is_null()), "{rows}");
}
