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
