//! The metric-name model every importer shares: a name is read by its
//! words, not looked up in a list of names seen before. `Loss/Train_Epoch`,
//! `train_loss_step`, `TrainLoss` and `mean_loss` are all a training loss;
//! `val/cls_loss` is a component of the validation loss; `lr-AdamW` is a
//! learning rate. From the roles of every name a source has, one series is
//! chosen for each key of docs/FORMAT.md (`loss`, `val_loss`, `accuracy`,
//! `val_accuracy`, `lr`, `grad_norm`, `epoch`), and the choice is explained.

use std::collections::{BTreeMap, BTreeSet};

/// The words of a metric name: split at `/ _ . - :`, spaces and other
/// punctuation, and at camelCase boundaries (`TrainLoss` is train + loss,
/// `valLoss` is val + loss, `mAP50` stays one word), folded to lower case.
pub fn words(name: &str) -> Vec<String> {
    let mut words = Vec::new();
    for part in name.split(|c: char| !c.is_alphanumeric()).filter(|p| !p.is_empty()) {
        let chars: Vec<char> = part.chars().collect();
        let mut start = 0;
        for i in 1..chars.len() {
            let (before, here) = (chars[i - 1], chars[i]);
            let next_lower = chars.get(i + 1).is_some_and(|c| c.is_lowercase());
            // `TrainLoss`, `valLoss`: a capital after a lower-case letter;
            // `XEntLoss`: the last capital of a run that starts a word. A
            // single lower-case letter before a capital (`mAP`) is no word.
            let boundary = (before.is_lowercase() && here.is_uppercase() && i - start > 1)
                || (before.is_uppercase() && here.is_uppercase() && next_lower && i - start > 1);
            if boundary {
                words.push(chars[start..i].iter().collect::<String>().to_lowercase());
                start = i;
            }
        }
        words.push(chars[start..].iter().collect::<String>().to_lowercase());
    }
    words
}

/// Which data a series is measured on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Split {
    Train,
    Validation,
    /// Kept apart: a test series is never taken as the validation one.
    Test,
    Unnamed,
}

/// What a series measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Quantity {
    /// The loss family: loss, nll, ce, xent, cost, objective.
    Loss,
    /// exp(loss) for a language model: kept under its own name.
    Perplexity,
    Accuracy,
    LearningRate,
    GradientNorm,
    WeightNorm,
    /// The epoch counter.
    Epoch,
    /// Time, throughput, memory and counters: no training signal.
    Bookkeeping,
    Other,
}

/// How often a series is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Granularity {
    Step,
    Unnamed,
    Epoch,
}

/// What the words of one name say.
#[derive(Debug, Clone, PartialEq)]
pub struct Roles {
    pub split: Split,
    pub quantity: Quantity,
    pub granularity: Granularity,
    /// `total`, `overall`, `all`, `full`: the sum of the components.
    pub total: bool,
    /// Words that qualify a loss beyond split, granularity and aggregation
    /// (`box`, `cls`, `kl`, `mask`): a component of the loss, not the loss.
    pub qualifiers: Vec<String>,
}

const TRAIN: &[&str] = &["train", "training", "trn"];
const VALIDATION: &[&str] = &["val", "valid", "validation", "eval", "evaluation", "dev"];
const TEST: &[&str] = &["test", "testing"];
const LOSS: &[&str] = &["loss", "losses", "nll", "ce", "xent", "crossentropy", "cost", "objective"];
const PERPLEXITY: &[&str] = &["perplexity", "ppl"];
const ACCURACY: &[&str] = &["acc", "accuracy", "top1", "correct"];
const STEP: &[&str] = &["step", "steps", "batch", "iter", "iteration", "it"];
const EPOCH: &[&str] = &["epoch", "epochs", "ep"];
const AGGREGATION: &[&str] = &["mean", "avg", "average", "running", "smoothed", "smooth", "ema", "sum", "value"];
const TOTAL: &[&str] = &["total", "overall", "all", "full", "combined", "tot"];
/// Words of bookkeeping series: never a training signal, even beside a
/// loss word (`loss_time_ms`, fp16's `loss_scale`).
const BOOKKEEPING: &[&str] = &[
    "time", "sec", "secs", "second", "seconds", "ms", "duration", "eta", "throughput", "speed", "memory", "mem", "gpu", "flops", "mfu",
    "runtime", "elapsed", "wall", "clock", "timestamp", "date", "scale", "scaler",
];
/// Words of counters: bookkeeping unless a loss word says otherwise
/// (`train_samples_per_second` is none, `loss_nats_per_byte` is a loss).
const COUNTERS: &[&str] = &["per", "samples", "sample", "tokens", "token", "count", "num", "seen", "bytes", "total_flos", "flos"];
/// Words that say "the model's" or "of the objective" without qualifying it.
const NEUTRAL: &[&str] = &["model", "net", "network", "metric", "metrics", "scalar", "scalars", "curve", "history", "logs", "log", "final", "main", "the", "of"];

