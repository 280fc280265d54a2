//! The durable queue: apalis's SQL storage on the database pixpress already uses (its own
//! `Jobs`/`Workers` tables on SQLite, schema `apalis` on PostgreSQL), opened with the typed pool
//! that storage needs, and the worker each instance runs on it. Any instance picks up any job;
//! a job that was running on an instance that died (its worker's heartbeat stopped) is put
//! back in the queue by the next instance to start, or after [`ORPHANED_AFTER`] by any live
//! one. apalis's start-up re-queue takes every running job whose worker's heartbeat (every
//! 30 s) is not from this very second, so a job can also be run by two live instances at once.
//! A job run twice is billed once and delivers the answer kept by its first run (see `run`),
//! so delivery is at least once, with the same job id and signed bytes.

use std::str::FromStr;
use std::time::Duration;

use apalis::prelude::{Data, Monitor, Storage, WorkerBuilder, WorkerBuilderExt, WorkerFactoryFn};
use apalis_sql::postgres::PostgresStorage;
use apalis_sql::sqlite::SqliteStorage;
use apalis_sql::Config;
use sqlx::postgres::PgPoolOptions;
use sqlx::sqlite::{SqliteConnectOptions, SqlitePoolOptions};

use crate::service::callback::run::{RunError, Runner};
use crate::service::callback::CallbackTask;

/// The queue's namespace in apalis's tables.
const NAMESPACE: &str = "pixpress::callback";
/// How often an idle worker looks for new jobs.
const POLL_INTERVAL: Duration = Duration::from_millis(200);
/// A worker silent this long (apalis beats every 30 s) is dead: its running jobs are re-queued.
pub const ORPHANED_AFTER: Duration = Duration::from_secs(120);
/// Jobs one instance runs at once (their image work also waits for the work gate).
const CONCURRENCY: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("callback queue: {0}")]
    Sql(#[from] sqlx::Error),
    #[error("callback queue migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

#[derive(Clone)]
pub enum Queue {
    Sqlite(SqliteStorage<CallbackTask>),
    Postgres(PostgresStorage<CallbackTask>),
}

fn config() -> Config {
    Config::new(NAMESPACE)
        .set_poll_interval(POLL_INTERVAL)
        .set_reenqueue_orphaned_after(ORPHANED_AFTER)
}

impl Queue {
    /// Opens the queue on the database at `url` (as `db::url` gives it), creating its tables.
    pub async fn open(url: &str) -> Result<Queue, QueueError> {
        if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)?
                .create_if_missing(true)
                .busy_timeout(Duration::from_secs(10));
            let pool = SqlitePoolOptions::new()
                .max_connections(4)
                .connect_with(options)
                .await?;
            let mut migrator = SqliteStorage::migrations();
            migrator.set_ignore_missing(true);
            migrator.run(&pool).await?;
            return Ok(Queue::Sqlite(SqliteStorage::new_with_config(
                pool,
                config(),
            )));
        }
        let pool = PgPoolOptions::new().max_connections(4).connect(url).await?;
        let mut migrator = PostgresStorage::migrations();
        migrator.set_ignore_missing(true);
        migrator.run(&pool).await?;
        Ok(Queue::Postgres(PostgresStorage::new_with_config(
            pool,
            config(),
        )))
    }

    pub async fn push(&self, task: CallbackTask) -> Result<(), QueueError> {
        match self {
            Queue::Sqlite(storage) => storage.clone().push(task).await.map(|_| ())?,
            Queue::Postgres(storage) => storage.clone().push(task).await.map(|_| ())?,
        }
        Ok(())
    }

    /// Deletes this queue's finished tasks from apalis's table: a task holds the request's
    /// options (a `*_store`'s credentials among them), needed only until it has run. Returns
    /// how many were deleted.
    pub async fn purge_finished(&self) -> Result<u64, QueueError> {
        let done = match self {
            Queue::Sqlite(storage) => {
                sqlx::query(
                    "DELETE FROM Jobs WHERE job_type = ?1 AND status IN ('Done', 'Failed', 'Killed')",
                )
                .bind(NAMESPACE)
                .execute(storage.pool())
                .await?
                .rows_affected()
            }
            Queue::Postgres(storage) => {
                sqlx::query(
                    "DELETE FROM apalis.jobs WHERE job_type = $1 AND status IN ('Done', 'Failed', 'Killed')",
                )
                .bind(NAMESPACE)
                .execute(storage.pool())
                .await?
                .rows_affected()
            }
        };
        Ok(done)
    }

    /// Runs this instance's worker until the process ends. `name` must differ between
    /// instances: apalis tells a dead worker's jobs by it.
    pub async fn work(self, name: String, runner: Runner) {
        let monitor = match self {
            Queue::Sqlite(storage) => Monitor::new().register(
                WorkerBuilder::new(&name)
                    .concurrency(CONCURRENCY)
                    .data(runner)
                    .backend(storage)
                    .build_fn(run_task),
            ),
            Queue::Postgres(storage) => Monitor::new().register(
                WorkerBuilder::new(&name)
                    .concurrency(CONCURRENCY)
                    .data(runner)
                    .backend(storage)
                    .build_fn(run_task),
            ),
        };
        if let Err(e) = monitor.run().await {
            tracing::error!("the callback worker stopped: {e}");
        }
    }
}

