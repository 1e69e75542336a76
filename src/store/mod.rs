//! Runs and archives in object storage: `s3://`, `gs://`, `az://` and
//! `https://` URLs, read through the `object_store` crate with each cloud's
//! credentials from its standard environment variables (docs/SCALE.md).
//!
//! The rest of postmortem reads local files, so a [`Mirror`] lays an
//! object-store prefix out under a local scratch folder: every object as a
//! sparse placeholder of its size, so that finding runs is the local
//! discovery, name for name. Only the few files discovery reads whole are
//! fetched up front; a run's other objects are fetched just before it is
//! analyzed (checkpoints by ranged reads: the header, then only the tensors
//! the analysis reads) and released after, so the scratch folder holds one
//! run per worker, not the archive.

//!
//! The client itself ([`Remote`]) is built with the `object-storage` cargo
//! feature; without it, a URL is refused with a message saying so and the
//! rest of postmortem is unchanged.

use crate::import;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

#[cfg(feature = "object-storage")]
mod remote;
#[cfg(not(feature = "object-storage"))]
#[path = "unavailable.rs"]
mod remote;
pub use remote::Remote;

/// Whether `text` is an object-store URL rather than a local path.
pub fn is_url(text: &Path) -> bool {
    let text = text.to_string_lossy();
    text.split_once("://").is_some_and(|(scheme, _)| {
        matches!(scheme, "s3" | "s3a" | "gs" | "az" | "adl" | "azure" | "abfs" | "abfss" | "http" | "https")
    })
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{url}: {message}")]
    Open { url: String, message: String },
    #[error("{url}: {source}")]
    Request { url: String, source: Box<dyn std::error::Error + Send + Sync> },
    #[error("{url}: {message}")]
    Short { url: String, message: String },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// Makes an I/O error on a local file of the mirror a [`StoreError`].
fn io_at(path: &Path) -> impl Fn(std::io::Error) -> StoreError {
    let path = path.to_path_buf();
    move |source| StoreError::Io { path: path.clone(), source }
}

/// One object under the prefix.
#[derive(Debug, Clone)]
pub struct Object {
    pub size: u64,
    pub e_tag: Option<String>,
    pub modified: SystemTime,
}

/// An object-store prefix laid out under a local folder (see the module's
/// documentation). The folder is removed when the mirror is dropped.
pub struct Mirror {
    remote: Remote,
    root: PathBuf,
    objects: BTreeMap<String, Object>,
    /// Objects fetched whole when the mirror was made; never released.
    kept: BTreeSet<String>,
    /// Objects whose name cannot be a local file (`a` and `a/b` both, or
    /// `.` and `..` parts), with why.
    pub skipped: Vec<(String, String)>,
    /// Placeholders' modification times, to tell them from files written since.
    placed: BTreeMap<PathBuf, SystemTime>,
}

impl Mirror {
    /// Lists the prefix and lays it out under `root` (which must not exist
    /// yet), fetching whole the objects `keep` names.
    pub fn create(mut remote: Remote, root: PathBuf, keep: impl Fn(&str) -> bool) -> Result<Mirror, StoreError> {
        let (objects, _) = remote.list()?;
        std::fs::create_dir_all(&root).map_err(io_at(&root))?;
        let mut mirror = Mirror { remote, root, objects: BTreeMap::new(), kept: BTreeSet::new(), skipped: Vec::new(), placed: BTreeMap::new() };
        for (relative, object) in objects {
            let parts: Vec<&str> = relative.split('/').collect();
            if parts.iter().any(|p| p.is_empty() || *p == "." || *p == ".." || p.contains('\\')) {
                mirror.skipped.push((relative, "its name has an empty, `.` or `..` part".into()));
                continue;
            }
            let path = mirror.root.join(&relative);
            let placed = path.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|()| {
                let file = std::fs::OpenOptions::new().write(true).create_new(true).open(&path)?;
                file.set_len(object.size)?;
                file.metadata()?.modified()
            });
            match placed {
                Ok(time) => {
                    mirror.placed.insert(path, time);
                    mirror.objects.insert(relative, object);
                }
                Err(e) => mirror.skipped.push((relative, format!("cannot be laid out as a file beside the others ({e})"))),
            }
        }
        let wanted: Vec<(String, u64, PathBuf)> =
            mirror.objects.iter().filter(|(r, _)| keep(r)).map(|(r, o)| (r.clone(), o.size, mirror.root.join(r))).collect();
        let fetched = mirror.remote.fetch(&wanted, false, false);
        // One that failed is fetched again with its run, which says why.
        mirror.kept.extend(fetched.into_iter().filter(|(_, result)| result.is_ok()).map(|(relative, _)| relative));
        Ok(mirror)
    }

    /// The local folder the prefix is laid out in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The local path of what the URL names: the folder, or its one object.
    pub fn target(&self) -> PathBuf {
        match (self.remote.single(), self.objects.keys().next()) {
            (true, Some(name)) => self.root.join(name),
            _ => self.root.clone(),
        }
    }

    /// The URL the archive or run was given as.
    pub fn url(&self) -> &str {
        self.remote.url()
    }

    /// Objects under a local path of the mirror (a folder or one file); a
    /// path that is no object (one run of an MLflow database) gives those of
    /// the nearest that is.
    fn objects_under(&self, path: &Path) -> Vec<(&String, &Object)> {
        let mut at = path;
        loop {
            let Ok(relative) = at.strip_prefix(&self.root) else { return Vec::new() };
            let relative = relative.to_string_lossy().replace('\\', "/");
            let folder = format!("{relative}/");
            let found: Vec<(&String, &Object)> = self
                .objects
                .range(relative.clone()..)
                .take_while(|(k, _)| k.starts_with(&relative))
                .filter(|(k, _)| relative.is_empty() || **k == relative || k.starts_with(&folder))
                .collect();
            if !found.is_empty() {
                return found;
            }
            match at.parent() {
                Some(parent) => at = parent,
                None => return Vec::new(),
            }
        }
    }

    /// Fetches the objects under a local path of the mirror; they are
    /// released (back to empty placeholders) when the guard is dropped.
    pub fn fetch(&self, path: &Path) -> Result<Fetched, StoreError> {
        let objects: Vec<(&String, &Object)> = self.objects_under(path).into_iter().filter(|(k, _)| !self.kept.contains(*k)).collect();
        // Made first, so that what came before a failure is released too.
        let guard = Fetched { files: objects.iter().map(|(k, o)| (self.root.join(k), o.size)).collect() };
        let wanted: Vec<(String, u64, PathBuf)> = objects.iter().map(|(r, o)| ((*r).clone(), o.size, self.root.join(r))).collect();
        for (_, fetched) in self.remote.fetch(&wanted, true, true) {
            fetched?;
        }
        Ok(guard)
    }

    /// A hash of the names, sizes and ETags of the objects under a local
    /// path (`--changed`), and the newest modification time (`--since`).
    pub fn fingerprint(&self, path: &Path) -> (String, Option<SystemTime>) {
        let objects = self.objects_under(path);
        let text: Vec<String> = objects.iter().map(|(k, o)| format!("{k}:{}:{}", o.size, o.e_tag.as_deref().unwrap_or(""))).collect();
        let newest = objects.iter().map(|(_, o)| o.modified).max();
        (format!("{:016x}", xxhash_rust::xxh3::xxh3_64(text.join("|").as_bytes())), newest)
    }

    /// Text that names local paths of the mirror, naming URLs instead.
    pub fn shown(&self, text: &str) -> String {
        let root = self.root.to_string_lossy();
        let target = self.target();
        let target = target.to_string_lossy();
        // The target first: a URL naming one object is that object.
        text.replace(target.as_ref(), self.remote.url()).replace(root.as_ref(), self.remote.url())
    }

    /// Uploads every file under the mirror's folder that is not an untouched
    /// placeholder: what was written since the mirror was made.
    pub fn upload_written(&self) -> Result<usize, StoreError> {
        let mut uploaded = 0;
        for entry in walkdir::WalkDir::new(&self.root).follow_links(false).sort_by_file_name().into_iter().flatten() {
            if !entry.file_type().is_file() {
                continue;
            }
            let path = entry.path();
            let untouched = self.placed.get(path).is_some_and(|&time| entry.metadata().ok().and_then(|m| m.modified().ok()) == Some(time));
            if untouched {
                continue;
            }
            let relative = path.strip_prefix(&self.root).unwrap_or(path).to_string_lossy().replace('\\', "/");
            self.remote.upload(&relative, path)?;
            uploaded += 1;
        }
        Ok(uploaded)
    }
}

