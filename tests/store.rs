//! Archives and runs in object storage, audited and analyzed by URL against a
//! real S3-compatible server on loopback (moto, started by tests/s3_server.py;
//! `.ci/run` installs it), directly and through a proxy that is slow, fails
//! requests with 500s and cuts bodies short. Built with the
//! `object-storage` feature (scripts/test and CI turn it on).
#![cfg(feature = "object-storage")]

mod common;

use common::copy_dir;
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures")
}

/// An archive of every format: native runs, a bare checkpoint, a broken
/// run, and each importer's fixture; `team-c/unreachable-run` is a run the
/// faulty proxy never serves.
fn archive() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let f = fixtures();
    common::lay_out_audit_runs(root);
    copy_dir(&f.join("runs/healthy"), &root.join("team-c/unreachable-run"));
    for name in ["hf-lr5", "lightning", "keras", "mlflow", "mlflow-sqlite", "tensorboard", "text"] {
        copy_dir(&f.join("import").join(name), &root.join("imports").join(name));
    }
    // W&B's latest-run is a symbolic link; object stores have none.
    for entry in std::fs::read_dir(f.join("import/wandb/wandb")).unwrap().flatten() {
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &root.join("imports/wandb").join(entry.file_name()));
        }
    }
    dir
}

/// The test server, stopped when dropped.
struct Server {
    child: Child,
    endpoint: String,
    faulty: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the server with `bucket=folder` uploads, or `None` where moto is
/// not installed (CI installs it and sets POSTMORTEM_REQUIRE_S3, so there
/// the test cannot skip).
fn server(buckets: &[(&str, &Path)]) -> Option<Server> {
    let python = std::env::var("POSTMORTEM_PYTHON").unwrap_or_else(|_| "python3".into());
    let has_moto = Command::new(&python).args(["-c", "import moto.server, boto3"]).stderr(Stdio::null()).status().is_ok_and(|s| s.success());
    if !has_moto {
        assert!(std::env::var_os("POSTMORTEM_REQUIRE_S3").is_none(), "POSTMORTEM_REQUIRE_S3 is set but {python} cannot import moto");
        eprintln!("skipped: {python} has no moto (pip install 'moto[server]')");
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/s3_server.py");
    let mut child = Command::new(&python)
        .arg(script)
        .args(buckets.iter().map(|(b, d)| format!("{b}={}", d.display())))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap()).read_line(&mut line).unwrap();
    let ports: Value = serde_json::from_str(&line).unwrap_or_else(|e| panic!("server said {line:?}: {e}"));
    Some(Server { endpoint: ports["endpoint"].as_str().unwrap().into(), faulty: ports["faulty"].as_str().unwrap().into(), child })
}

/// postmortem with the AWS environment pointing at `endpoint`.
fn postmortem(endpoint: &str, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_postmortem"))
        .args(args)
        .env("AWS_ENDPOINT", endpoint)
        .env("AWS_ALLOW_HTTP", "true")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .output()
        .unwrap()
}

/// The rows of an audit, with what names its location made alike: the
/// archive's own name in texts, and fingerprints (file times here, ETags there).
fn rows(out: &Path, archive: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(out.join("summary.json")).unwrap().replace(archive, "ARCHIVE");
    let mut rows: Vec<Value> = serde_json::from_str(&text).unwrap();
    for row in &mut rows {
        row["fingerprint"] = Value::Null;
    }
    rows
}

fn by_run<'a>(rows: &'a [Value], run: &str) -> &'a Value {
    rows.iter().find(|r| r["run"] == run).unwrap_or_else(|| panic!("no row for {run}"))
}

