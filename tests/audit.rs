//! `postmortem audit` over an archive built from the fixtures: nested folders,
//! a broken run, a symlink loop, a link out of the tree, a bare checkpoint.

mod common;

use common::copy_dir;
use serde_json::Value;
use std::path::Path;
use std::process::{Command, Output};

fn postmortem(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_postmortem")).args(args).output().unwrap()
}

fn archive() -> tempfile::TempDir {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    common::lay_out_audit_runs(root);
    // A checkpoint still being written is not a run.
    std::fs::write(root.join("team-b/half.safetensors.tmp"), b"partial").unwrap();
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(root, root.join("team-b/loop")).unwrap();
        std::os::unix::fs::symlink(fixtures.join("runs"), root.join("outside")).unwrap();
    }
    dir
}

/// Three copies of the healthy run at learning rates 3e-4, 3e-3 and 3e-2:
/// `lr-0`, `lr-1`, `lr-2` under `dir`.
fn write_sweep(dir: &Path) {
    let healthy = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/runs/healthy");
    for (i, lr) in ["0.0003", "0.003", "0.03"].iter().enumerate() {
        let run = dir.join(format!("lr-{i}"));
        copy_dir(&healthy, &run);
        let meta = std::fs::read_to_string(run.join("run.json")).unwrap().replace("\"learning_rate\": 0.003", &format!("\"learning_rate\": {lr}"));
        std::fs::write(run.join("run.json"), meta).unwrap();
    }
}

fn rows(out: &Path) -> Vec<(String, String)> {
    let json: Value = serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    json.as_array().unwrap().iter().map(|r| (r["run"].as_str().unwrap().to_string(), r["verdict"].as_str().unwrap().to_string())).collect()
}

