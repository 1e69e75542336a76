//! Speed and memory of postmortem beside the Python way, measured in one run.
//!
//! `cargo bench --bench speed` generates seeded inputs in a temporary folder,
//! times the release `postmortem` binary on them and, where `python3` can
//! import numpy, safetensors and polars, the equivalent Python script on the
//! same input, and prints both side by side with their ratio. Peak memory is
//! the child's maximum resident set size from `/usr/bin/time -v`.
//!
//! `POSTMORTEM_BENCH_SCALE` (default 1.0) scales every input: 1.0 is the
//! sizes of the speed targets (a 1 GiB checkpoint, a 1,000,000-step metrics
//! file with 23 keys, an archive of 1,000 fixture runs); 0.1 gives a quick
//! run. Last, the fixture trainer times the recorder inside a training step.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

struct Measure {
    seconds: f64,
    peak_mib: Option<f64>,
    ok: bool,
}

/// Runs a command under `/usr/bin/time -v` when present, for its peak memory.
fn measure(program: &str, args: &[&str]) -> Measure {
    let gnu_time = Path::new("/usr/bin/time").exists();
    let mut command = if gnu_time {
        let mut c = Command::new("/usr/bin/time");
        c.arg("-v").arg(program);
        c
    } else {
        Command::new(program)
    };
    command.args(args);
    let start = Instant::now();
    let output = command.output();
    let seconds = start.elapsed().as_secs_f64();
    let Ok(output) = output else { return Measure { seconds, peak_mib: None, ok: false } };
    let stderr = String::from_utf8_lossy(&output.stderr);
    let peak_mib = stderr
        .lines()
        .find_map(|l| l.trim().strip_prefix("Maximum resident set size (kbytes):"))
        .and_then(|kb| kb.trim().parse::<f64>().ok())
        .map(|kb| kb / 1024.0);
    // analyze exits 1 when it finds problems; only 2 and signals are failures.
    let ok = matches!(output.status.code(), Some(0 | 1));
    if !ok {
        eprintln!("{program} failed: {}", stderr.lines().rev().take(5).collect::<Vec<_>>().join(" | "));
    }
    Measure { seconds, peak_mib, ok }
}

struct Lcg(u64);

