//! The optimise service: one request, in the order the README gives —
//! key → rate limit → quota ([`Service::admit`]), then fetch → reserve → pipeline → host →
//! export → meter ([`Service::optimise`]). The two halves are separate because an upload's key
//! may arrive before the upload is read (checked first) or inside it (checked once the parts are
//! read). Admission refuses a key whose hard quota is already used up, before any input is read;
//! once the input's size is known its bytes are reserved against the quota atomically (exact
//! under any concurrency, on any number of instances), committed once the outputs are hosted
//! and released on every failure before that. Once its outputs are hosted the work was done,
//! so a request is metered even when an export then fails.

use bytes::Bytes;
use pixpress_core::{Output, Warning};

use crate::accounts::keys::{self, Verdict};
use crate::accounts::ratelimit::{Decision, RateLimitError};
use crate::accounts::usage::{self, Headroom, Reservation, Reserved};
use crate::metrics::{self, Refusal, Step};
use crate::service::admission::charge_mib;
use crate::service::answer::{build_response, Answer, MultiResponse, OptimizeResponse};
use crate::service::error::ServiceError;
use crate::service::job::{Input, Job};
use crate::service::state::Service;
use crate::storage::export::{ExportItem, Stores};

/// The authenticated caller: key id and account plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Caller {
    pub id: String,
    pub plan: String,
}

/// A caller let through by its rate limit and quota.
#[derive(Clone, Debug)]
pub struct Admitted {
    pub caller: Caller,
    /// The rate limiter's decision, for the `RateLimit-*` headers of whatever the answer is.
    pub rate: Decision,
    /// A hard monthly quota as it stood at admission; None when the plan goes on past it.
    quota: Option<Headroom>,
    /// Bills under this id, once however often the work runs (a queued job's id).
    charge_id: Option<String>,
}

impl Admitted {
    /// An upload of `bytes` still fits in a hard quota as it stood at admission.
    pub fn check_fits(&self, bytes: u64) -> Result<(), ServiceError> {
        match self.quota {
            Some(h) if h.used.saturating_add(bytes) > h.quota => {
                Err(self.quota_exceeded(h.quota, h.used, 0))
            }
            _ => Ok(()),
        }
    }

    fn quota_exceeded(&self, quota: u64, used: u64, reserved: u64) -> ServiceError {
        metrics::record_refusal(Refusal::Quota);
        ServiceError::QuotaExceeded {
            plan: self.caller.plan.clone(),
            quota,
            used,
            reserved,
            decision: self.rate,
        }
    }
}

impl Service {
    /// Checks the presented key: missing, unknown and revoked keys are refused.
    pub async fn authenticate(&self, key: Option<&str>) -> Result<Caller, ServiceError> {
        let key = key.ok_or(ServiceError::MissingKey)?;
        match keys::verify(&self.db, key).await? {
            Verdict::Valid { id, plan } => Ok(Caller { id, plan }),
            Verdict::Unknown => Err(ServiceError::UnknownKey),
            Verdict::Revoked => Err(ServiceError::RevokedKey),
        }
    }

    /// The rate-limit state of a key without counting a request, for the headers of answers the
    /// limit does not decide: a mistake found before admission, a usage report. None when the
    /// key does not pass or Redis cannot be reached.
    pub async fn peek_rate(&self, key: Option<&str>) -> Option<Decision> {
        let caller = self.authenticate(key).await.ok()?;
        self.peek_caller_rate(&caller).await
    }

    pub async fn peek_caller_rate(&self, caller: &Caller) -> Option<Decision> {
        let allowance = self.plans.get(&caller.plan);
        self.limiter
            .peek(&caller.id, allowance.requests_per_second)
            .await
    }

