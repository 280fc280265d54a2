//! Metering: input bytes and requests per key per calendar month (UTC). One atomic upsert per
//! successful request (failed requests are not billed), so concurrent requests on any number of
//! instances never lose a byte. Overage is what a paid plan used beyond its quota. This module
//! owns the `usage` table, the monthly quota's arithmetic ([`Headroom`]) and the usage report.

use serde::Serialize;
use utoipa::ToSchema;

use crate::accounts::plans::Allowance;
use crate::db::Db;

#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct UsageError(#[from] sqlx::Error);

/// The current month as `YYYY-MM` (UTC).
pub fn current_month() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!("{:04}-{:02}", now.year(), u8::from(now.month()))
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MonthUsage {
    pub bytes: u64,
    pub requests: u64,
}

pub async fn this_month(db: &Db, key_id: &str) -> Result<MonthUsage, UsageError> {
    let row: Option<(i64, i64)> =
        sqlx::query_as("SELECT bytes, requests FROM usage WHERE key_id = $1 AND month = $2")
            .bind(key_id)
            .bind(current_month())
            .fetch_optional(db)
            .await?;
    Ok(
        row.map_or_else(MonthUsage::default, |(bytes, requests)| MonthUsage {
            bytes: bytes.max(0) as u64,
            requests: requests.max(0) as u64,
        }),
    )
}

pub async fn record(db: &Db, key_id: &str, bytes: u64) -> Result<(), UsageError> {
    sqlx::query(
        "INSERT INTO usage (key_id, month, bytes, requests) VALUES ($1, $2, $3, 1) \
         ON CONFLICT (key_id, month) DO UPDATE SET bytes = usage.bytes + excluded.bytes, requests = usage.requests + 1",
    )
    .bind(key_id)
    .bind(current_month())
    .bind(i64::try_from(bytes).unwrap_or(i64::MAX))
    .execute(db)
    .await?;
    Ok(())
}

/// What is left of a hard monthly quota, read once when a request is admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Headroom {
    pub quota: u64,
    pub used: u64,
}

impl Headroom {
    /// Nothing left: refused before any input is fetched or read.
    pub fn exhausted(&self) -> bool {
        self.used >= self.quota
    }

    /// Whether `bytes` more still fit in the month.
    pub fn fits(&self, bytes: u64) -> bool {
        self.used.saturating_add(bytes) <= self.quota
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct UsageReport {
    pub key_id: String,
    pub plan: String,
    pub month: String,
    /// The plan's allowance; the wire name `limits` is the API's.
    pub limits: AllowanceReport,
    pub bytes: u64,
    pub requests: u64,
    pub quota_remaining_bytes: u64,
    pub overage_bytes: u64,
}

/// A plan's [`Allowance`] as `GET /v1/usage` shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AllowanceReport {
    pub bytes_per_month: u64,
    pub requests_per_second: u32,
    pub quota_is_hard: bool,
}

pub fn report(key_id: &str, plan: &str, allowance: Allowance, used: MonthUsage) -> UsageReport {
    UsageReport {
        key_id: key_id.to_string(),
        plan: plan.to_string(),
        month: current_month(),
        limits: AllowanceReport {
            bytes_per_month: allowance.bytes_per_month,
            requests_per_second: allowance.requests_per_second,
            quota_is_hard: allowance.hard_quota,
        },
        bytes: used.bytes,
        requests: used.requests,
        quota_remaining_bytes: allowance.bytes_per_month.saturating_sub(used.bytes),
        overage_bytes: used.bytes.saturating_sub(allowance.bytes_per_month),
    }
}
