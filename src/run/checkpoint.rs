//! Safetensors checkpoints, read lazily: opening one reads and validates its
//! header only; tensor data is streamed in fixed-size chunks when a statistic
//! is asked for, so memory stays bounded however large the file.

use crate::error::LoadError;
use half::{bf16, f16};
use postmortem_recorder::format::parse_checkpoint_file_name;
use postmortem_recorder::stats::StatsAccumulator;
use postmortem_recorder::TensorStats;
use safetensors::tensor::Metadata;
use safetensors::Dtype;
use rayon::prelude::*;
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::{Path, PathBuf};

/// The safetensors crate's own limit on the header.
pub const MAX_HEADER_BYTES: u64 = 100_000_000;
/// Bytes read at a time when streaming a tensor: small enough to stay in the
/// core's cache between the read and the reduction.
const CHUNK_BYTES: usize = 256 << 10;
/// Tensors larger than this are reduced in parts of this size on all cores,
/// then merged; the split depends on the size only, so results do not depend
/// on the number of threads.
const PART_BYTES: u64 = 32 << 20;
/// The largest tensor read whole into memory (labels, logits, one batch's
/// activations are far smaller); statistics of larger ones are streamed.
const MAX_VALUES_BYTES: u64 = 256 << 20;

/// The byte ranges of a safetensors file that the analysis reads, given the
/// header (the JSON after the 8-byte length): floating-point tensors for
/// their statistics, and tensors small enough to be read whole (labels,
/// predictions); not large integer tensors, which no rule reads. `None` for
/// a header that does not parse. Runs in object storage fetch only these.
pub fn ranges_read(header: &[u8]) -> Option<Vec<Range<u64>>> {
    let metadata: Metadata = serde_json::from_slice(header).ok()?;
    let data_start = 8 + header.len() as u64;
    let mut ranges: Vec<Range<u64>> = metadata
        .tensors()
        .into_values()
        .filter(|info| {
            let bytes = (info.data_offsets.1 - info.data_offsets.0) as u64;
            is_float(info.dtype) || bytes <= MAX_VALUES_BYTES
        })
        .map(|info| data_start + info.data_offsets.0 as u64..data_start + info.data_offsets.1 as u64)
        .collect();
    ranges.sort_by_key(|r| r.start);
    Some(ranges)
}

fn is_float(dtype: Dtype) -> bool {
    matches!(dtype, Dtype::F32 | Dtype::F16 | Dtype::BF16 | Dtype::F64)
}

/// One tensor of a checkpoint: where its bytes are, not the bytes.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TensorEntry {
    pub name: String,
    #[serde(serialize_with = "dtype_name")]
    pub dtype: Dtype,
    pub shape: Vec<usize>,
    /// Offset of the first byte in the file.
    #[serde(skip)]
    pub offset: u64,
    /// Length in bytes.
    pub bytes: u64,
    /// The file that holds it, when the checkpoint is sharded over several.
    #[serde(skip)]
    pub shard: Option<std::sync::Arc<Path>>,
}

fn dtype_name<S: serde::Serializer>(dtype: &Dtype, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{dtype:?}"))
}

impl TensorEntry {
    /// The number of elements; the header's validation guarantees that the
    /// product fits, and it saturates if a header ever slips through.
    pub fn elements(&self) -> usize {
        self.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).unwrap_or(usize::MAX)
    }

    /// Whether [`Checkpoint::stats`] can read it.
    pub fn is_float(&self) -> bool {
        is_float(self.dtype)
    }
}

/// A checkpoint's header.
#[derive(Debug, Clone)]
pub struct Checkpoint {
    pub path: PathBuf,
    /// From `__metadata__.step`, else from the file name.
    pub step: Option<u64>,
    pub file_bytes: u64,
    /// Tensors in name order.
    pub tensors: Vec<TensorEntry>,
    pub metadata: BTreeMap<String, String>,
}

