//! Exports to the user's own bucket (SPEC §6): `s3_store`, `azure_store` and `gcs_store`, as the
//! options parser typed them. This module owns the writes: one [`Target`] per store (described
//! per provider in `s3`, `azure`, `gcs` as a `target::TargetSpec`, and built through the same
//! operator builder as the hosted store),
//! object paths, Content-Type and headers, and turning a store's refusal into [`ExportError`]
//! naming the provider, the bucket and the store's own message with the request's secrets
//! redacted. Only the request's own credentials are used: the server's (env vars, config files,
//! instance metadata) are never loaded for an export, and a user-given endpoint must pass the
//! same address policy as a fetched URL.

pub mod azure;
pub mod gcs;
pub mod s3;
pub mod target;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use opendal::Operator;
use serde::Serialize;

use crate::fetch::client::{check_url_literal, guarded_client};
use crate::fetch::guard::AddressPolicy;
use crate::storage::export::azure::AzureStore;
use crate::storage::export::gcs::GcsStore;
use crate::storage::export::s3::S3Store;
use crate::storage::export::target::{TargetSpec, WriteHeaders};
use crate::storage::operator::{self, Ambient};
use crate::storage::secret::{redact, Secret};

/// The store refused or could not be reached (502 `export_failed`).
#[derive(Debug, thiserror::Error)]
#[error("{provider} refused the write to {bucket}/{path}: {message}")]
pub struct ExportError {
    pub provider: &'static str,
    pub bucket: String,
    pub path: String,
    pub message: String,
}

/// The stores one request asked for.
#[derive(Clone, Debug, Default)]
pub struct Stores {
    pub s3: Option<S3Store>,
    pub azure: Option<AzureStore>,
    pub gcs: Option<GcsStore>,
}

impl Stores {
    pub fn is_empty(&self) -> bool {
        self.s3.is_none() && self.azure.is_none() && self.gcs.is_none()
    }
}

/// One write, as listed in the response's `stored`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct StoredEntry {
    /// `s3`, `azure` or `gcs`.
    #[schema(value_type = String, example = "s3")]
    pub provider: &'static str,
    /// The bucket (S3, GCS) or container (Azure).
    pub bucket: String,
    pub path: String,
    pub url: String,
}

/// One output to export.
pub struct ExportItem {
    pub bytes: Bytes,
    pub ext: &'static str,
    pub content_type: &'static str,
    pub width: u32,
    pub height: u32,
    /// The resize entry's `id`, else its position; for a single output, the hosted result's id.
    pub id: String,
}

/// The object path for one output. `{id}`, `{width}`, `{height}` and `{ext}` are replaced; a
/// path ending in `/` is a folder and gets `{id}.{ext}`; with several outputs and no
/// placeholder, `-{id}` goes before the extension so each output has its own object.
pub fn object_path(template: &str, item: &ExportItem, several: bool) -> String {
    let has_placeholder = ["{id}", "{width}", "{height}", "{ext}"]
        .iter()
        .any(|p| template.contains(p));
    let template = if template.ends_with('/') {
        format!("{template}{{id}}.{{ext}}")
    } else if several && !has_placeholder {
        with_suffix(template, "-{id}")
    } else {
        template.to_string()
    };
    template
        .replace("{id}", &item.id)
        .replace("{width}", &item.width.to_string())
        .replace("{height}", &item.height.to_string())
        .replace("{ext}", item.ext)
}

/// `a/b.jpg` + `-x` → `a/b-x.jpg`; `a/b` + `-x` → `a/b-x`.
fn with_suffix(path: &str, suffix: &str) -> String {
    let name_start = path.rfind('/').map_or(0, |i| i + 1);
    match path[name_start..].rfind('.') {
        Some(dot) if dot > 0 => {
            let at = name_start + dot;
            format!("{}{suffix}{}", &path[..at], &path[at..])
        }
        _ => format!("{path}{suffix}"),
    }
}

/// Writes outputs to the users' stores.
#[derive(Clone)]
pub struct Exporter {
    client: reqwest::Client,
    policy: Arc<AddressPolicy>,
}

impl Exporter {
    pub fn new(
        policy: AddressPolicy,
        connect_timeout: Duration,
        timeout: Duration,
    ) -> reqwest::Result<Self> {
        let policy = Arc::new(policy);
        Ok(Exporter {
            client: guarded_client(policy.clone(), connect_timeout, timeout)?,
            policy,
        })
    }