    /// key → rate limit → quota: everything checked before a byte of input is fetched or read.
    pub async fn admit(&self, key: Option<&str>) -> Result<Admitted, ServiceError> {
        let caller = self.authenticate(key).await?;
        let allowance = self.plans.get(&caller.plan);
        let rate = self
            .limiter
            .check(&caller.id, allowance.requests_per_second)
            .await
            .map_err(|e| ServiceError::RateLimiterUnavailable {
                decision: match e {
                    RateLimitError::Unavailable { decision, .. } => decision,
                    RateLimitError::Redis(_) => {
                        Decision::unavailable(allowance.requests_per_second)
                    }
                },
            })?;
        if !rate.allowed {
            metrics::record_refusal(Refusal::RateLimit);
            return Err(ServiceError::RateLimited {
                plan: caller.plan,
                per_second: allowance.requests_per_second,
                decision: rate,
            });
        }
        let quota = self.headroom(&caller).await?;
        let admitted = Admitted {
            caller,
            rate,
            quota,
            charge_id: None,
        };
        match admitted.quota {
            Some(h) if h.exhausted() => Err(admitted.quota_exceeded(h.quota, h.used, 0)),
            _ => Ok(admitted),
        }
    }

    /// A queued job's caller, admitted again when the job runs: its key and rate were checked
    /// at submission; its quota is read now and its bytes billed under `charge_id`.
    pub async fn admit_queued(
        &self,
        caller: Caller,
        charge_id: &str,
    ) -> Result<Admitted, ServiceError> {
        let per_second = self.plans.get(&caller.plan).requests_per_second;
        let quota = self.headroom(&caller).await?;
        Ok(Admitted {
            caller,
            rate: Decision::counted_at_submission(per_second),
            quota,
            charge_id: Some(charge_id.to_string()),
        })
    }

    /// The caller's hard quota as it stands; None when the plan goes on past its quota.
    async fn headroom(&self, caller: &Caller) -> Result<Option<Headroom>, ServiceError> {
        let allowance = self.plans.get(&caller.plan);
        if !allowance.hard_quota {
            return Ok(None);
        }
        let used = usage::this_month(&self.db, &caller.id)
            .await
            .map_err(ServiceError::UsageLookup)?;
        Ok(Some(Headroom {
            quota: allowance.bytes_per_month,
            used: used.bytes,
        }))
    }

    /// Holds `bytes` against a hard quota before any work; None for plans without one.
    async fn reserve(
        &self,
        admitted: &Admitted,
        bytes: u64,
    ) -> Result<Option<Reservation>, ServiceError> {
        let Some(headroom) = admitted.quota else {
            return Ok(None);
        };
        let reserved = usage::reserve(&self.db, &admitted.caller.id, bytes, headroom.quota)
            .await
            .map_err(ServiceError::UsageLookup)?;
        match reserved {
            Reserved::Granted(reservation) => Ok(Some(reservation)),
            Reserved::Refused { used, reserved } => {
                Err(admitted.quota_exceeded(headroom.quota, used, reserved))
            }
        }
    }

    /// Bills a request whose outputs were hosted: its reservation, or one upsert; under the
    /// admission's charge id when it has one.
    async fn meter(
        &self,
        admitted: &Admitted,
        reservation: Option<Reservation>,
        bytes: u64,
    ) -> Result<(), ServiceError> {
        let key_id = &admitted.caller.id;
        match (reservation, admitted.charge_id.as_deref()) {
            (Some(reservation), None) => reservation.commit().await,
            (Some(reservation), Some(charge)) => reservation.commit_once(charge).await.map(drop),
            (None, None) => usage::record(&self.db, key_id, bytes).await,
            (None, Some(charge)) => usage::record_once(&self.db, key_id, bytes, charge)
                .await
                .map(drop),
        }
        .map_err(ServiceError::Metering)
    }

    /// fetch → pipeline → host → export → meter, for a caller [`Service::admit`] let through.
    pub async fn optimise(
        &self,
        admitted: &Admitted,
        input: Input,
        job: Job,
    ) -> Result<Answer, ServiceError> {
        let input = self.read_input(input).await?;
        if job.dry_run {
            return self.dry_run(input, job).await;
        }
        self.optimise_bytes(admitted, input, job).await
    }

