//! Exports to the user's own bucket (SPEC §6): `s3_store`, `azure_store` and `gcs_store`. This
//! module parses the three objects from the request JSON into typed stores whose secrets never
//! print, and writes each output through OpenDAL with its Content-Type. Only the request's own
//! credentials are used: the server's (env vars, config files, instance metadata) are never
//! loaded for an export, and a user-given endpoint must pass the same address policy as a fetched
//! URL. A store that refuses a write becomes [`ExportError::Refused`], naming the provider, the
//! bucket and the store's own message with the request's secrets redacted.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use bytes::Bytes;
use opendal::{services, Operator};
use serde::Serialize;
use serde_json::{Map, Value};

use crate::fetch::{check_url_literal, guarded_client};
use crate::fetch_guard::AddressPolicy;
use crate::storage::{redact, Secret};

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A malformed `*_store` object (400).
    #[error("{message}")]
    Invalid { field: String, message: String },
    /// A valid store option this server does not carry out (400 `not_supported_yet`).
    #[error("{message}")]
    Unsupported { field: String, message: String },
    /// The store refused or could not be reached (502 `export_failed`).
    #[error("{provider} refused the write to {bucket}/{path}: {message}")]
    Refused {
        provider: &'static str,
        bucket: String,
        path: String,
        message: String,
    },
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> ExportError {
    ExportError::Invalid {
        field: field.into(),
        message: message.into(),
    }
}

/// `s3_store`: an S3 or S3-compatible bucket.
#[derive(Clone, Debug)]
pub struct S3Store {
    pub key: Secret,
    pub secret: Secret,
    pub bucket: String,
    pub path: String,
    pub region: String,
    pub endpoint: Option<String>,
    /// A canned ACL (`public-read`, …) set with PutObjectAcl after the write.
    pub acl: Option<String>,
    pub headers: WriteHeaders,
}

/// S3's canned ACLs (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/acl-overview.html#canned-acl>).
const CANNED_ACLS: [&str; 7] = [
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
];

/// The `headers` of `s3_store` that a write can carry.
#[derive(Clone, Debug, Default)]
pub struct WriteHeaders {
    pub cache_control: Option<String>,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    /// `x-amz-meta-NAME: value`, as (NAME, value).
    pub metadata: Vec<(String, String)>,
}

/// `azure_store`: a container in an Azure Blob Storage account.
#[derive(Clone, Debug)]
pub struct AzureStore {
    pub account: String,
    pub key: Secret,
    pub container: String,
    pub path: String,
    pub endpoint: Option<String>,
}

/// `gcs_store`: a Google Cloud Storage bucket.
#[derive(Clone, Debug)]
pub struct GcsStore {
    pub credentials: GcsCredentials,
    pub bucket: String,
    pub path: String,
    pub endpoint: Option<String>,
}

#[derive(Clone, Debug)]
pub enum GcsCredentials {
    /// A service-account key (its JSON text).
    ServiceAccount(Secret),
    /// An OAuth2 access token (e.g. from `gcloud auth print-access-token`).
    Token(Secret),
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
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct StoredEntry {
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

/// Parses whichever of the three `*_store` objects are present.
pub fn parse_stores(object: &Map<String, Value>) -> Result<Stores, ExportError> {
    let mut stores = Stores::default();
    if let Some(v) = present(object, "s3_store") {
        stores.s3 = Some(parse_s3(v)?);
    }
    if let Some(v) = present(object, "azure_store") {
        stores.azure = Some(parse_azure(v)?);
    }
    if let Some(v) = present(object, "gcs_store") {
        stores.gcs = Some(parse_gcs(v)?);
    }
    Ok(stores)
}

fn present<'a>(object: &'a Map<String, Value>, field: &str) -> Option<&'a Value> {
    object.get(field).filter(|v| !v.is_null())
}

