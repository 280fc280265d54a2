//! Prometheus metrics: this module owns every metric name and label the server exports, the
//! process-wide recorder (render-only: `GET /metrics` renders it, no listener of its own) and
//! the resident-memory reading taken at render time. The service and the HTTP middleware call
//! the small `record_*` functions here; before [`install`] (unit tests) they record nothing.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, gauge, histogram};
use metrics_exporter_prometheus::{BuildError, PrometheusBuilder, PrometheusHandle};

pub const HTTP_REQUESTS: &str = "pixpress_http_requests_total";
pub const HTTP_DURATION: &str = "pixpress_http_request_duration_seconds";
pub const STEP_DURATION: &str = "pixpress_step_duration_seconds";
pub const BYTES_IN: &str = "pixpress_bytes_in_total";
pub const BYTES_OUT: &str = "pixpress_bytes_out_total";
pub const BYTES_SAVED: &str = "pixpress_bytes_saved_total";
pub const REFUSALS: &str = "pixpress_refusals_total";
pub const QUEUE_DEPTH: &str = "pixpress_queue_depth";
pub const RESIDENT_MEMORY: &str = "process_resident_memory_bytes";
pub const RATELIMIT_BACKEND_ERRORS: &str = "pixpress_ratelimit_backend_errors_total";

/// Every exported metric name, for the README and the docs test.
pub const NAMES: [&str; 10] = [
    HTTP_REQUESTS,
    HTTP_DURATION,
    STEP_DURATION,
    BYTES_IN,
    BYTES_OUT,
    BYTES_SAVED,
    REFUSALS,
    QUEUE_DEPTH,
    RESIDENT_MEMORY,
    RATELIMIT_BACKEND_ERRORS,
];

/// Histogram buckets in seconds: 1 ms to 2 min, enough for a thumbnail and for a 100 MP AVIF.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 30.0, 120.0,
];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// A pipeline step of one optimise request, the `step` label of [`STEP_DURATION`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Fetch,
    Decode,
    Transform,
    Encode,
    Store,
    Export,
}

impl Step {
    pub fn label(self) -> &'static str {
        match self {
            Step::Fetch => "fetch",
            Step::Decode => "decode",
            Step::Transform => "transform",
            Step::Encode => "encode",
            Step::Store => "store",
            Step::Export => "export",
        }
    }
}

/// Why a request was refused by the caller's plan, the `reason` label of [`REFUSALS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    RateLimit,
    Quota,
}

impl Refusal {
    pub fn label(self) -> &'static str {
        match self {
            Refusal::RateLimit => "rate_limit",
            Refusal::Quota => "quota",
        }
    }
}

/// Installs the process-wide recorder; later calls keep the first one.
pub fn install() -> Result<(), BuildError> {
    if HANDLE.get().is_some() {
        return Ok(());
    }
    let handle = PrometheusBuilder::new()
        .set_buckets(&BUCKETS)?
        .install_recorder()?;
    let _ = HANDLE.set(handle);
    describe();
    // Shown from the first scrape on, not only once something has queued.
    set_queue_depth(0);
    Ok(())
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        HTTP_REQUESTS,
        "HTTP requests answered, by route template and status"
    );
    describe_histogram!(
        HTTP_DURATION,
        Unit::Seconds,
        "Time to answer, by route template"
    );
    describe_histogram!(STEP_DURATION, Unit::Seconds, "Time per pipeline step");
    describe_counter!(
        BYTES_IN,
        Unit::Bytes,
        "Input bytes of successful optimisations"
    );
    describe_counter!(
        BYTES_OUT,
        Unit::Bytes,
        "Output bytes of successful optimisations"
    );
    describe_counter!(
        BYTES_SAVED,
        Unit::Bytes,
        "Bytes saved (input minus output, per output)"
    );
    describe_counter!(
        REFUSALS,
        "Requests refused by the plan: rate limit or monthly quota"
    );
    describe_counter!(
        RATELIMIT_BACKEND_ERRORS,
        "Rate-limit checks that could not reach Redis, by the --redis-down policy applied"
    );
    describe_gauge!(
        QUEUE_DEPTH,
        "Images waiting for a worker slot or memory budget"
    );
    describe_gauge!(
        RESIDENT_MEMORY,
        Unit::Bytes,
        "Resident set size of this process"
    );
}

/// The Prometheus text exposition of every metric, with the resident memory read now; None
/// when no recorder was installed.
pub fn render() -> Option<String> {
    let handle = HANDLE.get()?;
    if let Some(rss) = resident_memory_bytes() {
        gauge!(RESIDENT_MEMORY).set(rss as f64);
    }
    Some(handle.render())
}

/// RSS from the `VmRSS` line of `/proc/self/status` (in kB there, so no page size is needed);
/// None where there is no procfs.
fn resident_memory_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("VmRSS:"))?;
    let kib: u64 = line.trim().trim_end_matches("kB").trim().parse().ok()?;
    Some(kib * 1024)
}

pub fn record_http(route: &str, status: u16, elapsed: Duration) {
    counter!(HTTP_REQUESTS, "route" => route.to_string(), "status" => status.to_string())
        .increment(1);
    histogram!(HTTP_DURATION, "route" => route.to_string()).record(elapsed.as_secs_f64());
}

pub fn record_step(step: Step, elapsed: Duration) {
    histogram!(STEP_DURATION, "step" => step.label()).record(elapsed.as_secs_f64());
}

/// One output's decode (when it carries the shared decode), transform and encode times.
pub fn record_pixel_steps(steps: &pixpress_core::StepTimes) {
    if !steps.decode.is_zero() {
        record_step(Step::Decode, steps.decode);
    }
    record_step(Step::Transform, steps.transform);
    record_step(Step::Encode, steps.encode);
}

/// The bytes of one successful optimisation: its input once, and each output's size and saving.
pub fn record_bytes(input: u64, outputs: impl IntoIterator<Item = (u64, u64)>) {
    counter!(BYTES_IN).increment(input);
    for (out, saved) in outputs {
        counter!(BYTES_OUT).increment(out);
        counter!(BYTES_SAVED).increment(saved);
    }
}

pub fn record_refusal(reason: Refusal) {
    counter!(REFUSALS, "reason" => reason.label()).increment(1);
}

/// A rate-limit check that could not reach Redis; `policy`: `fail_open` or `fail_closed`.
pub fn record_ratelimit_backend_error(policy: &'static str) {
    counter!(RATELIMIT_BACKEND_ERRORS, "policy" => policy).increment(1);
}

pub fn set_queue_depth(waiting: usize) {
    gauge!(QUEUE_DEPTH).set(waiting as f64);
}
