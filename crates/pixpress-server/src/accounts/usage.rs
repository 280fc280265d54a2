//! Metering: input bytes and requests per key per calendar month (UTC). Paid plans are metered
//! by one atomic upsert per successful request ([`record`]). Hard quotas hold exactly under
//! concurrency, on any number of instances: a request [`reserve`]s its input bytes before any
//! work with one conditional `UPDATE` on the key's month row (`bytes + reserved + n <= quota`),
//! then [`Reservation::commit`]s them (moved into `bytes` and the reservation deleted, in one
//! transaction, so exactly once) or releases them (failed requests are not billed). A
//! reservation holds a lease kept alive by a heartbeat; one left by an instance that died is
//! given back by the next reservation of the same key. Reserved bytes are not "used": the
//! report shows committed bytes only. Overage is what a paid plan used beyond its quota. Work
//! that may run more than once (a callback job re-run after a crash) is billed under a charge
//! id ([`record_once`], [`Reservation::commit_once`]): the first bill records the id in
//! `usage_charges` in the same transaction, and a later one with the same id bills nothing.
//! This module owns the `usage`, `usage_reservations` and `usage_charges` tables, the quota's
//! arithmetic ([`Headroom`]) and the usage report.

use std::time::Duration;

use serde::Serialize;
use utoipa::ToSchema;

use crate::accounts::plans::Allowance;
use crate::db::{now_unix_ms, Db};

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

/// [`record`] under a charge id: the first call with `charge_id` bills, later ones do nothing.
/// Returns whether this call billed.
pub async fn record_once(
    db: &Db,
    key_id: &str,
    bytes: u64,
    charge_id: &str,
) -> Result<bool, UsageError> {
    let month = current_month();
    let mut tx = db.begin().await?;
    if !first_charge(&mut tx, charge_id, key_id, &month, as_i64(bytes)).await? {
        tx.commit().await?;
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO usage (key_id, month, bytes, requests) VALUES ($1, $2, $3, 1) \
         ON CONFLICT (key_id, month) DO UPDATE SET bytes = usage.bytes + excluded.bytes, requests = usage.requests + 1",
    )
    .bind(key_id)
    .bind(&month)
    .bind(as_i64(bytes))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(true)
}

/// Records `charge_id` as billed, inside the billing transaction; false when it already was.
async fn first_charge(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    charge_id: &str,
    key_id: &str,
    month: &str,
    bytes: i64,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO usage_charges (id, key_id, month, bytes, charged_at_ms) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (id) DO NOTHING",
    )
    .bind(charge_id)
    .bind(key_id)
    .bind(month)
    .bind(bytes)
    .bind(now_unix_ms())
    .execute(&mut **tx)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

/// How long a reservation holds without a heartbeat: the longest a dead instance's reserved
/// bytes stay out of reach of the key's other requests.
pub const LEASE: Duration = Duration::from_secs(60);

/// The outcome of [`reserve`].
#[derive(Debug)]
pub enum Reserved {
    Granted(Reservation),
    /// The bytes do not fit: `used` is committed this month, `reserved` held by requests in flight.
    Refused {
        used: u64,
        reserved: u64,
    },
}

/// Input bytes held against a hard quota while a request works. Settle it with
/// [`Reservation::commit`] or [`Reservation::release`]; dropped unsettled (a cancelled
/// request), it is released in the background, and the lease is the backstop after that.
#[derive(Debug)]
pub struct Reservation {
    db: Db,
    id: String,
    key_id: String,
    month: String,
    bytes: i64,
    settled: bool,
    heartbeat: Option<tokio::task::JoinHandle<()>>,
}

fn as_i64(bytes: u64) -> i64 {
    i64::try_from(bytes).unwrap_or(i64::MAX)
}

