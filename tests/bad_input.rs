//! Hostile and broken inputs: a clear error or a degraded analysis with a
//! warning, never a panic or a hang. Each case states its expected outcome.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn run_dir(metrics: &[u8]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("run.json"), r#"{"format": "postmortem-run/1", "status": "finished"}"#).unwrap();
    std::fs::write(dir.path().join("metrics.jsonl"), metrics).unwrap();
    dir
}

fn analyze(dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_postmortem")).args(["analyze", dir.to_str().unwrap(), "--format", "json", "--fail-on", "never"]).output().unwrap()
}

fn ok(out: &Output) -> serde_json::Value {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    serde_json::from_slice(&out.stdout).unwrap()
}

fn error(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
}

fn rows(value: &serde_json::Value) -> u64 {
    value["run"]["steps"]["rows"].as_u64().unwrap()
}

#[test]
fn metrics_files_that_are_broken_but_readable() {
    // (content, rows expected, a warning expected on stderr)
    let cases: Vec<(Vec<u8>, u64, Option<&str>)> = vec![
        (b"".to_vec(), 0, None),
        (b"{\"step\":0,\"loss\":1}".to_vec(), 1, None),
        (b"{\"step\":0,\"loss\":1}\n{\"step\":1,\"lo".to_vec(), 1, Some("cut short")),
        (b"{\"step\":0,\"loss\":1}\n\0\0\0\0\0\0".to_vec(), 1, Some("NUL bytes")),
        (b"\xEF\xBB\xBF{\"step\":0,\"loss\":1}\r\n{\"step\":1,\"loss\":2}\r\n".to_vec(), 2, None),
        (b"{\"step\":0,\"loss\":NaN}\n{\"step\":1,\"loss\":\"nan\"}\n{\"step\":2,\"loss\":\"NA\"}\n{\"step\":3,\"loss\":Infinity}\n".to_vec(), 4, None),
        (b"{\"step\":0,\"a\":1}\n{\"step\":1,\"a\":1.5}\n{\"step\":2,\"a\":\"x\"}\n".to_vec(), 3, Some("not numbers")),
        (b"{\"step\":0,\"loss\":1,\"loss\":2}\n".to_vec(), 1, None),
        (
            b"{\"step\":5,\"loss\":1}\n{\"step\":3,\"loss\":1}\n{\"step\":-1,\"loss\":1}\n{\"loss\":1}\n{\"step\":18446744073709551615,\"loss\":1}\n"
                .to_vec(),
            2,
            Some("goes back"),
        ),
        (b"{\"step\":0,\"loss\":1}\n[1,2]\n{\"step\":1,\"loss\":1}\n".to_vec(), 2, Some("metrics.jsonl:2: 1 line(s) could not be read")),
    ];
    for (i, (content, expected_rows, warning)) in cases.into_iter().enumerate() {
        let dir = run_dir(&content);
        let out = analyze(dir.path());
        let value = ok(&out);
        assert_eq!(rows(&value), expected_rows, "case {i}");
        if let Some(w) = warning {
            assert!(String::from_utf8_lossy(&out.stderr).contains(w), "case {i}: no {w:?} in {}", String::from_utf8_lossy(&out.stderr));
        }
    }
}

#[test]
fn invalid_utf8_and_huge_lines() {
    let out = analyze(run_dir(b"{\"step\":0,\"loss\":1}\n{\"step\":1,\"k\xff\":1}\n{\"step\":2}\n").path());
    assert_eq!(rows(&ok(&out)), 2);
    warned(&out, "metrics.jsonl:2: 1 line(s) could not be read and were skipped (lines 2); the first: not valid UTF-8");
    // One line with 100,000 keys: the first 4,096 names are kept, and said so.
    let mut big = String::from("{\"step\":0,\"loss\":1");
    for k in 0..100_000 {
        big.push_str(&format!(",\"k{k}\":{k}"));
    }
    big.push_str("}\n");
    for step in 1..6000 {
        big.push_str(&format!("{{\"step\":{step},\"loss\":1}}\n"));
    }
    let out = analyze(run_dir(big.as_bytes()).path());
    let value = ok(&out);
    assert_eq!(rows(&value), 6000);
    assert_eq!(value["run"]["metrics"].as_array().unwrap().len(), 4096);
    assert!(String::from_utf8_lossy(&out.stderr).contains("more than 4096 metric names"));
    // One 100 MB line (a text value): read, its value ignored and said so.
    let mut huge = Vec::with_capacity(101 << 20);
    huge.extend_from_slice(b"{\"step\":0,\"loss\":2,\"note\":\"");
    huge.resize(huge.len() + (100 << 20), b'x');
    huge.extend_from_slice(b"\"}\n{\"step\":1,\"loss\":1}\n");
    let out = analyze(run_dir(&huge).path());
    assert_eq!(rows(&ok(&out)), 2);
    assert!(String::from_utf8_lossy(&out.stderr).contains("\"note\" that are not numbers"));
    drop(huge);
    // A name that first appears after thousands of lines is kept.
    let mut late = String::new();
    for step in 0..6000 {
        late.push_str(&format!("{{\"step\":{step},\"loss\":1}}\n"));
    }
    late.push_str("{\"step\":6000,\"late\":2}\n");
    let value = ok(&analyze(run_dir(late.as_bytes()).path()));
    let found = value["run"]["metrics"].as_array().unwrap().iter().find(|m| m["name"] == "late").unwrap();
    assert_eq!(found["count"], 1);
}