#[test]
fn audit_lists_every_run_once_with_its_verdict() {
    let archive = archive();
    let out = tempfile::tempdir().unwrap();
    let result = postmortem(&["audit", archive.path().to_str().unwrap(), "--out", out.path().to_str().unwrap(), "--jobs", "2"]);
    let stdout = String::from_utf8_lossy(&result.stdout);
    assert_eq!(result.status.code(), Some(1), "{stdout}{}", String::from_utf8_lossy(&result.stderr));
    assert_eq!(
        rows(out.path()),
        [
            ("team-a/2026/dead-relu".to_string(), "error".to_string()),
            ("team-a/healthy".into(), "clean".into()),
            ("team-b/broken".into(), "unreadable".into()),
            ("team-b/crashed".into(), "clean".into()),
            ("team-b/model.safetensors".into(), "clean".into()),
        ]
    );
    assert!(stdout.contains("audited 5 runs: 3 clean, 0 info, 0 warning, 1 error, 1 unreadable"), "{stdout}");
    let csv = std::fs::read_to_string(out.path().join("summary.csv")).unwrap();
    assert_eq!(csv.lines().count(), 6);
    assert!(csv.contains("team-b/broken,team-b/broken,unreadable,"), "{csv}");
    // The Parquet summary holds the same rows, typed (built with the
    // `parquet` feature; without it there is none).
    #[cfg(feature = "parquet")]
    {
        use polars_io::SerReader;
        let table = polars_io::parquet::read::ParquetReader::new(std::fs::File::open(out.path().join("summary.parquet")).unwrap()).finish().unwrap();
        assert_eq!(table.height(), 5);
        let strings = |name: &str| -> Vec<Option<String>> {
            let column = table.column(name).unwrap().str().unwrap().clone();
            (0..column.len()).map(|i| column.get(i).map(str::to_string)).collect()
        };
        let (runs, verdicts) = (strings("run"), strings("verdict"));
        let expected = rows(out.path());
        assert_eq!(runs, expected.iter().map(|(r, _)| Some(r.clone())).collect::<Vec<_>>());
        assert_eq!(verdicts, expected.iter().map(|(_, v)| Some(v.clone())).collect::<Vec<_>>());
        let rules = table.column("rules").unwrap().list().unwrap().get_as_series(0).unwrap();
        let rules = rules.str().unwrap();
        assert!((0..rules.len()).any(|i| rules.get(i) == Some("dead-relus")), "{rules:?}");
        let json: Value = serde_json::from_slice(&std::fs::read(out.path().join("summary.json")).unwrap()).unwrap();
        assert_eq!(table.column("errors").unwrap().u64().unwrap().get(0), json[0]["errors"].as_u64());
    }
    #[cfg(not(feature = "parquet"))]
    assert!(!out.path().join("summary.parquet").exists());
    // By default only runs with a finding get a report; clean ones are a
    // row of the index, without a link.
    let index = std::fs::read_to_string(out.path().join("index.html")).unwrap();
    assert!(index.contains("href=\"runs/team-a__2026__dead-relu/report.html\""));
    assert!(index.contains("<td>team-b/crashed</td><td class=\"v v-clean\" data-sort=\"0\">clean (incomplete)"), "{index}");
    assert!(out.path().join("runs/team-a__2026__dead-relu/report.html").is_file());
    assert!(!out.path().join("runs/team-a__healthy").exists());
    assert!(!out.path().join("runs/team-b__broken").exists());
    // An audit's reports share one style sheet and link their plots, SVG
    // only unless --png; the Markdown report points at them.
    let report = out.path().join("runs/team-a__2026__dead-relu");
    let html = std::fs::read_to_string(report.join("report.html")).unwrap();
    assert!(html.contains("<link rel=\"stylesheet\" href=\"../../report.css\">") && !html.contains("<svg"), "{html}");
    assert!(html.contains("src=\"plots/activation-units.svg\""), "{html}");
    assert!(std::fs::read_to_string(out.path().join("report.css")).unwrap().contains(".finding"));
    assert!(report.join("plots/loss.svg").is_file() && !report.join("plots/loss.png").exists());
    let markdown = std::fs::read_to_string(report.join("report.md")).unwrap();
    assert!(markdown.contains("`plots/loss.svg`") && !markdown.contains(".png"), "{markdown}");
    let all = tempfile::tempdir().unwrap();
    postmortem(&["audit", archive.path().to_str().unwrap(), "--out", all.path().to_str().unwrap(), "--png", "--reports", "all"]);
    assert!(all.path().join("runs/team-a__healthy/plots/loss.png").is_file());
    assert!(std::fs::read_to_string(all.path().join("index.html")).unwrap().contains("href=\"runs/team-b__crashed/report.html\""));
    let none = tempfile::tempdir().unwrap();
    postmortem(&["audit", archive.path().to_str().unwrap(), "--out", none.path().to_str().unwrap(), "--reports", "none"]);
    assert_eq!(rows(none.path()), rows(out.path()));
    assert!(!none.path().join("runs").exists());
}

#[test]
fn changed_reuses_unchanged_runs_and_since_leaves_old_ones_out() {
    let archive = archive();
    let out = tempfile::tempdir().unwrap();
    let (a, o) = (archive.path().to_str().unwrap(), out.path().to_str().unwrap());
    let first = postmortem(&["audit", a, "--out", o, "--changed", "--fail-on", "never"]);
    assert_eq!(first.status.code(), Some(0));
    let before = rows(out.path());
    // Touch one run: it is analyzed again, the others are reused.
    let metrics = archive.path().join("team-a/healthy/metrics.jsonl");
    let mut text = std::fs::read_to_string(&metrics).unwrap();
    text.push('\n');
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(&metrics, text).unwrap();
    let second = postmortem(&["audit", a, "--out", o, "--changed", "--fail-on", "never"]);
    let stdout = String::from_utf8_lossy(&second.stdout);
    assert!(stdout.contains("4 unchanged since the last audit"), "{stdout}");
    assert_eq!(rows(out.path()), before);
    let future = postmortem(&["audit", a, "--out", o, "--since", "2999-01-01"]);
    assert!(String::from_utf8_lossy(&future.stdout).contains("audited 0 runs"), "{}", String::from_utf8_lossy(&future.stdout));
    let bad = postmortem(&["audit", a, "--out", o, "--since", "soon"]);
    assert_eq!(bad.status.code(), Some(2));
    let missing = postmortem(&["audit", "/nonexistent/archive", "--out", o]);
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn a_control_on_a_standard_corpus_is_recognized() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/runs");
    let archive = tempfile::tempdir().unwrap();
    copy_dir(&fixtures.join("circles-linear"), &archive.path().join("exp/circles"));
    copy_dir(&fixtures.join("healthy"), &archive.path().join("exp/digits-control"));
    copy_dir(&fixtures.join("healthy"), &archive.path().join("elsewhere/digits"));
    let out = tempfile::tempdir().unwrap();
    postmortem(&["audit", archive.path().to_str().unwrap(), "--out", out.path().to_str().unwrap(), "--quiet"]);
    let json: Value = serde_json::from_slice(&std::fs::read(out.path().join("summary.json")).unwrap()).unwrap();
    let circles = json.as_array().unwrap().iter().find(|r| r["run"] == "exp/circles").unwrap();
    assert_eq!(circles["controls"], serde_json::json!(["exp/digits-control"]));
}

