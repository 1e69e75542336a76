//! Any bytes as run.json: read or refused with an error, never a panic.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("postmortem-fuzz-run-{}", std::process::id()));
    if std::fs::write(&path, data).is_ok() {
        let _ = postmortem::run::load_meta(&path);
    }
});
