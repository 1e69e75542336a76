//! Any bytes as run.json, beside a small run that every rule can read
//! (metrics with class counts, tensor statistics, a checkpoint with labels and
//! logits): loaded and analyzed whole, never a panic, never an allocation
//! sized by a number from the file.
#![no_main]
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fn write_small_run(dir: &Path) -> std::io::Result<()> {
    let mut metrics = String::new();
    for step in 0..40u32 {
        let loss = 2.3 / (1.0 + f64::from(step) / 10.0);
        metrics.push_str(&format!(
            "{{\"step\":{step},\"loss\":{loss},\"val_loss\":{},\"grad_norm\":1.5,\"label_counts\":[5,3,2],\"pred_counts\":[9,1,0]}}\n",
            loss * 1.1
        ));
    }
    std::fs::write(dir.join("metrics.jsonl"), metrics)?;
    let stats = "\"count\":12,\"mean\":0.1,\"std\":0.5,\"min\":-1,\"max\":1,\"abs_mean\":0.4,\"l2\":1.7,\"zero_frac\":0.1,\"nonfinite\":0";
    let mut tensors = String::new();
    for step in [0u32, 10, 20, 30] {
        for (name, kind) in [("fc1.weight", "weight"), ("fc1.weight", "grad"), ("fc1.weight", "update"), ("fc1", "activation"), ("input", "input")] {
            tensors.push_str(&format!("{{\"step\":{step},\"name\":\"{name}\",\"kind\":\"{kind}\",\"shape\":[3,4],{stats},\"dead_frac\":0.2}}\n"));
        }
    }
    std::fs::write(dir.join("tensors.jsonl"), tensors)?;
    let labels: Vec<u8> = [0i64, 2, 1, 0].iter().flat_map(|v| v.to_le_bytes()).collect();
    let logits: Vec<u8> = (0..12).flat_map(|i| (i as f32 * 0.1).to_le_bytes()).collect();
    let weight: Vec<u8> = (0..12).flat_map(|i| ((i % 5) as f32 - 2.0).to_le_bytes()).collect();
    let header = format!(
        "{{\"__metadata__\":{{\"step\":\"0\"}},\"fc1.weight\":{{\"dtype\":\"F32\",\"shape\":[3,4],\"data_offsets\":[0,48]}},\"labels\":{{\"dtype\":\"I64\",\"shape\":[4],\"data_offsets\":[48,80]}},\"logits\":{{\"dtype\":\"F32\",\"shape\":[4,3],\"data_offsets\":[80,128]}}}}"
    );
    let mut file = (header.len() as u64).to_le_bytes().to_vec();
    file.extend(header.as_bytes());
    file.extend(weight);
    file.extend(labels);
    file.extend(logits);
    std::fs::create_dir_all(dir.join("checkpoints"))?;
    std::fs::write(dir.join("checkpoints/step-00000000.safetensors"), file)
}

fuzz_target!(|data: &[u8]| {
    let dir = std::env::temp_dir().join(format!("postmortem-fuzz-run-{}", std::process::id()));
    if !dir.join("metrics.jsonl").exists() && (std::fs::create_dir_all(&dir).is_err() || write_small_run(&dir).is_err()) {
        return;
    }
    if std::fs::write(dir.join("run.json"), data).is_err() {
        return;
    }
    if let Ok(run) = postmortem::Run::load(&dir) {
        let _ = postmortem::analysis::analyze(&run, &postmortem::config::Config::default());
    }
});
