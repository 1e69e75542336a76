//! Recording from candle tensors (feature `candle`).
//!
//! On a GPU the statistics are reduced by candle on the tensor's own device and
//! only a handful of scalars cross to the host, so recording stays cheap inside
//! a training step. On the CPU the tensor is already on the host, and the exact
//! one-pass f64 accumulator of [`crate::stats`] is used instead. Checkpoints
//! copy tensors to the host, which is why they are rare by default.

use crate::format::{Activation, TensorKind, TensorStats, ACTIVATION_PREFIX, GRAD_PREFIX};
use crate::stats::{self, StatsAccumulator, UnitStats, DEAD_ACTIVE_FRACTION, SATURATED_EXAMPLE_FRACTION, SATURATION_MARGIN};
use crate::{Error, HostTensor, Recorder};
use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor};
use candle_nn::VarMap;
use safetensors::Dtype;
use std::collections::BTreeMap;

/// Statistics of any floating-point tensor, computed where it lives.
pub fn tensor_stats(tensor: &Tensor) -> Result<TensorStats, Error> {
    Ok(stats_many(&[(tensor, None)])?.remove(0))
}

/// Statistics of a layer's output, with `dead_frac`, `saturated_frac` and
/// `batch_std`.
pub fn activation_stats(tensor: &Tensor, activation: &Activation) -> Result<TensorStats, Error> {
    Ok(stats_many(&[(tensor, Some(activation))])?.remove(0))
}

/// Statistics of many tensors at once: `(tensor, Some(activation))` for a
/// layer output, `(tensor, None)` for anything else. On a GPU every reduction
/// runs there and all the results cross to the host in one transfer (one
/// synchronization per call instead of one per tensor); on the CPU the exact
/// host accumulator is used.
pub fn stats_many(tensors: &[(&Tensor, Option<&Activation>)]) -> Result<Vec<TensorStats>, Error> {
    if tensors.iter().all(|(t, _)| t.device().is_cpu()) {
        return tensors
            .iter()
            .map(|(tensor, activation)| {
                let values = tensor.flatten_all()?.to_dtype(DType::F32)?.to_vec1::<f32>()?;
                Ok(match activation {
                    Some(a) => stats::activation_stats(&values, tensor.dims(), a),
                    None => stats::stats_f32(&values),
                })
            })
            .collect();
    }
    device_stats_many(tensors)
}

/// [`stats_many`] with every reduction done by candle ops on the tensors'
/// device (which must be the same for all) and one transfer of the results.
pub fn device_stats_many(tensors: &[(&Tensor, Option<&Activation>)]) -> Result<Vec<TensorStats>, Error> {
    let mut out = vec![StatsAccumulator::new().finish(); tensors.len()];
    let mut packed: Vec<Tensor> = Vec::new();
    // Per device tensor: its position, element count, and whether unit scalars follow.
    let mut pending: Vec<(usize, u64, bool)> = Vec::new();
    for (i, (tensor, activation)) in tensors.iter().enumerate() {
        out[i].count = tensor.elem_count() as u64;
        let Some(scalars) = device_scalars(tensor)? else { continue };
        packed.push(scalars);
        let units = match activation {
            Some(a) => device_unit_scalars(tensor, a)?,
            None => None,
        };
        pending.push((i, tensor.elem_count() as u64, units.is_some()));
        packed.extend(units);
    }
    if packed.is_empty() {
        return Ok(out);
    }
    let host = Tensor::cat(&packed, 0)?.to_dtype(DType::F64)?.to_vec1::<f64>()?;
    let mut at = 0;
    for (i, count, has_units) in pending {
        out[i] = decode(count, &host[at..at + SCALARS]);
        at += SCALARS;
        if has_units {
            let activation = tensors[i].1.unwrap_or(&Activation::None);
            UnitStats {
                dead_frac: host[at],
                saturated_frac: activation.saturation_bounds().map(|_| host[at + 1]),
                batch_std: host[at + 2],
            }
            .apply(&mut out[i]);
            at += UNIT_SCALARS;
        }
    }
    Ok(out)
}

