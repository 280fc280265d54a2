//! API keys. A key looks like `pxk_<id>_<secret>`: the 8-hex-digit id is public (listings,
//! logs, revocation), the 128-bit secret is not. Only SHA-256 of the whole key is stored; a
//! presented key is found by its id and its hash compared in constant time. The key itself is
//! shown once, when it is created, and never logged. This module owns the `api_keys` table:
//! creating, listing, verifying, revoking keys and moving them between plans, and each key's
//! callback signing secret (`pxs_` and 64 hex digits: random, kept as it is because the server
//! signs with it, made the first time it is asked for, rotated on demand).

use rand::RngCore;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::accounts::plans::PLAN_NAMES as PLANS;
use crate::db::{now_unix, Db};
use crate::storage::secret::Secret;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("unknown plan {0:?}; plans are {plans}", plans = PLANS.join(", "))]
    UnknownPlan(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

fn known_plan(plan: &str) -> Result<(), KeyError> {
    if PLANS.contains(&plan) {
        Ok(())
    } else {
        Err(KeyError::UnknownPlan(plan.to_string()))
    }
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct KeyInfo {
    pub id: String,
    pub plan: String,
    pub label: Option<String>,
    pub created_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Valid { id: String, plan: String },
    Unknown,
    Revoked,
}

fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::thread_rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// Splits `pxk_<id>_<secret>` into its id; anything else has no id.
fn key_id(key: &str) -> Option<&str> {
    let rest = key.strip_prefix("pxk_")?;
    let (id, secret) = rest.split_once('_')?;
    (id.len() == 8 && !secret.is_empty()).then_some(id)
}

/// Creates a key on `plan` and returns `(full key, info)`. The full key is not stored.
pub async fn create(
    db: &Db,
    plan: &str,
    label: Option<&str>,
) -> Result<(String, KeyInfo), KeyError> {
    known_plan(plan)?;
    let id = random_hex(4);
    let key = format!("pxk_{id}_{}", random_hex(16));
    let created_at = now_unix();
    sqlx::query(
        "INSERT INTO api_keys (id, secret_hash, plan, label, created_at) VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(&id)
    .bind(hash_key(&key))
    .bind(plan)
    .bind(label)
    .bind(created_at)
    .execute(db)
    .await?;
    let info = KeyInfo {
        id,
        plan: plan.to_string(),
        label: label.map(str::to_string),
        created_at,
        revoked_at: None,
    };
    Ok((key, info))
}

pub async fn list(db: &Db) -> Result<Vec<KeyInfo>, KeyError> {
    Ok(sqlx::query_as(
        "SELECT id, plan, label, created_at, revoked_at FROM api_keys ORDER BY created_at, id",
    )
    .fetch_all(db)
    .await?)
}

pub async fn count(db: &Db) -> Result<i64, KeyError> {
    Ok(sqlx::query_scalar("SELECT COUNT(*) FROM api_keys")
        .fetch_one(db)
        .await?)
}

/// Revokes by key id (or by the full key, whose id is then used). Returns false if not found.
pub async fn revoke(db: &Db, id_or_key: &str) -> Result<bool, KeyError> {
    let id = key_id(id_or_key).unwrap_or(id_or_key);
    let done =
        sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now_unix())
            .bind(id)
            .execute(db)
            .await?;
    if done.rows_affected() == 1 {
        return Ok(true);
    }
    let exists: Option<String> = sqlx::query_scalar("SELECT id FROM api_keys WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await?;
    Ok(exists.is_some())
}

/// Moves a key (by id or full key) to another plan. Returns false if there is no such key.
pub async fn set_plan(db: &Db, id_or_key: &str, plan: &str) -> Result<bool, KeyError> {
    known_plan(plan)?;
    let id = key_id(id_or_key).unwrap_or(id_or_key);
    let done = sqlx::query("UPDATE api_keys SET plan = $1 WHERE id = $2")
        .bind(plan)
        .bind(id)
        .execute(db)
        .await?;
    Ok(done.rows_affected() == 1)
}

fn new_callback_secret() -> String {
    format!("pxs_{}", random_hex(32))
}

/// The key's callback signing secret (by id or full key), made now if it has none yet (keys
/// created before callbacks existed). None when there is no such key.
pub async fn callback_secret(db: &Db, id_or_key: &str) -> Result<Option<Secret>, KeyError> {
    let id = key_id(id_or_key).unwrap_or(id_or_key);
    // Only a key without one gets a secret, so concurrent first uses agree on the same value.
    sqlx::query(
        "UPDATE api_keys SET callback_secret = $2 WHERE id = $1 AND callback_secret IS NULL",
    )
    .bind(id)
    .bind(new_callback_secret())
    .execute(db)
    .await?;
    let secret: Option<Option<String>> =
        sqlx::query_scalar("SELECT callback_secret FROM api_keys WHERE id = $1")
            .bind(id)
            .fetch_optional(db)
            .await?;
    Ok(secret.flatten().map(Secret::new))
}

/// Replaces the key's callback signing secret; callbacks signed from now on use the new one.
/// None when there is no such key.
pub async fn rotate_callback_secret(db: &Db, id_or_key: &str) -> Result<Option<Secret>, KeyError> {
    let id = key_id(id_or_key).unwrap_or(id_or_key);
    let secret = new_callback_secret();
    let done = sqlx::query("UPDATE api_keys SET callback_secret = $2 WHERE id = $1")
        .bind(id)
        .bind(&secret)
        .execute(db)
        .await?;
    Ok((done.rows_affected() == 1).then(|| Secret::new(secret)))
}

pub async fn verify(db: &Db, key: &str) -> Result<Verdict, KeyError> {
    let Some(id) = key_id(key) else {
        return Ok(Verdict::Unknown);
    };
    let row: Option<(String, String, Option<i64>)> =
        sqlx::query_as("SELECT secret_hash, plan, revoked_at FROM api_keys WHERE id = $1")
            .bind(id)
            .fetch_optional(db)
            .await?;
    let Some((stored_hash, plan, revoked_at)) = row else {
        return Ok(Verdict::Unknown);
    };
    let presented = hash_key(key);
    if !bool::from(presented.as_bytes().ct_eq(stored_hash.as_bytes())) {
        return Ok(Verdict::Unknown);
    }
    if revoked_at.is_some() {
        return Ok(Verdict::Revoked);
    }
    Ok(Verdict::Valid {
        id: id.to_string(),
        plan,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn temp_db() -> (tempfile::TempDir, Db) {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::open(dir.path(), None).await.unwrap();
        (dir, db)
    }

    #[tokio::test]
    async fn create_verify_revoke() {
        let (_dir, db) = temp_db().await;
        let (key, info) = create(&db, "free", Some("test")).await.unwrap();
        assert!(key.starts_with(&format!("pxk_{}_", info.id)));
        assert_eq!(
            verify(&db, &key).await.unwrap(),
            Verdict::Valid {
                id: info.id.clone(),
                plan: "free".into()
            }
        );
        // Same id, wrong secret.
        let forged = format!("pxk_{}_{}", info.id, "0".repeat(32));
        assert_eq!(verify(&db, &forged).await.unwrap(), Verdict::Unknown);
        assert_eq!(verify(&db, "nonsense").await.unwrap(), Verdict::Unknown);
        assert!(revoke(&db, &info.id).await.unwrap());
        assert_eq!(verify(&db, &key).await.unwrap(), Verdict::Revoked);
        assert!(!revoke(&db, "deadbeef").await.unwrap());
    }

    #[tokio::test]
    async fn the_key_itself_is_not_stored() {
        let (_dir, db) = temp_db().await;
        let (key, _) = create(&db, "pro", None).await.unwrap();
        let secret = key.rsplit('_').next().unwrap().to_string();
        let hashes: Vec<String> = sqlx::query_scalar("SELECT secret_hash FROM api_keys")
            .fetch_all(&db)
            .await
            .unwrap();
        assert!(hashes.iter().all(|h| !h.contains(&secret)));
        assert!(create(&db, "platinum", None).await.is_err());
    }

    #[tokio::test]
    async fn callback_secrets_are_per_key_stable_and_rotate() {
        let (_dir, db) = temp_db().await;
        let (key, info) = create(&db, "free", None).await.unwrap();
        let (_, other) = create(&db, "free", None).await.unwrap();
        let first = callback_secret(&db, &info.id).await.unwrap().unwrap();
        assert!(first.expose().starts_with("pxs_") && first.expose().len() == 68);
        assert_eq!(
            callback_secret(&db, &key).await.unwrap(),
            Some(first.clone())
        );
        let theirs = callback_secret(&db, &other.id).await.unwrap().unwrap();
        assert_ne!(theirs, first);
        let rotated = rotate_callback_secret(&db, &info.id)
            .await
            .unwrap()
            .unwrap();
        assert_ne!(rotated, first);
        assert_eq!(callback_secret(&db, &info.id).await.unwrap(), Some(rotated));
        assert_eq!(callback_secret(&db, "deadbeef").await.unwrap(), None);
        assert_eq!(rotate_callback_secret(&db, "deadbeef").await.unwrap(), None);
    }
}
