//! The object store behind hosted results: one abstraction over OpenDAL for every backend that
//! `--storage` accepts — a local directory (the default, `DATA_DIR/results`), `s3://bucket/prefix`,
//! `azblob://container/prefix` and `gcs://bucket/prefix`. This module owns the store's settings,
//! the `--storage` location syntax and the bytes; which results exist and when they expire is
//! recorded in the database by `storage::results`. Endpoint, region and credentials come from
//! flags, env vars or the config file; secrets are [`Secret`]s, which never print. The operator
//! itself is built by `storage::operator`, as the exports' are.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use opendal::{ErrorKind, Operator};

use crate::storage::operator::{self, Ambient, Backend, GcsAuth};
use crate::storage::secret::Secret;

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("storage {location:?}: {message}")]
    Config { location: String, message: String },
    #[error("object not found")]
    NotFound,
    #[error("{location}: {message}")]
    Backend { location: String, message: String },
}

/// What the operator configured for the hosted store (flags, env vars, the `[storage]` table).
#[derive(Clone, Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageSettings {
    /// A directory, `s3://bucket/prefix`, `azblob://container/prefix` or `gcs://bucket/prefix`;
    /// None means `DATA_DIR/results`.
    pub url: Option<String>,
    /// S3-compatible or Azure endpoint, e.g. `http://127.0.0.1:9000` for MinIO; GCS JSON API base.
    pub endpoint: Option<String>,
    /// S3 region; default `AWS_REGION`, else `us-east-1`.
    pub region: Option<String>,
    /// S3 credentials; default: the AWS chain (`AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`,
    /// `~/.aws`, instance metadata).
    pub access_key_id: Option<Secret>,
    pub secret_access_key: Option<Secret>,
    /// Azure account and key; default `AZURE_STORAGE_ACCOUNT` / `AZURE_STORAGE_KEY`.
    pub account_name: Option<String>,
    pub account_key: Option<Secret>,
    /// Azure SAS token (default `AZURE_STORAGE_SAS_TOKEN`): the only way OpenDAL presigns Azure
    /// URLs, so `redirect` on Azure needs it; presigned URLs then live as long as the token.
    pub sas_token: Option<Secret>,
    /// GCS service-account JSON file; default `GOOGLE_APPLICATION_CREDENTIALS` or the VM's identity.
    pub credential_path: Option<String>,
    /// Answer `GET /v1/images/…` with a redirect to a presigned URL instead of streaming.
    #[serde(default)]
    pub redirect: bool,
}

/// A parsed `--storage` value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    Dir(std::path::PathBuf),
    S3 { bucket: String, prefix: String },
    Azblob { container: String, prefix: String },
    Gcs { bucket: String, prefix: String },
}

impl Location {
    pub fn parse(value: &str) -> Result<Location, StorageError> {
        let config_error = |message: &str| StorageError::Config {
            location: value.to_string(),
            message: message.to_string(),
        };
        let Some((scheme, rest)) = value.split_once("://") else {
            if value.is_empty() {
                return Err(config_error("is empty"));
            }
            return Ok(Location::Dir(value.into()));
        };
        if scheme == "file" {
            return Ok(Location::Dir(rest.into()));
        }
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(config_error("names no bucket or container"));
        }
        let (bucket, prefix) = (bucket.to_string(), prefix.trim_matches('/').to_string());
        match scheme {
            "s3" => Ok(Location::S3 { bucket, prefix }),
            "azblob" => Ok(Location::Azblob {
                container: bucket,
                prefix,
            }),
            "gcs" | "gs" => Ok(Location::Gcs { bucket, prefix }),
            _ => Err(config_error(
                "unknown scheme: use a directory, s3://bucket/prefix, azblob://container/prefix or gcs://bucket/prefix",
            )),
        }
    }

    fn root(prefix: &str) -> String {
        if prefix.is_empty() {
            "/".into()
        } else {
            format!("/{prefix}/")
        }
    }
}

/// The HTTP client for an object store: bounded connect and read waits, so a dead endpoint
/// fails a request instead of hanging it.
fn default_reqwest() -> Result<reqwest::Client, StorageError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(60))
        .user_agent(concat!("pixpress/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| StorageError::Config {
            location: String::new(),
            message: format!("building the HTTP client: {e}"),
        })
}

/// The hosted-result store.
#[derive(Clone)]
pub struct ObjectStore {
    op: Operator,
    /// `s3://bucket/prefix` or the directory: for messages (never holds a secret).
    location: String,
    redirect: bool,
}

impl std::fmt::Debug for ObjectStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ObjectStore")
            .field("location", &self.location)
            .field("redirect", &self.redirect)
            .finish()
    }
}