/// Scalars per tensor of [`device_scalars`].
const SCALARS: usize = 8;
/// Scalars per layer output of [`device_unit_scalars`].
const UNIT_SCALARS: usize = 3;

/// The reductions of [`tensor_stats`] done with candle ops, on any device,
/// read back at once. Sums run in f32 on the device; the variance is taken
/// around the mean (two passes) so it stays accurate where the mean is large.
pub fn device_stats(tensor: &Tensor) -> Result<TensorStats, Error> {
    match device_scalars(tensor)? {
        Some(s) => Ok(decode(tensor.elem_count() as u64, &s.to_dtype(DType::F64)?.to_vec1::<f64>()?)),
        None => Ok(StatsAccumulator::new().finish()),
    }
}

/// `[finite count, sum, centered sum of squares, sum of |x|, sum of squares,
/// min, max, zero count]` as a tensor on the tensor's device; `None` when empty.
fn device_scalars(tensor: &Tensor) -> Result<Option<Tensor>, Error> {
    let x = tensor.flatten_all()?.to_dtype(DType::F32)?;
    if x.elem_count() == 0 {
        return Ok(None);
    }
    // |x| <= MAX is false for NaN and for both infinities.
    let finite = x.abs()?.le(f32::MAX as f64)?;
    let zero = x.zeros_like()?;
    let inf = Tensor::full(f32::INFINITY, x.shape(), x.device())?;
    let xf = finite.where_cond(&x, &zero)?;
    let n_finite = finite.to_dtype(DType::F32)?.sum_all()?;
    let sum = xf.sum_all()?;
    let mean = sum.broadcast_div(&n_finite.clamp(1f32, f32::MAX)?)?;
    let centered = finite.where_cond(&x.broadcast_sub(&mean)?, &zero)?;
    let scalars = [
        n_finite,
        sum,
        centered.sqr()?.sum_all()?,
        xf.abs()?.sum_all()?,
        xf.sqr()?.sum_all()?,
        finite.where_cond(&x, &inf)?.min_all()?,
        finite.where_cond(&x, &inf.neg()?)?.max_all()?,
        x.eq(0f64)?.to_dtype(DType::F32)?.sum_all()?,
    ];
    Ok(Some(Tensor::stack(&scalars, 0)?))
}

/// [`TensorStats`] from the scalars of [`device_scalars`].
fn decode(count: u64, host: &[f64]) -> TensorStats {
    let [n, sum, var_sum, abs_sum, sq_sum, min, max, zeros] = host[..SCALARS] else {
        unreachable!("SCALARS values are passed")
    };
    let n_finite = n.round() as u64;
    let mut out = StatsAccumulator::new().finish();
    out.count = count;
    out.nonfinite = count.saturating_sub(n_finite);
    out.zero_frac = zeros / count as f64;
    if n_finite > 0 {
        out.mean = sum / n;
        out.std = (var_sum / n).max(0.0).sqrt();
        out.abs_mean = abs_sum / n;
        out.l2 = sq_sum.sqrt();
        out.min = min;
        out.max = max;
    }
    out
}

/// [`UnitStats`] computed with candle ops and read back; `None` for a tensor
/// without a batch and a unit dimension.
pub fn device_unit_stats(tensor: &Tensor, activation: &Activation) -> Result<Option<UnitStats>, Error> {
    let Some(scalars) = device_unit_scalars(tensor, activation)? else { return Ok(None) };
    let host = scalars.to_dtype(DType::F64)?.to_vec1::<f64>()?;
    Ok(Some(UnitStats {
        dead_frac: host[0],
        saturated_frac: activation.saturation_bounds().map(|_| host[1]),
        batch_std: host[2],
    }))
}

