//! The general reader of printed training logs, for lines no preset of
//! [`super::text_log`] reads. A line is read by a grammar, not matched
//! against known formats:
//!
//! - it is cut into fields at the separators logs use (`|`, `,`, ` - `,
//!   ` -- `, `;`, tabs), after the last carriage return of a progress bar;
//! - a field holds pairs `key: value`, `key=value`, `key value` or
//!   `key is: value`, where a key is up to three words (`Train Loss`) and a
//!   value a number, `nan` or `inf`, with `%` or a unit after it (a value
//!   with a unit of time or throughput is no training signal and is left
//!   out); a JSON object or a printed Python dict is a field of pairs too;
//! - the step is the pair whose key names one (`step`, `iter`, `epoch`,
//!   `Up.`), `[  5000]` at the start of the line, or a leading number;
//!   `Step [10/1549]` within `Epoch [6/6]` counts on across epochs;
//! - lines are grouped by their template (the sequence of their keys), as
//!   log-parsing tools mine templates: a template printed at least
//!   [`MIN_REPEATS`] times that carries a training signal (a loss, an
//!   accuracy, a learning rate or a gradient norm, by [`super::names`]) is a
//!   metric line; configuration dumps, warnings and tracebacks print each
//!   template once and are skipped;
//! - a line that names a step but no metric sets the step of the lines that
//!   follow (a header over a block of `key=value` lines), and lines of one
//!   step merge; a step that goes back starts a new fit.

use super::names::{roles, Quantity};
use super::Fit;
use regex::Regex;
use std::collections::HashMap;
use std::sync::LazyLock;

/// Times a template must be printed to be read as metrics.
pub const MIN_REPEATS: usize = 3;

const NUMBER: &str = r"[-+]?(?:\d+(?:,\d{3})*\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?|nan|NaN|NAN|inf|Inf|INF)";

/// A pair in a field: up to three words of key, an optional `is` and `:` or
/// `=`, a value, an optional `/total` and unit.
static PAIR: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(&format!(
        r"\b(?P<key>[A-Za-z][\w.\-/()]*(?:[ \t]+[A-Za-z][\w.\-/()]*){{0,2}})[ \t]*(?:\bis\b)?[ \t]*[:=]?[ \t]*\[?[ \t]*(?P<value>{NUMBER})(?:[ \t]*/[ \t]*(?P<total>\d+))?(?:[ \t]*\])?(?P<unit>%|[A-Za-z]+(?:/[A-Za-z]+)?)?"
    ))
    .expect("valid")
});
/// `[  5000]` or `[3][50/500]` opening a line (after its timestamp).
static BRACKET_STEP: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^(?:[A-Za-z]+:)*\[\s*(?P<step>\d+)\s*\]").expect("valid"));
/// A number opening the line, then a word: `12 train 9.344167`.
static LEADING_STEP: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"^(?P<step>\d+)[ \t]+[A-Za-z]").expect("valid"));
/// Timestamps and log levels before the message.
static PREFIX: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(?:\s*(?:\[[^\]=]*[^\d\s\]=][^\]=]*\]|\d{2,4}[-/.]\d{1,2}[-/.]\d{1,4}[ T]?\d{0,2}[:.|]?\d{0,2}[:.]?\d{0,2}(?:[.,]\d+)?|[IWEF]\d{4}\s+\d{2}:\d{2}:\d{2}\.\d+\s+\d+\s+[\w.]+:\d+\]|\d{2}:\d{2}:\d{2}(?:[.,]\d+)?|(?:INFO|DEBUG|WARNING|WARN|ERROR|CRITICAL|TRACE)\b[:\s-]*(?:\w+(?:\.\w+)*\s*[:\-]\s+)?|[-:|]\s)\s*)+",
    )
    .expect("valid")
});

/// Words of a key that say where the line came from, not what it measures.
const NOISE: &[&str] = &["info", "debug", "warning", "warn", "error", "root", "main", "tensorflow", "absl", "is", "was", "now", "current"];

/// One line as the grammar reads it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ReadLine {
    /// The step the line names, if it names one: its kind (0 a step, 1 an
    /// iteration or update, 2 an epoch) and its value.
    pub step: Option<(u8, u64)>,
    /// The epoch the line names besides a finer step.
    pub epoch: Option<u64>,
    /// The metric pairs (key as printed, value).
    pub values: Vec<(String, f64)>,
    /// The line's keys in order, steps included: its template.
    pub template: String,
}

