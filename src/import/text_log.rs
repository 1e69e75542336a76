//! A training script's printed log. Presets read the common shapes:
//!
//! - `key:value` / `key=value` lines with a step: nanoGPT-style
//!   `step:120/6200 train_loss:3.41`, llm.c's `s:120 trl:3.41 lr:0.0006 norm:0.31`,
//!   `step=120 loss=3.41`;
//! - nanoGPT's `iter 120: loss 3.41, ...` and `step 250: train loss 3.40, val loss 3.45`;
//! - Keras progress output: `Epoch 3/20` and then `... - loss: 0.41 - acc: 0.87 - val_loss: 0.52`.
//!
//! `--pattern` reads other shapes: a regular expression with a named group
//! `step` and one named group per metric. Lines that match nothing (a
//! training script printed before its log) are ignored. A step (or Keras
//! epoch) that starts again from the first one begins a new fit.

use super::{choose_fit, metrics_run, name_of, Fit, ImportOptions, SourceFormat};
use crate::error::{LoadError, Warning};
use crate::run::Run;
use postmortem_recorder::RunMeta;
use regex::Regex;
use std::path::Path;
use std::sync::LazyLock;

/// A number as logs print it, `nan` and `inf` included.
const NUMBER: &str = r"[-+]?(?:\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|nan|NaN|inf|Inf)";

static KEY_VALUE: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!(r"(?:^|[\s,|\[(])(?P<key>[A-Za-z][\w./-]*)\s*[:=]\s*(?P<value>{NUMBER})(?P<unit>[A-Za-z%]*)(?:/(?P<total>\d+))?")).expect("valid"));
static NANOGPT_ITER: LazyLock<Regex> = LazyLock::new(|| Regex::new(&format!(r"^iter (?P<step>\d+): loss (?P<loss>{NUMBER})")).expect("valid"));
static NANOGPT_EVAL: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(&format!(r"^step (?P<step>\d+): train loss (?P<loss>{NUMBER}), val loss (?P<val_loss>{NUMBER})")).expect("valid"));
static KERAS_EPOCH: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^Epoch (?P<epoch>\d+)/(?P<epochs>\d+)\s*$").expect("valid"));
static KERAS_METRIC: LazyLock<Regex> = LazyLock::new(|| Regex::new(&format!(r"(?:^|\s)(?P<key>[A-Za-z_][\w]*): (?P<value>{NUMBER})")).expect("valid"));

/// Keys that name the step of a `key:value` line.
const STEP_KEYS: [&str; 6] = ["step", "s", "iter", "it", "iteration", "global_step"];
/// Short names some logs use, and the format's key for each.
const ALIASES: [(&str, &str); 5] = [("trl", "loss"), ("tel", "val_loss"), ("norm", "grad_norm"), ("gnorm", "grad_norm"), ("train_loss", "train_loss")];

/// One metric line: its step and values, or a Keras epoch header.
enum Line {
    Values { step: u64, values: Vec<(String, f64)> },
    KerasEpoch(u64),
    KerasValues(Vec<(String, f64)>),
}

/// Whether the first bytes of a file read as a training log: at least two
/// lines that a preset reads, or lines the general grammar reads
/// ([`super::log_lines`]).
pub fn looks_like_a_log(head: &str) -> bool {
    head.lines().filter(|line| read_line(line, None).is_some()).take(2).count() == 2 || super::log_lines::looks_like_a_log(head)
}

fn number(text: &str) -> Option<f64> {
    crate::jsonl::text_number(text)
}

fn read_line(raw: &str, pattern: Option<&Regex>) -> Option<Line> {
    // Progress bars redraw with \r and backspaces: the last drawing counts.
    let line = raw.rsplit('\r').find(|s| !s.trim().is_empty()).unwrap_or(raw);
    let line = line.rsplit('\u{8}').next().unwrap_or(line).trim();
    if let Some(pattern) = pattern {
        let captures = pattern.captures(line)?;
        let step = captures.name("step").and_then(|m| m.as_str().parse().ok())?;
        let values: Vec<(String, f64)> = pattern
            .capture_names()
            .flatten()
            .filter(|n| *n != "step")
            .filter_map(|n| Some((n.to_string(), number(captures.name(n)?.as_str())?)))
            .collect();
        return (!values.is_empty()).then_some(Line::Values { step, values });
    }
    if let Some(c) = KERAS_EPOCH.captures(line) {
        return c["epoch"].parse().ok().map(Line::KerasEpoch);
    }
    for preset in [&*NANOGPT_EVAL, &*NANOGPT_ITER] {
        if let Some(c) = preset.captures(line) {
            let step = c["step"].parse().ok()?;
            let values = ["loss", "val_loss"].iter().filter_map(|k| Some((k.to_string(), number(c.name(k)?.as_str())?))).collect();
            return Some(Line::Values { step, values });
        }
    }
    // A number with a unit (`train_time:5ms`) is a measurement of the
    // machine, not of the training.
    let pairs: Vec<(&str, &str)> = KEY_VALUE
        .captures_iter(line)
        .filter(|c| c.name("unit").is_none_or(|u| u.as_str().is_empty()))
        .map(|c| (c.name("key").map_or("", |m| m.as_str()), c.name("value").map_or("", |m| m.as_str())))
        .collect();
    let step = pairs.iter().find(|(k, _)| STEP_KEYS.contains(&k.to_ascii_lowercase().as_str())).and_then(|(_, v)| v.parse::<u64>().ok());
    if let Some(step) = step {
        let values: Vec<(String, f64)> = pairs
            .iter()
            .filter(|(k, _)| !STEP_KEYS.contains(&k.to_ascii_lowercase().as_str()))
            .filter_map(|(k, v)| Some((k.to_string(), number(v)?)))
            .collect();
        if values.iter().any(|(k, _)| is_loss_name(k)) {
            return Some(Line::Values { step, values });
        }
    }
    // Keras: "... - loss: 0.41 - acc: 0.87", after an "Epoch N/M" line.
    if line.contains("loss: ") && (line.contains(" - ") || line.contains("step")) {
        let values: Vec<(String, f64)> =
            KERAS_METRIC.captures_iter(line).filter_map(|c| Some((c["key"].to_string(), number(&c["value"])?))).collect();
        if values.iter().any(|(k, _)| is_loss_name(k)) {
            return Some(Line::KerasValues(values));
        }
    }
    None
}

