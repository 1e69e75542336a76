//! Small numeric helpers over series of `(step, value)` points, shared by the
//! rules so that each idea (a median, a smoothed curve, a window) has one
//! implementation.

/// A series of recorded values: `(step, value)` in increasing step order.
pub type Points = [(u64, f64)];

/// The finite points only.
pub fn finite(points: &Points) -> Vec<(u64, f64)> {
    points.iter().copied().filter(|(_, v)| v.is_finite()).collect()
}

/// The median of finite values; NaN for none.
pub fn median(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut v: Vec<f64> = values.into_iter().filter(|x| x.is_finite()).collect();
    if v.is_empty() {
        return f64::NAN;
    }
    // Selection, not a full sort: linear in the length.
    let (mid, odd) = (v.len() / 2, v.len() % 2 == 1);
    let (below, &mut upper, _) = v.select_nth_unstable_by(mid, f64::total_cmp);
    if odd {
        return upper;
    }
    // Everything before the middle is at most `upper`: the lower middle is their maximum.
    let lower = below.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (lower + upper) / 2.0
}

/// Median of each trailing window of `window` values (shorter at the start),
/// non-finite values left out: a smoothing that ignores single-step noise and
/// isolated spikes. The window is kept sorted as it slides: each point finds
/// the place of the value that leaves and of the one that comes (by counting
/// the smaller values, which vectorizes, in the short windows the rules use;
/// by binary search in long ones) and moves the values between.
pub fn rolling_median(values: &[f64], window: usize) -> Vec<f64> {
    // How many values of the window are below `v`: its place.
    fn place(sorted: &[f64], v: f64) -> usize {
        match sorted.len() {
            0..=64 => sorted.iter().map(|&x| usize::from(x < v)).sum(),
            _ => sorted.partition_point(|&x| x < v),
        }
    }
    let window = window.max(1);
    let mut sorted: Vec<f64> = Vec::with_capacity(window.min(values.len()));
    let finite = |v: f64| v.is_finite().then_some(v);
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let leaving = if i >= window { finite(values[i - window]) } else { None };
            match (finite(v), leaving) {
                // The value that leaves makes room for the one that comes.
                (Some(new), Some(old)) => {
                    let from = place(&sorted, old);
                    let to = place(&sorted, new);
                    if to <= from {
                        sorted.copy_within(to..from, to + 1);
                        sorted[to] = new;
                    } else {
                        sorted.copy_within(from + 1..to, from);
                        sorted[to - 1] = new;
                    }
                }
                (Some(new), None) => sorted.insert(place(&sorted, new), new),
                (None, Some(old)) => {
                    sorted.remove(place(&sorted, old));
                }
                (None, None) => {}
            }
            let n = sorted.len();
            match n {
                0 => f64::NAN,
                _ if n % 2 == 1 => sorted[n / 2],
                _ => (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0,
            }
        })
        .collect()
}

/// A smoothing window for a series of `n` points: 2% of it, at least 3 and
/// at most 51 (a median over more costs time and hides nothing more).
pub fn smoothing_window(n: usize) -> usize {
    (n / 50).clamp(3, 51)
}

/// The values split into `count` consecutive windows of (nearly) equal size.
pub fn windows(values: &[f64], count: usize) -> Vec<&[f64]> {
    let count = count.clamp(1, values.len().max(1));
    let size = values.len().div_ceil(count).max(1);
    values.chunks(size).collect()
}

/// The last index at or before which `steps` is at most `step`.
pub fn index_at_step(steps: &[u64], step: u64) -> usize {
    steps.partition_point(|&s| s <= step).saturating_sub(1)
}

/// Orders names as a person would: `fc2` before `fc10`.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    fn parts(s: &str) -> Vec<(bool, &str)> {
        let mut out = Vec::new();
        let mut start = 0;
        let bytes = s.as_bytes();
        for i in 1..=bytes.len() {
            if i == bytes.len() || bytes[i].is_ascii_digit() != bytes[i - 1].is_ascii_digit() {
                out.push((bytes[start].is_ascii_digit(), &s[start..i]));
                start = i;
            }
        }
        out
    }
    let (pa, pb) = (parts(a), parts(b));
    for (x, y) in pa.iter().zip(&pb) {
        let ord = match (x.0, y.0) {
            (true, true) => {
                let (nx, ny) = (x.1.trim_start_matches('0'), y.1.trim_start_matches('0'));
                nx.len().cmp(&ny.len()).then(nx.cmp(ny))
            }
            _ => x.1.cmp(y.1),
        };
        if ord.is_ne() {
            return ord;
        }
    }
    pa.len().cmp(&pb.len()).then(a.cmp(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn medians_and_windows() {
        assert_eq!(median([3.0, f64::NAN, 1.0, 2.0]), 2.0);
        assert_eq!(median([1.0, 4.0]), 2.5);
        assert_eq!(median([5.0, 1.0, 4.0, 2.0, 9.0, 3.0]), 3.5);
        assert!(median([]).is_nan());
        assert_eq!(rolling_median(&[1.0, 9.0, 2.0, 3.0], 3), [1.0, 5.0, 2.0, 3.0]);
        let v: Vec<f64> = (0..10).map(f64::from).collect();
        let w = windows(&v, 3);
        assert_eq!(w.len(), 3);
        assert_eq!(w[0], [0.0, 1.0, 2.0, 3.0]);
        assert_eq!(windows(&[], 4).len(), 0);
    }

    #[test]
    fn sliding_median_matches_the_plain_one() {
        // Repeats, both zeros, fractions of both signs, NaN and infinities.
        let values: Vec<f64> = (0..500)
            .map(|i| match i % 37 {
                5 => f64::NAN,
                9 => f64::INFINITY,
                11 => -0.0,
                12 => 0.0,
                _ => ((i * 7919) % 113) as f64 / 7.0 - 8.0,
            })
            .collect();
        for window in [1, 2, 3, 10, 51, 64, 65, 200] {
            let fast = rolling_median(&values, window);
            for (i, got) in fast.iter().enumerate() {
                let want = median(values[i.saturating_sub(window - 1)..=i].iter().copied());
                assert!(got == &want || (got.is_nan() && want.is_nan()), "window {window} at {i}: {got} vs {want}");
            }
        }
    }

    #[test]
    fn natural_order() {
        let mut names = vec!["fc10.weight", "fc2.weight", "fc1.weight", "out.weight", "conv1"];
        names.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(names, ["conv1", "fc1.weight", "fc2.weight", "fc10.weight", "out.weight"]);
        assert_eq!(index_at_step(&[0, 10, 20], 15), 1);
    }
}
