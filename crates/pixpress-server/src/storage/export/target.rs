//! What each provider module hands the exporter: a [`TargetSpec`] (operator settings, the
//! object URL base, the headers a write carries, the secrets to redact, the endpoint to check).
//! Provider-neutral, so the providers need nothing from the exporter and the exporter only
//! this from them.

use crate::storage::operator::Backend;
use crate::storage::secret::Secret;

/// The `headers` of `s3_store` that a write can carry (the other providers send none).
#[derive(Clone, Debug, Default)]
pub struct WriteHeaders {
    pub cache_control: Option<String>,
    pub content_type: Option<String>,
    pub content_encoding: Option<String>,
    /// `x-amz-meta-NAME: value`, as (NAME, value).
    pub metadata: Vec<(String, String)>,
}

/// One store as the exporter will write to it.
pub struct TargetSpec {
    pub provider: &'static str,
    /// The bucket (S3, GCS) or container (Azure).
    pub bucket: String,
    /// The request's path template.
    pub path: String,
    pub backend: Backend,
    /// `https://endpoint/bucket`: objects are at `{base}/{path}`.
    pub base_url: String,
    pub headers: WriteHeaders,
    /// Every credential of the request, to redact from the store's messages.
    pub secrets: Vec<Secret>,
    /// An endpoint that must pass the address policy before anything is sent to it.
    pub endpoint_to_check: Option<String>,
}