impl Drop for Mirror {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A run's objects, fetched into the mirror until this is dropped.
pub struct Fetched {
    files: Vec<(PathBuf, u64)>,
}

impl Drop for Fetched {
    fn drop(&mut self) {
        // Back to an empty placeholder of the same size: the disk is freed,
        // and the next fetch sees the same layout.
        for (path, size) in &self.files {
            if let Ok(file) = std::fs::OpenOptions::new().write(true).open(path) {
                let _ = file.set_len(0).and_then(|()| file.set_len(*size));
            }
        }
    }
}

/// Whether discovery needs an object's bytes up front (see [`import::discovery_reads`]).
pub fn discovery_reads(relative: &str) -> bool {
    import::discovery_reads(Path::new(relative))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run::checkpoint;

    #[test]
    fn checkpoints_fetch_what_rules_read() {
        // A float weight, small integer labels, and a large integer tensor
        // (a token table) that no rule reads: only the first two are fetched.
        let big = 300u64 << 20;
        let header = format!(
            r#"{{"w":{{"dtype":"F32","shape":[4],"data_offsets":[0,16]}},"labels":{{"dtype":"I64","shape":[2],"data_offsets":[16,32]}},"tokens":{{"dtype":"I64","shape":[{}],"data_offsets":[32,{}]}}}}"#,
            big / 8,
            32 + big
        );
        let start = 8 + header.len() as u64;
        assert_eq!(checkpoint::ranges_read(header.as_bytes()), Some(vec![start..start + 16, start + 16..start + 32]));
        assert_eq!(checkpoint::ranges_read(b"{not json"), None);
        // Offsets that go backwards or leave a gap are refused by the header's
        // own validation, not subtracted.
        assert_eq!(checkpoint::ranges_read(br#"{"w":{"dtype":"F32","shape":[4],"data_offsets":[16,0]}}"#), None);
        assert_eq!(checkpoint::ranges_read(br#"{"w":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#), None);
    }

    #[test]
    fn urls_are_told_from_paths() {
        for url in ["s3://bucket/runs", "gs://b/x", "az://container/p", "https://host/archive"] {
            assert!(is_url(Path::new(url)), "{url}");
        }
        for path in ["runs/mlp", "/data/s3/runs", "C:/runs", "file.safetensors"] {
            assert!(!is_url(Path::new(path)), "{path}");
        }
    }
}
