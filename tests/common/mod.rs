//! Helpers shared by the integration tests; each test crate uses some.
#![allow(dead_code)]

use std::path::Path;

/// Every file under `dir` with its bytes, by relative path, sorted.
pub fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if path.is_symlink() {
            // A link is snapshotted as where it points (it may point nowhere, or at itself).
            out.push((name, std::fs::read_link(&path).unwrap().to_string_lossy().into_owned().into_bytes()));
        } else if path.is_dir() {
            out.extend(files(&path).into_iter().map(|(n, b)| (format!("{name}/{n}"), b)));
        } else {
            out.push((name, std::fs::read(&path).unwrap()));
        }
    }
    out.sort();
    out
}

/// Copies a folder tree (files and folders; links are not expected).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let target = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &target);
        } else {
            std::fs::copy(&path, &target).unwrap();
        }
    }
}

/// The runs of the audit tests' archives, laid out under `root`: two native
/// runs of one team (one in a year folder), a crashed run and a broken
/// `run.json` of another, and a bare checkpoint.
pub fn lay_out_audit_runs(root: &Path) {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures");
    copy_dir(&fixtures.join("runs/healthy"), &root.join("team-a/healthy"));
    copy_dir(&fixtures.join("runs/dead-relu"), &root.join("team-a/2026/dead-relu"));
    copy_dir(&fixtures.join("runs/crashed"), &root.join("team-b/crashed"));
    std::fs::create_dir_all(root.join("team-b/broken")).unwrap();
    std::fs::write(root.join("team-b/broken/run.json"), "{\"format\": ").unwrap();
    std::fs::copy(fixtures.join("handwritten/checkpoints/step-00000009.safetensors"), root.join("team-b/model.safetensors")).unwrap();
}
