//! The service's read-only answers besides images: a key's usage report (`GET /v1/usage`) and
//! readiness (`GET /readyz`: the database and the result store both answer).

use crate::accounts::usage::{self, UsageReport};
use crate::db;
use crate::service::error::ServiceError;
use crate::service::state::Service;

impl Service {
    /// This month's usage of the key, with its plan's allowance.
    pub async fn usage_report(&self, key: Option<&str>) -> Result<UsageReport, ServiceError> {
        let caller = self.authenticate(key).await?;
        let allowance = self.plans.get(&caller.plan);
        let used = usage::this_month(&self.db, &caller.id)
            .await
            .map_err(ServiceError::UsageLookup)?;
        Ok(usage::report(&caller.id, &caller.plan, allowance, used))
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