fn reservation_id() -> String {
    use rand::RngCore;
    let mut buf = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// Reserves `bytes` of `key_id`'s month against `quota`, atomically: of any number of
/// concurrent reservations on any number of instances, exactly those that fit are granted.
pub async fn reserve(
    db: &Db,
    key_id: &str,
    bytes: u64,
    quota: u64,
) -> Result<Reserved, UsageError> {
    reserve_leased(db, key_id, bytes, quota, LEASE).await
}

async fn reserve_leased(
    db: &Db,
    key_id: &str,
    bytes: u64,
    quota: u64,
    lease: Duration,
) -> Result<Reserved, UsageError> {
    let month = current_month();
    let n = as_i64(bytes);
    let now = now_unix_ms();
    let mut tx = db.begin().await?;
    // A write first: on SQLite the transaction takes the write lock now (waiting for it under
    // busy_timeout) rather than failing to upgrade a read snapshot later.
    sqlx::query(
        "INSERT INTO usage (key_id, month, bytes, requests, reserved) VALUES ($1, $2, 0, 0, 0) \
         ON CONFLICT (key_id, month) DO NOTHING",
    )
    .bind(key_id)
    .bind(&month)
    .execute(&mut *tx)
    .await?;
    // Lapsed leases (their instance died): each is deleted by exactly one transaction, which
    // gives its bytes back. Reservation rows are always locked before the usage row.
    let lapsed: Vec<i64> = sqlx::query_scalar(
        "DELETE FROM usage_reservations WHERE key_id = $1 AND month = $2 AND expires_at_ms < $3 \
         RETURNING bytes",
    )
    .bind(key_id)
    .bind(&month)
    .bind(now)
    .fetch_all(&mut *tx)
    .await?;
    let lapsed: i64 = lapsed.iter().sum();
    if lapsed > 0 {
        tracing::warn!(
            key_id,
            bytes = lapsed,
            "expired quota reservations given back"
        );
        sqlx::query("UPDATE usage SET reserved = reserved - $3 WHERE key_id = $1 AND month = $2")
            .bind(key_id)
            .bind(&month)
            .bind(lapsed)
            .execute(&mut *tx)
            .await?;
    }
    // The one conditional statement: the row lock serialises concurrent reservers, and
    // PostgreSQL re-checks the condition on the row as the previous holder left it.
    let granted = sqlx::query(
        "UPDATE usage SET reserved = reserved + $3 \
         WHERE key_id = $1 AND month = $2 AND bytes + reserved + $3 <= $4",
    )
    .bind(key_id)
    .bind(&month)
    .bind(n)
    .bind(as_i64(quota))
    .execute(&mut *tx)
    .await?
    .rows_affected()
        == 1;
    if !granted {
        let (used, reserved): (i64, i64) =
            sqlx::query_as("SELECT bytes, reserved FROM usage WHERE key_id = $1 AND month = $2")
                .bind(key_id)
                .bind(&month)
                .fetch_one(&mut *tx)
                .await?;
        tx.commit().await?;
        return Ok(Reserved::Refused {
            used: used.max(0) as u64,
            reserved: reserved.max(0) as u64,
        });
    }
    let id = reservation_id();
    sqlx::query(
        "INSERT INTO usage_reservations (id, key_id, month, bytes, expires_at_ms) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&id)
    .bind(key_id)
    .bind(&month)
    .bind(n)
    .bind(now.saturating_add(lease_ms(lease)))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    let heartbeat = tokio::spawn(heartbeat(db.clone(), id.clone(), lease));
    Ok(Reserved::Granted(Reservation {
        db: db.clone(),
        id,
        key_id: key_id.to_string(),
        month,
        bytes: n,
        settled: false,
        heartbeat: Some(heartbeat),
    }))
}

fn lease_ms(lease: Duration) -> i64 {
    i64::try_from(lease.as_millis()).unwrap_or(i64::MAX)
}

/// Extends the lease while the request works: every quarter lease, so one missed beat is
/// harmless. Aborted when the reservation is settled.
async fn heartbeat(db: Db, id: String, lease: Duration) {
    let mut ticks = tokio::time::interval(lease / 4);
    ticks.tick().await;
    loop {
        ticks.tick().await;
        let extended =
            sqlx::query("UPDATE usage_reservations SET expires_at_ms = $2 WHERE id = $1")
                .bind(&id)
                .bind(now_unix_ms().saturating_add(lease_ms(lease)))
                .execute(&db)
                .await;
        if let Err(e) = extended {
            tracing::warn!("extending a quota reservation's lease: {e}");
        }
    }
}

impl Reservation {
    pub fn bytes(&self) -> u64 {
        self.bytes.max(0) as u64
    }

    fn settle(&mut self) {
        self.settled = true;
        if let Some(beat) = self.heartbeat.take() {
            beat.abort();
        }
    }

    /// Bills the reserved bytes and one request: the reservation is deleted and its bytes move
    /// into `bytes` in one transaction, so a crash either bills them once or not at all.
    pub async fn commit(self) -> Result<(), UsageError> {
        self.commit_as(None).await.map(|_| ())
    }

    /// [`Reservation::commit`] under a charge id: when `charge_id` was billed already (the same
    /// job run again), the reserved bytes are given back instead. Returns whether it billed.
    pub async fn commit_once(self, charge_id: &str) -> Result<bool, UsageError> {
        self.commit_as(Some(charge_id)).await
    }

    async fn commit_as(mut self, charge_id: Option<&str>) -> Result<bool, UsageError> {
        self.settle();
        let mut tx = self.db.begin().await?;
        let held: Option<i64> =
            sqlx::query_scalar("DELETE FROM usage_reservations WHERE id = $1 RETURNING bytes")
                .bind(&self.id)
                .fetch_optional(&mut *tx)
                .await?;
        if let Some(charge_id) = charge_id {
            let (key_id, month) = (&self.key_id, &self.month);
            if !first_charge(&mut tx, charge_id, key_id, month, self.bytes).await? {
                if held.is_some() {
                    give_back(&mut tx, key_id, month, self.bytes).await?;
                }
                tx.commit().await?;
                return Ok(false);
            }
        }
        let statement = if held.is_some() {
            "UPDATE usage SET bytes = bytes + $3, requests = requests + 1, reserved = reserved - $3 \
             WHERE key_id = $1 AND month = $2"
        } else {
            // The lease lapsed (a stalled instance) and another request gave the bytes back:
            // the work was still done, so it is still billed, once.
            tracing::warn!(key_id = %self.key_id, "a quota reservation lapsed before its commit");
            "INSERT INTO usage (key_id, month, bytes, requests, reserved) VALUES ($1, $2, $3, 1, 0) \
             ON CONFLICT (key_id, month) DO UPDATE SET bytes = usage.bytes + excluded.bytes, requests = usage.requests + 1"
        };
        sqlx::query(statement)
            .bind(&self.key_id)
            .bind(&self.month)
            .bind(self.bytes)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Gives the reserved bytes back: the request failed and is not billed.
    pub async fn release(mut self) -> Result<(), UsageError> {
        self.settle();
        release(&self.db, &self.id, &self.key_id, &self.month).await
    }

    /// Stops the heartbeat and forgets the reservation, as an instance killed mid-request does.
    #[cfg(test)]
    fn abandon(mut self) {
        self.settle();
    }

    /// Stops the heartbeat only, as a stalled instance's would.
    #[cfg(test)]
    fn stop_heartbeat(&mut self) {
        if let Some(beat) = self.heartbeat.take() {
            beat.abort();
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        self.settle();
        // Async work cannot run in drop: hand the release to the runtime.
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let (db, id, key_id, month) = (
            self.db.clone(),
            std::mem::take(&mut self.id),
            std::mem::take(&mut self.key_id),
            std::mem::take(&mut self.month),
        );
        runtime.spawn(async move {
            if let Err(e) = release(&db, &id, &key_id, &month).await {
                tracing::warn!("releasing a quota reservation (its lease will): {e}");
            }
        });
    }
}

async fn release(db: &Db, id: &str, key_id: &str, month: &str) -> Result<(), UsageError> {
    let mut tx = db.begin().await?;
    let held: Option<i64> =
        sqlx::query_scalar("DELETE FROM usage_reservations WHERE id = $1 RETURNING bytes")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
    if let Some(bytes) = held {
        sqlx::query("UPDATE usage SET reserved = reserved - $3 WHERE key_id = $1 AND month = $2")
            .bind(key_id)
            .bind(month)
            .bind(bytes)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Takes `bytes` off the key's reserved total, inside a transaction that deleted their row.
async fn give_back(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    key_id: &str,
    month: &str,
    bytes: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE usage SET reserved = reserved - $3 WHERE key_id = $1 AND month = $2")
        .bind(key_id)
        .bind(month)
        .bind(bytes)
        .execute(&mut **tx)
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn temp_db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::open(dir.path(), None).await.unwrap();
        (dir, db)
    }

    async fn reserved_column(db: &Db, key_id: &str) -> i64 {
        sqlx::query_scalar("SELECT reserved FROM usage WHERE key_id = $1 AND month = $2")
            .bind(key_id)
            .bind(current_month())
            .fetch_one(db)
            .await
            .unwrap()
    }

    async fn reservations(db: &Db) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM usage_reservations")
            .fetch_one(db)
            .await
            .unwrap()
    }

    fn granted(reserved: Reserved) -> Reservation {
        match reserved {
            Reserved::Granted(r) => r,
            Reserved::Refused { used, reserved } => {
                panic!("refused: used {used}, reserved {reserved}")
            }
        }
    }

    #[tokio::test]
    async fn a_charge_id_bills_once_whatever_the_path() {
        let (_dir, db) = temp_db().await;
        assert!(record_once(&db, "k1", 100, "job-a").await.unwrap());
        assert!(!record_once(&db, "k1", 100, "job-a").await.unwrap());
        // A re-run reserves again; its commit under the billed id gives the bytes back.
        let again = granted(reserve(&db, "k1", 100, 1000).await.unwrap());
        assert!(!again.commit_once("job-a").await.unwrap());
        assert_eq!(reserved_column(&db, "k1").await, 0);
        assert_eq!(reservations(&db).await, 0);
        let fresh = granted(reserve(&db, "k1", 50, 1000).await.unwrap());
        assert!(fresh.commit_once("job-b").await.unwrap());
        let used = this_month(&db, "k1").await.unwrap();
        assert_eq!((used.bytes, used.requests), (150, 2));
    }

    #[tokio::test]
    async fn concurrent_reservations_grant_exactly_what_fits() {
        let (_dir, db) = temp_db().await;
        let tasks: Vec<_> = (0..12)
            .map(|_| {
                let db = db.clone();
                tokio::spawn(async move { reserve(&db, "k", 100, 450).await.unwrap() })
            })
            .collect();
        let mut held = Vec::new();
        for task in tasks {
            if let Reserved::Granted(r) = task.await.unwrap() {
                held.push(r);
            }
        }
        assert_eq!(held.len(), 4, "450 bytes hold four reservations of 100");
        assert_eq!(reserved_column(&db, "k").await, 400);
        // Reserved is not used: the report shows nothing billed yet.
        assert_eq!(this_month(&db, "k").await.unwrap(), MonthUsage::default());
        for r in held {
            r.commit().await.unwrap();
        }
        let used = this_month(&db, "k").await.unwrap();
        assert_eq!((used.bytes, used.requests), (400, 4));
        assert_eq!(
            (reserved_column(&db, "k").await, reservations(&db).await),
            (0, 0)
        );
        assert!(matches!(
            reserve(&db, "k", 100, 450).await.unwrap(),
            Reserved::Refused {
                used: 400,
                reserved: 0
            }
        ));
        granted(reserve(&db, "k", 50, 450).await.unwrap())
            .commit()
            .await
            .unwrap();
        assert_eq!(this_month(&db, "k").await.unwrap().bytes, 450);
    }

    #[tokio::test]
    async fn a_release_or_a_drop_gives_the_bytes_back_unbilled() {
        let (_dir, db) = temp_db().await;
        let r = granted(reserve(&db, "k", 300, 300).await.unwrap());
        assert!(matches!(
            reserve(&db, "k", 1, 300).await.unwrap(),
            Reserved::Refused {
                used: 0,
                reserved: 300
            }
        ));
        r.release().await.unwrap();
        let r = granted(reserve(&db, "k", 300, 300).await.unwrap());
        drop(r);
        // The drop's release runs on the runtime; wait for it.
        for _ in 0..100 {
            if reservations(&db).await == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(
            (reserved_column(&db, "k").await, reservations(&db).await),
            (0, 0)
        );
        assert_eq!(this_month(&db, "k").await.unwrap(), MonthUsage::default());
    }

    #[tokio::test]
    async fn a_dead_instances_reservation_lapses_and_a_late_commit_bills_once() {
        let (_dir, db) = temp_db().await;
        let short = Duration::from_millis(300);
        // Killed mid-request: no heartbeat, no release.
        granted(reserve_leased(&db, "k", 200, 300, short).await.unwrap()).abandon();
        let mut stalled = granted(reserve_leased(&db, "k", 100, 300, short).await.unwrap());
        stalled.stop_heartbeat();
        assert!(matches!(
            reserve(&db, "k", 1, 300).await.unwrap(),
            Reserved::Refused { reserved: 300, .. }
        ));
        tokio::time::sleep(short * 2).await;
        // The next reservation gives both lapsed leases back and takes the whole quota.
        let whole = granted(reserve(&db, "k", 300, 300).await.unwrap());
        assert_eq!(reserved_column(&db, "k").await, 300);
        whole.release().await.unwrap();
        // The stalled request finishes after all: billed once, nothing left reserved.
        stalled.commit().await.unwrap();
        let used = this_month(&db, "k").await.unwrap();
        assert_eq!((used.bytes, used.requests), (100, 1));
        assert_eq!(
            (reserved_column(&db, "k").await, reservations(&db).await),
            (0, 0)
        );
    }

    #[tokio::test]
    async fn the_heartbeat_keeps_a_live_reservation() {
        let (_dir, db) = temp_db().await;
        let short = Duration::from_millis(200);
        let live = granted(reserve_leased(&db, "k", 300, 300, short).await.unwrap());
        tokio::time::sleep(short * 3).await;
        assert!(matches!(
            reserve(&db, "k", 1, 300).await.unwrap(),
            Reserved::Refused { reserved: 300, .. }
        ));
        live.commit().await.unwrap();
        assert_eq!(this_month(&db, "k").await.unwrap().bytes, 300);
    }
}
