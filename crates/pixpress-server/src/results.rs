//! Hosted results: the bytes in a result store (a directory for now; object stores arrive with
//! the storage issue behind the same methods), a row in the database saying when they expire.
//! Ids are 128-bit random. Files are written to a temporary name and renamed into place, so a
//! reader never sees half a result. A background sweep deletes what has expired; reads check the
//! expiry themselves, so an expired result is a 404 even before the sweep has run.

use std::path::PathBuf;
use std::time::Duration;

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::db::{now_unix_ms, Db};

#[derive(Clone, Debug)]
pub struct ResultStore {
    dir: PathBuf,
    ttl: Duration,
}

#[derive(Clone, Debug)]
pub struct StoredResult {
    pub id: String,
    pub ext: String,
    pub content_type: String,
    pub etag: String,
    pub expires_at_ms: i64,
}

pub fn new_result_id() -> String {
    let mut bytes = [0u8; 16];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

fn is_valid_id(id: &str) -> bool {
    id.len() == 32
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

impl ResultStore {
    pub fn new(dir: PathBuf, ttl: Duration) -> std::io::Result<Self> {
        std::fs::create_dir_all(&dir)?;
        Ok(ResultStore { dir, ttl })
    }

    fn path(&self, id: &str, ext: &str) -> PathBuf {
        self.dir.join(format!("{id}.{ext}"))
    }

    /// Writes the bytes, then records the row: a row never points at a missing file.
    pub async fn put(
        &self,
        db: &Db,
        key_id: &str,
        bytes: &[u8],
        ext: &str,
        content_type: &str,
    ) -> anyhow::Result<StoredResult> {
        let id = new_result_id();
        let final_path = self.path(&id, ext);
        let temp_path = self.dir.join(format!(".{id}.{ext}.tmp"));
        tokio::fs::write(&temp_path, bytes).await?;
        tokio::fs::rename(&temp_path, &final_path).await?;
        let etag = format!("\"{}\"", &hex::encode(Sha256::digest(bytes))[..32]);
        let now = now_unix_ms();
        let expires_at_ms = now + self.ttl.as_millis() as i64;
        sqlx::query(
            "INSERT INTO results (id, ext, content_type, size, etag, key_id, created_at_ms, expires_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(ext)
        .bind(content_type)
        .bind(bytes.len() as i64)
        .bind(&etag)
        .bind(key_id)
        .bind(now)
        .bind(expires_at_ms)
        .execute(db)
        .await?;
        Ok(StoredResult {
            id,
            ext: ext.to_string(),
            content_type: content_type.to_string(),
            etag,
            expires_at_ms,
        })
    }

    /// The live result `id.ext`, or None when unknown or expired.
    pub async fn lookup(
        &self,
        db: &Db,
        id: &str,
        ext: &str,
    ) -> anyhow::Result<Option<StoredResult>> {
        if !is_valid_id(id) {
            return Ok(None);
        }
        let row: Option<(String, String, i64)> = sqlx::query_as(
            "SELECT content_type, etag, expires_at_ms FROM results WHERE id = $1 AND ext = $2 AND expires_at_ms > $3",
        )
        .bind(id)
        .bind(ext)
        .bind(now_unix_ms())
        .fetch_optional(db)
        .await?;
        Ok(row.map(|(content_type, etag, expires_at_ms)| StoredResult {
            id: id.to_string(),
            ext: ext.to_string(),
            content_type,
            etag,
            expires_at_ms,
        }))
    }

    pub async fn read(&self, result: &StoredResult) -> std::io::Result<Vec<u8>> {
        tokio::fs::read(self.path(&result.id, &result.ext)).await
    }

    /// Deletes every expired result (file first, then row). Returns how many were removed.
    pub async fn sweep(&self, db: &Db) -> anyhow::Result<usize> {
        let expired: Vec<(String, String)> =
            sqlx::query_as("SELECT id, ext FROM results WHERE expires_at_ms <= $1 LIMIT 1000")
                .bind(now_unix_ms())
                .fetch_all(db)
                .await?;
        for (id, ext) in &expired {
            match tokio::fs::remove_file(self.path(id, ext)).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
            sqlx::query("DELETE FROM results WHERE id = $1")
                .bind(id)
                .execute(db)
                .await?;
        }
        Ok(expired.len())
    }

    /// Runs [`Self::sweep`] forever at `interval`.
    pub async fn sweep_forever(self, db: Db, interval: Duration) {
        let mut ticker = tokio::time::interval(interval);
        loop {
            ticker.tick().await;
            match self.sweep(&db).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "swept expired results"),
                Err(e) => tracing::warn!("result sweep failed: {e}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn put_lookup_expire_sweep() {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::open(dir.path(), None).await.unwrap();
        let store =
            ResultStore::new(dir.path().join("results"), Duration::from_millis(300)).unwrap();
        let r = store
            .put(&db, "k1", b"hello", "png", "image/png")
            .await
            .unwrap();
        assert!(is_valid_id(&r.id));
        let found = store
            .lookup(&db, &r.id, "png")
            .await
            .unwrap()
            .expect("live");
        assert_eq!(store.read(&found).await.unwrap(), b"hello");
        assert!(store.lookup(&db, &r.id, "jpg").await.unwrap().is_none());
        assert!(store
            .lookup(&db, "../../etc/passwd", "png")
            .await
            .unwrap()
            .is_none());
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(store.lookup(&db, &r.id, "png").await.unwrap().is_none());
        assert_eq!(store.sweep(&db).await.unwrap(), 1);
        assert!(!store.path(&r.id, "png").exists());
    }
}