/// `[dead fraction, saturated fraction, batch std]` on the tensor's device.
fn device_unit_scalars(tensor: &Tensor, activation: &Activation) -> Result<Option<Tensor>, Error> {
    let dims = tensor.dims();
    if dims.len() < 2 || dims.contains(&0) {
        return Ok(None);
    }
    let per_unit = match dims.len() {
        2 => tensor.to_dtype(DType::F32)?,
        _ => tensor.to_dtype(DType::F32)?.flatten_from(2)?.mean(2)?,
    };
    let active = per_unit.gt(0f64)?.to_dtype(DType::F32)?.mean(0)?;
    let dead = active.lt(DEAD_ACTIVE_FRACTION)?.to_dtype(DType::F32)?.mean_all()?;
    let centered = per_unit.broadcast_sub(&per_unit.mean_keepdim(0)?)?;
    let batch_std = centered.sqr()?.mean(0)?.sqrt()?.mean_all()?;
    let saturated = match activation.saturation_bounds() {
        Some((lo, hi)) => {
            let at_bound = (per_unit.lt(lo + SATURATION_MARGIN)?.to_dtype(DType::F32)?
                + per_unit.gt(hi - SATURATION_MARGIN)?.to_dtype(DType::F32)?)?;
            at_bound.mean(0)?.gt(SATURATED_EXAMPLE_FRACTION)?.to_dtype(DType::F32)?.mean_all()?
        }
        None => dead.zeros_like()?,
    };
    Ok(Some(Tensor::stack(&[dead, saturated, batch_std], 0)?))
}

/// Copies a tensor to the host for a checkpoint.
pub fn host_tensor(tensor: &Tensor) -> Result<HostTensor, Error> {
    let flat = tensor.flatten_all()?;
    let shape = tensor.dims().to_vec();
    let (dtype, data): (Dtype, Vec<u8>) = match tensor.dtype() {
        DType::F32 => (Dtype::F32, flat.to_vec1::<f32>()?.iter().flat_map(|v| v.to_le_bytes()).collect()),
        DType::F64 => (Dtype::F64, flat.to_vec1::<f64>()?.iter().flat_map(|v| v.to_le_bytes()).collect()),
        DType::F16 => (Dtype::F16, flat.to_vec1::<half::f16>()?.iter().flat_map(|v| v.to_le_bytes()).collect()),
        DType::BF16 => (Dtype::BF16, flat.to_vec1::<half::bf16>()?.iter().flat_map(|v| v.to_le_bytes()).collect()),
        DType::U32 => (Dtype::U32, flat.to_vec1::<u32>()?.iter().flat_map(|v| v.to_le_bytes()).collect()),
        DType::I64 => (Dtype::I64, flat.to_vec1::<i64>()?.iter().flat_map(|v| v.to_le_bytes()).collect()),
        DType::U8 => (Dtype::U8, flat.to_vec1::<u8>()?),
        // Anything rarer is widened to f32, which every reader understands.
        _ => (Dtype::F32, flat.to_dtype(DType::F32)?.to_vec1::<f32>()?.iter().flat_map(|v| v.to_le_bytes()).collect()),
    };
    Ok(HostTensor { dtype, shape, data })
}

/// The variables of a `VarMap`, sorted by name so that records come out in a
/// stable order.
pub fn sorted_vars(varmap: &VarMap) -> Vec<(String, Tensor)> {
    let data = varmap.data().lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let mut vars: Vec<(String, Tensor)> =
        data.iter().map(|(name, var)| (name.clone(), var.as_tensor().clone())).collect();
    vars.sort_by(|a, b| a.0.cmp(&b.0));
    vars
}

/// Records the parameters of a model held in a `VarMap`: weight statistics,
/// gradient statistics, and the update since the previous call, kept on the
/// device as a copy of the previous values.
#[derive(Debug, Default)]
pub struct ParamRecorder {
    previous: BTreeMap<String, Tensor>,
}

impl ParamRecorder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Logs `weight`, `grad` (when `grads` holds one) and `update` lines for
    /// every variable. Call it at the steps the policy wants statistics for.
    pub fn log(
        &mut self,
        recorder: &mut Recorder,
        step: u64,
        varmap: &VarMap,
        grads: Option<&GradStore>,
    ) -> Result<(), Error> {
        let mut rows: Vec<(String, TensorKind, Tensor)> = Vec::new();
        for (name, value) in sorted_vars(varmap) {
            if let Some(grad) = grads.and_then(|g| g.get(&value)) {
                rows.push((name.clone(), TensorKind::Grad, grad.clone()));
            }
            if let Some(before) = self.previous.get(&name) {
                rows.push((name.clone(), TensorKind::Update, (&value - before)?));
            }
            self.previous.insert(name.clone(), value.copy()?.detach());
            rows.push((name, TensorKind::Weight, value));
        }
        // Weight, grad, update per parameter, as the format lists the kinds.
        rows.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.cmp(&b.1)));
        let inputs: Vec<(&Tensor, Option<&Activation>)> = rows.iter().map(|(_, _, t)| (t, None)).collect();
        for ((name, kind, tensor), stats) in rows.iter().zip(stats_many(&inputs)?) {
            recorder.log_tensor_shaped(step, name, *kind, tensor.dims(), &stats)?;
        }
        Ok(())
    }
}

