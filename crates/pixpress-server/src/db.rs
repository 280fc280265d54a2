//! The database, through sqlx's `Any` driver so one set of queries and migrations serves both
//! backends: SQLite (embedded, the default: `DATA_DIR/pixpress.db`) and PostgreSQL
//! (`--database postgres://…`, for several instances sharing state). Queries use `$N`
//! placeholders and SQL both dialects accept. Migrations are embedded and run at start-up.
//! Every query lives in the module that owns its table (`accounts::keys`, `accounts::usage`,
//! `storage::results`); this module owns only the pool, the migrations and the clock. The
//! callback queue (apalis) keeps its own tables in the same database, opened from the same
//! [`url`] with the typed pool its storage needs; both sets of migrations share sqlx's
//! migrations table, so each runner ignores the other's entries.

use std::path::Path;
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Executor};

pub type Db = AnyPool;

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database {0:?} is not supported: use a sqlite: or postgres:// URL")]
    Unsupported(String),
    #[error(transparent)]
    DataDir(#[from] std::io::Error),
    #[error(transparent)]
    Sql(#[from] sqlx::Error),
    #[error(transparent)]
    Migrate(#[from] sqlx::migrate::MigrateError),
}

/// pixpress's own migrations; the queue's, recorded in the same table, are not missing ones.
fn migrator() -> sqlx::migrate::Migrator {
    let mut migrator = sqlx::migrate!("./migrations");
    migrator.set_ignore_missing(true);
    migrator
}

/// The database URL: `url` when it is a sqlite: or postgres:// one, else `DATA_DIR/pixpress.db`
/// (the directory created).
pub fn url(data_dir: &Path, url: Option<&str>) -> Result<String, DbError> {
    Ok(match url {
        Some(url)
            if url.starts_with("sqlite:")
                || url.starts_with("postgres://")
                || url.starts_with("postgresql://") =>
        {
            url.to_string()
        }
        Some(url) => return Err(DbError::Unsupported(url.to_string())),
        None => {
            std::fs::create_dir_all(data_dir)?;
            format!(
                "sqlite://{}?mode=rwc",
                data_dir.join("pixpress.db").display()
            )
        }
    })
}

/// Opens (creating if needed) the database at `url`, or `DATA_DIR/pixpress.db` when `url` is None.
pub async fn open(data_dir: &Path, url: Option<&str>) -> Result<Db, DbError> {
    sqlx::any::install_default_drivers();
    let url = self::url(data_dir, url)?;
    let is_sqlite = url.starts_with("sqlite:");
    let pool = AnyPoolOptions::new()
        .max_connections(if is_sqlite { 8 } else { 16 })
        .acquire_timeout(Duration::from_secs(30))
        .after_connect(move |conn, _meta| {
            Box::pin(async move {
                if is_sqlite {
                    // Writers wait for each other instead of failing with SQLITE_BUSY.
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                }
                Ok(())
            })
        })
        .connect(&url)
        .await?;
    if is_sqlite {
        pool.execute("PRAGMA journal_mode = WAL").await?;
    }
    migrator().run(&pool).await?;
    Ok(pool)
}

pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

pub fn now_unix_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// One round trip to the database (readiness).
pub async fn ping(db: &Db) -> Result<(), sqlx::Error> {
    sqlx::query("SELECT 1").execute(db).await.map(|_| ())
}