struct Fields<'a> {
    store: &'static str,
    object: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    fn new(store: &'static str, value: &'a Value) -> Result<Self, ExportError> {
        let object = value.as_object().ok_or_else(|| {
            invalid(
                store,
                format!(
                    "Expected an object for {store} but received {}",
                    crate::options::describe(value)
                ),
            )
        })?;
        for key in object.keys() {
            if !known_field(store, key) {
                return Err(invalid(
                    format!("{store}.{key}"),
                    format!(
                        "{store}.{key} is not a field of {store}; it takes {}",
                        known_fields(store).join(", ")
                    ),
                ));
            }
        }
        Ok(Fields { store, object })
    }

    fn name(&self, field: &str) -> String {
        format!("{}.{field}", self.store)
    }

    fn optional(&self, field: &str) -> Result<Option<String>, ExportError> {
        match self.object.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Err(invalid(
                self.name(field),
                format!("{} must not be empty", self.name(field)),
            )),
            Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
            Some(other) => Err(invalid(
                self.name(field),
                // A secret's value is never echoed, only its type.
                format!(
                    "Expected a string for {} but received a value of type {}",
                    self.name(field),
                    crate::resize_json::type_name(other)
                ),
            )),
        }
    }

    fn required(&self, field: &str) -> Result<String, ExportError> {
        self.optional(field)?.ok_or_else(|| {
            invalid(
                self.name(field),
                format!("{} is required", self.name(field)),
            )
        })
    }

    fn endpoint(&self) -> Result<Option<String>, ExportError> {
        let Some(endpoint) = self.optional("endpoint")? else {
            return Ok(None);
        };
        let url = url::Url::parse(&endpoint).map_err(|e| {
            invalid(
                self.name("endpoint"),
                format!("{} must be an http(s) URL: {e}", self.name("endpoint")),
            )
        })?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(invalid(
                self.name("endpoint"),
                format!("{} must be an http or https URL", self.name("endpoint")),
            ));
        }
        Ok(Some(endpoint.trim_end_matches('/').to_string()))
    }

    fn path(&self) -> Result<String, ExportError> {
        let path = self.required("path")?;
        let path = path.trim_start_matches('/').to_string();
        if path.is_empty() || path.chars().any(char::is_control) {
            return Err(invalid(
                self.name("path"),
                format!(
                    "{} must name an object, e.g. \"images/photo.jpg\" or \"images/\"",
                    self.name("path")
                ),
            ));
        }
        Ok(path)
    }
}

fn known_fields(store: &str) -> &'static [&'static str] {
    match store {
        "s3_store" => &[
            "key", "secret", "bucket", "path", "region", "endpoint", "acl", "headers",
        ],
        "azure_store" => &["account", "key", "container", "path", "endpoint"],
        _ => &["credentials", "bucket", "path", "endpoint"],
    }
}

fn known_field(store: &str, key: &str) -> bool {
    known_fields(store).contains(&key)
}

fn parse_s3(value: &Value) -> Result<S3Store, ExportError> {
    let f = Fields::new("s3_store", value)?;
    let acl = f.optional("acl")?;
    if let Some(acl) = &acl {
        if !CANNED_ACLS.contains(&acl.as_str()) {
            return Err(invalid(
                "s3_store.acl",
                format!(
                    "s3_store.acl {acl:?} is not a canned ACL; use one of {}",
                    CANNED_ACLS.join(", ")
                ),
            ));
        }
    }
    Ok(S3Store {
        key: Secret::new(f.required("key")?),
        secret: Secret::new(f.required("secret")?),
        bucket: f.required("bucket")?,
        path: f.path()?,
        region: f.optional("region")?.unwrap_or_else(|| "us-east-1".into()),
        endpoint: f.endpoint()?,
        acl,
        headers: parse_headers(f.object.get("headers"))?,
    })
}