impl Lcg {
    fn next_f32(&mut self) -> f32 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

/// How the values of a benchmark checkpoint are drawn.
#[derive(Clone, Copy, PartialEq)]
enum Values {
    /// Uniform in [-0.05, 0.05]: no row repeats, no rule can stop early.
    Random,
    /// What training leaves: rows of different scales, a low-rank part shared
    /// by all rows, heavier tails and 2% exact zeros (pruned or dead).
    Trained,
}

/// A safetensors file of the named tensors in one dtype.
fn write_checkpoint(path: &Path, tensors: &[(String, Vec<usize>)], dtype: &str, values: Values) {
    let width = if dtype == "F32" { 4 } else { 2 };
    let mut header = String::from("{");
    let mut offset = 0;
    for (i, (name, shape)) in tensors.iter().enumerate() {
        let bytes = shape.iter().product::<usize>() * width;
        if i > 0 {
            header.push(',');
        }
        header.push_str(&format!("\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape:?},\"data_offsets\":[{offset},{}]}}", offset + bytes));
        offset += bytes;
    }
    header.push('}');
    while header.len() % 8 != 0 {
        header.push(' ');
    }
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    file.write_all(&(header.len() as u64).to_le_bytes()).unwrap();
    file.write_all(header.as_bytes()).unwrap();
    let mut rng = Lcg(7);
    let mut buf = Vec::with_capacity(1 << 20);
    for (_, shape) in tensors {
        let rows = shape[0];
        let row_len = shape[1..].iter().product::<usize>();
        let shared: Vec<f32> = (0..row_len.min(1 << 16)).map(|_| rng.next_f32()).collect();
        for r in 0..rows {
            let (scale, pull) = (0.5 + (r % 7) as f32 / 6.0, rng.next_f32() * 0.01);
            for c in 0..row_len {
                let v = match values {
                    Values::Random => rng.next_f32() * 0.05,
                    Values::Trained => {
                        let g = (rng.next_f32() + rng.next_f32() + rng.next_f32()) * 0.02 * scale;
                        if rng.next_f32().abs() < 0.02 {
                            0.0
                        } else {
                            g * g.abs() * 40.0 + pull * shared[c % shared.len()]
                        }
                    }
                };
                match dtype {
                    "F32" => buf.extend_from_slice(&v.to_le_bytes()),
                    "F16" => buf.extend_from_slice(&half::f16::from_f32(v).to_le_bytes()),
                    _ => buf.extend_from_slice(&half::bf16::from_f32(v).to_le_bytes()),
                }
                if buf.len() >= 1 << 20 {
                    file.write_all(&buf).unwrap();
                    buf.clear();
                }
            }
        }
    }
    file.write_all(&buf).unwrap();
    // On disk before anything is timed: write-back would compete with the reader.
    file.into_inner().unwrap().sync_all().unwrap();
}

/// Tensors of a checkpoint: names and shapes.
type Tensors = Vec<(String, Vec<usize>)>;

/// `count` tensors `layer{i}.weight` of one shape.
fn layers(count: usize, shape: &[usize]) -> Tensors {
    (0..count).map(|i| (format!("layer{i}.weight"), shape.to_vec())).collect()
}

/// The checkpoints of the matrix: each shape where a rule could behave
/// differently, at `scale` times its size. Elements, not bytes, are fixed, so
/// half floats are half the bytes.
fn checkpoint_shapes(scale: f64) -> Vec<(&'static str, Tensors, Values)> {
    let n = |count: usize| ((count as f64 * scale).round() as usize).max(1);
    vec![
        ("square 2048x2048 x16", layers(n(16), &[2048, 2048]), Values::Random),
        ("tall 16384x1024 x4", layers(n(4), &[16384, 1024]), Values::Random),
        ("wide 1024x16384 x4", layers(n(4), &[1024, 16384]), Values::Random),
        ("conv 256x256x3x3 x64", layers(n(64), &[256, 256, 3, 3]), Values::Random),
        ("embedding 50000x768", vec![("embed.weight".to_string(), vec![n(50_000), 768])], Values::Random),
        ("10,000 small 64x64", layers(n(10_000), &[64, 64]), Values::Random),
        ("trained-looking 2048x2048 x16", layers(n(16), &[2048, 2048]), Values::Trained),
    ]
}

/// The rules that read checkpoints, from `postmortem rules --format json`.
fn checkpoint_rules(bin: &str) -> Vec<String> {
    let out = Command::new(bin).args(["rules", "--format", "json"]).output().unwrap();
    let rules: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    rules
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["needs"].as_array().is_some_and(|n| n.iter().any(|x| x == "checkpoints")))
        .map(|r| r["rule"].as_str().unwrap().to_string())
        .collect()
}

/// Times `analyze` on a checkpoint with all rules and with each checkpoint
/// rule alone; prints the all-rules row beside the Python way and the
/// slowest single rule by name. Returns the per-rule times.
fn bench_checkpoint(bin: &str, path: &Path, label: &str, rules: &[String], python: bool) -> Vec<(String, Measure)> {
    let analyze = |extra: &[&str]| {
        let mut args = vec!["analyze", path.to_str().unwrap(), "--format", "json", "--fail-on", "never"];
        args.extend_from_slice(extra);
        measure(bin, &args)
    };
    // One untimed pass, so that every timed reader finds the file cached.
    analyze(&[]);
    let ours = analyze(&[]);
    let dtype_is_bf16 = label.contains("BF16");
    let theirs = (python && !dtype_is_bf16).then(|| measure("python3", &["-c", PY_STATS, path.to_str().unwrap()]));
    row(label, &ours, theirs.as_ref());
    let per_rule: Vec<(String, Measure)> = rules.iter().map(|r| (r.clone(), analyze(&["--select", r]))).collect();
    if let Some((rule, slowest)) = per_rule.iter().max_by(|a, b| a.1.seconds.total_cmp(&b.1.seconds)) {
        let peak = per_rule.iter().filter_map(|(_, m)| m.peak_mib).fold(0.0, f64::max);
        println!(
            "{:<44} {:>22} {:>22}",
            format!("  slowest rule alone: {rule}"),
            format!("{:.2} s", slowest.seconds),
            format!("peak of any rule {peak:.0} MiB")
        );
    }
    per_rule
}

