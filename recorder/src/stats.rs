//! One-pass tensor statistics on the host, for f32, f64, f16 and bf16 data.
//!
//! Sums are kept in f64 (for half floats, in f32 over short blocks first), and
//! the variance from values shifted by the first finite element, so that a
//! tensor whose mean is large against its spread (a bias vector near 1.0, say)
//! keeps its standard deviation exact. The accumulator is streaming and
//! mergeable: feed it chunk by chunk, or give each thread its own and merge
//! them. The loop is compiled for the widest vector instructions the CPU has,
//! chosen at run time, with the same result on every CPU.

use crate::format::{Activation, TensorStats};
use half::{bf16, f16};
use std::ops::{Add, Mul, Sub};

/// Running sums for [`TensorStats`]; `push_*` any number of slices, then `finish`.
#[derive(Debug, Clone)]
pub struct StatsAccumulator {
    count: u64,
    /// The shift of the variance sums; `None` until a finite value is seen.
    shift: Option<f64>,
    sums: Sums,
}

impl Default for StatsAccumulator {
    fn default() -> Self {
        StatsAccumulator { count: 0, shift: None, sums: Sums::EMPTY }
    }
}

/// Values per block of the inner loop: sums are kept per lane, which lets the
/// compiler vectorize and keeps rounding error growing with log of the length.
/// The lane count fixes the order of the additions, so every instruction set
/// gives the same bits.
const LANES: usize = 8;

/// Half floats are summed in f32 over blocks of this many values per lane
/// (16 lanes) before the block sums join the f64 lanes: twice the values per
/// instruction. A block sum's relative error stays under 1e-6, a thousand
/// times finer than the half float's own precision; a block whose f32 sums
/// overflow or underflow (bf16 spans the range of f32) is summed again in f64.
const NARROW_BLOCK: usize = 16;
const NARROW_LANES: usize = 16;

impl StatsAccumulator {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push_f32(&mut self, values: &[f32]) {
        if let Some(shift) = self.start(values, |v| v as f64) {
            self.sums.add(&reduce_f32::best(values, shift));
        }
    }

    pub fn push_f64(&mut self, values: &[f64]) {
        if let Some(shift) = self.start(values, |v| v) {
            self.sums.add(&reduce_f64::best(values, shift));
        }
    }

    pub fn push_f16(&mut self, values: &[f16]) {
        if let Some(shift) = self.start(values, |v| v.to_f64()) {
            self.sums.add(&reduce_f16::best(values, shift));
        }
    }

    pub fn push_bf16(&mut self, values: &[bf16]) {
        if let Some(shift) = self.start(values, |v| v.to_f64()) {
            self.sums.add(&reduce_bf16::best(values, shift));
        }
    }

    /// Counts the values and returns the shift of the variance sums, or `None`
    /// while no finite value has been seen (then only the counts change).
    fn start<T: Copy>(&mut self, values: &[T], to_f64: impl Fn(T) -> f64) -> Option<f64> {
        self.count += values.len() as u64;
        if self.shift.is_none() {
            self.shift = values.iter().map(|&v| to_f64(v)).find(|v| v.is_finite());
        }
        self.shift
    }

    /// Adds what another accumulator has seen, as if its values came after ours.
    pub fn merge(&mut self, other: &StatsAccumulator) {
        self.count += other.count;
        // Without a shift the other has seen no finite value: its sums are empty.
        let Some(other_shift) = other.shift else { return };
        let shift = *self.shift.get_or_insert(other_shift);
        // Re-centre the other's shifted sums on our shift: sum(x - a) = sum(x - b) + n (b - a).
        let delta = other_shift - shift;
        let mut recentred = other.sums.clone();
        let n = other.sums.finite as f64;
        recentred.sum_sq_shifted += 2.0 * delta * other.sums.sum_shifted + n * delta * delta;
        recentred.sum_shifted += n * delta;
        self.sums.add(&recentred);
    }

    pub fn finish(&self) -> TensorStats {
        let s = &self.sums;
        let n = s.finite as f64;
        let (mean, std, min, max, abs_mean, l2) = match self.shift {
            Some(shift) if s.finite > 0 => {
                let mean_shifted = s.sum_shifted / n;
                let var = (s.sum_sq_shifted / n - mean_shifted * mean_shifted).max(0.0);
                (shift + mean_shifted, var.sqrt(), s.min, s.max, s.sum_abs / n, s.sum_sq.sqrt())
            }
            _ => (f64::NAN, f64::NAN, f64::NAN, f64::NAN, f64::NAN, f64::NAN),
        };
        TensorStats {
            count: self.count,
            mean,
            std,
            min,
            max,
            abs_mean,
            l2,
            zero_frac: if self.count == 0 { f64::NAN } else { s.zeros as f64 / self.count as f64 },
            nonfinite: self.count - s.finite,
            dead_frac: None,
            saturated_frac: None,
            batch_std: None,
        }
    }
}

