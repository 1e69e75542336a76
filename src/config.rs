//! Which rules run and with which thresholds: `postmortem.toml` in the run
//! directory (or `--config FILE`), then `--select`, `--ignore` and `--set`.
//!
//! ```toml
//! # postmortem.toml
//! ignore = ["untapped-pretrained-weights"]
//!
//! [rules.loss-diverging]
//! factor = 3.0
//!
//! [metrics]
//! my_total_loss = "loss"
//!
//! [histograms]
//! gradients = ["dw/"]
//! ```

use crate::rules::{self, Severity};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The file name looked for in a run directory.
pub const CONFIG_FILE: &str = "postmortem.toml";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Run only these rules (all when empty).
    #[serde(default)]
    pub select: Vec<String>,
    /// Never run these rules.
    #[serde(default)]
    pub ignore: Vec<String>,
    /// Option overrides per rule.
    #[serde(default)]
    pub rules: BTreeMap<String, BTreeMap<String, f64>>,
    /// The lowest severity that makes the exit code 1.
    #[serde(default)]
    pub fail_on: Option<Severity>,
    /// Metric names of an imported log to the format's keys, for names no
    /// importer can guess: `my_total_loss = "loss"` (docs/IMPORT.md).
    #[serde(default)]
    pub metrics: BTreeMap<String, String>,
    /// Tag prefixes of weight and gradient histograms (TensorBoard, W&B)
    /// that no convention names: `gradients = ["dw/"]` (docs/IMPORT.md).
    #[serde(default)]
    pub histograms: crate::import::HistogramTags,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{}: {message}", path.display())]
    Parse { path: PathBuf, message: String },
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    /// Reads a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io { path: path.to_path_buf(), source })?;
        let config: Config = toml::from_str(&text).map_err(|e| ConfigError::Parse { path: path.to_path_buf(), message: e.to_string() })?;
        config.validate().map_err(|message| ConfigError::Parse { path: path.to_path_buf(), message })?;
        Ok(config)
    }

    /// Adds command-line choices on top; `--set rule.option=value`.
    pub fn merge_cli(&mut self, select: &[String], ignore: &[String], set: &[String]) -> Result<(), ConfigError> {
        if !select.is_empty() {
            self.select = select.to_vec();
        }
        self.ignore.extend(ignore.iter().cloned());
        for assignment in set {
            let parsed = assignment.split_once('=').and_then(|(key, value)| Some((key.split_once('.')?, value.trim().parse::<f64>().ok()?)));
            let Some(((rule, option), value)) = parsed else {
                return Err(ConfigError::Invalid(format!("--set {assignment:?}: expected RULE.OPTION=NUMBER, e.g. loss-diverging.factor=3")));
            };
            self.rules.entry(rule.to_string()).or_default().insert(option.to_string(), value);
        }
        self.validate().map_err(ConfigError::Invalid)
    }

    /// Every rule and option named exists.
    fn validate(&self) -> Result<(), String> {
        for id in self.select.iter().chain(&self.ignore) {
            if rules::find(id).is_none() {
                return Err(format!("unknown rule {id:?}; `postmortem rules` lists them"));
            }
        }
        for (id, options) in &self.rules {
            let rule = rules::find(id).ok_or_else(|| format!("unknown rule {id:?}; `postmortem rules` lists them"))?;
            for name in options.keys() {
                if !rule.meta().options.iter().any(|o| o.name == name) {
                    let known: Vec<&str> = rule.meta().options.iter().map(|o| o.name).collect();
                    return Err(format!(
                        "rule {id} has no option {name:?} (it has: {})",
                        if known.is_empty() { "none".into() } else { known.join(", ") }
                    ));
                }
            }
        }
        Ok(())
    }

    pub fn enabled(&self, id: &str) -> bool {
        (self.select.is_empty() || self.select.iter().any(|s| s == id)) && !self.ignore.iter().any(|s| s == id)
    }
}
