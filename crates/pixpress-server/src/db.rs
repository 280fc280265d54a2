//! The database: SQLite (embedded, the default) through sqlx, migrations embedded in the binary
//! and run at start-up. Every query lives in the module that owns the table (`keys`, `results`).

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions};

pub type Db = SqlitePool;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// Opens (creating if needed) the database at `url`, or `DATA_DIR/pixpress.db` when `url` is None.
pub async fn open(data_dir: &Path, url: Option<&str>) -> anyhow::Result<Db> {
    let options = match url {
        Some(url) if url.starts_with("sqlite:") => SqliteConnectOptions::from_str(url)?,
        Some(url) => anyhow::bail!(
            "database {url:?} is not supported yet: only sqlite: URLs (PostgreSQL arrives with plans and quotas)"
        ),
        None => {
            std::fs::create_dir_all(data_dir)?;
            SqliteConnectOptions::new().filename(data_dir.join("pixpress.db"))
        }
    };
    let options = options
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .busy_timeout(Duration::from_secs(10));
    let pool = SqlitePoolOptions::new()
        .max_connections(8)
        .connect_with(options)
        .await?;
    MIGRATOR.run(&pool).await?;
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