/// The sums of the finite values seen (zeros and finite are counts).
#[derive(Debug, Clone)]
struct Sums {
    finite: u64,
    zeros: u64,
    sum_shifted: f64,
    sum_sq_shifted: f64,
    sum_sq: f64,
    sum_abs: f64,
    min: f64,
    max: f64,
}

impl Sums {
    const EMPTY: Sums = Sums {
        finite: 0,
        zeros: 0,
        sum_shifted: 0.0,
        sum_sq_shifted: 0.0,
        sum_sq: 0.0,
        sum_abs: 0.0,
        min: f64::INFINITY,
        max: f64::NEG_INFINITY,
    };

    fn add(&mut self, other: &Sums) {
        self.finite += other.finite;
        self.zeros += other.zeros;
        self.sum_shifted += other.sum_shifted;
        self.sum_sq_shifted += other.sum_sq_shifted;
        self.sum_sq += other.sum_sq;
        self.sum_abs += other.sum_abs;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }
}

/// Per-lane running sums of the one-pass loop, generic over the float they
/// are kept in (f64; f32 within a half-float block) and the count type.
#[derive(Clone, Copy)]
struct Lanes<F, C, const N: usize> {
    finite: [C; N],
    zeros: [C; N],
    s1: [F; N],
    s2: [F; N],
    sq: [F; N],
    sa: [F; N],
    lo: [F; N],
    hi: [F; N],
}

/// What the loop needs of a float.
trait LaneFloat: Copy + PartialOrd + Add<Output = Self> + Sub<Output = Self> + Mul<Output = Self> + Into<f64> {
    const ZERO: Self;
    const INFINITY: Self;
    fn abs(self) -> Self;
}

impl LaneFloat for f32 {
    const ZERO: f32 = 0.0;
    const INFINITY: f32 = f32::INFINITY;
    fn abs(self) -> f32 {
        f32::abs(self)
    }
}

impl LaneFloat for f64 {
    const ZERO: f64 = 0.0;
    const INFINITY: f64 = f64::INFINITY;
    fn abs(self) -> f64 {
        f64::abs(self)
    }
}

impl<F: LaneFloat, C: Copy + From<bool> + Add<Output = C> + Into<u64>, const N: usize> Lanes<F, C, N> {
    fn new() -> Self {
        let (zero, infinity) = (F::ZERO, F::INFINITY);
        Lanes {
            finite: [C::from(false); N],
            zeros: [C::from(false); N],
            s1: [zero; N],
            s2: [zero; N],
            sq: [zero; N],
            sa: [zero; N],
            lo: [infinity; N],
            hi: [zero - infinity; N],
        }
    }

    /// Adds `x` to lane `lane`. Branch-free: a non-finite value adds zero to
    /// every sum and infinity to min and max, which are compare-and-select
    /// (one min/max instruction; `f64::min` does not vectorize, and a
    /// condition that also tests finiteness turns into a slow masked store).
    #[inline(always)]
    fn add(&mut self, lane: usize, x: F, shift: F) {
        let ok = x.abs() < F::INFINITY;
        let xf = if ok { x } else { F::ZERO };
        let d = if ok { x - shift } else { F::ZERO };
        self.finite[lane] = self.finite[lane] + C::from(ok);
        self.zeros[lane] = self.zeros[lane] + C::from(x == F::ZERO);
        self.s1[lane] = self.s1[lane] + d;
        self.s2[lane] = self.s2[lane] + d * d;
        self.sq[lane] = self.sq[lane] + xf * xf;
        self.sa[lane] = self.sa[lane] + xf.abs();
        let (low, high) = if ok { (x, x) } else { (F::INFINITY, F::ZERO - F::INFINITY) };
        self.lo[lane] = if low < self.lo[lane] { low } else { self.lo[lane] };
        self.hi[lane] = if high > self.hi[lane] { high } else { self.hi[lane] };
    }