fn parse_headers(value: Option<&Value>) -> Result<WriteHeaders, ExportError> {
    let mut headers = WriteHeaders::default();
    let object = match value {
        None | Some(Value::Null) => return Ok(headers),
        Some(Value::Object(o)) => o,
        Some(other) => {
            return Err(invalid(
                "s3_store.headers",
                format!(
                    "Expected an object of header names to strings for s3_store.headers but received {}",
                    crate::options::describe(other)
                ),
            ))
        }
    };
    for (name, value) in object {
        let field = format!("s3_store.headers.{name}");
        let Some(text) = value.as_str() else {
            return Err(invalid(
                &field,
                format!(
                    "Expected a string for {field} but received {}",
                    crate::options::describe(value)
                ),
            ));
        };
        if text.chars().any(char::is_control) {
            return Err(invalid(
                &field,
                format!("{field} must not contain control characters"),
            ));
        }
        let lower = name.to_ascii_lowercase();
        let text = text.to_string();
        match lower.as_str() {
            "cache-control" => headers.cache_control = Some(text),
            "content-type" => headers.content_type = Some(text),
            "content-encoding" => headers.content_encoding = Some(text),
            _ => match lower.strip_prefix("x-amz-meta-") {
                Some(meta) if !meta.is_empty() => headers.metadata.push((meta.to_string(), text)),
                _ => {
                    return Err(ExportError::Unsupported {
                        field,
                        message: format!(
                            "s3_store.headers: {name:?} is not supported; pixpress can set Cache-Control, Content-Type, Content-Encoding and x-amz-meta-* on an export"
                        ),
                    })
                }
            },
        }
    }
    Ok(headers)
}

fn parse_azure(value: &Value) -> Result<AzureStore, ExportError> {
    let f = Fields::new("azure_store", value)?;
    let key = f.required("key")?;
    if base64::engine::general_purpose::STANDARD
        .decode(&key)
        .is_err()
    {
        return Err(invalid(
            "azure_store.key",
            "azure_store.key must be the storage account's access key (base64), as shown under Access keys",
        ));
    }
    Ok(AzureStore {
        account: f.required("account")?,
        key: Secret::new(key),
        container: f.required("container")?,
        path: f.path()?,
        endpoint: f.endpoint()?,
    })
}

fn parse_gcs(value: &Value) -> Result<GcsStore, ExportError> {
    let f = Fields::new("gcs_store", value)?;
    let credentials = match f.object.get("credentials") {
        Some(Value::Object(o)) => service_account(o)?,
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(o)) => service_account(&o)?,
            _ if !s.trim().is_empty() && !s.trim_start().starts_with('{') => {
                GcsCredentials::Token(Secret::new(s.trim()))
            }
            _ => {
                return Err(invalid(
                    "gcs_store.credentials",
                    "gcs_store.credentials is not valid JSON: give the service-account key file's JSON (as an object or a string) or an OAuth2 access token",
                ))
            }
        },
        None | Some(Value::Null) => {
            return Err(invalid("gcs_store.credentials", "gcs_store.credentials is required: the service-account key file's JSON, or an OAuth2 access token"))
        }
        Some(other) => {
            return Err(invalid(
                "gcs_store.credentials",
                format!(
                    "Expected an object or a string for gcs_store.credentials but received a value of type {}",
                    crate::resize_json::type_name(other)
                ),
            ))
        }
    };
    Ok(GcsStore {
        credentials,
        bucket: f.required("bucket")?,
        path: f.path()?,
        endpoint: f.endpoint()?,
    })
}