#[test]
fn sweeps_are_grouped_by_the_one_parameter_that_differs() {
    let archive = tempfile::tempdir().unwrap();
    write_sweep(archive.path());
    let out = tempfile::tempdir().unwrap();
    postmortem(&["audit", archive.path().to_str().unwrap(), "--out", out.path().to_str().unwrap(), "--quiet"]);
    let index = std::fs::read_to_string(out.path().join("index.html")).unwrap();
    assert!(index.contains("learning_rate sweep over 3 runs"), "no sweep in the index");
    assert!(index.contains("<figure><svg"));
}

/// Every file of an audit's output folder but the state file, by path.
fn output_files(out: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = walkdir::WalkDir::new(out)
        .sort_by_file_name()
        .into_iter()
        .flatten()
        .filter(|e| e.file_type().is_file())
        .map(|e| (e.path().strip_prefix(out).unwrap().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        // The state file's lines come in the order runs finished.
        .filter(|(name, _)| !name.starts_with(".postmortem-rows"))
        .filter(|(name, _)| !name.ends_with(".json") || name == "summary.json" || name.starts_with("runs/"))
        .collect();
    files.sort();
    files
}

/// Partitioned audits, run as separate processes and merged, write what one
/// audit writes: the same index, summaries, sweep and report folders, even
/// where two runs' report folders would take the same name.
#[test]
fn partitions_merge_into_the_single_audit() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/runs");
    let archive = tempfile::tempdir().unwrap();
    write_sweep(&archive.path().join("sweep"));
    // `a/b` and `a__b` name their report folders alike: the second gets `-2`
    // in whichever partition it falls.
    copy_dir(&fixtures.join("dead-relu"), &archive.path().join("a/b"));
    copy_dir(&fixtures.join("zero-init"), &archive.path().join("a__b"));
    copy_dir(&fixtures.join("crashed"), &archive.path().join("z/crashed"));
    std::fs::create_dir_all(archive.path().join("z/broken")).unwrap();
    std::fs::write(archive.path().join("z/broken/run.json"), "{").unwrap();
    let a = archive.path().to_str().unwrap();
    let single = tempfile::tempdir().unwrap();
    postmortem(&["audit", a, "--out", single.path().to_str().unwrap(), "--quiet", "--fail-on", "never"]);
    let expected = output_files(single.path());
    assert!(expected.iter().any(|(name, _)| name == "runs/a__b-2/report.html"), "{:?}", expected.iter().map(|f| &f.0).collect::<Vec<_>>());
    for by in ["hash", "count"] {
        let scratch = tempfile::tempdir().unwrap();
        let parts: Vec<String> = (1..=3).map(|k| scratch.path().join(format!("part-{k}")).to_string_lossy().into_owned()).collect();
        // Three processes at once, as a job array runs them.
        let children: Vec<_> = parts
            .iter()
            .enumerate()
            .map(|(k, part)| {
                Command::new(env!("CARGO_BIN_EXE_postmortem"))
                    .args(["audit", a, "--out", part, "--quiet", "--fail-on", "never", "--partition", &format!("{by}:{}/3", k + 1)])
                    .stdout(std::process::Stdio::null())
                    .spawn()
                    .unwrap()
            })
            .collect();
        for mut child in children {
            assert!(child.wait().unwrap().success());
        }
        let sizes: Vec<usize> = parts.iter().map(|p| rows(Path::new(p)).len()).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 7, "{by}: {sizes:?}");
        let merged = scratch.path().join("merged");
        let mut args = vec!["audit", "merge"];
        args.extend(parts.iter().map(String::as_str));
        args.extend(["--out", merged.to_str().unwrap(), "--fail-on", "never"]);
        let result = postmortem(&args);
        assert_eq!(result.status.code(), Some(0), "{}", String::from_utf8_lossy(&result.stderr));
        assert!(String::from_utf8_lossy(&result.stdout).contains("merged from 3 of 3 partitions"));
        let got = output_files(&merged);
        assert_eq!(got.iter().map(|f| &f.0).collect::<Vec<_>>(), expected.iter().map(|f| &f.0).collect::<Vec<_>>(), "{by}");
        for ((name, bytes), (_, want)) in got.iter().zip(&expected) {
            assert!(bytes == want, "{by}: {name} differs from the single audit's");
        }
        // A share left out or given twice is named, and a missing one fails the merge.
        let partial_out = scratch.path().join("partial");
        let args = ["audit", "merge", &parts[0], &parts[2], &parts[2], "--out", partial_out.to_str().unwrap()];
        let partial = postmortem(&args);
        let stderr = String::from_utf8_lossy(&partial.stderr);
        assert_eq!(partial.status.code(), Some(1));
        assert!(stderr.contains("partitions missing: 2/3") && stderr.contains("given more than once: 3/3"), "{stderr}");
    }
    // Parts of different partitionings do not merge.
    let scratch = tempfile::tempdir().unwrap();
    let (p, q) = (scratch.path().join("p"), scratch.path().join("q"));
    postmortem(&["audit", a, "--out", p.to_str().unwrap(), "--quiet", "--partition", "hash:1/2"]);
    postmortem(&["audit", a, "--out", q.to_str().unwrap(), "--quiet", "--partition", "count:2/2"]);
    let mixed = postmortem(&["audit", "merge", p.to_str().unwrap(), q.to_str().unwrap(), "--out", scratch.path().join("m").to_str().unwrap()]);
    assert_eq!(mixed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&mixed.stderr).contains("different audits"));
    let bad = postmortem(&["audit", a, "--out", p.to_str().unwrap(), "--partition", "hash:3/2"]);
    assert_eq!(bad.status.code(), Some(2));
    // A part's files are untrusted: a share count of 10^12 is refused at
    // once, and a row's report path cannot point the copy elsewhere.
    let forged = scratch.path().join("forged");
    std::fs::create_dir_all(forged.join("runs/x")).unwrap();
    std::fs::write(forged.join("part.json"), r#"{"archive": "a", "partition": {"by": "hash", "index": 1, "total": 1000000000000}, "left_out": 0, "reused": 0}"#).unwrap();
    std::fs::write(forged.join(".postmortem-rows.jsonl"), "").unwrap();
    let huge = postmortem(&["audit", "merge", forged.to_str().unwrap(), "--out", scratch.path().join("h").to_str().unwrap()]);
    assert_eq!(huge.status.code(), Some(2), "{}", String::from_utf8_lossy(&huge.stderr));
    std::fs::write(forged.join("part.json"), r#"{"archive": "a", "partition": {"by": "hash", "index": 1, "total": 1}, "left_out": 0, "reused": 0}"#).unwrap();
    let rows: Value = serde_json::from_slice(&std::fs::read(single.path().join("summary.json")).unwrap()).unwrap();
    let mut row = rows[0].clone();
    row["report"] = "runs/../../escaped/report.html".into();
    std::fs::write(forged.join(".postmortem-rows.jsonl"), serde_json::to_string(&row).unwrap() + "\n").unwrap();
    let merged = scratch.path().join("inside/merged");
    let result = postmortem(&["audit", "merge", forged.to_str().unwrap(), "--out", merged.to_str().unwrap(), "--fail-on", "never"]);
    assert_eq!(result.status.code(), Some(0), "{}", String::from_utf8_lossy(&result.stderr));
    assert!(!scratch.path().join("escaped").exists() && !scratch.path().join("inside/escaped").exists());
    assert!(!merged.join("runs").exists());
}