    /// The lanes added up, in lane order.
    fn sums(&self) -> Sums {
        let total = |v: &[F; N]| v.iter().fold(0f64, |acc, &x| acc + x.into());
        Sums {
            finite: self.finite.iter().map(|&c| c.into()).sum(),
            zeros: self.zeros.iter().map(|&c| c.into()).sum(),
            sum_shifted: total(&self.s1),
            sum_sq_shifted: total(&self.s2),
            sum_sq: total(&self.sq),
            sum_abs: total(&self.sa),
            min: self.lo.iter().fold(f64::INFINITY, |m, &v| m.min(v.into())),
            max: self.hi.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v.into())),
        }
    }
}

/// The one-pass loop. Inlined into each instruction-set variant below, so the
/// same source is compiled for the widest vectors the CPU has.
#[inline(always)]
fn reduce<T: Copy>(values: &[T], shift: f64, to_f64: impl Fn(T) -> f64) -> Sums {
    let mut lanes = Lanes::<f64, u64, LANES>::new();
    let mut blocks = values.chunks_exact(LANES);
    for block in &mut blocks {
        // Indexed by lane on purpose: each lane is its own accumulator.
        #[allow(clippy::needless_range_loop)]
        for lane in 0..LANES {
            lanes.add(lane, to_f64(block[lane]), shift);
        }
    }
    for (lane, &v) in blocks.remainder().iter().enumerate() {
        lanes.add(lane, to_f64(v), shift);
    }
    lanes.sums()
}

/// A row of half floats as f32, one lane each.
type Row = [f32; NARROW_LANES];

/// [`reduce`] for half floats: f32 sums over short blocks (see [`NARROW_BLOCK`]).
/// `row_to_f32` widens a row at once (one instruction where the CPU has it),
/// `to_f32` one value.
#[inline(always)]
fn reduce_narrow<T: Copy>(
    values: &[T],
    shift: f64,
    to_f32: impl Fn(T) -> f32,
    row_to_f32: impl Fn(&[T; NARROW_LANES]) -> Row,
) -> Sums {
    const TINY: f32 = 1.0 / (1u64 << 40) as f32;
    let shift32 = shift as f32;
    // Block sums join these f64 lanes; blocks summed again in f64 join `total`.
    let mut wide = Lanes::<f64, u64, NARROW_LANES>::new();
    let mut total = Sums::EMPTY;
    let mut blocks = values.chunks_exact(NARROW_LANES * NARROW_BLOCK);
    for block in &mut blocks {
        let mut b = Lanes::<f32, u32, NARROW_LANES>::new();
        for row in block.chunks_exact(NARROW_LANES) {
            let Ok(row) = <&[T; NARROW_LANES]>::try_from(row) else { continue };
            let x = row_to_f32(row);
            #[allow(clippy::needless_range_loop)]
            for lane in 0..NARROW_LANES {
                b.add(lane, x[lane], shift32);
            }
        }
        // Squares of values under 2^-40 near f32's underflow; sums past its
        // largest value overflow. Such a block is summed again in f64. (Plain
        // comparisons, not f32::max, so that this check vectorizes too.)
        let mut out_of_range = false;
        for lane in 0..NARROW_LANES {
            let peak = if -b.lo[lane] > b.hi[lane] { -b.lo[lane] } else { b.hi[lane] };
            let overflow = !(b.s1[lane].abs() < f32::INFINITY)
                | !(b.s2[lane] < f32::INFINITY)
                | !(b.sq[lane] < f32::INFINITY)
                | !(b.sa[lane] < f32::INFINITY);
            out_of_range |= overflow | ((peak > 0.0) & (peak < TINY));
        }
        if out_of_range {
            total.add(&reduce(block, shift, |v| to_f32(v) as f64));
            continue;
        }
        for lane in 0..NARROW_LANES {
            wide.finite[lane] += u64::from(b.finite[lane]);
            wide.zeros[lane] += u64::from(b.zeros[lane]);
            wide.s1[lane] += f64::from(b.s1[lane]);
            wide.s2[lane] += f64::from(b.s2[lane]);
            wide.sq[lane] += f64::from(b.sq[lane]);
            wide.sa[lane] += f64::from(b.sa[lane]);
            let (lo, hi) = (f64::from(b.lo[lane]), f64::from(b.hi[lane]));
            wide.lo[lane] = if lo < wide.lo[lane] { lo } else { wide.lo[lane] };
            wide.hi[lane] = if hi > wide.hi[lane] { hi } else { wide.hi[lane] };
        }
    }
    total.add(&wide.sums());
    total.add(&reduce(blocks.remainder(), shift, |v| to_f32(v) as f64));
    total
}