/// A key as printed, less the log's own words, with its spaces as `_`.
fn clean_key(raw: &str) -> Option<String> {
    let words: Vec<&str> = raw.split_whitespace().filter(|w| !NOISE.contains(&w.to_ascii_lowercase().as_str())).collect();
    let key = words.join("_");
    let key = key.trim_matches(|c: char| !c.is_alphanumeric() && c != ')');
    (!key.is_empty()).then(|| key.to_string())
}

fn number(text: &str) -> Option<f64> {
    crate::jsonl::text_number(&text.replace(',', ""))
}

/// The step a key names, by its words: 0 `step`, 1 `iter`, 2 `epoch`.
fn step_kind(key: &str) -> Option<u8> {
    if let Some(rank) = super::json_lines::step_rank(key) {
        return Some(rank);
    }
    let words = super::names::words(key);
    match words.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["up"] | ["update"] | ["updates"] | ["batch"] | ["batches"] => Some(1),
        ["ep"] => Some(2),
        _ => None,
    }
}

/// Reads one line by the grammar.
pub fn read(raw: &str) -> ReadLine {
    // A progress bar redraws with \r: the last drawing counts.
    let line = raw.rsplit('\r').find(|s| !s.trim().is_empty()).unwrap_or(raw);
    let line = PREFIX.find(line).map_or(line, |m| &line[m.end()..]).trim();
    let mut read = ReadLine::default();
    let mut steps: Vec<(u8, u64, Option<u64>)> = Vec::new();
    let mut keys: Vec<String> = Vec::new();
    if let Some(c) = BRACKET_STEP.captures(line).or_else(|| LEADING_STEP.captures(line)) {
        if let Ok(step) = c["step"].parse() {
            steps.push((0, step, None));
            keys.push("#".into());
        }
    }
    // A JSON object or printed dict: its pairs.
    let object = match (line.find('{'), line.rfind('}')) {
        (Some(open), Some(close)) if open < close => super::json_lines::object_values(&line[open..=close]),
        _ => None,
    };
    if let Some(values) = object {
        for (key, value) in values {
            keys.push(key.clone());
            match step_kind(&key) {
                Some(kind) if value.is_finite() && value >= 0.0 => steps.push((kind, value as u64, None)),
                _ => read.values.push((key, value)),
            }
        }
    } else {
        for field in line.split(['|', ',', ';', '\t', '←']).flat_map(|f| f.split(" - ")).flat_map(|f| f.split(" -- ")) {
            for c in PAIR.captures_iter(field) {
                let Some(key) = clean_key(&c["key"]) else { continue };
                let Some(value) = number(&c["value"]) else { continue };
                let unit = c.name("unit").map_or("", |u| u.as_str());
                let total = c.name("total").and_then(|t| t.as_str().parse::<u64>().ok());
                keys.push(key.clone());
                if let Some(kind) = step_kind(&key) {
                    if value.is_finite() && value >= 0.0 && value.fract() == 0.0 {
                        steps.push((kind, value as u64, total));
                    }
                    continue;
                }
                // Time and throughput are machine measurements.
                if !(unit.is_empty() || unit == "%") || value.is_nan() && c["value"].contains(',') {
                    continue;
                }
                read.values.push((key, value));
            }
        }
    }
    read.template = keys.join(" ");
    steps.sort_by_key(|s| s.0);
    // `Epoch [6/6], Step [10/1549]`: the step counts on across epochs.
    let epoch = steps.iter().find(|s| s.0 == 2).map(|s| s.1);
    read.step = steps.first().map(|&(kind, step, total)| match (kind, total, epoch) {
        (0 | 1, Some(total), Some(epoch)) if total > 0 => (kind, epoch.saturating_mul(total).saturating_add(step)),
        _ => (kind, step),
    });
    read.epoch = epoch.filter(|_| read.step.is_some_and(|s| s.0 < 2));
    read
}

/// Whether a key is a training signal a rule reads.
fn is_signal(key: &str) -> bool {
    matches!(roles(key).quantity, Quantity::Loss | Quantity::Accuracy | Quantity::LearningRate | Quantity::GradientNorm | Quantity::Perplexity)
}