    /// The input's bytes: fetched (through the address policy) or as uploaded.
    pub(crate) async fn read_input(&self, input: Input) -> Result<Bytes, ServiceError> {
        match input {
            Input::Url(url) => Ok(timed(Step::Fetch, self.fetcher.fetch(&url)).await?),
            Input::Upload(bytes) => Ok(bytes),
        }
    }

    /// pipeline → host → export → meter, for input already in hand.
    pub(crate) async fn optimise_bytes(
        &self,
        admitted: &Admitted,
        input: Bytes,
        job: Job,
    ) -> Result<Answer, ServiceError> {
        let size = input.len() as u64;
        let reservation = self.reserve(admitted, size).await?;
        let stores = job.stores.clone();
        let mut items = Vec::new();
        let hosted = self
            .process_and_host(&admitted.caller.id, input, job, &mut items)
            .await;
        let answer = match hosted {
            Ok(answer) => answer,
            Err(e) => {
                release(reservation).await;
                return Err(e);
            }
        };
        record_bytes(size, &answer);
        let exported = if stores.is_empty() {
            Ok(answer)
        } else {
            timed(Step::Export, self.export(&stores, answer, items)).await
        };
        // Hosted outputs cost the work and are kept even when an export failed: meter them.
        self.meter(admitted, reservation, size).await?;
        exported
    }

    /// Runs CPU-heavy image work on the blocking pool once the gate admits it (worker slot and
    /// predicted memory), so one big image never stalls the async runtime serving everyone else.
    pub(crate) async fn run_image_work<T, F>(
        &self,
        cost_mib: u64,
        work: F,
    ) -> Result<T, ServiceError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let admission = self.gate.admit(cost_mib).await?;
        let result = tokio::task::spawn_blocking(work).await;
        drop(admission);
        Ok(result?)
    }

    /// The pipeline and hosting: probe, optimise (one output or one per resize entry), store
    /// each output as a hosted result, and list what an export would write.
    async fn process_and_host(
        &self,
        key_id: &str,
        input: Bytes,
        job: Job,
        exports: &mut Vec<ExportItem>,
    ) -> Result<Answer, ServiceError> {
        let original_size = input.len() as u64;
        let request = job.request.clone();
        let limits = self.input_limits;
        // Header-only: format, dimensions and frames, for the pixel limit and the memory estimate.
        let probe = pixpress_core::inspect(&input, &limits)?;
        let specs = job.resize.as_ref().map(|resize| resize.specs());
        let cost = charge_mib(pixpress_core::predicted_memory(
            &probe,
            &request,
            specs.as_deref(),
        ));
        let (original_width, original_height) = probe.oriented_dimensions();
        let host = Host {
            service: self,
            key_id,
            original_size,
        };
        let Some(resize) = job.resize else {
            let output = self
                .run_image_work(cost, move || {
                    pixpress_core::optimize(&input, &probe, &request, &limits)
                })
                .await??;
            let response = host.put(output, None, job.warnings, exports).await?;
            return Ok(Answer::One(response));
        };
        let specs = resize.specs();
        let outputs = self
            .run_image_work(cost, move || {
                pixpress_core::optimize_resized(&input, &probe, &request, &specs, &limits)
            })
            .await??;
        if !resize.is_array {
            let mut warnings = job.warnings;
            warnings.extend(resize.entries.into_iter().flat_map(|e| e.warnings));
            let output = outputs.into_iter().next().ok_or(ServiceError::NoOutput)?;
            let response = host.put(output, None, warnings, exports).await?;
            return Ok(Answer::One(response));
        }
        let mut results = Vec::with_capacity(outputs.len());
        for (output, entry) in outputs.into_iter().zip(resize.entries) {
            results.push(host.put(output, entry.id, entry.warnings, exports).await?);
        }
        Ok(Answer::Many(MultiResponse {
            original_size,
            original_width,
            original_height,
            results,
            warnings: job.warnings,
        }))
    }

    /// Writes the hosted outputs to the user's stores and fills `stored`. A refusal keeps the
    /// hosted answer (URLs and the writes that succeeded) inside the error.
    async fn export(
        &self,
        stores: &Stores,
        mut answer: Answer,
        items: Vec<ExportItem>,
    ) -> Result<Answer, ServiceError> {
        if stores.is_empty() {
            return Ok(answer);
        }
        let mut written = Vec::new();
        let outcome = self.exporter.export(stores, &items, &mut written).await;
        for (response, entries) in answer.responses_mut().into_iter().zip(written) {
            response.stored = entries;
        }
        match outcome {
            Ok(()) => Ok(answer),
            Err(error) => Err(ServiceError::Export {
                error,
                hosted: Box::new(answer),
            }),
        }
    }
}

