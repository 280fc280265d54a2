//! Reading hosted results back (`GET /v1/images/{id}.{ext}`): finding a live result, presigning
//! a redirect to it, or streaming its bytes. How each becomes a response (ETag, Cache-Control,
//! 304, 307) is the edge's business.

use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;

use crate::db::now_unix_ms;
use crate::service::error::ServiceError;
use crate::service::state::Service;
use crate::storage::hosted::StorageError;
use crate::storage::results::StoredResult;

/// Presigned URLs live at most 7 days, S3's limit.
const MAX_PRESIGN_SECS: i64 = 7 * 24 * 3600;

/// A live hosted result and how long it still lives.
#[derive(Clone, Debug)]
pub struct HostedResult {
    pub result: StoredResult,
    pub remaining_secs: i64,
}

impl Service {
    /// The live result named `file` (`id.ext`); unknown and expired results are refused alike.
    pub async fn find_result(&self, file: &str) -> Result<HostedResult, ServiceError> {
        let not_found = || ServiceError::NoSuchResult(file.to_string());
        let (id, ext) = file.rsplit_once('.').ok_or_else(not_found)?;
        let result = self
            .results
            .lookup(&self.db, id, ext)
            .await
            .map_err(ServiceError::ResultLookup)?
            .ok_or_else(not_found)?;
        let remaining_secs = ((result.expires_at_ms - now_unix_ms()) / 1000).max(0);
        Ok(HostedResult {
            result,
            remaining_secs,
        })
    }

    /// Whether results are answered with a redirect to the store (`--storage-redirect`).
    pub fn redirects_reads(&self) -> bool {
        self.results.store().redirects()
    }

    /// A URL presigned for the result's remaining lifetime, so the bytes go from the store to
    /// the client directly.
    pub async fn presigned_url(&self, hosted: &HostedResult) -> Result<String, ServiceError> {
        let ttl = Duration::from_secs(hosted.remaining_secs.clamp(1, MAX_PRESIGN_SECS) as u64);
        self.results
            .store()
            .presigned_url(&hosted.result.object_name(), ttl)
            .await
            .map_err(ServiceError::Presigning)
    }

    /// The result's bytes, read whole (for answers that need the image's dimensions too).
    pub async fn read_result(&self, hosted: &HostedResult) -> Result<Bytes, ServiceError> {
        use futures_util::TryStreamExt;
        let chunks: Vec<Bytes> = self
            .stream_result(hosted)
            .await?
            .try_collect()
            .await
            .map_err(|e| {
                ServiceError::ResultRead(StorageError::Backend {
                    location: hosted.result.object_name(),
                    message: e.to_string(),
                })
            })?;
        Ok(Bytes::from(chunks.concat()))
    }

    /// The result's bytes, streamed from the store. A row whose object is gone (swept by another
    /// instance) is refused as not found.
    pub async fn stream_result(
        &self,
        hosted: &HostedResult,
    ) -> Result<impl Stream<Item = std::io::Result<Bytes>> + Send + 'static, ServiceError> {
        let name = hosted.result.object_name();
        match self.results.store().stream(&name).await {
            Ok(stream) => Ok(stream),
            Err(StorageError::NotFound) => Err(ServiceError::NoSuchResult(name)),
            Err(e) => Err(ServiceError::ResultRead(e)),
        }
    }
}
