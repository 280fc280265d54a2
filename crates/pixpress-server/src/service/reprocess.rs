//! Compressions whose source stays hosted next to the result, so that later requests can
//! re-process the *original* (resize, convert, keep metadata) rather than an already-lossy
//! output — what Tinify's `/output/<id>` needs. Each re-process is a full request of its own:
//! rate-limited at admission, checked against the quota and metered like any other. The
//! handle ([`Retained::handle`]) names both hosted results; no new table is needed.

use bytes::Bytes;

use crate::accounts::usage;
use crate::service::answer::{Answer, OptimizeResponse};
use crate::service::error::ServiceError;
use crate::service::hosted::HostedResult;
use crate::service::job::{Input, Job};
use crate::service::optimise::{Admitted, Caller};
use crate::service::state::Service;

/// Hosted result ids are 32 hex digits; a handle is the output's id, then the source's.
const ID_LEN: usize = 32;

/// One compression with its source kept.
#[derive(Debug)]
pub struct Retained {
    /// The compressed output, as the native API describes it.
    pub output: OptimizeResponse,
    pub source_size: u64,
    pub source_mime: &'static str,
    /// Names the output and the source together.
    pub handle: String,
}

impl Service {
    /// fetch → pipeline → host → meter, then the source hosted alongside the output.
    pub async fn optimise_retaining_source(
        &self,
        admitted: &Admitted,
        input: Input,
        job: Job,
    ) -> Result<Retained, ServiceError> {
        let input = self.read_input(input).await?;
        let answer = self.optimise_bytes(admitted, input.clone(), job).await?;
        let Answer::One(output) = answer else {
            return Err(ServiceError::NoOutput);
        };
        // The pipeline accepted the input, so it is an image whose header parses.
        let format = pixpress_core::inspect(&input, &self.input_limits)?.format;
        let source_size = input.len() as u64;
        let source = self
            .results
            .put(
                &self.db,
                &admitted.caller.id,
                input,
                format.extension(),
                format.mime(),
            )
            .await
            .map_err(ServiceError::Hosting)?;
        let output_id = output
            .hosted_file
            .split_once('.')
            .map(|(id, _)| id.to_string())
            .unwrap_or_default();
        Ok(Retained {
            handle: format!("{output_id}{}", source.id),
            output,
            source_size,
            source_mime: format.mime(),
        })
    }

    /// The compressed output a handle names.
    pub async fn retained_output(&self, handle: &str) -> Result<HostedResult, ServiceError> {
        let (output, _) = split_handle(handle)?;
        self.find_result_by_id(output).await
    }

    /// Re-processes the source a handle names with `job`: one more metered request.
    pub async fn reprocess_retained(
        &self,
        admitted: &Admitted,
        handle: &str,
        job: Job,
    ) -> Result<Answer, ServiceError> {
        let (_, source) = split_handle(handle)?;
        let hosted = self.find_result_by_id(source).await?;
        let bytes: Bytes = self.read_result(&hosted).await?;
        self.optimise_bytes(admitted, bytes, job).await
    }

    /// This month's metered requests of a caller (Tinify's `Compression-Count`).
    pub async fn requests_this_month(&self, caller: &Caller) -> Result<u64, ServiceError> {
        let used = usage::this_month(&self.db, &caller.id)
            .await
            .map_err(ServiceError::UsageLookup)?;
        Ok(used.requests)
    }

    async fn find_result_by_id(&self, id: &str) -> Result<HostedResult, ServiceError> {
        let result = self
            .results
            .lookup_id(&self.db, id)
            .await
            .map_err(ServiceError::ResultLookup)?
            .ok_or_else(|| ServiceError::NoSuchResult(id.to_string()))?;
        let remaining_secs = ((result.expires_at_ms - crate::db::now_unix_ms()) / 1000).max(0);
        Ok(HostedResult {
            result,
            remaining_secs,
        })
    }
}

/// The output's and the source's ids in a handle; anything else is not found.
fn split_handle(handle: &str) -> Result<(&str, &str), ServiceError> {
    if handle.len() != 2 * ID_LEN || !handle.is_ascii() {
        return Err(ServiceError::NoSuchResult(handle.to_string()));
    }
    Ok(handle.split_at(ID_LEN))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_split_into_two_ids_or_are_not_found() {
        let handle = format!("{}{}", "a".repeat(32), "b".repeat(32));
        let (output, source) = split_handle(&handle).unwrap();
        assert_eq!((output.len(), source.len()), (32, 32));
        assert!(output.starts_with('a') && source.starts_with('b'));
        for bad in ["", "abc", &"é".repeat(32)] {
            assert!(matches!(
                split_handle(bad),
                Err(ServiceError::NoSuchResult(_))
            ));
        }
    }
}
