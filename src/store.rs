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

use crate::import;
use crate::run::checkpoint;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as StorePath;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, ObjectStoreScheme, RetryConfig};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

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
    Request { url: String, source: object_store::Error },
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

/// Attempts at a whole object or range, for failures the client does not
/// retry itself (a body cut short after its headers came).
const ATTEMPTS: u32 = 4;
/// The first pause between attempts; it doubles each time.
const FIRST_PAUSE: Duration = Duration::from_millis(200);
/// Ranges of a checkpoint are fetched in pieces of at most this size, a few
/// at a time, so memory stays bounded whatever the tensor sizes.
const PIECE_BYTES: u64 = 8 << 20;
const PIECES_AT_ONCE: usize = 8;
/// Ranges closer than this are fetched as one.
const RANGE_GAP: u64 = 64 << 10;
/// The first request for a checkpoint: its header length and, usually, the
/// whole header.
const HEAD_BYTES: u64 = 1 << 20;

/// One object under the prefix.
#[derive(Debug, Clone)]
pub struct Object {
    pub size: u64,
    pub e_tag: Option<String>,
    pub modified: SystemTime,
}

impl From<object_store::ObjectMeta> for Object {
    fn from(meta: object_store::ObjectMeta) -> Object {
        Object { size: meta.size, e_tag: meta.e_tag, modified: meta.last_modified.into() }
    }
}

/// A bucket (or container, or server) and a prefix in it.
pub struct Remote {
    store: Arc<dyn ObjectStore>,
    prefix: StorePath,
    url: String,
    /// The URL names one object, not a prefix (see [`Remote::list`]).
    single: bool,
    runtime: tokio::runtime::Runtime,
}

impl Remote {
    /// Connects to the store a URL names. Credentials come from the cloud's
    /// environment (`AWS_*`, `GOOGLE_*`, `AZURE_*`), as its own tools read them.
    pub fn open(url: &str) -> Result<Remote, StoreError> {
        let err = |message: String| StoreError::Open { url: url.to_string(), message };
        let parsed = url::Url::parse(url).map_err(|e| err(format!("not a URL: {e}")))?;
        let (scheme, prefix) = ObjectStoreScheme::parse(&parsed).map_err(|e| err(e.to_string()))?;
        let prefix = StorePath::parse(prefix).map_err(|e| err(e.to_string()))?;
        let retry = RetryConfig {
            backoff: BackoffConfig { init_backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(5), base: 2.0 },
            max_retries: 5,
            retry_timeout: Duration::from_secs(60),
        };
        fn built<S: ObjectStore>(store: object_store::Result<S>) -> object_store::Result<Arc<dyn ObjectStore>> {
            store.map(|s| Arc::new(s) as Arc<dyn ObjectStore>)
        }
        let store = match scheme {
            ObjectStoreScheme::AmazonS3 => built(object_store::aws::AmazonS3Builder::from_env().with_url(url).with_retry(retry).build()),
            ObjectStoreScheme::GoogleCloudStorage => built(object_store::gcp::GoogleCloudStorageBuilder::from_env().with_url(url).with_retry(retry).build()),
            ObjectStoreScheme::MicrosoftAzure => built(object_store::azure::MicrosoftAzureBuilder::from_env().with_url(url).with_retry(retry).build()),
            // Client settings (timeouts, ...) stay the crate's own, or the
            // environment's for the clouds.
            ObjectStoreScheme::Http => built(
                object_store::http::HttpBuilder::new()
                    .with_url(&parsed[..url::Position::BeforePath])
                    .with_retry(retry)
                    .with_client_options(ClientOptions::new().with_allow_http(true))
                    .build(),
            ),
            other => return Err(err(format!("{other:?} URLs are not read; use s3://, gs://, az:// or https://"))),
        }
        .map_err(|e| err(e.to_string()))?;
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().map_err(|e| err(e.to_string()))?;
        Ok(Remote { store, prefix, url: url.trim_end_matches('/').to_string(), single: false, runtime })
    }

    /// The URL of an object, given its path under the prefix.
    pub fn url_of(&self, relative: &str) -> String {
        if relative.is_empty() || self.single { self.url.clone() } else { format!("{}/{relative}", self.url) }
    }

    /// Where an object is: under the prefix, or the prefix itself when the
    /// URL names one object.
    fn location(&self, relative: &str) -> StorePath {
        if self.single {
            return self.prefix.clone();
        }
        relative.split('/').filter(|p| !p.is_empty()).fold(self.prefix.clone(), |path, part| path.clone().join(part))
    }

