//! The one place OpenDAL operators are built, for the hosted-result store and for exports to
//! the users' own buckets alike. A [`Backend`] says which service and with what settings; the
//! caller brings the HTTP client (bounded waits for the hosted store, the address-guarded client
//! for exports) and says whether the server's own ambient credentials may be loaded.

use opendal::{services, Operator};

use crate::storage::secret::Secret;

/// Whether OpenDAL may look for credentials the request did not give (env vars, config files,
/// instance or VM metadata).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ambient {
    /// The hosted store: the operator's own configuration, as OpenDAL loads it by default.
    Allowed,
    /// Exports: only the request's own credentials; the server's must never sign for a user.
    Refused,
}

/// How a GCS operator authenticates.
#[derive(Clone, Debug)]
pub enum GcsAuth {
    /// A service-account key file named by the operator (None: OpenDAL's default chain).
    CredentialPath(Option<String>),
    /// A service-account key's JSON, base64-encoded as OpenDAL takes it.
    Credential(Secret),
    /// An OAuth2 access token.
    Token(Secret),
}

/// One object-store service and its settings.
#[derive(Clone, Debug)]
pub enum Backend {
    Fs { root: String },
    S3(S3),
    Azblob(Azblob),
    Gcs(Gcs),
}

/// `root` None keeps OpenDAL's default root (exports write to paths from the bucket's top).
#[derive(Clone, Debug)]
pub struct S3 {
    pub bucket: String,
    pub root: Option<String>,
    pub region: String,
    pub endpoint: Option<String>,
    pub access_key_id: Option<Secret>,
    pub secret_access_key: Option<Secret>,
}

#[derive(Clone, Debug)]
pub struct Azblob {
    pub container: String,
    pub root: Option<String>,
    pub endpoint: String,
    pub account: String,
    pub key: Option<Secret>,
    pub sas_token: Option<Secret>,
}

#[derive(Clone, Debug)]
pub struct Gcs {
    pub bucket: String,
    pub root: Option<String>,
    pub endpoint: Option<String>,
    pub auth: GcsAuth,
}

/// Builds the operator for `backend`. Remote services talk through `client`; a directory needs
/// no HTTP and gets none.
pub fn build(
    backend: &Backend,
    client: reqwest::Client,
    ambient: Ambient,
) -> opendal::Result<Operator> {
    match backend {
        Backend::Fs { root } => Ok(Operator::new(services::Fs::default().root(root))?.finish()),
        Backend::S3(settings) => with_client(Operator::new(s3(settings, ambient))?, client),
        Backend::Azblob(settings) => with_client(Operator::new(azblob(settings))?, client),
        Backend::Gcs(settings) => with_client(Operator::new(gcs(settings, ambient))?, client),
    }
}

fn with_client(
    builder: opendal::OperatorBuilder<impl opendal::raw::Access>,
    client: reqwest::Client,
) -> opendal::Result<Operator> {
    let client = opendal::raw::HttpClient::with(client);
    Ok(builder
        .layer(opendal::layers::HttpClientLayer::new(client))
        .finish())
}

fn s3(settings: &S3, ambient: Ambient) -> services::S3 {
    let mut builder = services::S3::default()
        .bucket(&settings.bucket)
        .region(&settings.region);
    if let Some(root) = &settings.root {
        builder = builder.root(root);
    }
    if let Some(endpoint) = &settings.endpoint {
        builder = builder.endpoint(endpoint);
    }
    if let Some(key) = &settings.access_key_id {
        builder = builder.access_key_id(key.expose());
    }
    if let Some(secret) = &settings.secret_access_key {
        builder = builder.secret_access_key(secret.expose());
    }
    if ambient == Ambient::Refused {
        builder = builder.disable_config_load().disable_ec2_metadata();
    }
    builder
}

fn azblob(settings: &Azblob) -> services::Azblob {
    let mut builder = services::Azblob::default()
        .container(&settings.container)
        .endpoint(&settings.endpoint)
        .account_name(&settings.account);
    if let Some(root) = &settings.root {
        builder = builder.root(root);
    }
    if let Some(key) = &settings.key {
        builder = builder.account_key(key.expose());
    }
    if let Some(sas) = &settings.sas_token {
        builder = builder.sas_token(sas.expose());
    }
    builder
}

fn gcs(settings: &Gcs, ambient: Ambient) -> services::Gcs {
    let mut builder = services::Gcs::default().bucket(&settings.bucket);
    if let Some(root) = &settings.root {
        builder = builder.root(root);
    }
    if let Some(endpoint) = &settings.endpoint {
        builder = builder.endpoint(endpoint);
    }
    builder = match &settings.auth {
        GcsAuth::CredentialPath(Some(path)) => builder.credential_path(path),
        GcsAuth::CredentialPath(None) => builder,
        GcsAuth::Credential(base64_json) => builder.credential(base64_json.expose()),
        GcsAuth::Token(token) => builder.token(token.expose().to_string()),
    };
    if ambient == Ambient::Refused {
        builder = builder.disable_config_load().disable_vm_metadata();
    }
    builder
}