#[test]
fn run_json_that_is_wrong() {
    // Each costs the metadata or one field of it, with a warning; the metrics are analyzed.
    let cases: [(&str, &str); 5] = [
        ("", "run.json: could not be read, so the analysis goes on without its run metadata: invalid JSON"),
        ("{\"status\": \"finished\"}", "\"format\" is missing; read as postmortem-run/1"),
        ("{\"format\": \"postmortem-run/1\", \"status\": 3}", "field \"status\" ignored: invalid type: integer `3`, expected a string"),
        ("{\"format\": \"postmortem-run/1\", \"model\": {\"layers\": \"fc1\"}}", "field \"model.layers\" ignored"),
        ("{\"format\": \"postmortem-run/1\", \"model\": {\"layers\": [{\"name\": \"a\"}, {\"type\": 1}]}}", "field \"model.layers[1]\" ignored"),
    ];
    for (content, needle) in cases {
        let dir = run_dir(b"{\"step\":0}\n");
        std::fs::write(dir.path().join("run.json"), content).unwrap();
        let out = analyze(dir.path());
        assert_eq!(rows(&ok(&out)), 1, "{content}");
        warned(&out, needle);
    }
    // A layer list with one bad entry keeps the others.
    let dir = run_dir(b"{\"step\":0}\n");
    std::fs::write(dir.path().join("run.json"), cases[4].0).unwrap();
    let run = postmortem::Run::load(dir.path()).unwrap();
    assert_eq!(run.meta.model.unwrap().layers.len(), 1);
    let deep = format!("{{\"format\": \"postmortem-run/1\", \"x\": {}{}}}", "[".repeat(10_000), "]".repeat(10_000));
    std::fs::write(dir.path().join("run.json"), deep).unwrap();
    warned(&analyze(dir.path()), "recursion limit");
    // Another version of the format may mean other things by its fields: refused.
    std::fs::write(dir.path().join("run.json"), "{\"format\": \"postmortem-run/2\"}").unwrap();
    error(&analyze(dir.path()), "postmortem-run/2");
}

fn warned(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(needle), "{needle:?} not in {stderr}");
}

fn checkpoint(header: &str, data: &[u8], declared_len: Option<u64>) -> tempfile::TempDir {
    let dir = run_dir(b"{\"step\":0}\n");
    std::fs::create_dir(dir.path().join("checkpoints")).unwrap();
    let mut bytes = declared_len.unwrap_or(header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header.as_bytes());
    bytes.extend(data);
    std::fs::write(dir.path().join("checkpoints/step-00000000.safetensors"), bytes).unwrap();
    dir
}

