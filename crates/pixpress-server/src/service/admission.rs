//! Admission control for image work (the work gate): this module owns the worker slots, the
//! memory budget and the queue. Every image is admitted against two bounds: a number of worker
//! slots (CPU) and a memory budget in MiB, charged by the working memory the core predicts from
//! the header and the request (`pixpress_core::predicted_memory`, the quality search included)
//! before any pixel is decoded. What does not fit right away waits in a bounded queue; when the
//! queue is full the request is refused at once (503 `overloaded` with `Retry-After`, chosen by
//! `http::error`), so a burst of big images costs neither unbounded memory nor an out-of-memory
//! kill. An image within the pixel limit is never refused for its size: one predicted to need
//! more than the whole budget is charged the whole budget, so it runs alone.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::metrics;

#[derive(Debug, thiserror::Error)]
pub enum AdmissionError {
    /// The queue is full (503 `overloaded`, with `Retry-After`).
    #[error("the server is busy with other images; retry after the Retry-After delay")]
    Overloaded,
}

#[derive(Clone, Debug)]
pub struct WorkGate {
    workers: Arc<Semaphore>,
    memory: Arc<Semaphore>,
    budget_mib: u32,
    waiting: Arc<AtomicUsize>,
    max_waiting: usize,
}

/// Held while an image is being worked on; dropping it returns the slot and the memory.
#[derive(Debug)]
pub struct Admission {
    _worker: OwnedSemaphorePermit,
    _memory: OwnedSemaphorePermit,
}

struct WaitingGuard(Arc<AtomicUsize>);

impl Drop for WaitingGuard {
    fn drop(&mut self) {
        let before = self.0.fetch_sub(1, Ordering::SeqCst);
        metrics::set_queue_depth(before.saturating_sub(1));
    }
}

/// Bytes as whole MiB, rounded up (at least 1): what the gate charges.
pub fn charge_mib(bytes: u64) -> u64 {
    bytes.div_ceil(1024 * 1024).max(1)
}

impl WorkGate {
    pub fn new(workers: usize, budget_mib: u32, max_waiting: usize) -> Self {
        WorkGate {
            workers: Arc::new(Semaphore::new(workers.max(1))),
            memory: Arc::new(Semaphore::new(budget_mib.max(1) as usize)),
            budget_mib: budget_mib.max(1),
            waiting: Arc::new(AtomicUsize::new(0)),
            max_waiting,
        }
    }

    pub fn budget_mib(&self) -> u32 {
        self.budget_mib
    }

    /// Waits for a worker slot and `cost_mib` of the budget (all of it, for an image predicted
    /// to need more), or is refused at once when the queue is full.
    pub async fn admit(&self, cost_mib: u64) -> Result<Admission, AdmissionError> {
        let cost = cost_mib.min(u64::from(self.budget_mib)) as u32;
        if let Some(admission) = self.try_admit(cost) {
            return Ok(admission);
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.max_waiting {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(AdmissionError::Overloaded);
        }
        let _waiting = WaitingGuard(self.waiting.clone());
        metrics::set_queue_depth(self.waiting.load(Ordering::SeqCst));
        let memory = self
            .memory
            .clone()
            .acquire_many_owned(cost)
            .await
            .map_err(|_| AdmissionError::Overloaded)?;
        let worker = self
            .workers
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| AdmissionError::Overloaded)?;
        Ok(Admission {
            _worker: worker,
            _memory: memory,
        })
    }

    fn try_admit(&self, cost: u32) -> Option<Admission> {
        let memory = self.memory.clone().try_acquire_many_owned(cost).ok()?;
        let worker = self.workers.clone().try_acquire_owned().ok()?;
        Some(Admission {
            _worker: worker,
            _memory: memory,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn queue_beyond_its_bound_is_refused_at_once() {
        let gate = WorkGate::new(1, 100, 1);
        let first = gate.admit(10).await.unwrap();
        let g2 = gate.clone();
        let queued = tokio::spawn(async move { g2.admit(10).await.map(|_| ()) });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let refused = gate.admit(10).await.unwrap_err();
        assert!(matches!(refused, AdmissionError::Overloaded));
        drop(first);
        assert!(queued.await.unwrap().is_ok());
    }

    #[tokio::test]
    async fn memory_budget_limits_concurrency_and_oversize_runs_alone() {
        let gate = WorkGate::new(8, 100, 0);
        let a = gate.admit(60).await.unwrap();
        assert!(matches!(
            gate.admit(60).await.unwrap_err(),
            AdmissionError::Overloaded
        ));
        let b = gate.admit(40).await.unwrap();
        drop((a, b));
        // Over the whole budget: charged all of it, so nothing else runs beside it.
        let alone = gate.admit(1000).await.unwrap();
        assert!(matches!(
            gate.admit(1).await.unwrap_err(),
            AdmissionError::Overloaded
        ));
        drop(alone);
        assert!(gate.admit(100).await.is_ok());
        assert_eq!(charge_mib(1), 1);
        assert_eq!(charge_mib(12 * 1024 * 1024 + 1), 13);
        assert_eq!(charge_mib(u64::MAX), u64::MAX.div_ceil(1024 * 1024));
    }
}