/// Waits before running a job again whose run failed on the database or the key lookup
/// (apalis's SQL storage does not run a failed task again by itself).
const RERUN_AFTER: [Duration; 2] = [Duration::from_secs(2), Duration::from_secs(10)];

async fn run_task(task: CallbackTask, runner: Data<Runner>) -> Result<(), RunError> {
    let job_id = task.job_id.clone();
    let mut waits = RERUN_AFTER.iter();
    loop {
        let Err(e) = runner.run(task.clone()).await else {
            return Ok(());
        };
        let Some(wait) = waits.next() else {
            tracing::error!(job_id, "callback job failed, given up: {e}");
            return Err(e);
        };
        tracing::warn!(job_id, "callback job failed, run again in {wait:?}: {e}");
        tokio::time::sleep(*wait).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::service::callback::QueuedInput;

    fn task(id: &str) -> CallbackTask {
        CallbackTask {
            job_id: id.into(),
            key_id: "k".into(),
            plan: "free".into(),
            callback_url: "http://example.com/cb".into(),
            input: QueuedInput::Url("http://example.com/a.png".into()),
            request: serde_json::json!({"options": {"s3_store": {"secret": "s"}}}),
        }
    }

    async fn rows(queue: &Queue) -> Vec<(String, String)> {
        let Queue::Sqlite(storage) = queue else {
            panic!("sqlite")
        };
        sqlx::query_as("SELECT job, status FROM Jobs ORDER BY job")
            .fetch_all(storage.pool())
            .await
            .unwrap()
    }

    #[tokio::test]
    async fn tasks_share_the_database_and_finished_ones_are_purged() {
        let dir = tempfile::tempdir().unwrap();
        // pixpress's migrations and the queue's share one database and migrations table, in
        // either order, and opening again finds both sets applied.
        let db = crate::db::open(dir.path(), None).await.unwrap();
        let url = crate::db::url(dir.path(), None).unwrap();
        let queue = Queue::open(&url).await.unwrap();
        drop(Queue::open(&url).await.unwrap());
        drop(crate::db::open(dir.path(), None).await.unwrap());
        crate::db::ping(&db).await.unwrap();

        queue.push(task("a")).await.unwrap();
        queue.push(task("b")).await.unwrap();
        let queued = rows(&queue).await;
        assert_eq!(queued.len(), 2);
        assert!(queued.iter().all(|(_, status)| status == "Pending"));
        let Queue::Sqlite(storage) = &queue else {
            panic!("sqlite")
        };
        sqlx::query("UPDATE Jobs SET status = 'Done' WHERE job LIKE '%\"a\"%'")
            .execute(storage.pool())
            .await
            .unwrap();
        assert_eq!(queue.purge_finished().await.unwrap(), 1);
        let left = rows(&queue).await;
        assert_eq!(left.len(), 1);
        assert!(left[0].0.contains("\"b\""), "{left:?}");
    }
}