    fn request_error(&self, relative: &str) -> impl FnOnce(object_store::Error) -> StoreError + '_ {
        let url = self.url_of(relative);
        move |source| StoreError::Request { url, source }
    }

    /// Every object under the prefix, by its path under it; listed page by
    /// page. A URL that names one object gives it under its own name, and
    /// `true`.
    pub fn list(&self) -> Result<(BTreeMap<String, Object>, bool), StoreError> {
        self.runtime.block_on(async {
            let mut objects = BTreeMap::new();
            let mut pages = self.store.list(Some(&self.prefix));
            while let Some(meta) = pages.next().await {
                let meta = meta.map_err(self.request_error(""))?;
                let relative = meta.location.prefix_match(&self.prefix).map(|parts| parts.map(|p| p.as_ref().to_string()).collect::<Vec<_>>().join("/"));
                if let Some(relative) = relative.filter(|r| !r.is_empty()) {
                    objects.insert(relative, meta.into());
                }
            }
            if objects.is_empty() && self.prefix.parts().count() > 0 {
                // Not a folder: perhaps one object, such as a checkpoint.
                if let Ok(meta) = self.store.head(&self.prefix).await {
                    let name = self.prefix.filename().unwrap_or("object").to_string();
                    objects.insert(name, meta.into());
                    return Ok((objects, true));
                }
            }
            Ok((objects, false))
        })
    }

    /// Runs a request until it succeeds, at most [`ATTEMPTS`] times with
    /// pauses that double.
    async fn retried<T, F: std::future::Future<Output = Result<T, StoreError>>>(&self, mut attempt: impl FnMut() -> F) -> Result<T, StoreError> {
        let mut pause = FIRST_PAUSE;
        let mut tries = 1;
        loop {
            match attempt().await {
                Ok(value) => return Ok(value),
                Err(e) if tries >= ATTEMPTS => return Err(e),
                Err(_) => {
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                    tries += 1;
                }
            }
        }
    }

    /// Streams a whole object into `file`, checking that all of it came.
    async fn fetch_whole(&self, relative: &str, size: u64, file: &Path) -> Result<(), StoreError> {
        let location = self.location(relative);
        self.retried(|| async {
            let io = io_at(file);
            let out = File::create(file).map_err(&io)?;
            let mut stream = self.store.get(&location).await.map_err(self.request_error(relative))?.into_stream();
            let mut written = 0u64;
            while let Some(chunk) = stream.try_next().await.map_err(self.request_error(relative))? {
                out.write_all_at(&chunk, written).map_err(&io)?;
                written += chunk.len() as u64;
            }
            if written != size {
                return Err(StoreError::Short { url: self.url_of(relative), message: format!("{written} bytes came of {size} (cut short)") });
            }
            Ok(())
        })
        .await
    }

    /// A byte range of an object, all of it.
    async fn fetch_range(&self, relative: &str, range: Range<u64>) -> Result<bytes::Bytes, StoreError> {
        let location = self.location(relative);
        self.retried(|| async {
            let bytes = self.store.get_range(&location, range.clone()).await.map_err(self.request_error(relative))?;
            if bytes.len() as u64 != range.end - range.start {
                return Err(StoreError::Short { url: self.url_of(relative), message: format!("bytes {range:?}: {} came (cut short)", bytes.len()) });
            }
            Ok(bytes)
        })
        .await
    }

    /// Fetches what the analysis reads of a safetensors checkpoint into its
    /// sparse placeholder: the header, then the tensors rules read, a few
    /// pieces at a time. A header that does not parse fetches the whole
    /// file, so that loading it names the problem.
    async fn fetch_checkpoint(&self, relative: &str, size: u64, path: &Path) -> Result<(), StoreError> {
        let io = io_at(path);
        let file = std::fs::OpenOptions::new().write(true).open(path).map_err(&io)?;
        let head = self.fetch_range(relative, 0..HEAD_BYTES.min(size)).await?;
        let header_len = head.get(..8).map(|b| u64::from_le_bytes(b.try_into().unwrap_or_default()));
        let header = match header_len {
            Some(n) if n <= checkpoint::MAX_HEADER_BYTES && 8 + n <= size => {
                if 8 + n <= head.len() as u64 {
                    head.slice(..(8 + n) as usize)
                } else {
                    self.fetch_range(relative, 0..8 + n).await?
                }
            }
            _ => head,
        };
        let Some(ranges) = checkpoint::ranges_read(header.get(8..).unwrap_or_default()).filter(|_| header.len() >= 8) else {
            drop(file);
            return self.fetch_whole(relative, size, path).await;
        };
        file.write_all_at(&header, 0).map_err(&io)?;
        let (file, io) = (&file, &io);
        futures::stream::iter(pieces(&ranges, size).into_iter().map(|piece| async move {
            let bytes = self.fetch_range(relative, piece.clone()).await?;
            file.write_all_at(&bytes, piece.start).map_err(io)
        }))
        .buffer_unordered(PIECES_AT_ONCE)
        .try_collect::<Vec<()>>()
        .await?;
        Ok(())
    }

    /// Uploads a file to `relative` under the prefix.
    fn upload(&self, relative: &str, file: &Path) -> Result<(), StoreError> {
        let bytes = std::fs::read(file).map_err(io_at(file))?;
        let location = self.location(relative);
        self.runtime.block_on(async { self.store.put(&location, bytes.into()).await.map_err(self.request_error(relative)) })?;
        Ok(())
    }
}

