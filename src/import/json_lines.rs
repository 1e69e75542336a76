//! A JSON-lines metrics file that is not the run format: one object of
//! numbers per line, as detectron2 writes `metrics.json`, MMEngine
//! `scalars.json`, and custom loops their `*.jsonl`. The step is the key whose
//! words name one (`step`, `global_step`, `iteration`, `iter`, then
//! `epoch`); a file without one counts its lines. Nested objects are
//! flattened with `/`; numbers written as strings, and the bare `NaN` and
//! `Infinity` tokens Python's json module writes, are read as numbers
//! (non-finite ones kept). A step that goes back starts a new fit (appended
//! runs), as in printed logs.

use super::{choose_fit, metrics_run, name_of, Fit, ImportOptions, SourceFormat};
use crate::error::{LoadError, Warning};
use crate::run::Run;
use postmortem_recorder::RunMeta;
use serde_json::Value;
use std::path::Path;

/// Deepest nesting flattened; deeper values are left out.
const MAX_DEPTH: usize = 3;

/// The numbers of one JSON (or Python dict) object, flattened, or `None`
/// when the text is no object.
pub fn object_values(text: &str) -> Option<Vec<(String, f64)>> {
    let text = text.trim();
    if !(text.starts_with('{') && text.ends_with('}')) {
        return None;
    }
    let value: Value = match serde_json::from_str(text) {
        Ok(value) => value,
        // Python's json writes NaN and Infinity bare; a printed dict uses
        // single quotes. Both are read once more, mended.
        Err(_) => serde_json::from_str(&mend(text)).ok()?,
    };
    let Value::Object(map) = value else { return None };
    let mut values = Vec::new();
    flatten("", &map, 0, &mut values);
    Some(values)
}

fn flatten(prefix: &str, map: &serde_json::Map<String, Value>, depth: usize, out: &mut Vec<(String, f64)>) {
    for (key, value) in map {
        let name = if prefix.is_empty() { key.clone() } else { format!("{prefix}/{key}") };
        match value {
            Value::Number(n) => out.extend(n.as_f64().map(|v| (name, v))),
            Value::String(s) => out.extend(number(s).map(|v| (name, v))),
            Value::Object(inner) if depth < MAX_DEPTH => flatten(&name, inner, depth + 1, out),
            _ => {}
        }
    }
}

/// A number written as text: `"0.5"`, `"NaN"`, `"inf"`.
fn number(text: &str) -> Option<f64> {
    crate::jsonl::text_number(text.trim())
}

/// Bare non-finite tokens as strings, and single quotes as double quotes
/// where the text has no double quotes of its own.
fn mend(text: &str) -> String {
    let quoted = if text.contains('"') { text.to_string() } else { text.replace('\'', "\"") };
    let mut out = String::with_capacity(quoted.len() + 16);
    let (mut in_string, mut escaped) = (false, false);
    let mut chars = quoted.char_indices();
    while let Some((at, c)) = chars.next() {
        if in_string {
            match c {
                _ if escaped => escaped = false,
                '\\' => escaped = true,
                '"' => in_string = false,
                _ => {}
            }
            out.push(c);
            continue;
        }
        if c == '"' {
            in_string = true;
            out.push(c);
            continue;
        }
        let token = ["-Infinity", "Infinity", "NaN", "nan", "-inf", "inf"].into_iter().find(|t| quoted[at..].starts_with(t));
        match token {
            Some(t) => {
                out.push('"');
                out.push_str(t);
                out.push('"');
                // The token's other characters (all ASCII) are consumed.
                for _ in 1..t.len() {
                    chars.next();
                }
            }
            None => out.push(c),
        }
    }
    out
}

/// How well a key names the step: lower is better, `None` for no step.
pub(crate) fn step_rank(key: &str) -> Option<u8> {
    let words = super::names::words(key);
    let core: Vec<&str> = words.iter().map(String::as_str).filter(|w| !["global", "train", "training", "test", "val", "valid", "eval", "current", "cur"].contains(w)).collect();
    match core.as_slice() {
        ["step" | "steps"] => Some(0),
        ["iteration" | "iter" | "it" | "iters"] => Some(1),
        ["epoch" | "epochs"] => Some(2),
        _ => None,
    }
}

