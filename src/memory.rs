//! Memory given back after image work. One allocator serves the whole process: mimalloc is
//! Rust's global allocator and, built with its `override` feature, also the `malloc` of the C
//! codecs linked in (mozjpeg, libaom, libwebp). With glibc's malloc beside it, the
//! pages the quality search's scorer had freed (held by mimalloc for its purge delay) could not
//! serve the final encode's coefficient buffers (allocated by mozjpeg through glibc), so the two
//! peaks added up: 8 concurrent 12 MP uploads (`bash bench/rss.sh`) peaked at 750–757 MiB with
//! two allocators and 682–689 MiB with one, and took 7.2 s instead of 8.2–8.5 s.
//!
//! mimalloc returns the pages a thread freed to the OS only when that thread calls into the
//! allocator again; image work runs on tokio's blocking pool and the codecs' rayon workers,
//! which then sit idle, so after a burst of big images the server would keep its peak resident
//! memory for good (measured: 2.1 GB after the burst of `tests/admission.rs`, against 50 MB
//! idle). So a background thread asks every rayon worker (and itself) to collect every few
//! seconds, and tokio's workers collect as they park (at most as often). mimalloc's own purge
//! delay (1000 ms) is kept: purging at once made the quality search fault its big scoring
//! buffers in again on every trial (photo_garden's automatic quality: 2.7–3.8 s purging at
//! once, 1.6–2.7 s at mimalloc's delay).

use std::time::Duration;

/// How often idle memory is collected: rarely enough to cost nothing, soon enough that a
/// burst's peak does not linger.
const EVERY: Duration = Duration::from_secs(2);

/// For tokio's worker threads, as they park: collects the thread's own heap at most every
/// [`EVERY`] (request bodies and answers are allocated there).
pub fn collect_when_parking() {
    thread_local! {
        static LAST: std::cell::Cell<Option<std::time::Instant>> = const { std::cell::Cell::new(None) };
    }
    let now = std::time::Instant::now();
    let due = LAST
        .get()
        .is_none_or(|last| now.duration_since(last) >= EVERY);
    if due {
        LAST.set(Some(now));
        // SAFETY: mi_collect only walks the calling thread's heap and the shared arenas.
        unsafe { libmimalloc_sys::mi_collect(true) };
    }
}

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