/// Only service-account keys: other credential types (external accounts) name files or URLs
/// that the server would read or call, which a request must not be able to choose.
fn service_account(object: &Map<String, Value>) -> Result<GcsCredentials, ExportError> {
    if object.get("type").and_then(Value::as_str) != Some("service_account") {
        return Err(ExportError::Unsupported {
            field: "gcs_store.credentials".into(),
            message: "gcs_store.credentials must be a service-account key (\"type\": \"service_account\") or an OAuth2 access token; other credential types are not accepted".into(),
        });
    }
    for field in ["client_email", "private_key"] {
        if !object.get(field).is_some_and(Value::is_string) {
            return Err(invalid(
                "gcs_store.credentials",
                format!(
                    "gcs_store.credentials lacks {field}: give the whole service-account key file"
                ),
            ));
        }
    }
    Ok(GcsCredentials::ServiceAccount(Secret::new(
        Value::Object(object.clone()).to_string(),
    )))
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
                let fail = |message: String| ExportError::Refused {
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
                    self.put_object_acl(s3, &path, acl)
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

    fn check_endpoint(
        &self,
        provider: &'static str,
        bucket: &str,
        path: &str,
        endpoint: &str,
    ) -> Result<(), ExportError> {
        let url = url::Url::parse(endpoint).map_err(|e| ExportError::Refused {
            provider,
            bucket: bucket.to_string(),
            path: path.to_string(),
            message: format!("invalid endpoint: {e}"),
        })?;
        check_url_literal(&url, &self.policy).map_err(|e| ExportError::Refused {
            provider,
            bucket: bucket.to_string(),
            path: path.to_string(),
            message: format!("endpoint not allowed: {e}"),
        })
    }

    /// Sets a canned ACL on an object just written: S3's PutObjectAcl (`PUT /bucket/key?acl`
    /// with `x-amz-acl`), signed with SigV4 by reqsign — the one S3 call OpenDAL does not make.
    /// Buckets with ACLs disabled (S3's default for new buckets) refuse it with their own message.
    async fn put_object_acl(&self, s3: &S3Store, path: &str, acl: &str) -> Result<(), String> {
        let endpoint = s3
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", s3.region));
        let mut url = url::Url::parse(&endpoint).map_err(|e| e.to_string())?;
        url.path_segments_mut()
            .map_err(|()| "the endpoint cannot take a path".to_string())?
            .pop_if_empty()
            .push(&s3.bucket)
            .extend(path.split('/'));
        url.set_query(Some("acl"));
        let mut request = self
            .client
            .put(url)
            .header("x-amz-acl", acl)
            .build()
            .map_err(|e| e.to_string())?;
        let credential = reqsign::AwsCredential {
            access_key_id: s3.key.expose().to_string(),
            secret_access_key: s3.secret.expose().to_string(),
            session_token: None,
            expires_in: None,
        };
        reqsign::AwsV4Signer::new("s3", &s3.region)
            .sign(&mut request, &credential)
            .map_err(|e| e.to_string())?;
        let response = self
            .client
            .execute(request)
            .await
            .map_err(|e| format!("the store could not be reached: {e}"))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let body = response.text().await.unwrap_or_default();
        Err(
            match (xml_element(&body, "Code"), xml_element(&body, "Message")) {
                (Some(code), Some(message)) => format!("{code}: {message}"),
                _ => format!("HTTP {status}"),
            },
        )
    }

    /// The operator for `builder`, talking through the guarded client.
    fn operator(&self, builder: impl opendal::Builder) -> opendal::Result<Operator> {
        let client = opendal::raw::HttpClient::with(self.client.clone());
        Ok(Operator::new(builder)?
            .layer(opendal::layers::HttpClientLayer::new(client))
            .finish())
    }

    fn targets(&self, stores: &Stores) -> Result<Vec<Target>, ExportError> {
        let mut targets = Vec::new();
        if let Some(s3) = &stores.s3 {
            if let Some(endpoint) = &s3.endpoint {
                self.check_endpoint("s3", &s3.bucket, &s3.path, endpoint)?;
            }
            let mut builder = services::S3::default()
                .bucket(&s3.bucket)
                .region(&s3.region)
                .access_key_id(s3.key.expose())
                .secret_access_key(s3.secret.expose())
                .disable_config_load()
                .disable_ec2_metadata();
            if let Some(endpoint) = &s3.endpoint {
                builder = builder.endpoint(endpoint);
            }
            let endpoint = s3
                .endpoint
                .clone()
                .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", s3.region));
            let mut target = Target::new(
                "s3",
                &s3.bucket,
                &s3.path,
                self.operator(builder),
                format!("{endpoint}/{}", s3.bucket),
                s3.headers.clone(),
                vec![s3.key.clone(), s3.secret.clone()],
            );
            target.acl = s3.acl.clone();
            target.s3 = Some(s3.clone());
            targets.push(target);
        }
        if let Some(az) = &stores.azure {
            let endpoint = az
                .endpoint
                .clone()
                .unwrap_or_else(|| format!("https://{}.blob.core.windows.net", az.account));
            self.check_endpoint("azure", &az.container, &az.path, &endpoint)?;
            let builder = services::Azblob::default()
                .container(&az.container)
                .endpoint(&endpoint)
                .account_name(&az.account)
                .account_key(az.key.expose());
            targets.push(Target::new(
                "azure",
                &az.container,
                &az.path,
                self.operator(builder),
                format!("{endpoint}/{}", az.container),
                WriteHeaders::default(),
                vec![az.key.clone()],
            ));
        }
        if let Some(gcs) = &stores.gcs {
            if let Some(endpoint) = &gcs.endpoint {
                self.check_endpoint("gcs", &gcs.bucket, &gcs.path, endpoint)?;
            }
            let mut builder = services::Gcs::default()
                .bucket(&gcs.bucket)
                .disable_config_load()
                .disable_vm_metadata();
            let secret = match &gcs.credentials {
                GcsCredentials::ServiceAccount(json) => {
                    builder = builder.credential(
                        &base64::engine::general_purpose::STANDARD.encode(json.expose()),
                    );
                    json.clone()
                }
                GcsCredentials::Token(token) => {
                    builder = builder.token(token.expose().to_string());
                    token.clone()
                }
            };
            if let Some(endpoint) = &gcs.endpoint {
                builder = builder.endpoint(endpoint);
            }
            let base = gcs
                .endpoint
                .clone()
                .unwrap_or_else(|| "https://storage.googleapis.com".into());
            targets.push(Target::new(
                "gcs",
                &gcs.bucket,
                &gcs.path,
                self.operator(builder),
                format!("{base}/{}", gcs.bucket),
                WriteHeaders::default(),
                vec![secret],
            ));
        }
        Ok(targets)
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
    fn new(
        provider: &'static str,
        bucket: &str,
        path: &str,
        op: opendal::Result<Operator>,
        base_url: String,
        headers: WriteHeaders,
        secrets: Vec<Secret>,
    ) -> Self {
        let (op, build_error) = match op {
            Ok(op) => (Some(op), None),
            Err(e) => (None, Some(store_message(&e))),
        };
        Target {
            provider,
            bucket: bucket.to_string(),
            path: path.to_string(),
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

/// The text of `<name>…</name>` in an S3 error body.
fn xml_element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let start = xml.find(&format!("<{name}>"))? + name.len() + 2;
    let len = xml[start..].find('<')?;
    Some(&xml[start..start + len])
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
    use serde_json::json;

    fn stores(v: Value) -> Result<Stores, ExportError> {
        parse_stores(v.as_object().unwrap())
    }

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
    fn stores_parse_and_secrets_stay_hidden() {
        let s = stores(json!({
            "s3_store": {"key": "AKIAEXAMPLEKEY", "secret": "s3cr3t-value", "bucket": "b", "path": "/p/x.jpg",
                         "headers": {"Cache-Control": "max-age=60", "x-amz-meta-owner": "me"}},
            "azure_store": {"account": "acct", "key": "a2V5LXZhbHVl", "container": "c", "path": "p"},
            "gcs_store": {"credentials": "ya29.token-value", "bucket": "g", "path": "p"}
        }))
        .unwrap();
        let s3 = s.s3.as_ref().unwrap();
        assert_eq!(s3.path, "p/x.jpg");
        assert_eq!(s3.region, "us-east-1");
        assert_eq!(s3.headers.cache_control.as_deref(), Some("max-age=60"));
        assert_eq!(s3.headers.metadata, vec![("owner".into(), "me".into())]);
        assert!(matches!(
            s.gcs.as_ref().unwrap().credentials,
            GcsCredentials::Token(_)
        ));
        let printed = format!("{s:?}");
        for secret in [
            "AKIAEXAMPLEKEY",
            "s3cr3t-value",
            "a2V5LXZhbHVl",
            "ya29.token-value",
        ] {
            assert!(!printed.contains(secret), "{secret} leaked in {printed}");
        }
    }

    #[test]
    fn bad_stores_name_the_field() {
        let field = |v: Value| match stores(v).unwrap_err() {
            ExportError::Invalid { field, .. } | ExportError::Unsupported { field, .. } => field,
            e => panic!("{e}"),
        };
        assert_eq!(field(json!({"s3_store": "x"})), "s3_store");
        assert_eq!(
            field(json!({"s3_store": {"key": "k", "secret": "s", "bucket": "b"}})),
            "s3_store.path"
        );
        assert_eq!(
            field(
                json!({"s3_store": {"key": "k", "secret": "s", "bucket": "b", "path": "p", "acl": "world-writable"}})
            ),
            "s3_store.acl"
        );
        assert_eq!(
            field(
                json!({"s3_store": {"key": "k", "secret": "s", "bucket": "b", "path": "p", "headers": {"Expires": "x"}}})
            ),
            "s3_store.headers.Expires"
        );
        assert_eq!(
            field(
                json!({"s3_store": {"key": "k", "secret": "s", "bucket": "b", "path": "p", "endpoint": "ftp://x"}})
            ),
            "s3_store.endpoint"
        );
        assert_eq!(
            field(
                json!({"azure_store": {"account": "a", "key": "k", "container": "c", "path": "p", "bogus": 1}})
            ),
            "azure_store.bogus"
        );
        assert_eq!(
            field(
                json!({"gcs_store": {"credentials": {"type": "external_account", "credential_source": {"file": "/etc/passwd"}}, "bucket": "b", "path": "p"}})
            ),
            "gcs_store.credentials"
        );
        // A secret of the wrong type is described by its type only, never echoed.
        let e = stores(
            json!({"s3_store": {"key": 12345678, "secret": "s", "bucket": "b", "path": "p"}}),
        )
        .unwrap_err();
        assert!(!e.to_string().contains("12345678"), "{e}");
    }

    #[test]
    fn gcs_service_account_config_builds() {
        let s = stores(json!({"gcs_store": {
            "credentials": {"type": "service_account", "client_email": "x@y.iam.gserviceaccount.com",
                            "private_key": "-----BEGIN PRIVATE KEY-----\nMII\n-----END PRIVATE KEY-----\n"},
            "bucket": "g", "path": "out/"}}))
        .unwrap();
        let exporter = Exporter::new(
            AddressPolicy::new(Vec::new()),
            Duration::from_secs(1),
            Duration::from_secs(1),
        )
        .unwrap();
        let targets = exporter.targets(&s).unwrap();
        assert_eq!(targets.len(), 1);
        assert!(targets[0].op.is_some(), "{:?}", targets[0].build_error);
        assert_eq!(
            targets[0].object_url("out/a b.png"),
            "https://storage.googleapis.com/g/out/a%20b.png"
        );
    }

    #[test]
    fn export_endpoints_obey_the_address_policy() {
        let s = stores(
            json!({"s3_store": {"key": "k", "secret": "s", "bucket": "b", "path": "p",
                                           "endpoint": "http://169.254.169.254"}}),
        )
        .unwrap();
        let exporter = Exporter::new(
            AddressPolicy::new(Vec::new()),
            Duration::from_secs(1),
            Duration::from_secs(1),
        )
        .unwrap();
        assert!(matches!(
            exporter.targets(&s).err(),
            Some(ExportError::Refused { provider: "s3", .. })
        ));
    }
}