fn env_nonempty(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.is_empty())
}

/// The operator settings for the hosted store at `location`: a directory is created (and made
/// absolute) here; region, Azure account, key and SAS token fall back to their env vars.
fn backend(
    location: &Location,
    settings: &StorageSettings,
    location_text: &str,
) -> Result<Backend, StorageError> {
    let config_error = |message: String| StorageError::Config {
        location: location_text.to_string(),
        message,
    };
    Ok(match location {
        Location::Dir(dir) => {
            std::fs::create_dir_all(dir)
                .map_err(|e| config_error(format!("creating the directory: {e}")))?;
            let dir = std::path::absolute(dir).map_err(|e| config_error(e.to_string()))?;
            Backend::Fs {
                root: dir.to_string_lossy().into_owned(),
            }
        }
        Location::S3 { bucket, prefix } => Backend::S3(operator::S3 {
            bucket: bucket.clone(),
            root: Some(Location::root(prefix)),
            region: settings
                .region
                .clone()
                .or_else(|| env_nonempty("AWS_REGION"))
                .or_else(|| env_nonempty("AWS_DEFAULT_REGION"))
                .unwrap_or_else(|| "us-east-1".into()),
            endpoint: settings.endpoint.clone(),
            access_key_id: settings.access_key_id.clone(),
            secret_access_key: settings.secret_access_key.clone(),
        }),
        Location::Azblob { container, prefix } => {
            let account = settings
                .account_name
                .clone()
                .or_else(|| env_nonempty("AZURE_STORAGE_ACCOUNT"))
                .ok_or_else(|| {
                    config_error(
                        "needs an account name: set account_name in [storage] or AZURE_STORAGE_ACCOUNT"
                            .into(),
                    )
                })?;
            Backend::Azblob(operator::Azblob {
                container: container.clone(),
                root: Some(Location::root(prefix)),
                endpoint: settings
                    .endpoint
                    .clone()
                    .unwrap_or_else(|| format!("https://{account}.blob.core.windows.net")),
                key: settings
                    .account_key
                    .clone()
                    .or_else(|| env_nonempty("AZURE_STORAGE_KEY").map(Secret::new)),
                sas_token: settings
                    .sas_token
                    .clone()
                    .or_else(|| env_nonempty("AZURE_STORAGE_SAS_TOKEN").map(Secret::new)),
                account,
            })
        }
        Location::Gcs { bucket, prefix } => Backend::Gcs(operator::Gcs {
            bucket: bucket.clone(),
            root: Some(Location::root(prefix)),
            endpoint: settings.endpoint.clone(),
            auth: GcsAuth::CredentialPath(settings.credential_path.clone()),
        }),
    })
}

impl ObjectStore {
    /// Builds the store `settings` describe; `default_dir` is used when no `url` is given.
    pub fn open(settings: &StorageSettings, default_dir: &Path) -> Result<Self, StorageError> {
        let location_text = settings
            .url
            .clone()
            .unwrap_or_else(|| default_dir.display().to_string());
        let location = Location::parse(&location_text)?;
        let backend = backend(&location, settings, &location_text)?;
        let op = operator::build(&backend, default_reqwest()?, Ambient::Allowed).map_err(|e| {
            StorageError::Config {
                location: location_text.clone(),
                message: e.to_string(),
            }
        })?;
        if settings.redirect && !op.info().full_capability().presign_read {
            return Err(StorageError::Config {
                location: location_text,
                message: "--storage-redirect needs an object store that can presign URLs (s3://, azblob:// with a sas_token, gcs:// with a service account); a directory cannot".into(),
            });
        }
        Ok(ObjectStore {
            op,
            location: location_text,
            redirect: settings.redirect,
        })
    }

    pub fn location(&self) -> &str {
        &self.location
    }

    /// Whether reads answer with a redirect to a presigned URL.
    pub fn redirects(&self) -> bool {
        self.redirect
    }

    fn backend_error(&self, e: opendal::Error) -> StorageError {
        if e.kind() == ErrorKind::NotFound {
            return StorageError::NotFound;
        }
        StorageError::Backend {
            location: self.location.clone(),
            message: e.to_string(),
        }
    }

    pub async fn put(
        &self,
        name: &str,
        bytes: Bytes,
        content_type: &str,
    ) -> Result<(), StorageError> {
        self.op
            .write_with(name, bytes)
            .content_type(content_type)
            .await
            .map(|_| ())
            .map_err(|e| self.backend_error(e))
    }

