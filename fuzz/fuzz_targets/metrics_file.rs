//! Any bytes as metrics.jsonl: loaded or refused with an error, never a panic;
//! and the fast line scanner reads every line it takes as the JSON tree does,
//! with the keys of the line before expected or not.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("postmortem-fuzz-metrics-{}", std::process::id()));
    if std::fs::write(&path, data).is_ok() {
        let mut warnings = Vec::new();
        let _ = postmortem::run::metrics::load(&path, &mut warnings);
    }
    let _ = postmortem::jsonl::parse_fields(data);
    let mut previous: &[u8] = b"";
    for line in data.split(|&b| b == b'\n') {
        if let Some(difference) = postmortem::jsonl::scanner_disagreement(line) {
            panic!("{difference}");
        }
        if let Some(difference) = postmortem::jsonl::expecting_disagreement(previous, line) {
            panic!("{difference}");
        }
        previous = line;
    }
});