impl Checkpoint {
    /// Reads and validates the header of a safetensors file.
    pub fn open(path: &Path) -> Result<Self, LoadError> {
        let err = |message: String| LoadError::checkpoint(path, message);
        let mut file = File::open(path).map_err(|e| LoadError::io(path, e))?;
        let file_bytes = file.metadata().map_err(|e| LoadError::io(path, e))?.len();
        let mut len_bytes = [0u8; 8];
        if file_bytes < 8 {
            return Err(err(format!("{file_bytes} bytes is too short for a safetensors file (it starts with an 8-byte header length)")));
        }
        file.read_exact(&mut len_bytes).map_err(|e| LoadError::io(path, e))?;
        let header_len = u64::from_le_bytes(len_bytes);
        if header_len > MAX_HEADER_BYTES || header_len > file_bytes - 8 {
            return Err(err(format!(
                "header length {header_len} does not fit a file of {file_bytes} bytes (truncated, or not a safetensors file)"
            )));
        }
        let mut header = vec![0u8; header_len as usize];
        file.read_exact(&mut header).map_err(|e| LoadError::io(path, e))?;
        let metadata: Metadata =
            serde_json::from_slice(&header).map_err(|e| err(format!("invalid header: {e}")))?;
        let data_start = 8 + header_len;
        let expected = data_start + metadata.data_len() as u64;
        if expected != file_bytes {
            let what = if expected > file_bytes { "truncated" } else { "longer than its header says" };
            return Err(err(format!(
                "{what}: the header describes {expected} bytes, the file has {file_bytes} (copied while being written?)"
            )));
        }
        let mut tensors: Vec<TensorEntry> = metadata
            .tensors()
            .into_iter()
            .map(|(name, info)| TensorEntry {
                name,
                dtype: info.dtype,
                shape: info.shape.clone(),
                offset: data_start + info.data_offsets.0 as u64,
                bytes: (info.data_offsets.1 - info.data_offsets.0) as u64,
                shard: None,
            })
            .collect();
        tensors.sort_by(|a, b| a.name.cmp(&b.name));
        let metadata: BTreeMap<String, String> =
            metadata.metadata().clone().unwrap_or_default().into_iter().collect();
        let file_name = path.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        let step = metadata
            .get("step")
            .and_then(|s| s.trim().parse().ok())
            .or_else(|| parse_checkpoint_file_name(file_name));
        Ok(Checkpoint { path: path.to_path_buf(), step, file_bytes, tensors, metadata })
    }

    /// The file a tensor's bytes are in.
    fn file_of<'a>(&'a self, entry: &'a TensorEntry) -> &'a Path {
        entry.shard.as_deref().unwrap_or(&self.path)
    }