/// Whether the first bytes of a file are lines of JSON objects with numbers
/// (two at least, the first two that are not blank).
pub fn looks_like(head: &str) -> bool {
    let mut lines = head.lines().map(str::trim).filter(|l| !l.is_empty());
    let complete = |line: Option<&str>| line.and_then(object_values).is_some_and(|v| !v.is_empty());
    complete(lines.next()) && complete(lines.next())
}

pub fn load(path: &Path, options: &ImportOptions) -> Result<Run, LoadError> {
    let bytes = std::fs::read(path).map_err(|e| LoadError::io(path, e))?;
    let text = String::from_utf8_lossy(&bytes);
    let mut lines: Vec<(usize, Vec<(String, f64)>)> = Vec::new();
    let mut unread = 0usize;
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        match object_values(line) {
            Some(values) => lines.push((index + 1, values)),
            None => unread += 1,
        }
    }
    // The step key: the best-ranked key that most lines carry.
    let step_key = {
        let mut counts: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
        for (_, values) in &lines {
            for (key, _) in values {
                if step_rank(key).is_some() {
                    *counts.entry(key.as_str()).or_default() += 1;
                }
            }
        }
        counts.into_iter().min_by_key(|(k, n)| (step_rank(k), usize::MAX - n)).map(|(k, _)| k.to_string())
    };
    let mut fits: Vec<Fit> = Vec::new();
    let mut step = 0u64;
    for (number, values) in &lines {
        let given = step_key.as_deref().and_then(|key| values.iter().find(|(k, _)| k == key)).map(|(_, v)| *v);
        match given {
            Some(v) if v.is_finite() && v >= 0.0 && v < u64::MAX as f64 => step = v as u64,
            Some(_) => continue,
            // A line without the step belongs to the step before (an
            // evaluation logged after its iteration).
            None if step_key.is_some() => {}
            None => step = fits.last().map_or(0, |f| f.points.last_step().map_or(0, |s| s + 1)),
        }
        let goes_back = fits.last().is_some_and(|f| f.points.last_step().is_some_and(|last| step < last));
        if fits.is_empty() || goes_back {
            fits.push(Fit { lines: (*number, *number), ..Default::default() });
        }
        let Some(fit) = fits.last_mut() else { continue };
        fit.lines.1 = *number;
        fit.points.entry(step);
        for (key, value) in values {
            if Some(key.as_str()) != step_key.as_deref() {
                fit.points.push(key, step, *value);
            }
        }
    }
    let mut warnings: Vec<Warning> = Vec::new();
    if unread > 0 {
        warnings.push(Warning::new(path, None, format!("{unread} line(s) are no JSON object and were skipped")));
    }
    if lines.is_empty() {
        return Err(LoadError::NothingReadable { path: path.to_path_buf(), reasons: vec!["no line is a JSON object of numbers".into()] });
    }
    let mut fit = choose_fit(fits, options, path, &mut warnings)?;
    fit.points.standardize_names();
    metrics_run(path, SourceFormat::JsonLines, RunMeta::new(name_of(path)), fit.points, warnings)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_read_leniently() {
        let values = object_values(r#"{"iteration": 19, "loss_cls": 1.5, "bbox/AP": NaN, "nested": {"a": "0.25"}, "name": "x"}"#).unwrap();
        assert_eq!(values.len(), 4);
        assert!(values.iter().any(|(k, v)| k == "bbox/AP" && v.is_nan()));
        assert!(values.iter().any(|(k, v)| k == "nested/a" && *v == 0.25));
        let python = object_values("{'loss': 0.5, 'learning_rate': 1e-05, 'epoch': 0.1}").unwrap();
        assert_eq!(python.len(), 3);
        assert_eq!(object_values("loss 0.5"), None);
        // Text that is not ASCII, with a bare NaN to mend around it.
        let accented = object_values("{\"é\": NaN, \"ü_loss\": 1}").unwrap();
        assert_eq!(accented.len(), 2);
        assert_eq!(object_values("{'ñ': é}"), None);
        assert!(looks_like("{\"step\": 1, \"loss\": 2}\n{\"step\": 2, \"loss\": 1}\n"));
        assert!(!looks_like("{\n  \"a\": 1\n}\n"));
    }

    #[test]
    fn the_step_is_named_by_its_words() {
        assert_eq!(step_rank("global_step"), Some(0));
        assert_eq!(step_rank("iteration"), Some(1));
        assert_eq!(step_rank("epoch"), Some(2));
        assert_eq!(step_rank("step_time"), None);
        assert_eq!(step_rank("loss"), None);
    }
}
