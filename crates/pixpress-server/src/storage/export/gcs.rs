//! `gcs_store`: a Google Cloud Storage bucket. This module owns the typed store, its two kinds
//! of credentials (a service-account key or an OAuth2 token) and its target settings.

use base64::Engine;

use crate::storage::export::target::{TargetSpec, WriteHeaders};
use crate::storage::operator::{self, Backend, GcsAuth};
use crate::storage::secret::Secret;

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

impl GcsStore {
    pub(super) fn spec(&self) -> TargetSpec {
        // What to redact from the store's messages is the secret as the request gave it.
        let (auth, secret) = match &self.credentials {
            GcsCredentials::ServiceAccount(json) => {
                let encoded = base64::engine::general_purpose::STANDARD.encode(json.expose());
                (GcsAuth::Credential(Secret::new(encoded)), json.clone())
            }
            GcsCredentials::Token(token) => (GcsAuth::Token(token.clone()), token.clone()),
        };
        let backend = Backend::Gcs(operator::Gcs {
            bucket: self.bucket.clone(),
            root: None,
            endpoint: self.endpoint.clone(),
            auth,
        });
        let base = self
            .endpoint
            .clone()
            .unwrap_or_else(|| "https://storage.googleapis.com".into());
        TargetSpec {
            provider: "gcs",
            bucket: self.bucket.clone(),
            path: self.path.clone(),
            backend,
            base_url: format!("{base}/{}", self.bucket),
            headers: WriteHeaders::default(),
            secrets: vec![secret],
            endpoint_to_check: self.endpoint.clone(),
        }
    }
}