fn any(words: &[String], vocabulary: &[&str]) -> bool {
    words.iter().any(|w| vocabulary.contains(&w.as_str()))
}

/// The roles a name's words give it.
pub fn roles(name: &str) -> Roles {
    let words = words(name);
    let split = if any(&words, TEST) {
        Split::Test
    } else if any(&words, VALIDATION) {
        Split::Validation
    } else if any(&words, TRAIN) {
        Split::Train
    } else {
        Split::Unnamed
    };
    let is = |w: &[&str]| any(&words, w);
    let learning_rate = is(&["lr"]) || (is(&["learning"]) && is(&["rate"])) || is(&["learningrate"]);
    let gradient = is(&["grad", "grads", "gradient", "gradients"]);
    let norm = is(&["norm", "gnorm", "l2"]);
    let quantity = if words.len() == 1 && is(EPOCH) {
        Quantity::Epoch
    } else if learning_rate {
        Quantity::LearningRate
    } else if (gradient && norm) || is(&["gnorm", "gradnorm"]) {
        Quantity::GradientNorm
    } else if is(&["weight", "weights", "param", "params", "parameter"]) && norm {
        Quantity::WeightNorm
    } else if is(BOOKKEEPING) || (is(COUNTERS) && !is(LOSS)) {
        Quantity::Bookkeeping
    } else if is(LOSS) || (is(&["cross"]) && is(&["entropy"])) {
        Quantity::Loss
    } else if is(PERPLEXITY) {
        Quantity::Perplexity
    } else if is(ACCURACY) {
        Quantity::Accuracy
    } else {
        Quantity::Other
    };
    let granularity = if is(STEP) {
        Granularity::Step
    } else if is(EPOCH) && quantity != Quantity::Epoch {
        Granularity::Epoch
    } else {
        Granularity::Unnamed
    };
    let known = |w: &str| {
        [TRAIN, VALIDATION, TEST, LOSS, STEP, EPOCH, AGGREGATION, TOTAL, NEUTRAL, COUNTERS, &["cross", "entropy", "nats", "bits", "byte"]].iter().any(|v| v.contains(&w))
            || w.chars().all(|c| c.is_ascii_digit())
    };
    let qualifiers = if quantity == Quantity::Loss { words.iter().filter(|w| !known(w)).cloned().collect() } else { Vec::new() };
    Roles { split, quantity, granularity, total: is(TOTAL), qualifiers }
}

/// What was read as what: the key of docs/FORMAT.md each chosen series got,
/// and notes on choices that were not clear-cut. The loss components keep
/// their own names; [`role_of`] tells them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct NameChoice {
    /// Every name of the source, to the name it is stored under: a key of
    /// docs/FORMAT.md for the chosen series, its own name otherwise (with
    /// `_raw` added where that is a key already taken).
    pub mapping: BTreeMap<String, String>,
    /// Choices among several candidates, each naming them.
    pub notes: Vec<String>,
}

impl NameChoice {
    /// For each key of docs/FORMAT.md a series was stored under, the name
    /// the source gave it (where the two differ).
    pub fn origins(&self) -> BTreeMap<String, String> {
        self.mapping.iter().filter(|(name, key)| name != key && KEYS.iter().any(|k| k.key == key.as_str())).map(|(n, k)| (k.clone(), n.clone())).collect()
    }
}

/// What a stored series is, in a user's words: `training loss` for `loss`,
/// `loss component` for a qualified loss (`box_loss`), none for the rest.
pub fn role_of(stored: &str) -> Option<&'static str> {
    if let Some(key) = KEYS.iter().find(|k| k.key == stored) {
        return Some(key.what);
    }
    let roles = roles(stored);
    (is_component(&roles) && roles.split != Split::Test).then_some(match roles.split {
        Split::Validation => "validation loss component",
        _ => "loss component",
    })
}

/// A key of docs/FORMAT.md and what a series needs to be it.
struct Key {
    key: &'static str,
    what: &'static str,
    quantity: Quantity,
    splits: &'static [Split],
}

