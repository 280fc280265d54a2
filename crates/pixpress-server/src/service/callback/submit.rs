//! Accepting a callback job, before the 202: the callback URL must pass the fetch address
//! policy now (it is checked again on every delivery), an image URL too; an upload must still
//! fit in a hard quota (its bytes are reserved when the job runs) and is parked in the object
//! store, where every instance can read it; then the job is recorded and queued.

use crate::service::callback::{input_object_name, jobs, new_job_id, CallbackTask, QueuedInput};
use crate::service::error::ServiceError;
use crate::service::job::Input;
use crate::service::optimise::Admitted;
use crate::service::Service;

/// A request to answer by callback, as the edge read it.
#[derive(Debug)]
pub struct Submission {
    pub input: Input,
    pub callback_url: String,
    /// The edge's record of the request (no key in it), handed back to it when the job runs.
    pub request: serde_json::Value,
}

impl Service {
    /// Checks, parks, records and queues the job; returns its id.
    pub async fn submit_callback(
        &self,
        admitted: &Admitted,
        submission: Submission,
    ) -> Result<String, ServiceError> {
        self.callbacks
            .deliverer
            .check(&submission.callback_url)
            .await
            .map_err(ServiceError::CallbackUrl)?;
        let job_id = new_job_id();
        let input = self.park_input(admitted, &job_id, submission.input).await?;
        let parked = match &input {
            QueuedInput::Stored(name) => Some(name.as_str()),
            QueuedInput::Url(_) => None,
        };
        let key_id = &admitted.caller.id;
        jobs::insert(&self.db, &job_id, key_id, &submission.callback_url, parked)
            .await
            .map_err(ServiceError::CallbackRecord)?;
        let task = CallbackTask {
            job_id: job_id.clone(),
            key_id: key_id.clone(),
            plan: admitted.caller.plan.clone(),
            callback_url: submission.callback_url,
            input,
            request: submission.request,
        };
        self.callbacks
            .queue
            .push(task)
            .await
            .map_err(ServiceError::CallbackQueue)?;
        Ok(job_id)
    }

    /// A URL is checked and kept; an upload is checked against the quota and parked.
    async fn park_input(
        &self,
        admitted: &Admitted,
        job_id: &str,
        input: Input,
    ) -> Result<QueuedInput, ServiceError> {
        match input {
            Input::Url(url) => {
                self.fetcher.check(&url).await?;
                Ok(QueuedInput::Url(url))
            }
            Input::Upload(bytes) => {
                admitted.check_fits(bytes.len() as u64)?;
                let name = input_object_name(job_id);
                self.results
                    .store()
                    .put(&name, bytes, "application/octet-stream")
                    .await
                    .map_err(ServiceError::Parking)?;
                Ok(QueuedInput::Stored(name))
            }
        }
    }
}