    /// A checkpoint sharded over several safetensors files, as its index
    /// (`model.safetensors.index.json`, whose `weight_map` names each
    /// tensor's file) describes it: one checkpoint of every shard's tensors.
    pub fn open_sharded(index: &Path) -> Result<Self, LoadError> {
        let err = |message: String| LoadError::checkpoint(index, message);
        let text = std::fs::read(index).map_err(|e| LoadError::io(index, e))?;
        let value: serde_json::Value = serde_json::from_slice(&text).map_err(|e| err(format!("invalid index: {e}")))?;
        let map = value.get("weight_map").and_then(|m| m.as_object()).ok_or_else(|| err("no \"weight_map\" object".into()))?;
        let mut files: Vec<&str> = map.values().filter_map(|v| v.as_str()).collect();
        files.sort_unstable();
        files.dedup();
        let dir = index.parent().unwrap_or(Path::new("."));
        let mut merged = Checkpoint { path: index.to_path_buf(), step: None, file_bytes: 0, tensors: Vec::new(), metadata: BTreeMap::new() };
        for name in files {
            // A shard is a file beside the index, never a path elsewhere.
            if name.contains(['/', '\\']) || name.starts_with('.') {
                return Err(err(format!("shard {name:?} is not a file name beside the index")));
            }
            let shard = Checkpoint::open(&dir.join(name))?;
            let path: std::sync::Arc<Path> = shard.path.clone().into();
            merged.file_bytes += shard.file_bytes;
            merged.metadata.extend(shard.metadata);
            merged.tensors.extend(shard.tensors.into_iter().map(|t| TensorEntry { shard: Some(path.clone()), ..t }));
        }
        merged.tensors.sort_by(|a, b| a.name.cmp(&b.name));
        merged.tensors.dedup_by(|a, b| a.name == b.name);
        Ok(merged)
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorEntry> {
        self.tensors.binary_search_by(|t| t.name.as_str().cmp(name)).ok().map(|i| &self.tensors[i])
    }

    /// Statistics of a floating-point tensor, streamed from the file.
    pub fn stats(&self, entry: &TensorEntry) -> Result<TensorStats, LoadError> {
        Ok(self.scan(entry, false)?.stats)
    }

    /// One streaming pass over a floating-point tensor: its statistics and,
    /// with `rows`, the fraction of its rows (output units, filters) that
    /// repeat an earlier row bit for bit. Rows are fingerprinted as they
    /// stream by; only rows whose fingerprints collide are read again and
    /// compared, so the pass costs what the statistics cost, and memory is
    /// 8 bytes a row for at most [`MAX_FINGERPRINTED_ROWS`] rows.
    pub fn scan(&self, entry: &TensorEntry, rows: bool) -> Result<Scan, LoadError> {
        let layout = if rows { RowLayout::of(entry) } else { None };
        let element = element_bytes(entry.dtype);
        // Parts hold whole rows when rows are fingerprinted, so that each
        // part's rows are its own; the split depends on the shape only.
        let unit = layout.map_or(element, |l| l.row_bytes);
        let part = (PART_BYTES / unit).max(1) * unit;
        // At least one part, so that an empty tensor still has statistics.
        let parts: Vec<Range<u64>> = (0..entry.bytes.max(1)).step_by(part as usize).map(|start| start..(start + part).min(entry.bytes)).collect();
        let partial: Vec<(StatsAccumulator, Vec<u64>)> =
            parts.into_par_iter().map(|range| self.accumulate(entry, range, layout)).collect::<Result<_, _>>()?;
        let mut acc = StatsAccumulator::new();
        let mut prints = Vec::new();
        for (p, hashes) in partial {
            acc.merge(&p);
            prints.extend(hashes);
        }
        let stats = acc.finish();
        // Constant matrices are all duplicates; the statistics already say so.
        let duplicate_rows = match layout {
            Some(layout) if stats.std > 0.0 => Some(self.duplicate_fraction(entry, layout, &prints)?),
            _ => None,
        };
        Ok(Scan { stats, duplicate_rows })
    }

    /// The statistics accumulator of a byte range of a tensor's data, and the
    /// fingerprints of the rows it holds (the range starts at a row).
    fn accumulate(&self, entry: &TensorEntry, range: Range<u64>, rows: Option<RowLayout>) -> Result<(StatsAccumulator, Vec<u64>), LoadError> {
        let mut acc = StatsAccumulator::new();
        let mut hasher = rows.map(|l| RowHasher::new(l, range.clone()));
        self.stream(entry, range, |chunk| {
            match entry.dtype {
                Dtype::F32 => acc.push_f32(&elements(chunk, f32::from_le_bytes)),
                Dtype::F64 => acc.push_f64(&elements(chunk, f64::from_le_bytes)),
                Dtype::F16 => acc.push_f16(&elements(chunk, f16::from_le_bytes)),
                Dtype::BF16 => acc.push_bf16(&elements(chunk, bf16::from_le_bytes)),
                _ => {}
            }
            if let Some(h) = hasher.as_mut() {
                h.feed(chunk);
            }
        })?;
        Ok((acc, hasher.map(|h| h.hashes).unwrap_or_default()))
    }

    /// The fraction of fingerprinted rows equal to an earlier one: rows are
    /// grouped by fingerprint, and within a group compared byte for byte.
    fn duplicate_fraction(&self, entry: &TensorEntry, layout: RowLayout, prints: &[u64]) -> Result<f64, LoadError> {
        if prints.len() < 2 {
            return Ok(0.0);
        }
        let mut order: Vec<(u64, u32)> = prints.iter().enumerate().map(|(row, &h)| (h, row as u32)).collect();
        order.sort_unstable();
        let mut repeats = 0usize;
        let path = self.file_of(entry);
        let mut file = File::open(path).map_err(|e| LoadError::io(path, e))?;
        let chunk = CHUNK_BYTES.min(layout.row_bytes as usize);
        let mut buffers = (vec![0u8; chunk], vec![0u8; chunk]);
        for group in order.chunk_by(|a, b| a.0 == b.0).filter(|g| g.len() > 1) {
            // Distinct rows of the group so far; a fingerprint collision
            // between different rows starts a new one.
            let mut distinct: Vec<u32> = vec![group[0].1];
            for &(_, row) in &group[1..] {
                let mut repeated = false;
                for &earlier in &distinct {
                    if self.rows_equal(&mut file, &mut buffers, entry, layout, earlier, row)? {
                        repeated = true;
                        break;
                    }
                }
                if repeated {
                    repeats += 1;
                } else {
                    distinct.push(row);
                }
            }
        }
        Ok(repeats as f64 / prints.len() as f64)
    }

    /// Whether two rows hold the same bytes, read a chunk at a time into
    /// the two buffers.
    fn rows_equal(
        &self,
        file: &mut File,
        (left, right): &mut (Vec<u8>, Vec<u8>),
        entry: &TensorEntry,
        layout: RowLayout,
        a: u32,
        b: u32,
    ) -> Result<bool, LoadError> {
        let mut done = 0u64;
        while done < layout.row_bytes {
            let n = (layout.row_bytes - done).min(left.len() as u64) as usize;
            for (row, buf) in [(a, &mut *left), (b, &mut *right)] {
                file.seek(SeekFrom::Start(entry.offset + u64::from(row) * layout.row_bytes + done)).map_err(|e| self.data_error(entry, e))?;
                file.read_exact(&mut buf[..n]).map_err(|e| self.data_error(entry, e))?;
            }
            if left[..n] != right[..n] {
                return Ok(false);
            }
            done += n as u64;
        }
        Ok(true)
    }

    /// A tensor's values as f64, for the small tensors rules look at whole
    /// (labels, logits, one batch's activations). Integer and float dtypes.
    pub fn values(&self, entry: &TensorEntry) -> Result<Vec<f64>, LoadError> {
        if entry.bytes > MAX_VALUES_BYTES {
            return Err(LoadError::Checkpoint {
                path: self.path.clone(),
                tensor: Some(entry.name.clone()),
                message: format!("{} bytes is too large to read whole (limit {MAX_VALUES_BYTES})", entry.bytes),
            });
        }
        let mut out = Vec::with_capacity((entry.bytes / element_bytes(entry.dtype)) as usize);
        let dtype = entry.dtype;
        let mut unsupported = false;
        self.stream(entry, 0..entry.bytes, |chunk| match dtype {
            Dtype::F32 => out.extend(elements(chunk, f32::from_le_bytes).iter().map(|&v| f64::from(v))),
            Dtype::F64 => out.extend(elements(chunk, f64::from_le_bytes).iter()),
            Dtype::F16 => out.extend(elements(chunk, f16::from_le_bytes).iter().map(|&v| f64::from(v))),
            Dtype::BF16 => out.extend(elements(chunk, bf16::from_le_bytes).iter().map(|&v| f64::from(v))),
            Dtype::I64 => out.extend(elements(chunk, i64::from_le_bytes).iter().map(|&v| v as f64)),
            Dtype::I32 => out.extend(elements(chunk, i32::from_le_bytes).iter().map(|&v| f64::from(v))),
            Dtype::U32 => out.extend(elements(chunk, u32::from_le_bytes).iter().map(|&v| f64::from(v))),
            Dtype::U8 => out.extend(chunk.iter().map(|&b| f64::from(b))),
            _ => unsupported = true,
        })?;
        if unsupported {
            return Err(LoadError::Checkpoint {
                path: self.path.clone(),
                tensor: Some(entry.name.clone()),
                message: format!("dtype {:?} is not supported here", entry.dtype),
            });
        }
        Ok(out)
    }

    /// Feeds the bytes `range` of the tensor's data to `each`, in chunks of
    /// whole elements that start 8-byte aligned in memory.
    fn stream(&self, entry: &TensorEntry, range: Range<u64>, mut each: impl FnMut(&[u8])) -> Result<(), LoadError> {
        let path = self.file_of(entry);
        let mut file = File::open(path).map_err(|e| LoadError::io(path, e))?;
        file.seek(SeekFrom::Start(entry.offset + range.start)).map_err(|e| LoadError::io(path, e))?;
        let element = element_bytes(entry.dtype) as usize;
        let chunk = (CHUNK_BYTES / element) * element;
        let mut left = (range.end - range.start) as usize;
        let mut words = vec![0u64; chunk.min(left).div_ceil(8)];
        let buf: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
        while left > 0 {
            let n = left.min(chunk);
            file.read_exact(&mut buf[..n]).map_err(|e| self.data_error(entry, e))?;
            each(&buf[..n]);
            left -= n;
        }
        Ok(())
    }

    /// A tensor's data that could not be read where its header says it is.
    fn data_error(&self, entry: &TensorEntry, e: std::io::Error) -> LoadError {
        LoadError::Checkpoint {
            path: self.path.clone(),
            tensor: Some(entry.name.clone()),
            message: format!("could not read its data ({e}); was the file changed while being read?"),
        }
    }
}

/// Rows fingerprinted per tensor at most (8 bytes each): a matrix with more
/// rows is judged by its first ones, so that memory is bounded whatever the
/// tensor's size.
pub const MAX_FINGERPRINTED_ROWS: u64 = 1 << 19;

/// What one pass over a tensor gives.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scan {
    pub stats: TensorStats,
    /// Fraction of the rows that repeat an earlier row exactly; `None` when
    /// not asked for, not a matrix, or constant.
    pub duplicate_rows: Option<f64>,
}

