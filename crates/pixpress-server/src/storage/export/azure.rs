//! `azure_store`: a container in an Azure Blob Storage account. This module owns the typed store
//! and its target settings; the endpoint defaults to the account's and is always checked
//! against the address policy.

use crate::storage::export::target::{TargetSpec, WriteHeaders};
use crate::storage::operator::{self, Backend};
use crate::storage::secret::Secret;

/// `azure_store`: a container in an Azure Blob Storage account.
#[derive(Clone, Debug)]
pub struct AzureStore {
    pub account: String,
    pub key: Secret,
    pub container: String,
    pub path: String,
    pub endpoint: Option<String>,
}

impl AzureStore {
    pub(super) fn spec(&self) -> TargetSpec {
        let endpoint = self
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("https://{}.blob.core.windows.net", self.account));
        let backend = Backend::Azblob(operator::Azblob {
            container: self.container.clone(),
            root: None,
            endpoint: endpoint.clone(),
            account: self.account.clone(),
            key: Some(self.key.clone()),
            sas_token: None,
        });
        TargetSpec {
            provider: "azure",
            bucket: self.container.clone(),
            path: self.path.clone(),
            backend,
            base_url: format!("{endpoint}/{}", self.container),
            headers: WriteHeaders::default(),
            secrets: vec![self.key.clone()],
            endpoint_to_check: Some(endpoint),
        }
    }
}
