//! What one callback job does, on whichever instance the queue hands it to: unless its answer
//! is already kept (a re-run), optimise exactly as the synchronous call would (the key's quota
//! reserved now, the bytes billed under the job's id, so once however often it runs), have the
//! edge render the answer, keep it; drop the parked upload; deliver the kept answer, signed;
//! record how the delivery ended. A job whose delivery already ended is not run again.

use std::sync::Arc;

use bytes::Bytes;

use crate::accounts::keys::{self, KeyError};
use crate::db::now_unix;
use crate::service::answer::Answer;
use crate::service::callback::deliver::{signature, Delivered, Letter};
use crate::service::callback::jobs::{self, KeptAnswer, Outcome};
use crate::service::callback::{CallbackTask, Edge, QueuedInput, Rendered};
use crate::service::error::ServiceError;
use crate::service::job::{Input, Job};
use crate::service::optimise::Caller;
use crate::service::Service;

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the callback job's record: {0}")]
    Record(#[from] sqlx::Error),
    #[error("the callback secret: {0}")]
    Secret(#[from] KeyError),
    #[error("key {0} no longer exists, so its callback cannot be signed")]
    NoKey(String),
}

/// What a worker runs jobs with: the service, and the edge that reads and renders them.
#[derive(Clone)]
pub struct Runner {
    pub service: Service,
    pub edge: Arc<dyn Edge>,
}

impl Runner {
    pub async fn run(&self, task: CallbackTask) -> Result<(), RunError> {
        let db = &self.service.db;
        let Some(row) = jobs::find(db, &task.job_id).await? else {
            tracing::warn!(
                job_id = task.job_id,
                "a queued callback job has no record; skipped"
            );
            return Ok(());
        };
        if row.outcome != Outcome::Queued {
            return Ok(());
        }
        let answer = match row.answer {
            Some(kept) => kept,
            None => {
                let made = KeptAnswer {
                    rendered: self.make_answer(&task).await,
                    signed_at: now_unix(),
                };
                jobs::keep_answer(db, &task.job_id, made).await?
            }
        };
        self.discard_input(&task).await;
        let outcome = self.deliver(&task, &answer).await?;
        jobs::finish(db, &task.job_id, outcome).await?;
        Ok(())
    }

    /// The answer the synchronous call would have given, rendered by the edge.
    async fn make_answer(&self, task: &CallbackTask) -> Rendered {
        let job = match self.edge.job(&task.request) {
            Ok(job) => job,
            Err(rendered) => return rendered,
        };
        let outcome = self.service.run_queued(task, job).await;
        self.edge.render(&task.job_id, &task.request, outcome)
    }

    /// The parked upload is not needed once the answer is kept.
    async fn discard_input(&self, task: &CallbackTask) {
        let QueuedInput::Stored(name) = &task.input else {
            return;
        };
        if let Err(e) = self.service.results.store().delete(name).await {
            tracing::warn!(job_id = task.job_id, "deleting a callback job's input: {e}");
        }
    }

    async fn deliver(&self, task: &CallbackTask, answer: &KeptAnswer) -> Result<Outcome, RunError> {
        let db = &self.service.db;
        let secret = keys::callback_secret(db, &task.key_id)
            .await?
            .ok_or_else(|| RunError::NoKey(task.key_id.clone()))?;
        let body = &answer.rendered.body;
        let letter = Letter {
            url: &task.callback_url,
            job_id: &task.job_id,
            status: answer.rendered.status,
            body,
            timestamp: answer.signed_at,
            signature: signature(&secret, answer.signed_at, body.as_bytes()),
        };
        let delivered = self
            .service
            .callbacks
            .deliverer
            .deliver(&letter, |_| count_delivery(db, &task.job_id))
            .await;
        Ok(match delivered {
            Delivered::Accepted { .. } => Outcome::Delivered,
            Delivered::GaveUp { attempts, last } => {
                tracing::warn!(
                    job_id = task.job_id,
                    attempts,
                    "callback not delivered: {last}"
                );
                Outcome::GaveUp
            }
        })
    }
}

async fn count_delivery(db: &crate::db::Db, job_id: &str) {
    if let Err(e) = jobs::count_delivery(db, job_id).await {
        tracing::warn!(job_id, "counting a callback delivery: {e}");
    }
}

impl Service {
    /// The synchronous request's work for a queued job: quota → input → pipeline → host →
    /// export → meter, billed under the job's id.
    pub async fn run_queued(&self, task: &CallbackTask, job: Job) -> Result<Answer, ServiceError> {
        let caller = Caller {
            id: task.key_id.clone(),
            plan: task.plan.clone(),
        };
        let admitted = self.admit_queued(caller, &task.job_id).await?;
        let input = match &task.input {
            QueuedInput::Url(url) => Input::Url(url.clone()),
            QueuedInput::Stored(name) => Input::Upload(self.read_parked(name).await?),
        };
        self.optimise(&admitted, input, job).await
    }

    async fn read_parked(&self, name: &str) -> Result<Bytes, ServiceError> {
        use futures_util::TryStreamExt;
        let chunks: Vec<Bytes> = self
            .results
            .store()
            .stream(name)
            .await
            .map_err(ServiceError::Parking)?
            .try_collect()
            .await
            .map_err(|e| {
                ServiceError::Parking(crate::storage::hosted::StorageError::Backend {
                    location: name.to_string(),
                    message: e.to_string(),
                })
            })?;
        Ok(chunks.concat().into())
    }
}
