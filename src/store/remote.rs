//! The object-store client behind a [`super::Mirror`] (the `object_store`
//! crate), built with the `object-storage` feature. Its calls block: the
//! asynchronous client runs on a small runtime of its own.

use super::{io_at, Object, StoreError};
use crate::run::checkpoint;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path as StorePath;
use object_store::{BackoffConfig, ClientOptions, ObjectStore, ObjectStoreExt, ObjectStoreScheme, RetryConfig};
use std::collections::BTreeMap;
use std::fs::File;
use std::ops::Range;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

impl From<object_store::ObjectMeta> for Object {
    fn from(meta: object_store::ObjectMeta) -> Object {
        Object { size: meta.size, e_tag: meta.e_tag, modified: meta.last_modified.into() }
    }
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

    /// The URL the remote was opened with.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Whether the URL names one object rather than a prefix (known once listed).
    pub fn single(&self) -> bool {
        self.single
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
        move |source| StoreError::Request { url, source: Box::new(source) }
    }

    /// Every object under the prefix, by its path under it; listed page by
    /// page. A URL that names one object gives it under its own name, and
    /// `true`.
    pub fn list(&mut self) -> Result<(BTreeMap<String, Object>, bool), StoreError> {
        let listed = self.runtime.block_on(async {
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
        });
        if let Ok((_, single)) = &listed {
            self.single = *single;
        }
        listed
    }

    /// Fetches objects into their local files, a few at a time: whole, or
    /// with `ranged`, safetensors checkpoints by the ranges the analysis
    /// reads. With `stop_at_error` the first failure ends the rest; each
    /// object's result comes back with its path under the prefix.
    pub fn fetch(&self, objects: &[(String, u64, PathBuf)], ranged: bool, stop_at_error: bool) -> Vec<(String, Result<(), StoreError>)> {
        self.runtime.block_on(async {
            let mut results = futures::stream::iter(objects.iter().map(|(relative, size, path)| async move {
                let fetched = if ranged && relative.ends_with(".safetensors") && *size >= 8 {
                    self.fetch_checkpoint(relative, *size, path).await
                } else {
                    self.fetch_whole(relative, *size, path).await
                };
                (relative.clone(), fetched)
            }))
            .buffer_unordered(PIECES_AT_ONCE);
            let mut done = Vec::new();
            while let Some((relative, fetched)) = results.next().await {
                let failed = fetched.is_err();
                done.push((relative, fetched));
                if failed && stop_at_error {
                    break;
                }
            }
            done
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
    pub fn upload(&self, relative: &str, file: &Path) -> Result<(), StoreError> {
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
}