/// A tensor seen as rows: its first dimension, each row the rest.
#[derive(Debug, Clone, Copy, PartialEq)]
struct RowLayout {
    row_bytes: u64,
}

impl RowLayout {
    /// Rows of a tensor of rank 2 or more with at least two rows.
    fn of(entry: &TensorEntry) -> Option<RowLayout> {
        let rows = *entry.shape.first()? as u64;
        if entry.shape.len() < 2 || rows < 2 || entry.bytes == 0 || !entry.bytes.is_multiple_of(rows) {
            return None;
        }
        Some(RowLayout { row_bytes: entry.bytes / rows })
    }
}

/// Fingerprints the rows of a byte range as its chunks stream by: a row
/// within one chunk is hashed at once, a row that crosses a chunk's end is
/// hashed incrementally (xxh3 gives the same value either way).
struct RowHasher {
    row_bytes: usize,
    /// Rows still to fingerprint in this range.
    rows_left: u64,
    partial: Option<xxhash_rust::xxh3::Xxh3>,
    filled: usize,
    hashes: Vec<u64>,
}

impl RowHasher {
    fn new(layout: RowLayout, range: Range<u64>) -> Self {
        let first_row = range.start / layout.row_bytes;
        let rows = (range.end - range.start) / layout.row_bytes;
        let rows_left = rows.min(MAX_FINGERPRINTED_ROWS.saturating_sub(first_row));
        RowHasher { row_bytes: layout.row_bytes as usize, rows_left, partial: None, filled: 0, hashes: Vec::with_capacity(rows_left as usize) }
    }

