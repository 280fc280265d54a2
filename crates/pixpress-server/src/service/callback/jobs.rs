//! The `callback_jobs` table: pixpress's record of each accepted callback job, beside apalis's
//! queue tables. A row says whose job it is and where its parked upload is; once the job has
//! run it holds the exact answer (status, body, signing time), written once, so that every
//! delivery attempt and any re-run of the job (after a crash, or on another instance) sends
//! the same signed bytes; and finally how the delivery ended.

use crate::db::{now_unix_ms, Db};
use crate::service::callback::Rendered;

/// How a job ended, as the `outcome` column says it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    Queued,
    Delivered,
    GaveUp,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Outcome::Queued => "queued",
            Outcome::Delivered => "delivered",
            Outcome::GaveUp => "gave_up",
        }
    }

    fn parse(text: &str) -> Outcome {
        match text {
            "delivered" => Outcome::Delivered,
            "gave_up" => Outcome::GaveUp,
            _ => Outcome::Queued,
        }
    }
}

/// An answer with the time it was signed at (Unix seconds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeptAnswer {
    pub rendered: Rendered,
    pub signed_at: i64,
}

/// A job's row.
#[derive(Clone, Debug)]
pub struct JobRow {
    pub outcome: Outcome,
    pub answer: Option<KeptAnswer>,
}

pub async fn insert(
    db: &Db,
    job_id: &str,
    key_id: &str,
    callback_url: &str,
    input_object: Option<&str>,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO callback_jobs (id, key_id, callback_url, input_object, created_at_ms) \
         VALUES ($1, $2, $3, $4, $5)",
    )
    .bind(job_id)
    .bind(key_id)
    .bind(callback_url)
    .bind(input_object)
    .bind(now_unix_ms())
    .execute(db)
    .await?;
    Ok(())
}

type RawRow = (String, Option<i64>, Option<String>, Option<i64>);

pub async fn find(db: &Db, job_id: &str) -> Result<Option<JobRow>, sqlx::Error> {
    let row: Option<RawRow> = sqlx::query_as(
        "SELECT outcome, answer_status, answer_body, signed_at FROM callback_jobs WHERE id = $1",
    )
    .bind(job_id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(outcome, status, body, signed_at)| JobRow {
        outcome: Outcome::parse(&outcome),
        answer: match (status, body, signed_at) {
            (Some(status), Some(body), Some(signed_at)) => Some(KeptAnswer {
                rendered: Rendered {
                    status: u16::try_from(status).unwrap_or(500),
                    body,
                },
                signed_at,
            }),
            _ => None,
        },
    }))
}

/// Keeps `answer` unless the job already has one (a second run racing the first), and returns
/// the one kept: every delivery of the job sends that.
pub async fn keep_answer(
    db: &Db,
    job_id: &str,
    answer: KeptAnswer,
) -> Result<KeptAnswer, sqlx::Error> {
    sqlx::query(
        "UPDATE callback_jobs SET answer_status = $2, answer_body = $3, signed_at = $4 \
         WHERE id = $1 AND answer_body IS NULL",
    )
    .bind(job_id)
    .bind(i64::from(answer.rendered.status))
    .bind(&answer.rendered.body)
    .bind(answer.signed_at)
    .execute(db)
    .await?;
    Ok(find(db, job_id)
        .await?
        .and_then(|row| row.answer)
        .unwrap_or(answer))
}

/// Counts one delivery attempt.
pub async fn count_delivery(db: &Db, job_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE callback_jobs SET deliveries = deliveries + 1 WHERE id = $1")
        .bind(job_id)
        .execute(db)
        .await?;
    Ok(())
}

/// Deletes the records of jobs that ended before `before_ms`; returns how many.
pub async fn sweep(db: &Db, before_ms: i64) -> Result<u64, sqlx::Error> {
    let done = sqlx::query("DELETE FROM callback_jobs WHERE finished_at_ms < $1")
        .bind(before_ms)
        .execute(db)
        .await?;
    Ok(done.rows_affected())
}

/// Records how the job ended; the parked input is gone by then.
pub async fn finish(db: &Db, job_id: &str, outcome: Outcome) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE callback_jobs SET outcome = $2, finished_at_ms = $3, input_object = NULL \
         WHERE id = $1",
    )
    .bind(job_id)
    .bind(outcome.as_str())
    .bind(now_unix_ms())
    .execute(db)
    .await?;
    Ok(())
}
