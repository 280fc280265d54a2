//! Hosted results: the bytes in the object store (`storage::hosted`: a directory, S3, Azure
//! Blob or GCS), a row in the database saying when they expire. This module owns the `results`
//! table, result ids and expiry. Ids are 128-bit random. The object is written before its row,
//! so a row never points at a missing object and no reader can find a result that is still
//! being written. Expiry does not rely on bucket lifecycle rules: a background sweep (any
//! instance may run it; deleting twice is harmless) deletes the objects whose rows have
//! expired, then the rows; reads check the expiry themselves, so an expired result is a 404
//! even before the sweep has run.

use std::time::Duration;

use bytes::Bytes;

use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::db::{now_unix_ms, Db};
use crate::storage::hosted::{ObjectStore, StorageError};

#[derive(Debug, thiserror::Error)]
pub enum ResultError {
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

#[derive(Clone, Debug)]
pub struct ResultStore {
    store: ObjectStore,
    ttl: Duration,
}

#[derive(Clone, Debug)]
pub struct StoredResult {
    pub id: String,
    pub ext: String,
    pub content_type: String,
    pub etag: String,
    pub size: u64,
    pub expires_at_ms: i64,
}

impl StoredResult {
    /// The object's name in the store.
    pub fn object_name(&self) -> String {
        object_name(&self.id, &self.ext)
    }
}

fn object_name(id: &str, ext: &str) -> String {
    format!("{id}.{ext}")
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
    pub fn new(store: ObjectStore, ttl: Duration) -> Self {
        ResultStore { store, ttl }
    }

    pub fn store(&self) -> &ObjectStore {
        &self.store
    }

    /// Writes the bytes, then records the row: a row never points at a missing object.
    pub async fn put(
        &self,
        db: &Db,
        key_id: &str,
        bytes: Bytes,
        ext: &str,
        content_type: &str,
    ) -> Result<StoredResult, ResultError> {
        let id = new_result_id();
        let etag = format!("\"{}\"", &hex::encode(Sha256::digest(&bytes))[..32]);
        let size = bytes.len() as u64;
        self.store
            .put(&object_name(&id, ext), bytes, content_type)
            .await?;
        let now = now_unix_ms();
        let expires_at_ms = now + self.ttl.as_millis() as i64;
        sqlx::query(
            "INSERT INTO results (id, ext, content_type, size, etag, key_id, created_at_ms, expires_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(ext)
        .bind(content_type)
        .bind(size as i64)
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
            size,
            expires_at_ms,
        })
    }

    /// The live result `id.ext`, or None when unknown or expired.
    pub async fn lookup(
        &self,
        db: &Db,
        id: &str,
        ext: &str,
    ) -> Result<Option<StoredResult>, ResultError> {
        if !is_valid_id(id) {
            return Ok(None);
        }
        let row: Option<(String, String, i64, i64)> = sqlx::query_as(
            "SELECT content_type, etag, size, expires_at_ms FROM results WHERE id = $1 AND ext = $2 AND expires_at_ms > $3",
        )
        .bind(id)
        .bind(ext)
        .bind(now_unix_ms())
        .fetch_optional(db)
        .await?;
        Ok(
            row.map(|(content_type, etag, size, expires_at_ms)| StoredResult {
                id: id.to_string(),
                ext: ext.to_string(),
                content_type,
                etag,
                size: u64::try_from(size).unwrap_or(0),
                expires_at_ms,
            }),
        )
    }

    /// The live result `id` whatever its extension, or None when unknown or expired.
    pub async fn lookup_id(&self, db: &Db, id: &str) -> Result<Option<StoredResult>, ResultError> {
        if !is_valid_id(id) {
            return Ok(None);
        }
        let ext: Option<(String,)> =
            sqlx::query_as("SELECT ext FROM results WHERE id = $1 AND expires_at_ms > $2")
                .bind(id)
                .bind(now_unix_ms())
                .fetch_optional(db)
                .await?;
        match ext {
            Some((ext,)) => self.lookup(db, id, &ext).await,
            None => Ok(None),
        }
    }

    /// Deletes every expired result (object first, then row). Returns how many were removed.
    pub async fn sweep(&self, db: &Db) -> Result<usize, ResultError> {
        let expired: Vec<(String, String)> =
            sqlx::query_as("SELECT id, ext FROM results WHERE expires_at_ms <= $1 LIMIT 1000")
                .bind(now_unix_ms())
                .fetch_all(db)
                .await?;
        for (id, ext) in &expired {
            self.store.delete(&object_name(id, ext)).await?;
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
        let results_dir = dir.path().join("results");
        let objects = ObjectStore::open(&Default::default(), &results_dir).unwrap();
        let store = ResultStore::new(objects, Duration::from_millis(300));
        let r = store
            .put(&db, "k1", Bytes::from_static(b"hello"), "png", "image/png")
            .await
            .unwrap();
        assert!(is_valid_id(&r.id));
        let found = store
            .lookup(&db, &r.id, "png")
            .await
            .unwrap()
            .expect("live");
        assert_eq!(found.size, 5);
        assert!(store.store().stream(&found.object_name()).await.is_ok());
        assert!(store.lookup(&db, &r.id, "jpg").await.unwrap().is_none());
        let by_id = store.lookup_id(&db, &r.id).await.unwrap().expect("live");
        assert_eq!((by_id.ext.as_str(), by_id.size), ("png", 5));
        assert!(store
            .lookup(&db, "../../etc/passwd", "png")
            .await
            .unwrap()
            .is_none());
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(store.lookup(&db, &r.id, "png").await.unwrap().is_none());
        assert_eq!(store.sweep(&db).await.unwrap(), 1);
        assert!(!results_dir.join(r.object_name()).exists());
    }
}