#[test]
fn archive_audited_by_url_as_if_local_faults_included() {
    let archive = archive();
    let reports = tempfile::tempdir().unwrap();
    let Some(server) = server(&[("archive", archive.path()), ("reports", reports.path())]) else { return };
    let out = tempfile::tempdir().unwrap();
    let local = out.path().join("local");
    let status = Command::new(env!("CARGO_BIN_EXE_postmortem")).args(["audit", archive.path().to_str().unwrap(), "--out", local.to_str().unwrap(), "--quiet"]).output().unwrap();
    assert_eq!(status.status.code(), Some(1), "{}", String::from_utf8_lossy(&status.stderr));
    let expected = rows(&local, &archive.path().display().to_string());
    assert!(expected.len() >= 12, "{expected:#?}");

    // Directly: the same rows as the local audit, and nothing left behind.
    let remote = out.path().join("remote");
    let run = postmortem(&server.endpoint, &["audit", "s3://archive", "--out", remote.to_str().unwrap(), "--quiet"]);
    assert_eq!(run.status.code(), Some(1), "{}", String::from_utf8_lossy(&run.stderr));
    let got = rows(&remote, "s3://archive");
    assert_eq!(got, expected);
    let left: Vec<_> = std::fs::read_dir(&remote).unwrap().flatten().map(|e| e.file_name()).filter(|n| n.to_string_lossy().starts_with(".postmortem-fetch")).collect();
    assert!(left.is_empty(), "scratch left in --out: {left:?}");
    let report = std::fs::read_to_string(remote.join("runs/team-b__broken/report.json")).unwrap_or_default();
    assert!(!report.contains(".postmortem-fetch"), "a scratch path in a report");
    let broken = by_run(&got, "team-b/broken");
    assert!(broken["error"].as_str().unwrap_or_default().starts_with("ARCHIVE/team-b/broken:"), "{broken:#}");

    // Through the faulty proxy: every run it serves comes out the same; the
    // one it never serves is named with why, and the audit finishes.
    let faulty = out.path().join("faulty");
    let run = postmortem(&server.faulty, &["audit", "s3://archive", "--out", faulty.to_str().unwrap(), "--quiet", "--jobs", "4"]);
    assert_eq!(run.status.code(), Some(1), "{}", String::from_utf8_lossy(&run.stderr));
    let got = rows(&faulty, "s3://archive");
    assert_eq!(got.len(), expected.len());
    for (row, want) in got.iter().zip(&expected) {
        if row["run"] == "team-c/unreachable-run" {
            assert_eq!(row["verdict"], "unreadable", "{row:#}");
            let error = row["error"].as_str().unwrap();
            assert!(error.contains("ARCHIVE/team-c/unreachable-run/") && error.contains("500"), "{error}");
        } else {
            assert_eq!(row, want);
        }
    }
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(stderr.contains("team-c/unreachable-run"), "{stderr}");

    // Partitions written to an --out URL and merged from there equal the
    // local audit; a second audit --changed into an --out URL reuses it.
    for share in ["1/2", "2/2"] {
        let part = format!("s3://reports/part-{}", &share[..1]);
        let run = postmortem(&server.endpoint, &["audit", "s3://archive", "--partition", &format!("hash:{share}"), "--out", &part, "--quiet"]);
        assert!(run.status.code() == Some(1) || run.status.code() == Some(0), "{}", String::from_utf8_lossy(&run.stderr));
        assert!(String::from_utf8_lossy(&run.stdout).contains(&format!("see {part}/index.html")));
    }
    let merged = out.path().join("merged");
    let run = postmortem(&server.endpoint, &["audit", "merge", "s3://reports/part-1", "s3://reports/part-2", "--out", merged.to_str().unwrap()]);
    assert_eq!(run.status.code(), Some(1), "{}", String::from_utf8_lossy(&run.stderr));
    assert_eq!(rows(&merged, "s3://archive"), expected);
    assert!(merged.join("runs/team-a__2026__dead-relu/report.html").is_file() && merged.join("report.css").is_file());
    let again = postmortem(&server.endpoint, &["audit", "s3://archive", "--partition", "hash:1/2", "--changed", "--out", "s3://reports/part-1", "--quiet"]);
    let said = String::from_utf8_lossy(&again.stdout);
    let part_runs = said.split_whitespace().nth(1).unwrap().to_string();
    assert!(said.contains(&format!("{part_runs} unchanged since the last audit")), "{said}");
}

#[test]
fn run_and_checkpoint_analyzed_by_url() {
    let archive = archive();
    let Some(server) = server(&[("archive", archive.path())]) else { return };
    let local = |path: &str| {
        let run = Command::new(env!("CARGO_BIN_EXE_postmortem")).args(["analyze", archive.path().join(path).to_str().unwrap(), "--format", "json"]).output().unwrap();
        let text = String::from_utf8(run.stdout).unwrap().replace(&archive.path().join(path).display().to_string(), "RUN");
        serde_json::from_str::<Value>(&text).unwrap()
    };
    for path in ["team-a/2026/dead-relu", "team-b/model.safetensors", "imports/hf-lr5", "imports/wandb/offline-run-20261202_041811-sigmoid12"] {
        let url = format!("s3://archive/{path}");
        let run = postmortem(&server.faulty, &["analyze", &url, "--format", "json"]);
        assert_eq!(run.status.code(), local_code(&archive.path().join(path)), "{path}: {}", String::from_utf8_lossy(&run.stderr));
        let text = String::from_utf8(run.stdout).unwrap().replace(&url, "RUN");
        let got: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"));
        assert_eq!(got, local(path), "{path}");
    }
    // A report written to an --out URL is there, under the URL's own
    // names, and no scratch path leaked into it.
    let run = postmortem(&server.endpoint, &["analyze", "s3://archive/team-a/healthy", "--out", "s3://archive/reports/healthy"]);
    assert_eq!(run.status.code(), Some(0), "{}", String::from_utf8_lossy(&run.stderr));
    let report = s3_get(&server.endpoint, "archive", "reports/healthy/report.json");
    assert!(report.contains("\"source\": \"s3://archive/team-a/healthy\"") && !report.contains(".postmortem-fetch"), "{report}");
    assert!(s3_get(&server.endpoint, "archive", "reports/healthy/report.html").contains("<html"));
    let missing = postmortem(&server.endpoint, &["analyze", "s3://archive/no-such-run"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("s3://archive/no-such-run"), "{}", String::from_utf8_lossy(&missing.stderr));
}

fn local_code(path: &Path) -> Option<i32> {
    Command::new(env!("CARGO_BIN_EXE_postmortem")).args(["analyze", path.to_str().unwrap(), "--format", "json"]).output().unwrap().status.code()
}

/// An object's text, read with boto3 (the writer's own library).
fn s3_get(endpoint: &str, bucket: &str, key: &str) -> String {
    let python = std::env::var("POSTMORTEM_PYTHON").unwrap_or_else(|_| "python3".into());
    let code = format!(
        "import boto3,sys; s3=boto3.client('s3',endpoint_url='{endpoint}',region_name='us-east-1',aws_access_key_id='test',aws_secret_access_key='test'); sys.stdout.write(s3.get_object(Bucket='{bucket}',Key='{key}')['Body'].read().decode())"
    );
    let out = Command::new(python).args(["-c", &code]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}