/// An f16's value, branch-free so that the loop vectorizes (the `half`
/// crate's conversion checks the CPU on every call).
#[inline(always)]
fn f16_to_f32(v: f16) -> f32 {
    let bits = u32::from(v.to_bits());
    let sign = (bits & 0x8000) << 16;
    let magnitude = bits & 0x7fff;
    let value = if magnitude < 0x400 {
        // Subnormal: an integer count of 2^-24, exact in f32.
        magnitude as f32 * (1.0 / 16_777_216.0)
    } else if magnitude >= 0x7c00 {
        f32::from_bits((magnitude << 13) | 0x7f80_0000)
    } else {
        // Rebias the exponent from 15 to 127.
        f32::from_bits((magnitude << 13) + (112 << 23))
    };
    f32::from_bits(value.to_bits() | sign)
}

/// An bf16's value: the upper half of an f32.
#[inline(always)]
fn bf16_to_f32(v: bf16) -> f32 {
    f32::from_bits(u32::from(v.to_bits()) << 16)
}

/// Defines `$name(values, shift)`, which runs a loop compiled for AVX-512 or
/// AVX2 when the CPU has them (checked at run time, once) and for the
/// baseline otherwise: a build for generic x86-64 would otherwise use 2-lane
/// SSE2 and run 5x slower. Each variant's body is given; the short form gives
/// all three the same one.
macro_rules! reduce_dispatched {
    ($name:ident, $t:ty, |$v:ident, $s:ident| $body:expr) => {
        reduce_dispatched!($name, $t, avx512: |$v, $s| $body, avx2 ["avx2"]: |$v, $s| $body, baseline: |$v, $s| $body);
    };
    ($name:ident, $t:ty,
     avx512: |$v1:ident, $s1:ident| $avx512:expr,
     avx2 [$($feature:tt),+]: |$v2:ident, $s2:ident| $avx2:expr,
     baseline: |$v3:ident, $s3:ident| $baseline:expr) => {
        /// The variants of one loop (tests call each).
        #[allow(unsafe_code)]
        mod $name {
            use super::*;

            #[cfg(target_arch = "x86_64")]
            #[target_feature(enable = "avx512f")]
            pub unsafe fn avx512($v1: &[$t], $s1: f64) -> Sums {
                $avx512
            }

            #[cfg(target_arch = "x86_64")]
            $(#[target_feature(enable = $feature)])+
            pub unsafe fn avx2($v2: &[$t], $s2: f64) -> Sums {
                $avx2
            }

            pub fn baseline($v3: &[$t], $s3: f64) -> Sums {
                $baseline
            }

            /// The widest variant this CPU runs.
            pub fn best(values: &[$t], shift: f64) -> Sums {
                #[cfg(target_arch = "x86_64")]
                {
                    if std::arch::is_x86_feature_detected!("avx512f") {
                        // SAFETY: the CPU supports AVX-512F (checked above).
                        return unsafe { avx512(values, shift) };
                    }
                    if $(std::arch::is_x86_feature_detected!($feature))&&+ {
                        // SAFETY: the CPU supports these features (checked above).
                        return unsafe { avx2(values, shift) };
                    }
                }
                baseline(values, shift)
            }
        }
    };
}

reduce_dispatched!(reduce_f32, f32, |values, shift| reduce(values, shift, |v: f32| v as f64));
reduce_dispatched!(reduce_f64, f64, |values, shift| reduce(values, shift, |v: f64| v));
reduce_dispatched!(reduce_bf16, bf16, |values, shift| reduce_narrow(values, shift, bf16_to_f32, |row| row.map(bf16_to_f32)));
// f16 rows are widened by the CPU's conversion instruction (exact, as is
// `f16_to_f32`), 16 values at once with AVX-512, 8 with F16C.
reduce_dispatched!(
    reduce_f16,
    f16,
    avx512: |values, shift| reduce_narrow(values, shift, f16_to_f32, |row| {
        use std::arch::x86_64::{__m256i, _mm512_cvtph_ps};
        bytemuck::cast(_mm512_cvtph_ps(bytemuck::cast::<[f16; NARROW_LANES], __m256i>(*row)))
    }),
    avx2 ["avx2", "f16c"]: |values, shift| reduce_narrow(values, shift, f16_to_f32, |row| {
        use std::arch::x86_64::{__m128i, _mm256_cvtph_ps};
        let [low, high] = bytemuck::cast::<[f16; NARROW_LANES], [__m128i; 2]>(*row);
        bytemuck::cast([_mm256_cvtph_ps(low), _mm256_cvtph_ps(high)])
    }),
    baseline: |values, shift| reduce_narrow(values, shift, f16_to_f32, |row| row.map(f16_to_f32))
);

/// Statistics of an f32 slice in one pass.
pub fn stats_f32(values: &[f32]) -> TensorStats {
    let mut acc = StatsAccumulator::new();
    acc.push_f32(values);
    acc.finish()
}

/// A unit is dead when it is positive on fewer than this fraction of examples.
pub const DEAD_ACTIVE_FRACTION: f64 = 0.01;
/// A value closer than this to a bound of the output range is saturated
/// (tanh: |a| > 0.97; sigmoid: a < 0.03 or a > 0.97).
pub const SATURATION_MARGIN: f64 = 0.03;
/// A unit is saturated when it is saturated on more than this fraction of examples.
pub const SATURATED_EXAMPLE_FRACTION: f64 = 0.99;

/// The per-unit value of each example: `[batch, units]` as is, and for
/// `[batch, channels, spatial...]` each channel's spatial mean per example.
/// Returns `(batch, units, values)` with values laid out example-major.
pub fn unit_values(values: &[f32], shape: &[usize]) -> Option<(usize, usize, Vec<f64>)> {
    let (&batch, rest) = shape.split_first()?;
    let units = *rest.first().unwrap_or(&1);
    let spatial: usize = rest.iter().skip(1).product();
    if batch == 0 || units == 0 || spatial == 0 || batch * units * spatial != values.len() {
        return None;
    }
    let mut out = Vec::with_capacity(batch * units);
    for cell in values.chunks_exact(spatial) {
        out.push(cell.iter().map(|&v| v as f64).sum::<f64>() / spatial as f64);
    }
    Some((batch, units, out))
}

/// What a layer's output says about its units, beyond the plain statistics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct UnitStats {
    pub dead_frac: f64,
    /// Only for saturating nonlinearities.
    pub saturated_frac: Option<f64>,
    /// Mean over units of each unit's standard deviation across the examples:
    /// how much the layer's output still depends on the input.
    pub batch_std: f64,
}

