//! The service's read-only answers besides images: a key's usage report (`GET /v1/usage`, with
//! the key's rate-limit state for the headers) and readiness (`GET /readyz`: the database and the result store both answer).

use crate::accounts::ratelimit::Decision;
use crate::accounts::usage::{self, UsageReport};
use crate::db;
use crate::service::error::ServiceError;
use crate::service::state::Service;

/// A usage report and the key's rate-limit state (not counted against it), for the headers.
#[derive(Debug)]
pub struct Reported {
    pub report: UsageReport,
    pub rate: Option<Decision>,
}

impl Service {
    /// This month's usage of the key, with its plan's allowance. Bytes reserved by requests in
    /// progress are not in it: only what was billed.
    pub async fn usage_report(&self, key: Option<&str>) -> Result<Reported, ServiceError> {
        let caller = self.authenticate(key).await?;
        let allowance = self.plans.get(&caller.plan);
        let used = usage::this_month(&self.db, &caller.id)
            .await
            .map_err(ServiceError::UsageLookup)?;
        let rate = self.peek_caller_rate(&caller).await;
        Ok(Reported {
            report: usage::report(&caller.id, &caller.plan, allowance, used),
            rate,
        })
    }

    /// Whether this instance can serve: the database and the result store answer.
    pub async fn ready(&self) -> Result<(), ServiceError> {
        db::ping(&self.db)
            .await
            .map_err(ServiceError::DatabaseUnreachable)?;
        self.results
            .store()
            .check()
            .await
            .map_err(ServiceError::StorageUnreachable)
    }
}
