//! Any bytes as a W&B run log and as a TensorBoard event file, each in a run
//! folder of its own, loaded by the importer: a run or an error, never a
//! panic. Lengths, counts and bucket numbers in them are the writer's word.
#![no_main]
use libfuzzer_sys::fuzz_target;
use postmortem::import::{self, ImportOptions, SourceFormat};

fuzz_target!(|data: &[u8]| {
    let root = std::env::temp_dir().join(format!("postmortem-fuzz-import-{}", std::process::id()));
    for (folder, file, format) in [("wandb", "run-fuzz.wandb", SourceFormat::Wandb), ("tensorboard", "events.out.tfevents.1.fuzz", SourceFormat::Tensorboard)] {
        let dir = root.join(folder);
        if std::fs::create_dir_all(&dir).is_ok() && std::fs::write(dir.join(file), data).is_ok() {
            let _ = import::load(&dir, &ImportOptions { from: Some(format), ..Default::default() });
        }
    }
});