    /// Writes every item to every store the request named, in order (S3, Azure, GCS), and
    /// lists the writes per item. Stops at the first refusal.
    pub async fn export(
        &self,
        stores: &Stores,
        items: &[ExportItem],
        written: &mut Vec<Vec<StoredEntry>>,
    ) -> Result<(), ExportError> {
        written.clear();
        written.resize(items.len(), Vec::new());
        let several = items.len() > 1;
        for target in self.targets(stores)? {
            let mut used = std::collections::HashSet::new();
            for (item, entries) in items.iter().zip(written.iter_mut()) {
                let mut path = object_path(&target.path, item, several);
                // Two outputs must never land on one object: the later one gets its id.
                if !used.insert(path.clone()) {
                    path = with_suffix(&path, &format!("-{}", item.id));
                    used.insert(path.clone());
                }
                let fail = |message: String| ExportError {
                    provider: target.provider,
                    bucket: target.bucket.clone(),
                    path: path.clone(),
                    message: redact(&message, &target.secrets.iter().collect::<Vec<_>>()),
                };
                let Some(op) = &target.op else {
                    return Err(fail(target.build_error.clone().unwrap_or_default()));
                };
                let content_type = target
                    .headers
                    .content_type
                    .as_deref()
                    .unwrap_or(item.content_type);
                let mut write = op
                    .write_with(&path, item.bytes.clone())
                    .content_type(content_type);
                if let Some(v) = &target.headers.cache_control {
                    write = write.cache_control(v);
                }
                if let Some(v) = &target.headers.content_encoding {
                    write = write.content_encoding(v);
                }
                if !target.headers.metadata.is_empty() {
                    write = write.user_metadata(target.headers.metadata.clone());
                }
                write.await.map_err(|e| fail(store_message(&e)))?;
                if let (Some(s3), Some(acl)) = (target.s3.as_ref(), target.acl.as_deref()) {
                    s3::put_object_acl(&self.client, s3, &path, acl)
                        .await
                        .map_err(|message| {
                            fail(format!(
                            "the object was written, but setting its ACL {acl:?} failed: {message}"
                        ))
                        })?;
                }
                entries.push(StoredEntry {
                    provider: target.provider,
                    bucket: target.bucket.clone(),
                    url: target.object_url(&path),
                    path,
                });
            }
        }
        Ok(())
    }

    /// Refuses a user-given endpoint the address policy would not let a fetch reach.
    fn check_endpoint(
        &self,
        provider: &'static str,
        bucket: &str,
        path: &str,
        endpoint: &str,
    ) -> Result<(), ExportError> {
        let url = url::Url::parse(endpoint).map_err(|e| ExportError {
            provider,
            bucket: bucket.to_string(),
            path: path.to_string(),
            message: format!("invalid endpoint: {e}"),
        })?;
        check_url_literal(&url, &self.policy).map_err(|e| ExportError {
            provider,
            bucket: bucket.to_string(),
            path: path.to_string(),
            message: format!("endpoint not allowed: {e}"),
        })
    }

    /// One target per store the request named, in order: S3, Azure, GCS.
    fn targets(&self, stores: &Stores) -> Result<Vec<Target>, ExportError> {
        let mut targets = Vec::new();
        if let Some(s3) = &stores.s3 {
            let mut target = self.target(s3.spec())?;
            target.acl = s3.acl.clone();
            target.s3 = Some(s3.clone());
            targets.push(target);
        }
        if let Some(azure) = &stores.azure {
            targets.push(self.target(azure.spec())?);
        }
        if let Some(gcs) = &stores.gcs {
            targets.push(self.target(gcs.spec())?);
        }
        Ok(targets)
    }

    /// Checks the spec's endpoint against the address policy, then builds its operator.
    fn target(&self, spec: TargetSpec) -> Result<Target, ExportError> {
        if let Some(endpoint) = &spec.endpoint_to_check {
            self.check_endpoint(spec.provider, &spec.bucket, &spec.path, endpoint)?;
        }
        Ok(Target::new(spec, &self.client))
    }
}

/// A store ready to write to.
struct Target {
    provider: &'static str,
    bucket: String,
    path: String,
    op: Option<Operator>,
    /// Why the operator could not be built (the store's configuration was refused).
    build_error: Option<String>,
    /// `https://endpoint/bucket`: objects are at `{base}/{path}`.
    base_url: String,
    headers: WriteHeaders,
    secrets: Vec<Secret>,
    /// For S3: the store (for PutObjectAcl) and the ACL to set, if any.
    s3: Option<S3Store>,
    acl: Option<String>,
}

impl Target {
    /// Builds the operator with the request's own credentials only, talking through the
    /// exporter's address-guarded client. A configuration the store library refuses is kept as
    /// the reason, reported when the first write is attempted.
    fn new(spec: TargetSpec, client: &reqwest::Client) -> Self {
        let (op, build_error) =
            match operator::build(&spec.backend, client.clone(), Ambient::Refused) {
                Ok(op) => (Some(op), None),
                Err(e) => (None, Some(store_message(&e))),
            };
        let TargetSpec {
            provider,
            bucket,
            path,
            base_url,
            headers,
            secrets,
            ..
        } = spec;
        Target {
            provider,
            bucket,
            path,
            op,
            build_error,
            base_url,
            headers,
            secrets,
            s3: None,
            acl: None,
        }
    }

