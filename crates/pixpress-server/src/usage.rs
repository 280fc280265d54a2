//! Metering: input bytes and requests per key per calendar month (UTC). One atomic upsert per
//! successful request (failed requests are not billed), so concurrent requests on any number of
//! instances never lose a byte. Overage is what a paid plan used beyond its quota.

use serde::Serialize;

use crate::db::Db;
use crate::plans::PlanLimits;

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

pub async fn this_month(db: &Db, key_id: &str) -> anyhow::Result<MonthUsage> {
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

pub async fn record(db: &Db, key_id: &str, bytes: u64) -> anyhow::Result<()> {
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

#[derive(Debug, Serialize)]
pub struct UsageReport {
    pub key_id: String,
    pub plan: String,
    pub month: String,
    pub limits: Limits,
    pub bytes: u64,
    pub requests: u64,
    pub quota_remaining_bytes: u64,
    pub overage_bytes: u64,
}

#[derive(Debug, Serialize)]
pub struct Limits {
    pub bytes_per_month: u64,
    pub requests_per_second: u32,
    pub quota_is_hard: bool,
}

pub fn report(key_id: &str, plan: &str, limits: PlanLimits, used: MonthUsage) -> UsageReport {
    UsageReport {
        key_id: key_id.to_string(),
        plan: plan.to_string(),
        month: current_month(),
        limits: Limits {
            bytes_per_month: limits.bytes_per_month,
            requests_per_second: limits.requests_per_second,
            quota_is_hard: limits.hard_quota,
        },
        bytes: used.bytes,
        requests: used.requests,
        quota_remaining_bytes: limits.bytes_per_month.saturating_sub(used.bytes),
        overage_bytes: used.bytes.saturating_sub(limits.bytes_per_month),
    }
}