/// Gives a failed request's reserved bytes back. Should that fail too, the lease does it.
async fn release(reservation: Option<Reservation>) {
    if let Some(reservation) = reservation {
        if let Err(e) = reservation.release().await {
            tracing::warn!("releasing a quota reservation (its lease will): {e}");
        }
    }
}

/// Awaits `work` and records its wall time as `step`, whether it succeeded or not.
async fn timed<T>(step: Step, work: impl std::future::Future<Output = T>) -> T {
    let start = std::time::Instant::now();
    let result = work.await;
    metrics::record_step(step, start.elapsed());
    result
}

/// Counts the bytes of a hosted answer: the input once, each output's size and saving.
fn record_bytes(input: u64, answer: &Answer) {
    let outputs: Vec<(u64, u64)> = match answer {
        Answer::One(one) => vec![(one.final_size, one.bytes_saved)],
        Answer::Many(many) => many
            .results
            .iter()
            .map(|r| (r.final_size, r.bytes_saved))
            .collect(),
        Answer::DryRun(_) => Vec::new(),
    };
    metrics::record_bytes(input, outputs);
}

/// Hosting for one request: the caller's key and the input's size, shared by every output.
struct Host<'a> {
    service: &'a Service,
    key_id: &'a str,
    original_size: u64,
}