/// What a checkpoint written from candle holds besides the parameters.
#[derive(Debug, Default)]
pub struct CheckpointExtras<'a> {
    pub grads: Option<&'a GradStore>,
    /// Layer outputs, `(layer name, tensor)`, stored as `act/<layer>`.
    pub activations: &'a [(String, Tensor)],
    pub input: Option<&'a Tensor>,
    pub labels: Option<&'a Tensor>,
    pub logits: Option<&'a Tensor>,
}

/// Writes a checkpoint of every variable in `varmap`, with what `extras` holds.
pub fn write_checkpoint(
    recorder: &mut Recorder,
    step: u64,
    varmap: &VarMap,
    extras: &CheckpointExtras<'_>,
) -> Result<std::path::PathBuf, Error> {
    let mut tensors = Vec::new();
    for (name, value) in sorted_vars(varmap) {
        if let Some(grad) = extras.grads.and_then(|g| g.get(&value)) {
            tensors.push((format!("{GRAD_PREFIX}{name}"), host_tensor(grad)?));
        }
        tensors.push((name, host_tensor(&value)?));
    }
    for (layer, output) in extras.activations {
        tensors.push((format!("{ACTIVATION_PREFIX}{layer}"), host_tensor(output)?));
    }
    let named = [
        (crate::format::INPUT_TENSOR, extras.input),
        (crate::format::LABELS_TENSOR, extras.labels),
        (crate::format::LOGITS_TENSOR, extras.logits),
    ];
    for (name, tensor) in named {
        if let Some(tensor) = tensor {
            tensors.push((name.to_string(), host_tensor(tensor)?));
        }
    }
    recorder.write_checkpoint(step, &tensors)
}

/// A metric of a step: a value already on the host, or one kept on the
/// device until [`DeviceMetrics::flush`].
#[derive(Debug, Clone)]
pub enum StepValue {
    Host(f64),
    /// A scalar tensor, written as it is.
    Scalar(Tensor),
    /// A scalar tensor whose square root is written (a norm kept squared).
    Sqrt(Tensor),
    /// A vector of class counts.
    Counts(Tensor),
}

impl StepValue {
    fn tensor(&self) -> Option<&Tensor> {
        match self {
            StepValue::Host(_) => None,
            StepValue::Scalar(t) | StepValue::Sqrt(t) | StepValue::Counts(t) => Some(t),
        }
    }
}

/// Per-step metrics kept on the device and written in batches: a step that
/// records nothing else does not wait for the device. [`DeviceMetrics::flush`]
/// moves every waiting value to the host in one transfer and writes one line
/// per step, its metrics in the order they were given; call it on the steps
/// that record statistics (which transfer anyway), when
/// [`DeviceMetrics::is_full`], and at the end.
#[derive(Debug)]
pub struct DeviceMetrics {
    pending: Vec<(u64, Vec<(String, StepValue)>)>,
    flush_every: usize,
}

impl DeviceMetrics {
    pub fn new(flush_every: usize) -> Self {
        DeviceMetrics { pending: Vec::new(), flush_every: flush_every.max(1) }
    }

    /// Adds a step's metrics; nothing is read from the device.
    pub fn push(&mut self, step: u64, metrics: Vec<(String, StepValue)>) {
        self.pending.push((step, metrics));
    }

    /// Whether `flush_every` steps are waiting.
    pub fn is_full(&self) -> bool {
        self.pending.len() >= self.flush_every
    }