#[test]
fn hostile_safetensors() {
    let w = r#""w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}"#;
    // Each broken checkpoint is left out with a warning; the metrics are analyzed.
    let left_out = |dir: tempfile::TempDir, needle: &str| {
        let out = analyze(dir.path());
        assert_eq!(rows(&ok(&out)), 1);
        warned(&out, "step-00000000.safetensors: could not be read, so the analysis goes on without its checkpoint");
        warned(&out, needle);
    };
    left_out(checkpoint(&format!("{{{w}}}"), &[0; 8], Some(u64::MAX)), "header length");
    left_out(checkpoint(&format!("{{{w}}}"), &[0; 4], None), "truncated");
    left_out(checkpoint(&format!("{{{w}}}"), &[0; 12], None), "longer than its header says");
    let overlap = r#"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}"#;
    left_out(checkpoint(overlap, &[0; 12], None), "invalid header");
    let overflow = r#"{"a":{"dtype":"F32","shape":[18446744073709551615,4],"data_offsets":[0,8]}}"#;
    left_out(checkpoint(overflow, &[0; 8], None), "invalid header");
    let dtype = r#"{"a":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}}"#;
    left_out(checkpoint(dtype, &[0; 8], None), "invalid header");
    let meta = r#"{"__metadata__":{"step":3},"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#;
    left_out(checkpoint(meta, &[0; 8], None), "invalid header");
    // Odd names are data, not paths: the analysis goes on and names them.
    let names = format!(
        r#"{{"../../x":{{"dtype":"F32","shape":[2],"data_offsets":[0,8]}},"/etc/passwd":{{"dtype":"F32","shape":[2],"data_offsets":[8,16]}},"":{{"dtype":"F32","shape":[2],"data_offsets":[16,24]}},"\u202etxt.exe":{{"dtype":"F32","shape":[2],"data_offsets":[24,32]}},"{}":{{"dtype":"F32","shape":[2],"data_offsets":[32,40]}}}}"#,
        "n".repeat(10_000)
    );
    let dir = checkpoint(&names, &[0; 40], None);
    let out_dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_postmortem"))
        .args(["analyze", dir.path().to_str().unwrap(), "--out", out_dir.path().to_str().unwrap(), "--fail-on", "never"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
    // Nothing was written outside --out, and only the known file names inside it.
    let written: Vec<String> = common::files(out_dir.path()).into_iter().map(|(name, _)| name).collect();
    assert!(written.iter().all(|p| p.starts_with("plots/") || p.starts_with("report.")), "{written:?}");
}

/// Thousands of metric names each logged once over many rows: memory follows
/// the values there are, not names times rows (4,096 x 200,000 cells would be
/// 13 GB as table columns).
#[test]
fn many_names_each_logged_once() {
    let mut text = String::new();
    for step in 0..200_000u64 {
        text.push_str(&format!("{{\"step\":{step},\"loss\":1"));
        if step % 48 == 0 && step / 48 < 4095 {
            text.push_str(&format!(",\"once_{}\":{step}", step / 48));
        }
        text.push_str("}\n");
    }
    let dir = run_dir(text.as_bytes());
    let run = postmortem::Run::load(dir.path()).unwrap();
    assert_eq!(run.metrics.rows(), 200_000);
    assert_eq!(run.metrics.names().len(), 4096);
    assert_eq!(run.metrics.series("once_7").unwrap(), [(336, 336.0)]);
    assert_eq!(rows(&ok(&analyze(dir.path()))), 200_000);
}

#[test]
fn files_growing_while_they_are_read() {
    use postmortem::Run;
    const LINES: u64 = 20_000;
    let dir = run_dir(b"");
    let metrics = dir.path().join("metrics.jsonl");
    let writer = {
        let metrics = metrics.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut file = std::fs::OpenOptions::new().append(true).open(&metrics).unwrap();
            for step in 0..LINES {
                // Two writes per line: a reader can catch a line half written.
                let line = format!("{{\"step\":{step},\"loss\":{}}}\n", 1.0 / (1.0 + step as f64));
                let (a, b) = line.split_at(line.len() / 2);
                file.write_all(a.as_bytes()).unwrap();
                file.write_all(b.as_bytes()).unwrap();
                if step % 500 == 0 {
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            }
        })
    };
    let check = |run: &Run| {
        for (i, (step, value)) in run.metrics.series("loss").unwrap_or_default().iter().enumerate() {
            assert_eq!(*step, i as u64);
            assert_eq!(*value, 1.0 / (1.0 + i as f64));
        }
        run.metrics.rows()
    };
    let mut previous = 0;
    while !writer.is_finished() {
        // Every row read is a whole line, in order; a half-written last line is skipped.
        let rows = check(&Run::load(dir.path()).unwrap());
        assert!(rows >= previous, "rows went from {previous} to {rows}");
        previous = rows;
    }
    writer.join().unwrap();
    assert_eq!(check(&Run::load(dir.path()).unwrap()), LINES as usize);
}

#[test]
fn a_checkpoint_cut_short_while_it_is_streamed() {
    use postmortem::run::checkpoint::Checkpoint;
    // Opened with a valid header, then truncated, as a copy still in flight
    // leaves it between the header read and the data read.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("step-00000000.safetensors");
    let count = 3 << 20; // 12 MiB of f32: several chunks
    let header = format!(r#"{{"w":{{"dtype":"F32","shape":[{count}],"data_offsets":[0,{}]}}}}"#, 4 * count);
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend(header.as_bytes());
    bytes.resize(bytes.len() + 4 * count, 0);
    std::fs::write(&path, &bytes).unwrap();
    let checkpoint = Checkpoint::open(&path).unwrap();
    let entry = checkpoint.tensor("w").unwrap().clone();
    std::fs::OpenOptions::new().write(true).open(&path).unwrap().set_len(bytes.len() as u64 / 2).unwrap();
    let error = checkpoint.stats(&entry).unwrap_err().to_string();
    assert!(error.contains("step-00000000.safetensors") && error.contains("changed while being read"), "{error}");
    let error = checkpoint.values(&entry).unwrap_err().to_string();
    assert!(error.contains("changed while being read"), "{error}");
}
