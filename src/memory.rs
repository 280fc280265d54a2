//! Memory given back after image work. mimalloc returns the pages a thread freed to the OS only
//! when that thread calls into the allocator again; image work runs on tokio's blocking pool
//! and the codecs' rayon workers, which then sit idle, so after a burst of big images the
//! server would keep its peak resident memory for good (measured: 2.1 GB after the burst of
//! `tests/admission.rs`, against 50 MB idle). A background thread asks every rayon worker (and
//! itself) to collect every few seconds: 240–410 MB remain after that burst (also tried and
//! no better: collecting as idle blocking threads stop, immediate purging).

use std::time::Duration;

/// How often idle memory is collected: rarely enough to cost nothing, soon enough that a
/// burst's peak does not linger.
const EVERY: Duration = Duration::from_secs(2);

pub fn collect_freed_memory_periodically() {
    let spawned = std::thread::Builder::new()
        .name("memory-collect".into())
        .spawn(|| loop {
            std::thread::sleep(EVERY);
            // SAFETY: mi_collect only walks the calling thread's heap and the shared arenas.
            rayon::broadcast(|_| unsafe { libmimalloc_sys::mi_collect(true) });
            unsafe { libmimalloc_sys::mi_collect(true) };
        });
    if let Err(e) = spawned {
        tracing::warn!("freed memory will be returned lazily: {e}");
    }
}