const KEYS: [Key; 7] = [
    Key { key: "loss", what: "training loss", quantity: Quantity::Loss, splits: &[Split::Train, Split::Unnamed] },
    Key { key: "val_loss", what: "validation loss", quantity: Quantity::Loss, splits: &[Split::Validation] },
    Key { key: "accuracy", what: "training accuracy", quantity: Quantity::Accuracy, splits: &[Split::Train, Split::Unnamed] },
    Key { key: "val_accuracy", what: "validation accuracy", quantity: Quantity::Accuracy, splits: &[Split::Validation] },
    Key { key: "lr", what: "learning rate", quantity: Quantity::LearningRate, splits: &[Split::Train, Split::Unnamed] },
    Key { key: "grad_norm", what: "gradient norm", quantity: Quantity::GradientNorm, splits: &[Split::Train, Split::Unnamed] },
    Key { key: "epoch", what: "epoch", quantity: Quantity::Epoch, splits: &[Split::Train, Split::Unnamed] },
];

/// The preference among candidates for one key, smaller first: a total or
/// unqualified series before a component, an explicit split before none
/// (for the training loss, `train_loss` before a bare `loss` only when
/// both are unqualified), per step before unnamed before per epoch, then
/// fewer words (the plainest name).
fn rank(roles: &Roles, words: usize) -> (bool, bool, Granularity, usize) {
    (is_component(roles), roles.split == Split::Unnamed, roles.granularity, words)
}

/// A loss qualified by words of its own (`box_loss`), unless it says it is
/// the total.
fn is_component(roles: &Roles) -> bool {
    roles.quantity == Quantity::Loss && !roles.total && !roles.qualifiers.is_empty()
}