/// A run whose metrics.jsonl has `steps` lines of 23 numeric keys.
fn write_run(dir: &Path, steps: usize) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(
        dir.join("run.json"),
        r#"{"format": "postmortem-run/1", "name": "bench", "status": "finished", "task": {"type": "classification", "num_classes": 10, "loss": "cross_entropy"}}"#,
    )
    .unwrap();
    let mut file = std::io::BufWriter::new(std::fs::File::create(dir.join("metrics.jsonl")).unwrap());
    let mut rng = Lcg(11);
    for step in 0..steps {
        let loss = 2.3 / (1.0 + step as f64 / 10_000.0) + rng.next_f32().abs() as f64 * 0.05;
        write!(file, "{{\"step\":{step},\"loss\":{loss},\"lr\":0.001,\"grad_norm\":{}", 1.0 + rng.next_f32().abs() as f64).unwrap();
        for k in 0..20 {
            write!(file, ",\"custom_{k}\":{}", rng.next_f32() as f64).unwrap();
        }
        writeln!(file, "}}").unwrap();
    }
    file.into_inner().unwrap().sync_all().unwrap();
}

/// The metrics of a native run written again as a Hugging Face
/// `trainer_state.json` (indented as Trainer writes it) and as a Lightning
/// `metrics.csv`, every value in each.
fn write_imports(metrics: &Path, dir: &Path) -> Vec<(&'static str, PathBuf)> {
    let hf = dir.join("hf/trainer_state.json");
    let csv = dir.join("lightning/metrics.csv");
    std::fs::create_dir_all(hf.parent().unwrap()).unwrap();
    std::fs::create_dir_all(csv.parent().unwrap()).unwrap();
    let text = std::fs::read_to_string(metrics).unwrap();
    let mut state = std::io::BufWriter::new(std::fs::File::create(&hf).unwrap());
    let mut table = std::io::BufWriter::new(std::fs::File::create(&csv).unwrap());
    write!(state, "{{\n  \"global_step\": 0,\n  \"log_history\": [").unwrap();
    for (i, line) in text.lines().enumerate() {
        let entry: serde_json::Map<String, serde_json::Value> = serde_json::from_str(line).unwrap();
        if i == 0 {
            let names: Vec<&str> = entry.keys().map(|k| if k == "lr" { "learning_rate" } else { k.as_str() }).collect();
            writeln!(table, "{}", names.join(",")).unwrap();
        }
        write!(state, "{}\n    {{", if i == 0 { "" } else { "," }).unwrap();
        for (j, (key, value)) in entry.iter().enumerate() {
            let key = if key == "lr" { "learning_rate" } else { key.as_str() };
            write!(state, "{}\n      \"{key}\": {value}", if j == 0 { "" } else { "," }).unwrap();
        }
        write!(state, "\n    }}").unwrap();
        let cells: Vec<String> = entry.values().map(|v| v.to_string()).collect();
        writeln!(table, "{}", cells.join(",")).unwrap();
    }
    writeln!(state, "\n  ],\n  \"max_steps\": 0\n}}").unwrap();
    state.into_inner().unwrap().sync_all().unwrap();
    table.into_inner().unwrap().sync_all().unwrap();
    vec![("trainer_state.json", hf), ("Lightning metrics.csv", csv)]
}