impl UnitStats {
    /// Copies the unit statistics into a [`TensorStats`].
    pub fn apply(&self, stats: &mut TensorStats) {
        stats.dead_frac = Some(self.dead_frac);
        stats.saturated_frac = self.saturated_frac;
        stats.batch_std = Some(self.batch_std);
    }
}

/// `dead_frac`, `saturated_frac` and `batch_std` of a layer's output, as the
/// format defines them.
pub fn unit_stats(values: &[f32], shape: &[usize], activation: &Activation) -> Option<UnitStats> {
    let (batch, units, per_unit) = unit_values(values, shape)?;
    let bounds = activation.saturation_bounds();
    let mut dead = 0usize;
    let mut saturated = 0usize;
    let mut std_sum = 0f64;
    for unit in 0..units {
        let column = || (0..batch).map(|example| per_unit[example * units + unit]);
        let mut positive = 0usize;
        let mut at_bound = 0usize;
        for v in column() {
            positive += (v > 0.0) as usize;
            if let Some((lo, hi)) = bounds {
                at_bound += (v < lo + SATURATION_MARGIN || v > hi - SATURATION_MARGIN) as usize;
            }
        }
        let mean = column().sum::<f64>() / batch as f64;
        std_sum += (column().map(|v| (v - mean) * (v - mean)).sum::<f64>() / batch as f64).sqrt();
        dead += ((positive as f64) < DEAD_ACTIVE_FRACTION * batch as f64) as usize;
        saturated += ((at_bound as f64) > SATURATED_EXAMPLE_FRACTION * batch as f64) as usize;
    }
    Some(UnitStats {
        dead_frac: dead as f64 / units as f64,
        saturated_frac: bounds.map(|_| saturated as f64 / units as f64),
        batch_std: std_sum / units as f64,
    })
}