impl Host<'_> {
    /// Stores one output as a hosted result, lists it for export and describes it.
    async fn put(
        &self,
        output: Output,
        id: Option<String>,
        warnings: Vec<Warning>,
        exports: &mut Vec<ExportItem>,
    ) -> Result<OptimizeResponse, ServiceError> {
        let service = self.service;
        metrics::record_pixel_steps(&output.steps);
        let bytes = Bytes::copy_from_slice(&output.bytes);
        let stored = timed(
            Step::Store,
            service.results.put(
                &service.db,
                self.key_id,
                bytes.clone(),
                output.format.extension(),
                output.format.mime(),
            ),
        )
        .await
        .map_err(ServiceError::Hosting)?;
        exports.push(ExportItem {
            bytes,
            ext: output.format.extension(),
            content_type: output.format.mime(),
            width: output.width,
            height: output.height,
            id: id.clone().unwrap_or_else(|| stored.id.clone()),
        });
        let url = format!(
            "{}/v1/images/{}.{}",
            service.public_url, stored.id, stored.ext
        );
        let mut response = build_response(
            self.original_size,
            output,
            url,
            stored.expires_at_ms,
            id,
            warnings,
        );
        response.hosted_file = stored.object_name();
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::time::Duration;

    use super::*;
    use crate::accounts::plans::{PlanOverride, Plans};
    use crate::accounts::ratelimit::RateLimiter;
    use crate::fetch::client::{FetchError, Fetcher};
    use crate::fetch::guard::AddressPolicy;
    use crate::service::callback::{Callbacks, Deliverer, Queue};
    use crate::storage::export::s3::S3Store;
    use crate::storage::export::target::WriteHeaders;
    use crate::storage::export::Exporter;
    use crate::storage::hosted::ObjectStore;
    use crate::storage::results::ResultStore;
    use crate::storage::secret::Secret;

    /// An 8×8 RGB PNG.
    const PNG: [u8; 94] = [
        0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0x00, 0x00, 0x00, 0x0d, 0x49, 0x48, 0x44,
        0x52, 0x00, 0x00, 0x00, 0x08, 0x00, 0x00, 0x00, 0x08, 0x08, 0x02, 0x00, 0x00, 0x00, 0x4b,
        0x6d, 0x29, 0xdc, 0x00, 0x00, 0x00, 0x25, 0x49, 0x44, 0x41, 0x54, 0x78, 0xda, 0x63, 0x60,
        0x60, 0x60, 0x50, 0x50, 0x50, 0x70, 0x70, 0x70, 0x48, 0x48, 0x48, 0x68, 0x68, 0x68, 0x58,
        0xb0, 0x60, 0xc1, 0x81, 0x03, 0x07, 0x1e, 0x3c, 0x78, 0xc0, 0x30, 0xb4, 0x24, 0x00, 0x58,
        0x99, 0x54, 0x01, 0x9d, 0xd7, 0x23, 0x85, 0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4e, 0x44,
        0xae, 0x42, 0x60, 0x82,
    ];

    /// A service over real components: SQLite and the directory store in a tempdir, the
    /// in-memory rate limiter, and the default address policy (loopback refused).
    async fn service(free: PlanOverride) -> (tempfile::TempDir, Service) {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::open(dir.path(), None).await.unwrap();
        let url = crate::db::url(dir.path(), None).unwrap();
        let callbacks = Callbacks {
            queue: Queue::open(&url).await.unwrap(),
            deliverer: Deliverer::new(AddressPolicy::default(), Duration::from_secs(1)).unwrap(),
        };
        let store = ObjectStore::open(&Default::default(), &dir.path().join("results")).unwrap();
        let timeout = Duration::from_secs(2);
        let overrides = BTreeMap::from([("free".to_string(), free)]);
        let service = Service {
            db,
            results: ResultStore::new(store, Duration::from_secs(3600)),
            fetcher: Fetcher::new(AddressPolicy::default(), 1 << 20, timeout, timeout).unwrap(),
            input_limits: pixpress_core::Limits::default(),
            public_url: "http://pixpress.test".into(),
            gate: crate::service::admission::WorkGate::new(2, 256, 4),
            plans: Plans::default().with_overrides(&overrides).unwrap(),
            limiter: RateLimiter::memory(),
            exporter: Exporter::new(AddressPolicy::default(), timeout, timeout).unwrap(),
            callbacks,
        };
        (dir, service)
    }

    fn roomy() -> PlanOverride {
        PlanOverride {
            bytes_per_month: None,
            requests_per_second: Some(100),
        }
    }

    async fn free_key(service: &Service) -> String {
        keys::create(&service.db, "free", None).await.unwrap().0
    }

    async fn metered(service: &Service, key: &str) -> usage::MonthUsage {
        let Ok(Verdict::Valid { id, .. }) = keys::verify(&service.db, key).await else {
            panic!("the test key is valid");
        };
        usage::this_month(&service.db, &id).await.unwrap()
    }

    fn hosted_files(dir: &tempfile::TempDir) -> usize {
        std::fs::read_dir(dir.path().join("results"))
            .unwrap()
            .count()
    }

    fn upload() -> Input {
        Input::Upload(Bytes::from_static(&PNG))
    }

    #[tokio::test]
    async fn a_good_request_is_hosted_and_metered_once() {
        let (dir, service) = service(roomy()).await;
        let key = free_key(&service).await;
        let admitted = service.admit(Some(&key)).await.unwrap();
        assert!(admitted.rate.allowed);
        let answer = service
            .optimise(&admitted, upload(), Job::default())
            .await
            .unwrap();
        let Answer::One(one) = answer else {
            panic!("one output")
        };
        assert_eq!(one.original_size, PNG.len() as u64);
        assert_eq!((one.final_width, one.final_height), (8, 8));
        assert!(
            one.url.starts_with("http://pixpress.test/v1/images/"),
            "{}",
            one.url
        );
        assert_eq!(hosted_files(&dir), 1);
        let file = one.url.rsplit('/').next().unwrap();
        assert!(service.find_result(file).await.is_ok());
        let used = metered(&service, &key).await;
        assert_eq!((used.bytes, used.requests), (PNG.len() as u64, 1));
    }

    #[tokio::test]
    async fn a_queued_job_run_twice_is_billed_once_on_either_billing_path() {
        let (dir, service) = service(roomy()).await;
        // The free plan's hard quota bills through a reservation, the pro plan by an upsert.
        for (plan, job_id) in [("free", "job-free"), ("pro", "job-pro")] {
            let (key, info) = keys::create(&service.db, plan, None).await.unwrap();
            let caller = Caller {
                id: info.id.clone(),
                plan: plan.into(),
            };
            for _ in 0..2 {
                let admitted = service.admit_queued(caller.clone(), job_id).await.unwrap();
                assert!(admitted.rate.allowed);
                service
                    .optimise(&admitted, upload(), Job::default())
                    .await
                    .unwrap();
            }
            let used = metered(&service, &key).await;
            assert_eq!((used.bytes, used.requests), (PNG.len() as u64, 1), "{plan}");
            // Another job of the same key is billed on its own (job ids are unique, 128 random
            // bits, and so are charge ids).
            let another = format!("another-{plan}");
            let admitted = service.admit_queued(caller, &another).await.unwrap();
            service
                .optimise(&admitted, upload(), Job::default())
                .await
                .unwrap();
            let used = metered(&service, &key).await;
            assert_eq!(
                (used.bytes, used.requests),
                (2 * PNG.len() as u64, 2),
                "{plan}"
            );
        }
        // Every run did its work: 3 hosted outputs per key.
        assert_eq!(hosted_files(&dir), 6);
    }

    #[tokio::test]
    async fn keys_are_checked_first() {
        let (_dir, service) = service(roomy()).await;
        assert!(matches!(
            service.admit(None).await,
            Err(ServiceError::MissingKey)
        ));
        assert!(matches!(
            service.admit(Some("pxk_deadbeef_00")).await,
            Err(ServiceError::UnknownKey)
        ));
        let key = free_key(&service).await;
        keys::revoke(&service.db, &key).await.unwrap();
        assert!(matches!(
            service.admit(Some(&key)).await,
            Err(ServiceError::RevokedKey)
        ));
    }

    #[tokio::test]
    async fn a_rate_limited_key_is_refused_before_any_work() {
        let one_per_second = PlanOverride {
            bytes_per_month: None,
            requests_per_second: Some(1),
        };
        let (dir, service) = service(one_per_second).await;
        let key = free_key(&service).await;
        service.admit(Some(&key)).await.unwrap();
        let refused = service.admit(Some(&key)).await.unwrap_err();
        let ServiceError::RateLimited { decision, .. } = refused else {
            panic!("rate limited: {refused}")
        };
        assert!(!decision.allowed && decision.retry_after > Duration::ZERO);
        assert_eq!(hosted_files(&dir), 0);
        assert_eq!(metered(&service, &key).await, usage::MonthUsage::default());
    }

    #[tokio::test]
    async fn over_quota_is_refused_and_not_metered() {
        let tiny = PlanOverride {
            bytes_per_month: Some(PNG.len() as u64 + 10),
            requests_per_second: Some(100),
        };
        let (dir, service) = service(tiny).await;
        let key = free_key(&service).await;
        // The first fits; the second would go past the quota once its size is known.
        let admitted = service.admit(Some(&key)).await.unwrap();
        service
            .optimise(&admitted, upload(), Job::default())
            .await
            .unwrap();
        let admitted = service.admit(Some(&key)).await.unwrap();
        let refused = service
            .optimise(&admitted, upload(), Job::default())
            .await
            .unwrap_err();
        assert!(
            matches!(refused, ServiceError::QuotaExceeded { used, .. } if used == PNG.len() as u64),
            "{refused}"
        );
        assert_eq!(hosted_files(&dir), 1);
        let used = metered(&service, &key).await;
        assert_eq!((used.bytes, used.requests), (PNG.len() as u64, 1));
        // Once used up, the key is refused at admission, before any input is read.
        usage::record(&service.db, &admitted.caller.id, 10)
            .await
            .unwrap();
        assert!(matches!(
            service.admit(Some(&key)).await,
            Err(ServiceError::QuotaExceeded { .. })
        ));
    }

    #[tokio::test]
    async fn a_failure_after_the_reservation_gives_the_bytes_back() {
        let exact = PlanOverride {
            bytes_per_month: Some(PNG.len() as u64),
            requests_per_second: Some(100),
        };
        let (dir, service) = service(exact).await;
        let key = free_key(&service).await;
        // Not an image, but the PNG's size: each reserves the whole quota, then fails.
        let garbage = Bytes::from(vec![0u8; PNG.len()]);
        for _ in 0..3 {
            let admitted = service.admit(Some(&key)).await.unwrap();
            let refused = service
                .optimise(&admitted, Input::Upload(garbage.clone()), Job::default())
                .await
                .unwrap_err();
            assert!(matches!(refused, ServiceError::Core(_)), "{refused}");
        }
        let admitted = service.admit(Some(&key)).await.unwrap();
        service
            .optimise(&admitted, upload(), Job::default())
            .await
            .unwrap();
        assert_eq!(hosted_files(&dir), 1);
        let used = metered(&service, &key).await;
        assert_eq!((used.bytes, used.requests), (PNG.len() as u64, 1));
        assert!(matches!(
            service.admit(Some(&key)).await,
            Err(ServiceError::QuotaExceeded { .. })
        ));
    }

    #[tokio::test]
    async fn pipeline_and_fetch_errors_are_not_metered() {
        let (dir, service) = service(roomy()).await;
        let key = free_key(&service).await;
        let admitted = service.admit(Some(&key)).await.unwrap();
        let garbage = Input::Upload(Bytes::from_static(b"not an image at all"));
        let refused = service
            .optimise(&admitted, garbage, Job::default())
            .await
            .unwrap_err();
        assert!(matches!(refused, ServiceError::Core(_)), "{refused}");
        // Loopback is refused by the address policy before any connection is made.
        let private = Input::Url("http://127.0.0.1:1/x.png".into());
        let refused = service
            .optimise(&admitted, private, Job::default())
            .await
            .unwrap_err();
        assert!(
            matches!(refused, ServiceError::Fetch(FetchError::Refused(_))),
            "{refused}"
        );
        assert_eq!(hosted_files(&dir), 0);
        assert_eq!(metered(&service, &key).await, usage::MonthUsage::default());
    }

    #[tokio::test]
    async fn an_export_failure_is_metered_and_carries_the_hosted_answer() {
        let (dir, service) = service(roomy()).await;
        let key = free_key(&service).await;
        let admitted = service.admit(Some(&key)).await.unwrap();
        let mut job = Job::default();
        // An endpoint the address policy refuses: the export fails after hosting.
        job.stores.s3 = Some(S3Store {
            key: Secret::new("AKIDEXAMPLE"),
            secret: Secret::new("not-a-real-secret"),
            bucket: "b".into(),
            path: "out/".into(),
            region: "us-east-1".into(),
            endpoint: Some("http://127.0.0.1:1".into()),
            acl: None,
            headers: WriteHeaders::default(),
        });
        let refused = service
            .optimise(&admitted, upload(), job)
            .await
            .unwrap_err();
        let ServiceError::Export { error, hosted } = refused else {
            panic!("export failure: {refused}")
        };
        assert_eq!(error.provider, "s3");
        let Answer::One(one) = *hosted else {
            panic!("one output")
        };
        assert!(one.url.starts_with("http://pixpress.test/v1/images/"));
        assert!(one.stored.is_empty());
        assert_eq!(hosted_files(&dir), 1);
        let used = metered(&service, &key).await;
        assert_eq!((used.bytes, used.requests), (PNG.len() as u64, 1));
    }
}