/// A TensorBoard directory of about `bytes` bytes as training writes one:
/// the loss and learning rate every step, and histograms (64 buckets) of 20
/// layers' weights and gradients every 10 steps.
fn write_tensorboard(dir: &Path, bytes: u64) {
    use postmortem::import::tensorboard::{frame, Event, HistogramProto, Summary, SummaryValue};
    use prost::Message;
    std::fs::create_dir_all(dir).unwrap();
    let mut file = std::io::BufWriter::new(std::fs::File::create(dir.join("events.out.tfevents.1.host")).unwrap());
    let mut rng = Lcg(5);
    let scalar = |tag: &str, value: f64| SummaryValue { tag: tag.into(), simple_value: Some(value as f32), ..Default::default() };
    let (mut written, mut step) = (0u64, 0i64);
    while written < bytes {
        let mut values = vec![scalar("train/loss", 2.3 / (1.0 + step as f64 / 1000.0)), scalar("train/lr", 1e-3)];
        if step % 10 == 0 {
            for layer in 0..20 {
                for (tag, scale) in [("weights", 0.05), ("gradients", 1e-4)] {
                    let counts: Vec<f64> = (0..64).map(|_| (rng.next_f32().abs() * 100.0).floor() as f64).collect();
                    let limits: Vec<f64> = (0..64).map(|i| scale * (i as f64 - 31.5) / 32.0).collect();
                    let histo = HistogramProto {
                        min: -scale,
                        max: scale,
                        num: counts.iter().sum(),
                        sum: 0.0,
                        sum_squares: scale * scale * counts.iter().sum::<f64>() / 3.0,
                        bucket_limit: limits,
                        bucket: counts,
                    };
                    values.push(SummaryValue { tag: format!("{tag}/fc{layer}.weight"), histo: Some(histo), ..Default::default() });
                }
            }
        }
        let event = Event { wall_time: step as f64, step, summary: Some(Summary { value: values }) };
        let record = frame(&event.encode_to_vec());
        written += record.len() as u64;
        file.write_all(&record).unwrap();
        step += 1;
    }
    file.into_inner().unwrap().sync_all().unwrap();
}

const PY_TENSORBOARD: &str = r#"
import sys
from tensorboard.backend.event_processing import event_accumulator as ea
acc = ea.EventAccumulator(sys.argv[1], size_guidance={ea.SCALARS: 0, ea.HISTOGRAMS: 0})
acc.Reload()
print(sum(len(acc.Scalars(t)) for t in acc.Tags()["scalars"]) + sum(len(acc.Histograms(t)) for t in acc.Tags()["histograms"]))
"#;

const PY_STATS: &str = r#"
import sys, numpy as np
from safetensors.numpy import load_file
for path in sys.argv[1:]:
    for name, t in load_file(path).items():
        x = t.ravel()
        fin = np.isfinite(x)
        f = x if fin.all() else x[fin]
        (x.size, f.mean(dtype=np.float64), f.std(dtype=np.float64), f.min(), f.max(),
         np.abs(f).mean(dtype=np.float64), np.sqrt(np.square(f, dtype=np.float64).sum()),
         np.count_nonzero(x == 0) / x.size, x.size - np.count_nonzero(fin))
"#;

const PY_METRICS: &str = r#"
import sys, polars as pl
df = pl.read_ndjson(sys.argv[1])
print(df.height)
"#;

/// Whether `python3` imports these modules (`"numpy, polars"`).
fn python_imports(modules: &str) -> bool {
    Command::new("python3").args(["-c", &format!("import {modules}")]).output().is_ok_and(|o| o.status.success())
}

fn row(label: &str, ours: &Measure, theirs: Option<&Measure>) {
    let mem = |m: &Measure| m.peak_mib.map_or("?".into(), |p| format!("{p:.0} MiB"));
    let fmt = |m: &Measure| if m.ok { format!("{:.2} s, {}", m.seconds, mem(m)) } else { "failed".into() };
    match theirs {
        Some(t) => println!("{label:<44} {:>22} {:>22} {:>8.2}x", fmt(ours), fmt(t), t.seconds / ours.seconds),
        None => println!("{label:<44} {:>22} {:>22} {:>9}", fmt(ours), "-", "-"),
    }
}