    /// The object as a stream of chunks. The first chunk is read before this returns, so a
    /// missing object is [`StorageError::NotFound`] here rather than a broken body later.
    pub async fn stream(
        &self,
        name: &str,
    ) -> Result<impl Stream<Item = std::io::Result<Bytes>> + Send + 'static, StorageError> {
        let reader = self
            .op
            .reader_with(name)
            .chunk(256 * 1024)
            .await
            .map_err(|e| self.backend_error(e))?;
        let mut stream = reader
            .into_bytes_stream(..)
            .await
            .map_err(|e| self.backend_error(e))?;
        let first = match stream.next().await {
            Some(Ok(chunk)) => Some(chunk),
            Some(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(StorageError::NotFound)
            }
            Some(Err(e)) => {
                return Err(StorageError::Backend {
                    location: self.location.clone(),
                    message: e.to_string(),
                })
            }
            None => None,
        };
        Ok(futures_util::stream::iter(first.map(Ok)).chain(stream))
    }

    /// A URL that reads the object directly from the store for `ttl`.
    pub async fn presigned_url(&self, name: &str, ttl: Duration) -> Result<String, StorageError> {
        self.op
            .presign_read(name, ttl)
            .await
            .map(|request| request.uri().to_string())
            .map_err(|e| self.backend_error(e))
    }

    /// Deletes the object; an object that is already gone is not an error.
    pub async fn delete(&self, name: &str) -> Result<(), StorageError> {
        match self.op.delete(name).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.backend_error(e)),
        }
    }

    /// Whether the store answers (for `/readyz`).
    pub async fn check(&self) -> Result<(), StorageError> {
        self.op.check().await.map_err(|e| self.backend_error(e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::secret::redact;

    #[test]
    fn locations_parse() {
        assert_eq!(
            Location::parse("s3://b/some/prefix/").unwrap(),
            Location::S3 {
                bucket: "b".into(),
                prefix: "some/prefix".into()
            }
        );
        assert_eq!(
            Location::parse("azblob://c").unwrap(),
            Location::Azblob {
                container: "c".into(),
                prefix: String::new()
            }
        );
        assert_eq!(
            Location::parse("gcs://g/p").unwrap(),
            Location::Gcs {
                bucket: "g".into(),
                prefix: "p".into()
            }
        );
        assert_eq!(
            Location::parse("./data/results").unwrap(),
            Location::Dir("./data/results".into())
        );
        assert!(Location::parse("s3://").is_err());
        assert!(Location::parse("ftp://x/y").is_err());
        assert_eq!(Location::root(""), "/");
        assert_eq!(Location::root("a/b"), "/a/b/");
    }

    #[test]
    fn secrets_do_not_print() {
        let s = StorageSettings {
            secret_access_key: Some(Secret::new("hunter2-very-secret")),
            ..Default::default()
        };
        assert!(!format!("{s:?}").contains("hunter2"));
        assert_eq!(
            redact(
                "bad key hunter2-very-secret!",
                &[&Secret::new("hunter2-very-secret")]
            ),
            "bad key [redacted]!"
        );
    }

    #[test]
    fn every_backend_builds_from_config_without_network() {
        let dir = tempfile::tempdir().unwrap();
        for url in ["s3://bucket/p", "gcs://bucket/p", "azblob://container/p"] {
            let settings = StorageSettings {
                url: Some(url.into()),
                endpoint: Some("http://127.0.0.1:1".into()),
                account_name: Some("acct".into()),
                account_key: Some(Secret::new("a2V5")),
                access_key_id: Some(Secret::new("AKIDEXAMPLE")),
                secret_access_key: Some(Secret::new("secret")),
                ..Default::default()
            };
            let store = ObjectStore::open(&settings, dir.path()).unwrap();
            assert_eq!(store.location(), url);
        }
        let fs = StorageSettings {
            redirect: true,
            ..Default::default()
        };
        assert!(ObjectStore::open(&fs, dir.path())
            .unwrap_err()
            .to_string()
            .contains("presign"));
    }

    #[tokio::test]
    async fn directory_store_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = ObjectStore::open(&StorageSettings::default(), dir.path()).unwrap();
        store
            .put("a.png", Bytes::from_static(b"hello"), "image/png")
            .await
            .unwrap();
        let mut got = Vec::new();
        let mut s = Box::pin(store.stream("a.png").await.unwrap());
        while let Some(chunk) = s.next().await {
            got.extend_from_slice(&chunk.unwrap());
        }
        assert_eq!(got, b"hello");
        assert!(matches!(
            store.stream("missing.png").await.err(),
            Some(StorageError::NotFound)
        ));
        store.check().await.unwrap();
        store.delete("a.png").await.unwrap();
        store.delete("a.png").await.unwrap();
        assert!(!dir.path().join("a.png").exists());
    }
}