    fn object_url(&self, path: &str) -> String {
        let encoded: Vec<String> = path
            .split('/')
            .map(|segment| url::form_urlencoded::byte_serialize(segment.as_bytes()).collect())
            .collect();
        format!("{}/{}", self.base_url, encoded.join("/")).replace('+', "%20")
    }
}

/// The store's own answer to a failed write, e.g. `NoSuchBucket: The specified bucket does not
/// exist`: OpenDAL carries the parsed error (`S3Error { code: "…", message: "…", … }` and the
/// like) as its message; without such a body (a connection failure), its kind and message.
fn store_message(e: &opendal::Error) -> String {
    // Display is `Kind (status) at op, context: { … } => message, source: …`.
    let full = e.to_string();
    let message = full.split_once(" => ").map_or(full.as_str(), |(_, m)| m);
    match (
        quoted_field(message, "code"),
        quoted_field(message, "message"),
    ) {
        (Some(code), Some(text)) if !code.is_empty() => format!("{code}: {text}"),
        _ => format!("{}: {message}", e.kind()),
    }
}

/// The value of `name: "value"` in a Debug-printed struct.
fn quoted_field<'a>(text: &'a str, name: &str) -> Option<&'a str> {
    let start = text.find(&format!("{name}: \""))? + name.len() + 3;
    let len = text[start..].find('"')?;
    Some(&text[start..start + len])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::export::gcs::GcsCredentials;

    fn item(id: &str) -> ExportItem {
        ExportItem {
            bytes: Bytes::new(),
            ext: "webp",
            content_type: "image/webp",
            width: 640,
            height: 480,
            id: id.into(),
        }
    }

    fn exporter() -> Exporter {
        Exporter::new(
            AddressPolicy::new(Vec::new()),
            Duration::from_secs(1),
            Duration::from_secs(1),
        )
        .unwrap()
    }

    #[test]
    fn store_messages_are_the_stores_own() {
        let e = opendal::Error::new(
            opendal::ErrorKind::ConfigInvalid,
            "S3Error { code: \"NoSuchBucket\", message: \"The specified bucket does not exist\", resource: \"\" }",
        );
        assert_eq!(
            store_message(&e),
            "NoSuchBucket: The specified bucket does not exist"
        );
        let e = opendal::Error::new(opendal::ErrorKind::Unexpected, "connection refused")
            .with_context("uri", "http://x/y");
        assert_eq!(store_message(&e), "Unexpected: connection refused");
    }

    #[test]
    fn paths_follow_placeholders_folders_and_suffixes() {
        let i = item("thumb");
        assert_eq!(object_path("a/b.jpg", &i, false), "a/b.jpg");
        assert_eq!(object_path("a/b.jpg", &i, true), "a/b-thumb.jpg");
        assert_eq!(object_path("a/b", &i, true), "a/b-thumb");
        assert_eq!(object_path("a.d/b", &i, true), "a.d/b-thumb");
        assert_eq!(object_path("out/", &i, false), "out/thumb.webp");
        assert_eq!(
            object_path("x/{id}_{width}x{height}.{ext}", &i, true),
            "x/thumb_640x480.webp"
        );
    }

    #[test]
    fn gcs_service_account_config_builds() {
        let json = r#"{"type":"service_account","client_email":"x@y.iam.gserviceaccount.com","private_key":"-----BEGIN PRIVATE KEY-----\nMII\n-----END PRIVATE KEY-----\n"}"#;
        let stores = Stores {
            gcs: Some(GcsStore {
                credentials: GcsCredentials::ServiceAccount(Secret::new(json)),
                bucket: "g".into(),
                path: "out/".into(),
                endpoint: None,
            }),
            ..Stores::default()
        };
        let targets = exporter().targets(&stores).unwrap();
        assert_eq!(targets.len(), 1);
        assert!(targets[0].op.is_some(), "{:?}", targets[0].build_error);
        assert_eq!(
            targets[0].object_url("out/a b.png"),
            "https://storage.googleapis.com/g/out/a%20b.png"
        );
    }

    #[test]
    fn export_endpoints_obey_the_address_policy() {
        let stores = Stores {
            s3: Some(S3Store {
                key: Secret::new("k"),
                secret: Secret::new("s"),
                bucket: "b".into(),
                path: "p".into(),
                region: "us-east-1".into(),
                endpoint: Some("http://169.254.169.254".into()),
                acl: None,
                headers: WriteHeaders::default(),
            }),
            ..Stores::default()
        };
        assert!(matches!(
            exporter().targets(&stores).err(),
            Some(ExportError { provider: "s3", .. })
        ));
    }
}