fn main() {
    let scale: f64 = std::env::var("POSTMORTEM_BENCH_SCALE").ok().and_then(|s| s.parse().ok()).unwrap_or(1.0);
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let status = Command::new(env!("CARGO")).args(["build", "--release", "--bin", "postmortem"]).current_dir(root).status().unwrap();
    assert!(status.success(), "release build failed");
    let bin = target.join("release/postmortem");
    let bin = bin.to_str().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let python = python_imports("numpy, safetensors, polars");
    if !python {
        println!("python3 with numpy, safetensors and polars is not importable: Python figures are left out");
    }
    println!("scale {scale}; {:<36} {:>22} {:>22} {:>9}", "work", "postmortem", "Python way", "speed-up");
    let rules = checkpoint_rules(bin);
    // The headline: 1 GiB of f32 in 64 random 2048 x 2048 matrices, in each dtype.
    let headline = layers(((scale * 64.0).round() as usize).max(1), &[2048, 2048]);
    for dtype in ["F32", "F16", "BF16"] {
        let path = scratch.path().join(format!("model-{dtype}.safetensors"));
        write_checkpoint(&path, &headline, dtype, Values::Random);
        let mb = path.metadata().unwrap().len() as f64 / (1 << 20) as f64;
        let per_rule = bench_checkpoint(bin, &path, &format!("{dtype} checkpoint, 2048x2048 x64 ({mb:.0} MiB)"), &rules, python);
        if dtype == "F32" {
            for (rule, m) in &per_rule {
                println!("{:<44} {:>22}", format!("    --select {rule}"), format!("{:.2} s, {:.0} MiB", m.seconds, m.peak_mib.unwrap_or(f64::NAN)));
            }
        }
        std::fs::remove_file(&path).ok();
    }
    // The matrix: shapes where a rule might not stop early, each dtype.
    for (shape, tensors, values) in checkpoint_shapes(scale) {
        for dtype in ["F32", "F16", "BF16"] {
            let path = scratch.path().join(format!("matrix-{dtype}.safetensors"));
            write_checkpoint(&path, &tensors, dtype, values);
            let mb = path.metadata().unwrap().len() as f64 / (1 << 20) as f64;
            bench_checkpoint(bin, &path, &format!("{dtype} {shape} ({mb:.0} MiB)"), &rules, python);
            std::fs::remove_file(&path).ok();
        }
    }
    // A run that saved its weights four times (steps 0 to 3000), read one
    // checkpoint after another as a sharded model is.
    let run = scratch.path().join("run-with-checkpoints");
    write_run(&run, 4000);
    std::fs::create_dir_all(run.join("checkpoints")).unwrap();
    let quarter = layers(((scale * 16.0).round() as usize).max(1), &[2048, 2048]);
    let mut files = Vec::new();
    for step in [0, 1000, 2000, 3000] {
        let path = run.join(format!("checkpoints/step-{step:08}.safetensors"));
        write_checkpoint(&path, &quarter, "F32", Values::Trained);
        files.push(path.to_str().unwrap().to_string());
    }
    measure(bin, &["analyze", run.to_str().unwrap(), "--format", "json", "--fail-on", "never"]);
    let ours = measure(bin, &["analyze", run.to_str().unwrap(), "--format", "json", "--fail-on", "never"]);
    let theirs = python.then(|| {
        let mut args = vec!["-c", PY_STATS];
        args.extend(files.iter().map(String::as_str));
        measure("python3", &args)
    });
    row("a run with 4 f32 checkpoints (4 x 256 MiB)", &ours, theirs.as_ref());
    std::fs::remove_dir_all(&run).ok();
    let steps = (scale * 1_000_000.0) as usize;
    let run = scratch.path().join("run");
    write_run(&run, steps);
    let metrics = run.join("metrics.jsonl");
    let bytes = metrics.metadata().map(|m| m.len()).unwrap_or(0) as f64 / 1e6;
    // Parsing alone, in this process: how close the reader comes to the
    // bytes per second of the fastest JSON parsers.
    let started = Instant::now();
    let mut warnings = Vec::new();
    let table = postmortem::run::metrics::load(&metrics, &mut warnings).unwrap();
    let parse = started.elapsed().as_secs_f64();
    println!(
        "{:<44} {:>22} {:>22}",
        format!("metrics.jsonl into the table ({} rows)", table.rows()),
        format!("{parse:.2} s"),
        format!("{:.0} MB/s on {} cores", bytes / parse, std::thread::available_parallelism().map_or(1, |n| n.get()))
    );
    drop(table);
    let ours = measure(bin, &["analyze", run.to_str().unwrap(), "--format", "json", "--fail-on", "never"]);
    let theirs = python.then(|| measure("python3", &["-c", PY_METRICS, metrics.to_str().unwrap()]));
    row(&format!("analyze {steps} steps ({bytes:.0} MB), all rules"), &ours, theirs.as_ref());
    // With the report, next to the Python figure it is compared with, in the
    // same state of the machine (measured after the TensorBoard rows, whose
    // Python reader takes 5 GB, it ran 0.15 s slower than by hand).
    let out = scratch.path().join("report");
    let with_report = measure(bin, &["analyze", run.to_str().unwrap(), "--out", out.to_str().unwrap(), "--fail-on", "never"]);
    row(&format!("analyze {steps} steps, all rules and plots"), &with_report, theirs.as_ref());
    // The same metrics as other tools write them: imported, against native.
    let imports = scratch.path().join("imports");
    for (label, path) in write_imports(&metrics, &imports) {
        let mb = path.metadata().map_or(0.0, |m| m.len() as f64 / 1e6);
        let imported = measure(bin, &["analyze", path.to_str().unwrap(), "--format", "json", "--fail-on", "never"]);
        let mem = |m: &Measure| m.peak_mib.map_or("?".into(), |p| format!("{p:.0} MiB"));
        println!(
            "{:<44} {:>22} {:>22} {:>8.2}x",
            format!("analyze the same as {label} ({mb:.0} MB)"),
            format!("{:.2} s, {}", imported.seconds, mem(&imported)),
            format!("native {:.2} s", ours.seconds),
            imported.seconds / ours.seconds
        );
    }
    std::fs::remove_dir_all(&imports).ok();
    // TensorBoard: 1 GB of scalars and histograms, against tensorboard's
    // EventAccumulator keeping everything (size guidance 0).
    let events = scratch.path().join("tensorboard");
    write_tensorboard(&events, (scale * 1e9) as u64);
    let mb = events.join("events.out.tfevents.1.host").metadata().map_or(0.0, |m| m.len() as f64 / 1e6);
    let events_ours = measure(bin, &["analyze", events.to_str().unwrap(), "--format", "json", "--fail-on", "never"]);
    let tensorboard_ready = python_imports("tensorboard");
    let events_theirs = tensorboard_ready.then(|| measure("python3", &["-c", PY_TENSORBOARD, events.to_str().unwrap()]));
    row(&format!("TensorBoard events, scalars + histograms ({mb:.0} MB)"), &events_ours, events_theirs.as_ref());
    std::fs::remove_dir_all(&events).ok();
    std::fs::remove_dir_all(&run).ok();

    let runs = ((scale * 1000.0) as usize).max(1);
    let archive = scratch.path().join("archive");
    write_archive(&root.join("fixtures/runs"), &archive, runs);
    let out = scratch.path().join("audit");
    let ours = measure(bin, &["audit", archive.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet", "--fail-on", "never"]);
    row(&format!("audit {runs} fixture runs (both cores)"), &ours, None);

    // The recorder inside a training step: a step the size of a small real
    // model (a 4 x 1024 MLP, batches of 512) on the CPU.
    let steps = ((scale * 100.0) as u64).max(20).to_string();
    println!("\nrecorder overhead (fixture trainer, CPU):");
    let status = Command::new(env!("CARGO"))
        .args(["run", "--release", "-q", "-p", "postmortem-trainer", "--bin", "train", "--", "overhead", "--steps", &steps])
        .args(["--presets", "healthy", "--width", "1024", "--depth", "4", "--batch-size", "512"])
        .current_dir(root)
        .status();
    if !status.is_ok_and(|s| s.success()) {
        println!("the trainer failed");
    }

    // The PyTorch recorder inside a ResNet-18 step, where python3 has torch.
    println!("\nPyTorch recorder overhead (CPU):");
    let torch_ready = python_imports("torch");
    if !torch_ready {
        println!("python3 cannot import torch: left out");
        return;
    }
    let rounds = ((scale * 4.0) as u64).max(1).to_string();
    let status = Command::new("python3").args(["benches/torch_overhead.py", "--device", "cpu", "--rounds", &rounds]).current_dir(root).status();
    if !status.is_ok_and(|s| s.success()) {
        println!("the PyTorch benchmark failed");
    }
}

/// An archive of `runs` runs, copies of the fixture runs in turn.
fn write_archive(fixtures: &Path, archive: &Path, runs: usize) {
    let mut sources: Vec<PathBuf> = std::fs::read_dir(fixtures).unwrap().flatten().map(|e| e.path()).filter(|p| p.join("run.json").is_file()).collect();
    sources.sort();
    for i in 0..runs {
        copy_tree(&sources[i % sources.len()], &archive.join(format!("run-{i:04}")));
    }
}

fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap().flatten() {
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_tree(&entry.path(), &target);
        } else if std::fs::hard_link(entry.path(), &target).is_err() {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}
