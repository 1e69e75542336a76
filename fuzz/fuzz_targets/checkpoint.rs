//! Any bytes as a safetensors checkpoint: the header is validated, and every
//! tensor it admits can be streamed, without a panic or an unbounded allocation.
#![no_main]
use libfuzzer_sys::fuzz_target;
use postmortem::run::checkpoint::Checkpoint;

fuzz_target!(|data: &[u8]| {
    let path = std::env::temp_dir().join(format!("postmortem-fuzz-ckpt-{}", std::process::id()));
    if std::fs::write(&path, data).is_ok() {
        if let Ok(checkpoint) = Checkpoint::open(&path) {
            for entry in &checkpoint.tensors {
                let _ = checkpoint.stats(entry);
                let _ = checkpoint.values(entry);
            }
        }
    }
});
