//! What the optimise service is asked to do, as the options parser typed it: the input (a URL
//! to fetch or the uploaded bytes) and the [`Job`] — the core request, the resize entries and
//! the stores to export to.

use bytes::Bytes;
use pixpress_core::{Request, ResizeSpec, Warning};

use crate::storage::export::Stores;

/// Where the image comes from.
#[derive(Clone, Debug)]
pub enum Input {
    /// `POST /v1/`: fetched by the service, after the key has been admitted.
    Url(String),
    /// `POST /v1/upload`: the `image` part, already read by the edge.
    Upload(Bytes),
}

#[derive(Clone, Debug, Default)]
pub struct Job {
    pub request: Request,
    pub resize: Option<ResizeRequest>,
    /// `s3_store`, `azure_store`, `gcs_store`: where the result is also written.
    pub stores: Stores,
    /// `dry_run: true`: plan only; nothing is encoded, hosted, exported or metered.
    pub dry_run: bool,
    /// The options' own warnings (unknown fields, ignored quality settings).
    pub warnings: Vec<Warning>,
}

/// The `resize` option: one object, or an array giving one output per entry.
#[derive(Clone, Debug)]
pub struct ResizeRequest {
    pub is_array: bool,
    pub entries: Vec<ResizeEntry>,
}

#[derive(Clone, Debug)]
pub struct ResizeEntry {
    pub id: Option<String>,
    pub spec: ResizeSpec,
    pub warnings: Vec<Warning>,
}

impl ResizeRequest {
    pub fn specs(&self) -> Vec<ResizeSpec> {
        self.entries.iter().map(|e| e.spec.clone()).collect()
    }
}
