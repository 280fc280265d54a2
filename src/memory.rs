//! Memory given back after image work. mimalloc returns the pages a thread freed to the OS only
//! when that thread calls into the allocator again; image work runs on tokio's blocking pool
//! and the codecs' rayon workers, which then sit idle, so after a burst of big images the
//! server would keep its peak resident memory for good (measured: 2.1 GB after the burst of
//! `tests/admission.rs`, against 50 MB idle). So: a background thread asks every rayon worker
//! (and itself) to collect every few seconds, tokio's
//! workers collect as they park (at most as often), and the C codecs' glibc heap keeps one
//! arena per core (not eight), maps big buffers on their own and is trimmed with the
//! collection. Measured after that burst: 2.1 GB → 240–410 MB with the periodic collection
//! alone, → 179 MB with the trim, → 83 MB with the immediate purge and one arena per core,
//! → 52–123 MB with the workers' collection, → 63–88 MB with the fixed mmap threshold (the
//! same server after as many small requests of the same kinds, settled: 58–72 MB). mimalloc's
//! own purge delay (1000 ms) is kept: purging at once, which the collection has made needless
//! for the memory after a burst (73 MB against 64 idle, 38 against 38 without huge pages), made
//! the quality search fault its big scoring buffers in again on every trial (photo_garden's
//! automatic quality: 4.1 s purging at once, 3.4 s at 100 ms, 2.0 s at mimalloc's delay).

use std::time::Duration;

/// How often idle memory is collected: rarely enough to cost nothing, soon enough that a
/// burst's peak does not linger.
const EVERY: Duration = Duration::from_secs(2);

/// glibc's default starting threshold (128 KiB), kept fixed.
const MMAP_THRESHOLD_BYTES: i32 = 128 * 1024;

/// Allocator settings, before any worker thread exists.
pub fn return_freed_memory_promptly() {
    // SAFETY: both only change allocator options; called before other threads start.
    unsafe {
        let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
        libc::mallopt(libc::M_ARENA_MAX, cores.try_into().unwrap_or(2));
        // A fixed threshold: big codec buffers always get their own mapping, given back when
        // freed. glibc's default raises it to the largest block freed so far (up to 32 MiB),
        // after which such buffers come from an arena and can stay resident behind live ones.
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
    }
}

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
            // SAFETY: malloc_trim only hands free pages of the C allocator's arenas back.
            unsafe { libc::malloc_trim(0) };
        });
    if let Err(e) = spawned {
        tracing::warn!("freed memory will be returned lazily: {e}");
    }
}
