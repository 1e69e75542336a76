//! Seeded, bounded mutation of real runs: one to five fields of `run.json`,
//! `metrics.jsonl` and `tensors.jsonl` changed at a time (a value of another
//! type, a hostile number, a field dropped, a line cut or given a bad byte).
//! A broken field or line costs only itself: such a run is analyzed with a
//! warning, never refused whole, and nothing panics.
//!
//! `MUTATED_RUNS=5000` measures more runs; `POSTMORTEM_BIN` measures another
//! build of the binary (the share it refuses is printed either way).

mod common;

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;

/// SplitMix64: a fixed, seeded sequence, so that a failure can be replayed.
struct Seeded(u64);

impl Seeded {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Values a writer with a bug, or a hostile file, puts where a field was.
fn hostile_value(rng: &mut Seeded) -> Option<Value> {
    Some(match rng.below(12) {
        0 => Value::String("NaN".into()),
        1 => Value::String("fast".into()),
        2 => serde_json::json!(-1),
        3 => serde_json::json!(1e308),
        4 => serde_json::json!(u64::MAX),
        5 => serde_json::json!(1_000_000_000_000_000u64),
        6 => Value::Null,
        7 => Value::Bool(true),
        8 => serde_json::json!([1, "two", null]),
        9 => serde_json::json!({"nested": {"deeper": [1.5]}}),
        10 => serde_json::json!(0.5),
        _ => return None,
    })
}

/// Paths to every value in a JSON tree (object keys and array indices).
fn paths(value: &Value, prefix: &mut Vec<Value>, out: &mut Vec<Vec<Value>>) {
    let children: Vec<(Value, &Value)> = match value {
        Value::Object(map) => map.iter().map(|(k, v)| (Value::String(k.clone()), v)).collect(),
        Value::Array(items) => items.iter().enumerate().map(|(i, v)| (Value::from(i), v)).collect(),
        _ => return,
    };
    for (key, child) in children {
        prefix.push(key);
        out.push(prefix.clone());
        paths(child, prefix, out);
        prefix.pop();
    }
}

/// Replaces (or, for `None`, removes) the value at `path`.
fn set(value: &mut Value, path: &[Value], new: Option<Value>) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut at = value;
    for key in parents {
        at = match (key, at) {
            (Value::String(k), Value::Object(map)) => map.get_mut(k).unwrap(),
            (Value::Number(i), Value::Array(items)) => &mut items[i.as_u64().unwrap() as usize],
            _ => return,
        };
    }
    match (last, at, new) {
        (Value::String(k), Value::Object(map), Some(v)) => {
            map.insert(k.clone(), v);
        }
        (Value::String(k), Value::Object(map), None) => {
            map.remove(k);
        }
        (Value::Number(i), Value::Array(items), Some(v)) => items[i.as_u64().unwrap() as usize] = v,
        (Value::Number(i), Value::Array(items), None) => {
            items.remove(i.as_u64().unwrap() as usize);
        }
        _ => {}
    }
}

/// One field of a JSON text changed, or the text damaged as bytes.
fn mutate_json(text: &[u8], rng: &mut Seeded) -> Vec<u8> {
    if rng.below(8) == 0 {
        // Damage as bytes: cut short, or a byte that is not UTF-8.
        let mut bytes = text.to_vec();
        let at = rng.below(bytes.len());
        if rng.below(2) == 0 {
            bytes.truncate(at);
        } else {
            bytes.insert(at, 0xFF);
        }
        return bytes;
    }
    let Ok(mut value) = postmortem::jsonl::parse_value(text) else {
        return text.to_vec();
    };
    let mut all = Vec::new();
    paths(&value, &mut Vec::new(), &mut all);
    if all.is_empty() {
        return b"[]".to_vec();
    }
    let path = all[rng.below(all.len())].clone();
    set(&mut value, &path, hostile_value(rng));
    serde_json::to_vec(&value).unwrap()
}

/// Applies one mutation to a random line of a JSON-lines file, or to run.json.
fn mutate_file(path: &Path, rng: &mut Seeded) {
    let Ok(bytes) = std::fs::read(path) else {
        return;
    };
    if path.extension().is_some_and(|e| e == "json") {
        std::fs::write(path, mutate_json(&bytes, rng)).unwrap();
        return;
    }
    let mut lines: Vec<Vec<u8>> = bytes.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    let at = rng.below(lines.len().saturating_sub(1));
    lines[at] = mutate_json(&lines[at], rng);
    std::fs::write(path, lines.join(&b'\n')).unwrap();
}

fn copy_run(from: &Path, to: &Path) {
    for (relative, bytes) in common::files(from) {
        let target = to.join(&relative);
        std::fs::create_dir_all(target.parent().unwrap()).unwrap();
        std::fs::write(target, bytes).unwrap();
    }
}

#[test]
fn mutated_fields_cost_only_themselves() {
    let count: usize = std::env::var("MUTATED_RUNS").ok().and_then(|n| n.parse().ok()).unwrap_or(240);
    let binary = std::env::var("POSTMORTEM_BIN").map(PathBuf::from).unwrap_or_else(|_| env!("CARGO_BIN_EXE_postmortem").into());
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/runs");
    let sources = ["circles-linear", "zero-init", "crashed", "lr-too-high", "dead-relu", "imbalanced"];
    let mut rng = Seeded(20261202);
    let mut refused = Vec::new();
    let mut crashed: Vec<String> = Vec::new();
    for i in 0..count {
        let dir = tempfile::tempdir().unwrap();
        let source = fixtures.join(sources[i % sources.len()]);
        copy_run(&source, dir.path());
        let mutations = 1 + rng.below(5);
        for _ in 0..mutations {
            let file = ["run.json", "metrics.jsonl", "tensors.jsonl"][rng.below(3)];
            mutate_file(&dir.path().join(file), &mut rng);
        }
        let out = Command::new(&binary).args(["analyze", dir.path().to_str().unwrap(), "--format", "json", "--fail-on", "never"]).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        if stderr.contains("panicked") || out.status.code().is_none() {
            let first: Vec<&str> = stderr.lines().take(2).collect();
            crashed.push(format!("run {i} ({source:?}): {}", first.join(" | ")));
            continue;
        }
        // The one refusal allowed: a `format` of another version (a mutation
        // can write one), whose fields may mean something else.
        if out.status.code() != Some(0) && !stderr.contains("this version of postmortem reads") {
            let run_json = std::fs::read_to_string(dir.path().join("run.json")).unwrap_or_default();
            refused.push(format!("run {i}: {} | run.json: {run_json:.200}", stderr.trim()));
        }
    }
    let share = |n: usize| 100.0 * n as f64 / count as f64;
    println!(
        "mutated runs: {count}, refused whole: {} ({:.1}%), crashed: {} ({:.1}%)",
        refused.len(),
        share(refused.len()),
        crashed.len(),
        share(crashed.len())
    );
    for line in refused.iter().chain(&crashed).take(20) {
        println!("  {line}");
    }
    assert!(crashed.is_empty(), "{} of {count} mutated runs crashed:\n{}", crashed.len(), crashed.join("\n"));
    assert!(refused.is_empty(), "{} of {count} mutated runs were refused whole:\n{}", refused.len(), refused.join("\n"));
}