    /// Writes the waiting steps' lines: all their device values cross to the
    /// host in one transfer (they must be on one device).
    pub fn flush(&mut self, recorder: &mut Recorder) -> Result<(), Error> {
        let tensors: Vec<Tensor> = self
            .pending
            .iter()
            .flat_map(|(_, metrics)| metrics.iter().filter_map(|(_, v)| v.tensor()))
            .map(|t| t.flatten_all().and_then(|t| t.to_dtype(DType::F64)))
            .collect::<Result<_, _>>()?;
        let host = if tensors.is_empty() { Vec::new() } else { Tensor::cat(&tensors, 0)?.to_vec1::<f64>()? };
        let mut at = 0;
        for (step, values) in self.pending.drain(..) {
            let mut metrics = crate::Metrics::new();
            for (name, value) in values {
                let n = value.tensor().map_or(0, Tensor::elem_count);
                let read = host.get(at..at + n).unwrap_or_default();
                at += n;
                let first = read.first().copied().unwrap_or(f64::NAN);
                metrics = match value {
                    StepValue::Host(v) => metrics.scalar(name, v),
                    StepValue::Scalar(_) => metrics.scalar(name, first),
                    StepValue::Sqrt(_) => metrics.scalar(name, first.sqrt()),
                    StepValue::Counts(_) => metrics.counts(name, read.iter().map(|c| c.round().max(0.0) as u64).collect()),
                };
            }
            recorder.log_metrics(step, &metrics)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-9)
    }

    fn sample() -> Vec<f32> {
        (0..1001).map(|i| ((i * 37 % 101) as f32 - 50.0) / 7.0 + 3.0).collect()
    }

    #[test]
    fn device_reductions_match_the_host_accumulator() {
        let mut values = sample();
        values[5] = f32::NAN;
        values[6] = f32::INFINITY;
        values[7] = 0.0;
        let tensor = Tensor::from_vec(values.clone(), (7, 11, 13), &Device::Cpu).unwrap();
        let host = stats::stats_f32(&values);
        for dtype in [DType::F32, DType::BF16] {
            let t = tensor.to_dtype(dtype).unwrap();
            let on_device = device_stats(&t).unwrap();
            let via_host = tensor_stats(&t).unwrap();
            let tol = if dtype == DType::F32 { 1e-5 } else { 1e-2 };
            assert_eq!(on_device.count, host.count);
            assert_eq!(on_device.nonfinite, 2);
            for (a, b) in [(on_device.mean, host.mean), (on_device.std, host.std), (via_host.std, host.std), (on_device.l2, host.l2)] {
                assert!(close(a, b, tol), "{dtype:?}: {a} vs {b}");
            }
            assert!(close(on_device.zero_frac, host.zero_frac, 1e-9));
        }
    }

    #[test]
    fn device_unit_stats_match_the_host() {
        let values: Vec<f32> = (0..4 * 6 * 3).map(|i| ((i % 7) as f32 - 4.0) / 4.0).collect();
        let t = Tensor::from_vec(values.clone(), (4, 6, 3), &Device::Cpu).unwrap().tanh().unwrap();
        let host_values = t.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        for act in [Activation::Tanh, Activation::Relu] {
            let want = stats::unit_stats(&host_values, &[4, 6, 3], &act).unwrap();
            let got = device_unit_stats(&t, &act).unwrap().unwrap();
            assert!(close(got.dead_frac, want.dead_frac, 1e-9), "{act:?} dead {got:?} vs {want:?}");
            assert!(close(got.batch_std, want.batch_std, 1e-5), "{got:?} vs {want:?}");
            assert_eq!(got.saturated_frac.is_some(), want.saturated_frac.is_some());
            if let (Some(a), Some(b)) = (got.saturated_frac, want.saturated_frac) {
                assert!(close(a, b, 1e-9));
            }
        }
    }