/// Ranges merged where they nearly touch, cut into pieces of at most
/// [`PIECE_BYTES`], within the object's size.
fn pieces(ranges: &[Range<u64>], size: u64) -> Vec<Range<u64>> {
    let mut merged: Vec<Range<u64>> = Vec::new();
    for r in ranges.iter().map(|r| r.start.min(size)..r.end.min(size)).filter(|r| r.start < r.end) {
        match merged.last_mut() {
            Some(last) if r.start <= last.end + RANGE_GAP => last.end = last.end.max(r.end),
            _ => merged.push(r),
        }
    }
    merged.into_iter().flat_map(|r| (r.start..r.end).step_by(PIECE_BYTES as usize).map(move |s| s..(s + PIECE_BYTES).min(r.end))).collect()
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
        let (objects, single) = remote.list()?;
        remote.single = single;
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
        let wanted: Vec<String> = mirror.objects.keys().filter(|r| keep(r)).cloned().collect();
        let this = &mirror;
        let fetched = this.remote.runtime.block_on(async move {
            futures::stream::iter(wanted.iter().map(|relative| async move {
                this.remote.fetch_whole(relative, this.objects[relative].size, &this.root.join(relative)).await.map(|()| relative.clone())
            }))
            .buffer_unordered(PIECES_AT_ONCE)
            .collect::<Vec<_>>()
            .await
        });
        // One that failed is fetched again with its run, which says why.
        mirror.kept.extend(fetched.into_iter().flatten());
        Ok(mirror)
    }

    /// The local folder the prefix is laid out in.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The local path of what the URL names: the folder, or its one object.
    pub fn target(&self) -> PathBuf {
        match (self.remote.single, self.objects.keys().next()) {
            (true, Some(name)) => self.root.join(name),
            _ => self.root.clone(),
        }
    }

    /// The URL the archive or run was given as.
    pub fn url(&self) -> &str {
        &self.remote.url
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
        self.remote.runtime.block_on(async {
            futures::stream::iter(objects.iter().map(|(relative, object)| async move {
                let path = self.root.join(relative);
                if relative.ends_with(".safetensors") && object.size >= 8 {
                    self.remote.fetch_checkpoint(relative, object.size, &path).await
                } else {
                    self.remote.fetch_whole(relative, object.size, &path).await
                }
            }))
            .buffer_unordered(PIECES_AT_ONCE)
            .try_collect::<Vec<()>>()
            .await
        })?;
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
        text.replace(target.as_ref(), &self.remote.url).replace(root.as_ref(), &self.remote.url)
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

    #[test]
    fn pieces_merge_near_ranges_and_stay_bounded() {
        // An inverted range (from a forged header) is dropped.
        let inverted = Range { start: 100, end: 90 };
        let got = pieces(&[0..10, 20..30, (1 << 20)..(1 << 20) + 5, inverted, (50 << 20)..(70 << 20)], 60 << 20);
        assert_eq!(got[0], 0..30);
        assert_eq!(got[1], (1 << 20)..(1 << 20) + 5);
        // Clipped to the object, cut into pieces of at most PIECE_BYTES.
        assert_eq!(got[2..], [(50 << 20)..(58 << 20), (58 << 20)..(60 << 20)]);
    }

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