/// What the key of each name is, given every name a source has.
pub fn choose<'a>(names: impl IntoIterator<Item = &'a str>) -> NameChoice {
    let mut names: Vec<&str> = names.into_iter().collect();
    names.sort_unstable();
    names.dedup();
    let read: Vec<(&str, Roles, usize)> = names.iter().map(|n| (*n, roles(n), words(n).len())).collect();
    let mut choice = NameChoice::default();
    let mut taken: BTreeSet<&str> = BTreeSet::new();
    for key in &KEYS {
        // A series already named as the key is that key.
        let exact = read.iter().find(|(n, _, _)| *n == key.key);
        let mut candidates: Vec<&(&str, Roles, usize)> =
            read.iter().filter(|(n, r, _)| r.quantity == key.quantity && key.splits.contains(&r.split) && !choice.mapping.contains_key(*n)).collect();
        candidates.sort_by_key(|(n, r, w)| (rank(r, *w), *n));
        let chosen = match exact {
            Some(found) if !choice.mapping.contains_key(found.0) => Some(found),
            _ => candidates.first().copied(),
        };
        let Some((name, roles, word_count)) = chosen else { continue };
        // Only components: the loss is theirs to share, and none of them is
        // it unless it is the only one.
        if key.quantity == Quantity::Loss && is_component(roles) && candidates.len() > 1 {
            continue;
        }
        let best = rank(roles, *word_count);
        let tied: Vec<&str> = candidates.iter().filter(|c| rank(&c.1, c.2) == best).map(|c| c.0).collect();
        if tied.len() > 1 && exact.is_none() {
            choice.notes.push(format!("{}: `{name}` was read as it, of {}", key.what, tied.iter().map(|t| format!("`{t}`")).collect::<Vec<_>>().join(", ")));
        }
        choice.mapping.insert(name.to_string(), key.key.to_string());
        taken.insert(key.key);
    }
    for (name, _, _) in &read {
        if choice.mapping.contains_key(*name) {
            continue;
        }
        let own = if taken.contains(name) { format!("{name}_raw") } else { name.to_string() };
        choice.mapping.insert(name.to_string(), own);
    }
    choice
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(names: &[&str]) -> Vec<(String, String)> {
        let choice = choose(names.iter().copied());
        let mut chosen: Vec<(String, String)> = choice.mapping.into_iter().filter(|(n, k)| n != k && !k.ends_with("_raw")).collect();
        chosen.sort();
        chosen
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut v: Vec<(String, String)> = list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect();
        v.sort();
        v
    }

    #[test]
    fn names_split_into_words() {
        assert_eq!(words("Loss/Train_Epoch"), ["loss", "train", "epoch"]);
        assert_eq!(words("TrainLoss"), ["train", "loss"]);
        assert_eq!(words("valLoss"), ["val", "loss"]);
        assert_eq!(words("metrics/mAP50-95(B)"), ["metrics", "map50", "95", "b"]);
        assert_eq!(words("XEntLoss"), ["xent", "loss"]);
        assert_eq!(words("train/box_loss"), ["train", "box", "loss"]);
        assert_eq!(words("lr-AdamW"), ["lr", "adam", "w"]);
    }

    #[test]
    fn roles_come_from_words() {
        let r = roles("Loss/Val_Epoch");
        assert_eq!((r.split, r.quantity, r.granularity), (Split::Validation, Quantity::Loss, Granularity::Epoch));
        assert_eq!(roles("test_loss").split, Split::Test);
        assert_eq!(roles("train/box_loss").qualifiers, ["box"]);
        assert!(roles("mean_loss").qualifiers.is_empty());
        assert_eq!(roles("train_samples_per_second").quantity, Quantity::Bookkeeping);
        assert_eq!(roles("learning_rate").quantity, Quantity::LearningRate);
        assert_eq!(roles("grad_2.0_norm_total").quantity, Quantity::GradientNorm);
        assert_eq!(roles("eval_accuracy").quantity, Quantity::Accuracy);
        assert_eq!(roles("val_ppl").quantity, Quantity::Perplexity);
        assert_eq!(roles("loss_scale").quantity, Quantity::Bookkeeping);
        let per_byte = roles("train_loss_nats_per_byte");
        assert_eq!((per_byte.quantity, per_byte.qualifiers.len()), (Quantity::Loss, 0));
        assert_eq!(roles("train_cross_entropy_step").quantity, Quantity::Loss);
    }

    #[test]
    fn the_loss_is_the_total_or_the_only_one() {
        // Lightning with its step and epoch series: per step first.
        assert_eq!(
            keys(&["train_loss_step", "train_loss_epoch", "val_loss", "epoch", "step"]),
            pairs(&[("train_loss_step", "loss")])
        );
        assert_eq!(keys(&["mean_loss", "epoch"]), pairs(&[("mean_loss", "loss")]));
        assert_eq!(keys(&["Loss/Train_Epoch", "Loss/Val_Epoch"]), pairs(&[("Loss/Train_Epoch", "loss"), ("Loss/Val_Epoch", "val_loss")]));
        // A total among components is the loss; the rest are components.
        let detectron = choose(["total_loss", "loss_cls", "loss_box_reg", "lr"]);
        assert_eq!(detectron.mapping["total_loss"], "loss");
        assert_eq!([role_of("loss_box_reg"), role_of("loss_cls")], [Some("loss component"); 2]);
        assert_eq!((detectron.mapping["loss_cls"].as_str(), detectron.mapping["loss_box_reg"].as_str()), ("loss_cls", "loss_box_reg"));
        // Only components: none is the loss.
        let yolo = choose(["train/box_loss", "train/cls_loss", "val/box_loss", "val/cls_loss", "lr/pg0"]);
        assert!(!yolo.mapping.values().any(|k| k == "loss" || k == "val_loss"), "{yolo:?}");
        let components = ["train/box_loss", "train/cls_loss", "val/box_loss", "val/cls_loss"].map(role_of);
        assert_eq!(components, [Some("loss component"), Some("loss component"), Some("validation loss component"), Some("validation loss component")]);
        // One component alone is the loss.
        assert_eq!(keys(&["train_nll"]), pairs(&[("train_nll", "loss")]));
    }

    #[test]
    fn test_is_never_validation_and_bookkeeping_is_no_loss() {
        assert_eq!(keys(&["loss", "test_loss", "test_acc"]), pairs(&[]));
        assert_eq!(keys(&["TrainLoss", "TrainAcc", "ValLoss", "ValAcc"]), pairs(&[("TrainLoss", "loss"), ("TrainAcc", "accuracy"), ("ValLoss", "val_loss"), ("ValAcc", "val_accuracy")]));
        assert_eq!(keys(&["loss", "loss_time_ms"]), pairs(&[]));
        assert_eq!(keys(&["train/grad_norm", "train/learning_rate", "train/loss", "eval/loss"]), pairs(&[("train/grad_norm", "grad_norm"), ("train/learning_rate", "lr"), ("train/loss", "loss"), ("eval/loss", "val_loss")]));
    }

    #[test]
    fn an_exact_key_wins_and_a_taken_key_is_kept_apart() {
        let choice = choose(["loss", "train_loss"]);
        assert_eq!(choice.mapping["loss"], "loss");
        assert_eq!(choice.mapping["train_loss"], "train_loss");
        assert!(choice.notes.is_empty());
    }
}
