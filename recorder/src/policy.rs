//! What to record, and how often. The defaults keep a run small while giving
//! every rule of the analyzer its data: metrics every step, tensor statistics
//! every 10 steps, checkpoints (with gradients and activations) at steps 0 and
//! 1, every 1,000 steps, and at the end.

/// When each kind of record is wanted. An interval of 0 means never.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordPolicy {
    pub metrics_every: u64,
    pub stats_every: u64,
    pub checkpoint_every: u64,
    /// Steps that always get a checkpoint; step 0 shows the initialization.
    pub checkpoint_at: Vec<u64>,
    /// Whether checkpoints carry `grad/` tensors.
    pub checkpoint_grads: bool,
    /// Whether checkpoints carry `act/`, `input`, `labels` and `logits`.
    pub checkpoint_activations: bool,
}

impl Default for RecordPolicy {
    fn default() -> Self {
        RecordPolicy {
            metrics_every: 1,
            stats_every: 10,
            checkpoint_every: 1000,
            checkpoint_at: vec![0, 1],
            checkpoint_grads: true,
            checkpoint_activations: true,
        }
    }
}

fn every(interval: u64, step: u64) -> bool {
    interval != 0 && step.is_multiple_of(interval)
}

impl RecordPolicy {
    /// Records nothing but what the training loop logs by hand.
    pub fn off() -> Self {
        RecordPolicy {
            metrics_every: 0,
            stats_every: 0,
            checkpoint_every: 0,
            checkpoint_at: Vec::new(),
            checkpoint_grads: false,
            checkpoint_activations: false,
        }
    }

    pub fn wants_metrics(&self, step: u64) -> bool {
        every(self.metrics_every, step)
    }

    pub fn wants_stats(&self, step: u64) -> bool {
        every(self.stats_every, step)
    }

    /// Whether `step` gets a checkpoint; pass `last` for the final step of the
    /// run, which always gets one unless checkpoints are off.
    pub fn wants_checkpoint(&self, step: u64, last: bool) -> bool {
        let any = self.checkpoint_every != 0 || !self.checkpoint_at.is_empty();
        (last && any) || every(self.checkpoint_every, step) || self.checkpoint_at.contains(&step)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_intervals() {
        let p = RecordPolicy::default();
        assert!(p.wants_metrics(7));
        assert!(p.wants_stats(20) && !p.wants_stats(21));
        assert!(p.wants_checkpoint(0, false) && p.wants_checkpoint(1, false));
        assert!(p.wants_checkpoint(3000, false) && !p.wants_checkpoint(2, false));
        assert!(p.wants_checkpoint(1234, true));
        let off = RecordPolicy::off();
        assert!(!off.wants_metrics(0) && !off.wants_stats(0) && !off.wants_checkpoint(5, true));
    }
}