    fn feed(&mut self, mut bytes: &[u8]) {
        while self.rows_left > 0 && !bytes.is_empty() {
            if let Some(state) = self.partial.as_mut() {
                let take = (self.row_bytes - self.filled).min(bytes.len());
                state.update(&bytes[..take]);
                self.filled += take;
                bytes = &bytes[take..];
                if self.filled == self.row_bytes {
                    self.hashes.push(state.digest());
                    self.partial = None;
                    self.rows_left -= 1;
                }
            } else if bytes.len() >= self.row_bytes {
                self.hashes.push(xxhash_rust::xxh3::xxh3_64(&bytes[..self.row_bytes]));
                bytes = &bytes[self.row_bytes..];
                self.rows_left -= 1;
            } else {
                let mut state = xxhash_rust::xxh3::Xxh3::new();
                state.update(bytes);
                self.filled = bytes.len();
                self.partial = Some(state);
                bytes = &[];
            }
        }
    }
}

fn element_bytes(dtype: Dtype) -> u64 {
    (dtype.bitsize() as u64 / 8).max(1)
}

/// The elements stored in `bytes` (little-endian, as safetensors stores them):
/// borrowed where memory has the same layout, decoded otherwise.
fn elements<const N: usize, T: bytemuck::Pod>(bytes: &[u8], from_le: fn([u8; N]) -> T) -> Cow<'_, [T]> {
    if cfg!(target_endian = "little") {
        if let Ok(values) = bytemuck::try_cast_slice(bytes) {
            return Cow::Borrowed(values);
        }
    }
    Cow::Owned(
        bytes
            .chunks_exact(N)
            .map(|c| {
                let mut a = [0u8; N];
                a.copy_from_slice(c);
                from_le(a)
            })
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streamed_half_float_statistics_match_the_accumulator() {
        let values: Vec<f32> = (0..3001).map(|i| ((i * 37 % 101) as f32 - 50.0) / 13.0).chain([f32::NAN, f32::INFINITY, 0.0]).collect();
        let halves: Vec<f16> = values.iter().map(|&v| f16::from_f32(v)).collect();
        let brains: Vec<bf16> = values.iter().map(|&v| bf16::from_f32(v)).collect();
        let bytes = |v: Vec<[u8; 2]>| v.concat();
        let f16_bytes = bytes(halves.iter().map(|h| h.to_le_bytes()).collect());
        let bf16_bytes = bytes(brains.iter().map(|h| h.to_le_bytes()).collect());
        let n = values.len();
        let header = format!(
            "{{\"a\":{{\"dtype\":\"F16\",\"shape\":[{n}],\"data_offsets\":[0,{}]}},\"b\":{{\"dtype\":\"BF16\",\"shape\":[{n}],\"data_offsets\":[{},{}]}}}}",
            2 * n,
            2 * n,
            4 * n
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("half.safetensors");
        let mut file = (header.len() as u64).to_le_bytes().to_vec();
        file.extend(header.as_bytes());
        file.extend(f16_bytes);
        file.extend(bf16_bytes);
        std::fs::write(&path, file).unwrap();
        let ckpt = Checkpoint::open(&path).unwrap();
        let mut want_a = StatsAccumulator::new();
        want_a.push_f16(&halves);
        let mut want_b = StatsAccumulator::new();
        want_b.push_bf16(&brains);
        for (name, want) in [("a", want_a.finish()), ("b", want_b.finish())] {
            let got = ckpt.stats(ckpt.tensor(name).unwrap()).unwrap();
            assert_eq!((got.count, got.nonfinite, got.min, got.max), (want.count, want.nonfinite, want.min, want.max), "{name}");
            assert!((got.mean - want.mean).abs() < 1e-12 && (got.std - want.std).abs() < 1e-12, "{name}");
        }
    }

    /// A checkpoint of one f32 tensor.
    fn write_f32(dir: &Path, shape: &[usize], values: &[f32]) -> Checkpoint {
        let n: usize = values.len() * 4;
        let header = format!("{{\"w\":{{\"dtype\":\"F32\",\"shape\":{shape:?},\"data_offsets\":[0,{n}]}}}}");
        let path = dir.join("w.safetensors");
        let mut file = (header.len() as u64).to_le_bytes().to_vec();
        file.extend(header.as_bytes());
        file.extend(values.iter().flat_map(|v| v.to_le_bytes()));
        std::fs::write(&path, file).unwrap();
        Checkpoint::open(&path).unwrap()
    }

    /// Duplicated rows are found whether they sit in one chunk, cross chunk
    /// ends, or fall into different parts reduced on different cores; the
    /// statistics are those of the plain pass.
    #[test]
    fn duplicate_rows_across_chunks_and_parts() {
        let dir = tempfile::tempdir().unwrap();
        let value = |i: usize| ((i * 2_654_435_761) % 1_000_003) as f32 / 1_000_003.0 - 0.5;
        for (rows, width, copies) in [(8usize, 5usize, vec![(1usize, 6usize)]), (60, 150_000, vec![(3, 58), (10, 11), (10, 40)])] {
            let mut values: Vec<f32> = (0..rows * width).map(value).collect();
            for &(from, to) in &copies {
                let row = values[from * width..(from + 1) * width].to_vec();
                values[to * width..(to + 1) * width].copy_from_slice(&row);
            }
            let ckpt = write_f32(dir.path(), &[rows, width], &values);
            let entry = ckpt.tensor("w").unwrap();
            let scan = ckpt.scan(entry, true).unwrap();
            assert_eq!(scan.duplicate_rows, Some(copies.len() as f64 / rows as f64), "{rows}x{width}");
            let plain = ckpt.scan(entry, false).unwrap();
            assert_eq!(plain.duplicate_rows, None);
            assert_eq!((scan.stats.count, scan.stats.min, scan.stats.max), (plain.stats.count, plain.stats.min, plain.stats.max));
            assert!((scan.stats.mean - plain.stats.mean).abs() < 1e-12);
        }
        // A constant matrix is left to the statistics (std = 0), and one row is no matrix.
        let ckpt = write_f32(dir.path(), &[4, 3], &[0.5; 12]);
        assert_eq!(ckpt.scan(ckpt.tensor("w").unwrap(), true).unwrap().duplicate_rows, None);
        let ckpt = write_f32(dir.path(), &[1, 3], &[0.5, 1.0, 2.0]);
        assert_eq!(ckpt.scan(ckpt.tensor("w").unwrap(), true).unwrap().duplicate_rows, None);
    }

    /// Rows whose fingerprints collide but whose bytes differ are not counted:
    /// the exact comparison decides.
    #[test]
    fn only_equal_bytes_count_as_duplicates() {
        let dir = tempfile::tempdir().unwrap();
        let ckpt = write_f32(dir.path(), &[3, 2], &[1.0, 2.0, 1.0, 2.5, 1.0, 2.0]);
        let entry = ckpt.tensor("w").unwrap();
        let layout = RowLayout::of(entry).unwrap();
        // Every row given the same fingerprint: only row 2 equals row 0.
        assert_eq!(ckpt.duplicate_fraction(entry, layout, &[7, 7, 7]).unwrap(), 1.0 / 3.0);
    }
}
