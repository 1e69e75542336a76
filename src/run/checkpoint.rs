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
const MAX_HEADER_BYTES: u64 = 100_000_000;
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
}

fn dtype_name<S: serde::Serializer>(dtype: &Dtype, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format!("{dtype:?}"))
}

impl TensorEntry {
    pub fn elements(&self) -> usize {
        self.shape.iter().product()
    }

    /// Whether [`Checkpoint::stats`] can read it.
    pub fn is_float(&self) -> bool {
        matches!(self.dtype, Dtype::F32 | Dtype::F16 | Dtype::BF16 | Dtype::F64)
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

    pub fn tensor(&self, name: &str) -> Option<&TensorEntry> {
        self.tensors.binary_search_by(|t| t.name.as_str().cmp(name)).ok().map(|i| &self.tensors[i])
    }

    /// Statistics of a floating-point tensor, streamed from the file.
    pub fn stats(&self, entry: &TensorEntry) -> Result<TensorStats, LoadError> {
        let part = (PART_BYTES / element_bytes(entry.dtype)) * element_bytes(entry.dtype);
        if entry.bytes <= part {
            return Ok(self.accumulate(entry, 0..entry.bytes)?.finish());
        }
        let parts: Vec<Range<u64>> =
            (0..entry.bytes).step_by(part as usize).map(|start| start..(start + part).min(entry.bytes)).collect();
        let partial: Vec<StatsAccumulator> =
            parts.into_par_iter().map(|range| self.accumulate(entry, range)).collect::<Result<_, _>>()?;
        let mut acc = StatsAccumulator::new();
        for p in &partial {
            acc.merge(p);
        }
        Ok(acc.finish())
    }

    /// The statistics accumulator of a byte range of a tensor's data.
    fn accumulate(&self, entry: &TensorEntry, range: Range<u64>) -> Result<StatsAccumulator, LoadError> {
        let mut acc = StatsAccumulator::new();
        self.stream(entry, range, |chunk| match entry.dtype {
            Dtype::F32 => acc.push_f32(&elements(chunk, f32::from_le_bytes)),
            Dtype::F64 => acc.push_f64(&elements(chunk, f64::from_le_bytes)),
            Dtype::F16 => acc.push_f16(&elements(chunk, f16::from_le_bytes)),
            Dtype::BF16 => acc.push_bf16(&elements(chunk, bf16::from_le_bytes)),
            _ => {}
        })?;
        Ok(acc)
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
        let mut out = Vec::with_capacity(entry.elements());
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
        let path = &self.path;
        let mut file = File::open(path).map_err(|e| LoadError::io(path, e))?;
        file.seek(SeekFrom::Start(entry.offset + range.start)).map_err(|e| LoadError::io(path, e))?;
        let element = element_bytes(entry.dtype) as usize;
        let chunk = (CHUNK_BYTES / element) * element;
        let mut left = (range.end - range.start) as usize;
        let mut words = vec![0u64; chunk.min(left).div_ceil(8)];
        let buf: &mut [u8] = bytemuck::cast_slice_mut(&mut words);
        while left > 0 {
            let n = left.min(chunk);
            file.read_exact(&mut buf[..n]).map_err(|e| LoadError::Checkpoint {
                path: path.clone(),
                tensor: Some(entry.name.clone()),
                message: format!("could not read its data ({e}); was the file changed while being read?"),
            })?;
            each(&buf[..n]);
            left -= n;
        }
        Ok(())
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
}