/// What the general reader made of a whole log: its fits, and, when none,
/// what it recognized in a sample line.
pub(crate) struct Reading {
    pub fits: Vec<Fit>,
    /// A line with a training signal that was not read, and its pairs.
    pub sample: Option<(usize, String, ReadLine)>,
}

/// Reads every line of a log.
pub(crate) fn read_log(text: &str) -> Reading {
    let lines: Vec<(usize, &str, ReadLine)> = text.lines().enumerate().map(|(i, l)| (i + 1, l, read(l))).collect();
    let mut repeats: HashMap<&str, usize> = HashMap::new();
    for (_, _, line) in &lines {
        if !line.values.is_empty() {
            *repeats.entry(line.template.as_str()).or_default() += 1;
        }
    }
    let metric = |line: &ReadLine| {
        repeats.get(line.template.as_str()).is_some_and(|&n| n >= MIN_REPEATS) && line.values.iter().any(|(k, _)| is_signal(k))
    };
    // The finest step the metric lines name is the log's axis; a line that
    // names only a coarser one (`END epoch:1 ...` among per-step lines)
    // belongs to the latest step.
    let axis = lines.iter().filter(|(_, _, l)| metric(l)).filter_map(|(_, _, l)| l.step.map(|s| s.0)).min();
    let mut fits: Vec<Fit> = Vec::new();
    let mut current: Option<u64> = None;
    let mut counter = 0u64;
    // A step that restarts each epoch (`epoch 2 ... step 0`) counts on.
    let (mut offset, mut last_epoch) = (0u64, None::<u64>);
    let mut sample = None;
    for (number, raw, line) in &lines {
        if !metric(line) {
            // A step header over a block of metric lines.
            if line.values.is_empty() && line.step.is_some() {
                current = line.step.map(|s| s.1);
            } else if sample.is_none() && line.values.iter().any(|(k, _)| is_signal(k)) {
                sample = Some((*number, raw.chars().take(200).collect(), line.clone()));
            }
            continue;
        }
        let last = fits.last().and_then(|f| f.points.last_step());
        let step = match line.step {
            Some((kind, step)) if Some(kind) == axis => {
                let mut step = step.saturating_add(offset);
                if let (Some(last), Some(epoch)) = (last, line.epoch) {
                    if step < last && last_epoch.is_some_and(|e| epoch > e) {
                        offset = offset.saturating_add(last - step + 1);
                        step = last + 1;
                    }
                }
                last_epoch = line.epoch.or(last_epoch);
                step
            }
            Some(_) => last.unwrap_or(0),
            // No step on the line: the header's, else the latest step of a log
            // that names steps (a test line after its epoch's train line),
            // else a count of the metric lines.
            None => match (current, axis) {
                (Some(step), _) => step,
                (None, Some(_)) => last.unwrap_or(0),
                (None, None) => {
                    counter += 1;
                    counter - 1
                }
            },
        };
        let goes_back = last.is_some_and(|last| step < last);
        if fits.is_empty() || goes_back {
            fits.push(Fit { lines: (*number, *number), ..Default::default() });
            offset = 0;
        }
        let Some(fit) = fits.last_mut() else { continue };
        fit.lines.1 = *number;
        fit.points.entry(step);
        for (key, value) in &line.values {
            fit.points.push(key, step, *value);
        }
    }
    Reading { fits, sample }
}