fn is_loss_name(key: &str) -> bool {
    let key = key.to_ascii_lowercase();
    key.contains("loss") || key == "trl" || key == "tel"
}

pub fn load(path: &Path, options: &ImportOptions) -> Result<Run, LoadError> {
    let pattern = match &options.pattern {
        Some(text) => Some(Regex::new(text).map_err(|e| LoadError::Import { path: path.to_path_buf(), message: format!("--pattern: {e}") })?),
        None => None,
    };
    if let Some(p) = &pattern {
        if !p.capture_names().flatten().any(|n| n == "step") {
            return Err(LoadError::Import { path: path.to_path_buf(), message: "--pattern needs a named group `step`, as in (?P<step>\\d+)".into() });
        }
    }
    let bytes = std::fs::read(path).map_err(|e| LoadError::io(path, e))?;
    let text = String::from_utf8_lossy(&bytes);
    let mut fits: Vec<Fit> = Vec::new();
    // The fit's first step, and the Keras epoch being printed.
    let mut first_step: Option<u64> = None;
    let mut keras_epoch: Option<u64> = None;
    for (index, raw) in text.lines().enumerate() {
        let number = index + 1;
        let (step, values) = match read_line(raw, pattern.as_ref()) {
            None => continue,
            Some(Line::KerasEpoch(epoch)) => {
                // Epochs print from 1; the format's Keras runs count from 0.
                let epoch = epoch.saturating_sub(1);
                if keras_epoch.is_some_and(|e| epoch <= e) || fits.is_empty() {
                    fits.push(Fit { lines: (number, number), ..Default::default() });
                    first_step = Some(epoch);
                }
                keras_epoch = Some(epoch);
                continue;
            }
            Some(Line::KerasValues(values)) => match keras_epoch {
                Some(epoch) => (epoch, values),
                None => continue,
            },
            Some(Line::Values { step, values }) => {
                if fits.is_empty() || first_step.is_some_and(|first| step <= first && fits.last().is_some_and(|f| f.points.entries > 0 && step < last_step(f))) {
                    fits.push(Fit { lines: (number, number), ..Default::default() });
                    first_step = Some(step);
                }
                (step, values)
            }
        };
        let Some(fit) = fits.last_mut() else { continue };
        fit.lines.1 = number;
        fit.points.entry(step);
        for (key, value) in values {
            let key = ALIASES.iter().find(|(a, _)| *a == key).map_or(key.as_str(), |(_, k)| k);
            fit.points.push(key, step, value);
        }
    }
    let mut warnings: Vec<Warning> = Vec::new();
    // No preset read the log: the general grammar does.
    if pattern.is_none() && fits.iter().all(|f| f.points.is_empty()) {
        let reading = super::log_lines::read_log(&text);
        if reading.fits.iter().all(|f| f.points.is_empty()) {
            return Err(nothing_read(path, reading.sample));
        }
        fits = reading.fits;
    }
    let mut fit = choose_fit(fits, options, path, &mut warnings)?;
    fit.points.standardize_names();
    metrics_run(path, SourceFormat::TextLog, RunMeta::new(name_of(path)), fit.points, warnings)
}

/// The error for a log nothing could read: a line that looked like metrics
/// and what the grammar made of it, and how to say more.
fn nothing_read(path: &Path, sample: Option<(usize, String, super::log_lines::ReadLine)>) -> LoadError {
    let hint = "--pattern 'REGEX' reads other shapes (a named group `step` and one per metric)";
    let message = match sample {
        Some((line, text, read)) => {
            let pairs: Vec<String> = read.values.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let step = read.step.map_or("no step".to_string(), |s| format!("step {}", s.1));
            format!(
                "no metric line printed at least {} times; line {line} ({text:?}) reads as {step} and {}; {hint}",
                super::log_lines::MIN_REPEATS,
                pairs.join(", ")
            )
        }
        None => format!("no line with a metric value (a loss, accuracy, learning rate or gradient norm); {hint}"),
    };
    LoadError::NothingReadable { path: path.to_path_buf(), reasons: vec![message] }
}

/// The highest step of a fit so far.
fn last_step(fit: &Fit) -> u64 {
    fit.points.last_step().unwrap_or(0)
}