/// Statistics of a layer's output, with its [`UnitStats`].
pub fn activation_stats(values: &[f32], shape: &[usize], activation: &Activation) -> TensorStats {
    let mut stats = stats_f32(values);
    if let Some(units) = unit_stats(values, shape, activation) {
        units.apply(&mut stats);
    }
    stats
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook two-pass computation that the one-pass one must match.
    fn reference(values: &[f64]) -> (f64, f64, f64, f64, f64, f64, u64) {
        let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        let n = finite.len() as f64;
        let mean = finite.iter().sum::<f64>() / n;
        let var = finite.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n;
        let min = finite.iter().copied().fold(f64::INFINITY, f64::min);
        let max = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let abs_mean = finite.iter().map(|v| v.abs()).sum::<f64>() / n;
        let l2 = finite.iter().map(|v| v * v).sum::<f64>().sqrt();
        let zeros = values.iter().filter(|&&v| v == 0.0).count() as u64;
        (mean, var.sqrt(), min, max, abs_mean, l2, zeros)
    }

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-12)
    }

    /// A small seeded generator, so the test needs no crate for randomness.
    fn pseudo_random(seed: u64, n: usize) -> Vec<f32> {
        let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (0..n)
            .map(|_| {
                state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((state >> 40) as f32 / (1u64 << 24) as f32) * 4.0 - 1.5
            })
            .collect()
    }

    #[test]
    fn matches_reference_with_nonfinite_and_odd_length() {
        let mut values = pseudo_random(7, 1003);
        values[3] = f32::NAN;
        values[500] = f32::INFINITY;
        values[1002] = f32::NEG_INFINITY;
        values[10] = 0.0;
        let stats = stats_f32(&values);
        let as_f64: Vec<f64> = values.iter().map(|&v| v as f64).collect();
        let (mean, std, min, max, abs_mean, l2, zeros) = reference(&as_f64);
        assert_eq!(stats.count, 1003);
        assert_eq!(stats.nonfinite, 3);
        assert!(close(stats.mean, mean, 1e-12), "{} vs {mean}", stats.mean);
        assert!(close(stats.std, std, 1e-12));
        assert_eq!((stats.min, stats.max), (min, max));
        assert!(close(stats.abs_mean, abs_mean, 1e-12));
        assert!(close(stats.l2, l2, 1e-12));
        assert!(close(stats.zero_frac, zeros as f64 / 1003.0, 1e-12));
    }

    #[test]
    fn every_dtype_and_length_matches_reference() {
        for len in (0..70).chain([1023, 4097, 9001]) {
            let mut values = pseudo_random(len as u64, len);
            for (i, special) in [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, 0.0, -0.0].into_iter().enumerate() {
                if let Some(v) = values.get_mut(i * 7 % len.max(1)) {
                    *v = special;
                }
            }
            let halves: Vec<f16> = values.iter().map(|&v| f16::from_f32(v)).collect();
            let brains: Vec<bf16> = values.iter().map(|&v| bf16::from_f32(v)).collect();
            let wide: Vec<f64> = values.iter().map(|&v| v as f64).collect();
            let cases: [(&str, Vec<f64>, TensorStats); 4] = [
                ("f32", wide.clone(), stats_f32(&values)),
                ("f64", wide.clone(), {
                    let mut acc = StatsAccumulator::new();
                    acc.push_f64(&wide);
                    acc.finish()
                }),
                ("f16", halves.iter().map(|v| v.to_f64()).collect(), {
                    let mut acc = StatsAccumulator::new();
                    acc.push_f16(&halves);
                    acc.finish()
                }),
                ("bf16", brains.iter().map(|v| v.to_f64()).collect(), {
                    let mut acc = StatsAccumulator::new();
                    acc.push_bf16(&brains);
                    acc.finish()
                }),
            ];
            for (dtype, as_f64, stats) in cases {
                let what = format!("{dtype}, {len} values");
                // Half floats are summed in f32 over short blocks (NARROW_BLOCK).
                let tolerance = if dtype.ends_with("16") { 1e-6 } else { 1e-12 };
                let finite = as_f64.iter().filter(|v| v.is_finite()).count();
                assert_eq!((stats.count, stats.nonfinite), (len as u64, (len - finite) as u64), "{what}");
                if finite == 0 {
                    assert!(stats.mean.is_nan(), "{what}");
                    continue;
                }
                let (mean, std, min, max, abs_mean, l2, zeros) = reference(&as_f64);
                assert!(close(stats.mean, mean, tolerance), "{what}: mean {} vs {mean}", stats.mean);
                assert!(close(stats.std, std, tolerance.max(1e-10)), "{what}: std {} vs {std}", stats.std);
                assert_eq!((stats.min, stats.max), (min, max), "{what}");
                assert!(close(stats.abs_mean, abs_mean, tolerance), "{what}");
                assert!(close(stats.l2, l2, tolerance), "{what}");
                assert_eq!(stats.zero_frac, zeros as f64 / len as f64, "{what}");
            }
        }
    }

    /// Every variant this CPU can run gives the bits of the baseline loop.
    #[test]
    #[allow(unsafe_code)]
    fn every_instruction_set_gives_the_baseline_bits() {
        let mut values = pseudo_random(5, 10_007);
        values[17] = f32::NAN;
        values[9000] = f32::NEG_INFINITY;
        values[33] = 1e-6; // an f16 subnormal
        let wide: Vec<f64> = values.iter().map(|&v| v as f64).collect();
        let halves: Vec<f16> = values.iter().map(|&v| f16::from_f32(v)).collect();
        let brains: Vec<bf16> = values.iter().map(|&v| bf16::from_f32(v)).collect();
        let bits = |p: Sums| (p.finite, p.zeros, [p.sum_shifted, p.sum_sq_shifted, p.sum_sq, p.sum_abs, p.min, p.max].map(f64::to_bits));
        #[cfg(target_arch = "x86_64")]
        {
            use std::arch::is_x86_feature_detected as has;
            let mut checked = 0;
            if has!("avx512f") {
                // SAFETY: the CPU supports AVX-512F (checked above).
                unsafe {
                    assert_eq!(bits(reduce_f32::avx512(&values, 0.25)), bits(reduce_f32::baseline(&values, 0.25)));
                    assert_eq!(bits(reduce_f64::avx512(&wide, 0.25)), bits(reduce_f64::baseline(&wide, 0.25)));
                    assert_eq!(bits(reduce_f16::avx512(&halves, 0.25)), bits(reduce_f16::baseline(&halves, 0.25)));
                    assert_eq!(bits(reduce_bf16::avx512(&brains, 0.25)), bits(reduce_bf16::baseline(&brains, 0.25)));
                }
                checked += 1;
            }
            if has!("avx2") && has!("f16c") {
                // SAFETY: the CPU supports AVX2 and F16C (checked above).
                unsafe {
                    assert_eq!(bits(reduce_f32::avx2(&values, 0.25)), bits(reduce_f32::baseline(&values, 0.25)));
                    assert_eq!(bits(reduce_f16::avx2(&halves, 0.25)), bits(reduce_f16::baseline(&halves, 0.25)));
                    assert_eq!(bits(reduce_bf16::avx2(&brains, 0.25)), bits(reduce_bf16::baseline(&brains, 0.25)));
                }
                checked += 1;
            }
            eprintln!("{checked} vector variants checked against the baseline");
        }
        // The baseline itself is the plain loop.
        assert_eq!(bits(reduce_f32::baseline(&values, 0.25)), bits(reduce(&values, 0.25, |v: f32| v as f64)));
    }

    #[test]
    fn branch_free_f16_conversion_is_exact_for_every_bit_pattern() {
        for bits in 0..=u16::MAX {
            let h = f16::from_bits(bits);
            let (ours, theirs) = (f16_to_f32(h), h.to_f32());
            assert!(ours.to_bits() == theirs.to_bits() || (ours.is_nan() && theirs.is_nan()), "{bits:#06x}");
        }
    }

    #[test]
    fn half_float_blocks_beyond_f32_range_are_summed_in_f64() {
        // Squares of 1e30 overflow f32 and squares of 1e-30 underflow it.
        for scale in [1e30f32, 1e-30, 1e-20] {
            let values: Vec<f32> = pseudo_random(9, 2000).iter().map(|v| v * scale).collect();
            let brains: Vec<bf16> = values.iter().map(|&v| bf16::from_f32(v)).collect();
            let mut acc = StatsAccumulator::new();
            acc.push_bf16(&brains);
            let stats = acc.finish();
            let (mean, std, _, _, abs_mean, l2, _) = reference(&brains.iter().map(|v| v.to_f64()).collect::<Vec<_>>());
            for (what, got, want) in [("mean", stats.mean, mean), ("std", stats.std, std), ("abs", stats.abs_mean, abs_mean), ("l2", stats.l2, l2)] {
                assert!(got.is_finite() && (got - want).abs() <= 1e-6 * want.abs(), "scale {scale}: {what} {got} vs {want}");
            }
        }
    }

    #[test]
    fn large_offset_keeps_std() {
        let values: Vec<f64> = (0..10_000).map(|i| 1.0e6 + (i % 2) as f64 * 1e-3).collect();
        let mut acc = StatsAccumulator::new();
        acc.push_f64(&values);
        let stats = acc.finish();
        assert!(close(stats.std, 5e-4, 1e-6), "std {}", stats.std);
    }

    #[test]
    fn chunked_and_merged_equal_one_pass() {
        let values = pseudo_random(3, 777);
        let whole = stats_f32(&values);
        let mut streamed = StatsAccumulator::new();
        for chunk in values.chunks(50) {
            streamed.push_f32(chunk);
        }
        let (a, b) = values.split_at(333);
        let mut left = StatsAccumulator::new();
        left.push_f32(a);
        let mut right = StatsAccumulator::new();
        right.push_f32(b);
        left.merge(&right);
        for other in [streamed.finish(), left.finish()] {
            assert_eq!(other.count, whole.count);
            assert!(close(other.mean, whole.mean, 1e-12));
            assert!(close(other.std, whole.std, 1e-10));
            assert!(close(other.l2, whole.l2, 1e-12));
            assert_eq!((other.min, other.max), (whole.min, whole.max));
        }
    }

    #[test]
    fn half_types_match_their_f32_values() {
        let values = pseudo_random(11, 257);
        let halves: Vec<f16> = values.iter().map(|&v| f16::from_f32(v)).collect();
        let brains: Vec<bf16> = values.iter().map(|&v| bf16::from_f32(v)).collect();
        let mut acc = StatsAccumulator::new();
        acc.push_f16(&halves);
        let from_f16 = acc.finish();
        let widened: Vec<f32> = halves.iter().map(|v| v.to_f32()).collect();
        assert!(close(from_f16.mean, stats_f32(&widened).mean, 1e-6));
        let mut acc = StatsAccumulator::new();
        acc.push_bf16(&brains);
        let widened: Vec<f32> = brains.iter().map(|v| v.to_f32()).collect();
        assert!(close(acc.finish().std, stats_f32(&widened).std, 1e-6));
    }

    #[test]
    fn all_nonfinite_or_empty_has_no_moments() {
        let stats = stats_f32(&[f32::NAN, f32::INFINITY]);
        assert_eq!((stats.count, stats.nonfinite), (2, 2));
        assert!(stats.mean.is_nan() && stats.min.is_nan());
        let empty = stats_f32(&[]);
        assert_eq!(empty.count, 0);
        assert!(empty.zero_frac.is_nan());
    }

    #[test]
    fn dead_and_saturated_units() {
        // 4 examples x 3 units: unit 0 always negative (dead), unit 1 mixed, unit 2 always positive.
        let relu_out = [0.0, 0.5, 1.0, 0.0, 0.0, 2.0, 0.0, 0.1, 3.0, 0.0, 0.0, 1.0];
        let u = unit_stats(&relu_out, &[4, 3], &Activation::Relu).unwrap();
        assert!(close(u.dead_frac, 1.0 / 3.0, 1e-12));
        assert_eq!(u.saturated_frac, None);
        // Unit 0 never varies; unit 1 (0.5, 0, 0.1, 0) and unit 2 (1, 2, 3, 1) do.
        let std1 = (0.065f64 - 0.15 * 0.15).sqrt();
        let std2 = (15.0f64 / 4.0 - 1.75 * 1.75).sqrt();
        assert!(close(u.batch_std, (std1 + std2) / 3.0, 1e-9), "{}", u.batch_std);
        // tanh: unit 0 pinned at -0.99, unit 1 near zero.
        let tanh_out = [-0.99, 0.1, -0.995, -0.2, -0.98, 0.0, -0.999, 0.3];
        let u = unit_stats(&tanh_out, &[4, 2], &Activation::Tanh).unwrap();
        assert_eq!(u.saturated_frac, Some(0.5));
        // A convolution's unit is a channel: [batch 2, channels 2, 2 x 1 spatial].
        let conv = [1.0, -3.0, 1.0, 1.0, 2.0, -4.0, 0.5, 0.5];
        let u = unit_stats(&conv, &[2, 2, 2, 1], &Activation::Relu).unwrap();
        assert!(close(u.dead_frac, 0.5, 1e-12));
        assert!(unit_stats(&conv, &[3, 2], &Activation::Relu).is_none());
    }
}