/// Whether the first bytes of a file read as a log by the grammar.
pub fn looks_like_a_log(head: &str) -> bool {
    // The head may cut the last line short.
    let whole = head.rsplit_once('\n').map_or(head, |(whole, _)| whole);
    read_log(whole).fits.iter().any(|f| f.points.entries >= MIN_REPEATS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(line: &str) -> (Option<u64>, Vec<(String, f64)>) {
        let read = read(line);
        (read.step.map(|s| s.1), read.values)
    }

    fn v(list: &[(&str, f64)]) -> Vec<(String, f64)> {
        list.iter().map(|(k, x)| (k.to_string(), *x)).collect()
    }

    #[test]
    fn lines_of_many_shapes_read_alike() {
        assert_eq!(pairs("step 1/19560 | loss 11.010252 (+nanz)| norm 15.1374 | lr 1.00e-06"), (Some(1), v(&[("loss", 11.010252), ("norm", 15.1374), ("lr", 1e-6)])));
        assert_eq!(
            pairs("2023-05-15 22:50:17,398 INFO:Epoch 1: Train Loss=0.0717, Val Loss=0.0766"),
            (Some(1), v(&[("Train_Loss", 0.0717), ("Val_Loss", 0.0766)]))
        );
        assert_eq!(pairs("Epoch 1/200 | Loss: 0.6924"), (Some(1), v(&[("Loss", 0.6924)])));
        assert_eq!(
            pairs("Epoch [001/30] TrainLoss=1.8695 TrainAcc=48.54% | ValLoss=1.3028"),
            (Some(1), v(&[("TrainLoss", 1.8695), ("TrainAcc", 48.54), ("ValLoss", 1.3028)]))
        );
        assert_eq!(pairs("12 train 9.344167"), (Some(12), v(&[("train", 9.344167)])));
        assert_eq!(pairs("INFO:root:Epoch [6/6], Step [10/1549], Loss: 0.0490"), (Some(6 * 1549 + 10), v(&[("Loss", 0.049)])));
        assert_eq!(pairs("epoch: 0,  loss is: 2.504774796962738, acc is: 0.0708"), (Some(0), v(&[("loss", 2.504774796962738), ("acc", 0.0708)])));
        let nan = pairs("| epoch   1 |   200/ 2983 batches | lr 20.0000 | ms/batch 11.61 | loss   nan | ppl      nan");
        assert_eq!(nan.0, Some(1));
        assert!(nan.1.iter().any(|(k, x)| k == "loss" && x.is_nan()), "{nan:?}");
        assert_eq!(pairs("INFO:tensorflow:[  5000] | gnorm  8.33 lr  0.000125 | loss  5.56"), (Some(5000), v(&[("gnorm", 8.33), ("lr", 0.000125), ("loss", 5.56)])));
        assert_eq!(pairs("{'loss': '2.897', 'grad_norm': '0.7695', 'epoch': '0.03579'}").1.len(), 2);
        // Time is no training signal.
        assert_eq!(pairs("313/313 [======] - 351s 1s/step - loss: 0.6855 - acc: 0.5609").1, v(&[("loss", 0.6855), ("acc", 0.5609)]));
    }

    #[test]
    fn odd_lines_read_without_a_panic() {
        for line in ["} loss 1 {", "{", "}", "[", "]]]", "loss: ", "= 3", "step 99999999999999999999999 loss 1", "epoch 1e400 loss nan", "\r\r", "ñ: 1 é=2", "a b c d e f 1"] {
            let _ = read(line);
        }
        assert_eq!(read("} loss 1 {").values, v(&[("loss", 1.0)]));
    }

    /// Lines made of the grammar's own pieces in random order (separators,
    /// brackets, braces, quotes, numbers, words, non-ASCII letters): every
    /// one is read without a panic, and whole logs of them too.
    #[test]
    fn random_lines_of_the_grammars_pieces_never_panic() {
        const PIECES: [&str; 24] =
            ["loss", "step", "Epoch", " ", ":", "=", "|", ",", " - ", "[", "]", "{", "}", "'", "\"", "1", "0.5", "-3e-4", "nan", "%", "/", "é", "\r", "\t"];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut log = String::new();
        for _ in 0..3_000 {
            let line: String = (0..next() % 24).map(|_| PIECES[(next() % PIECES.len() as u64) as usize]).collect();
            let _ = read(&line);
            let _ = super::super::json_lines::object_values(&line);
            log.push_str(&line);
            log.push('\n');
        }
        let _ = read_log(&log);
    }

    #[test]
    fn templates_printed_once_are_not_metrics() {
        let log = "BASE_LR: 0.01\nLOSS_WEIGHT: 0.5\nstart\nloss: 2.0\nloss: 1.5\nloss: 1.0\nTraceback: line 3\n";
        let reading = read_log(log);
        assert_eq!(reading.fits.len(), 1);
        let series = reading.fits[0].points.entries;
        assert_eq!(series, 3);
    }

    #[test]
    fn a_header_line_gives_the_step_of_the_block_below() {
        let log = "[step=1/100]\n    train/CrossEntropyLoss=11.28\n    train/Perplexity=79000\n[step=2/100]\n    train/CrossEntropyLoss=10.60\n    train/Perplexity=40000\n[step=3/100]\n    train/CrossEntropyLoss=10.1\n    train/Perplexity=25000\n";
        let reading = read_log(log);
        assert_eq!(reading.fits.len(), 1);
        assert_eq!(reading.fits[0].points.last_step(), Some(3));
    }
}