    #[test]
    fn batched_device_reductions_match_one_by_one() {
        let a = Tensor::from_vec(sample(), (7, 11, 13), &Device::Cpu).unwrap();
        let b = Tensor::from_vec((0..60).map(|i| (i % 9) as f32 / 9.0).collect::<Vec<_>>(), (12, 5), &Device::Cpu).unwrap();
        let empty = Tensor::zeros((0, 3), DType::F32, &Device::Cpu).unwrap();
        let relu = Activation::Relu;
        let batched = device_stats_many(&[(&a, None), (&empty, None), (&b, Some(&relu))]).unwrap();
        let host = stats_many(&[(&a, None), (&empty, None), (&b, Some(&relu))]).unwrap();
        assert!(close(batched[0].std, host[0].std, 1e-5) && close(batched[0].mean, host[0].mean, 1e-5));
        assert_eq!((batched[1].count, host[1].count), (0, 0));
        assert!(close(batched[2].l2, host[2].l2, 1e-5));
        assert!(close(batched[2].dead_frac.unwrap(), host[2].dead_frac.unwrap(), 1e-9));
        assert!(close(batched[2].batch_std.unwrap(), host[2].batch_std.unwrap(), 1e-5));
        assert_eq!(batched[2].saturated_frac, None);
    }

    /// Scalars kept on the device are written in the order given, one line
    /// per step, only when flushed.
    #[test]
    fn device_metrics_write_in_batches() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = Recorder::create(dir.path(), crate::RunMeta::new("t")).unwrap();
        let mut metrics = DeviceMetrics::new(2);
        let scalar = |v: f32| Tensor::new(v, &Device::Cpu).unwrap();
        metrics.push(0, vec![("loss".into(), StepValue::Scalar(scalar(2.5))), ("lr".into(), StepValue::Host(0.1)), ("grad_norm".into(), StepValue::Sqrt(scalar(9.0)))]);
        assert!(!metrics.is_full());
        let counts = Tensor::new(&[3f32, 0.0, 1.0], &Device::Cpu).unwrap();
        metrics.push(1, vec![("loss".into(), StepValue::Scalar(scalar(f32::NAN))), ("label_counts".into(), StepValue::Counts(counts))]);
        assert!(metrics.is_full());
        let path = dir.path().join(crate::format::METRICS_FILE);
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        metrics.flush(&mut rec).unwrap();
        assert!(!metrics.is_full());
        let text = std::fs::read_to_string(&path).unwrap();
        assert_eq!(text, "{\"step\":0,\"loss\":2.5,\"lr\":0.1,\"grad_norm\":3.0}\n{\"step\":1,\"loss\":NaN,\"label_counts\":[3,0,1]}\n");
    }

    #[test]
    fn param_recorder_logs_weights_grads_and_updates() {
        let dir = tempfile::tempdir().unwrap();
        let mut rec = Recorder::create(dir.path(), crate::RunMeta::new("t")).unwrap();
        let varmap = VarMap::new();
        let w = varmap.get((2, 2), "fc.weight", candle_nn::Init::Const(1.0), DType::F32, &Device::Cpu).unwrap();
        let loss = w.sqr().unwrap().sum_all().unwrap();
        let grads = loss.backward().unwrap();
        let mut params = ParamRecorder::new();
        params.log(&mut rec, 0, &varmap, Some(&grads)).unwrap();
        let var = varmap.all_vars().remove(0);
        var.set(&(w.as_ref() * 0.5).unwrap()).unwrap();
        params.log(&mut rec, 1, &varmap, None).unwrap();
        write_checkpoint(&mut rec, 1, &varmap, &CheckpointExtras { grads: Some(&grads), ..Default::default() }).unwrap();
        rec.finish().unwrap();
        let text = std::fs::read_to_string(dir.path().join("tensors.jsonl")).unwrap();
        let kinds: Vec<(u64, String)> = text
            .lines()
            .map(|l| serde_json::from_str::<crate::TensorRecord>(l).unwrap())
            .map(|r| (r.step, r.kind.as_str().to_string()))
            .collect();
        assert_eq!(kinds, [(0, "weight".into()), (0, "grad".into()), (1, "weight".into()), (1, "update".into())]);
        let update: crate::TensorRecord = serde_json::from_str(text.lines().nth(3).unwrap()).unwrap();
        assert!(close(update.stats.mean, -0.5, 1e-9));
        let bytes = std::fs::read(dir.path().join("checkpoints/step-00000001.safetensors")).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        let mut names = st.names();
        names.sort();
        assert_eq!(names, ["fc.weight", "grad/fc.weight"]);
    }
}
