//! The edge's half of asynchronous mode (`callback_url`): what the queue keeps of a request
//! (its dialect, endpoint, options without the key, and the file name Kraken's answer
//! carries), the 202 that accepts it, and [`HttpEdge`], which reads the kept request back with
//! the same options parser and renders the outcome exactly as the synchronous answer would be
//! (the native or Kraken JSON, an error's body and status included; Kraken's callbacks also
//! carry the job's `id`, as Kraken's own do, where native ones name it in a header only).

use serde::Serialize;
use serde_json::{json, Value};
use utoipa::ToSchema;

use crate::http::error::{self, ApiError, Dialect};
use crate::http::handlers::parse_options;
use crate::http::kraken;
use crate::http::options::Endpoint;
use crate::http::request_id;
use crate::service::answer::Answer;
use crate::service::callback::{Edge, Rendered};
use crate::service::job::Job;
use crate::service::ServiceError;

/// The request as the queue keeps it. The key is not kept (the job carries the key's id).
pub fn record(dialect: Dialect, endpoint: Endpoint, options: &Value, file_name: &str) -> Value {
    let mut options = options.clone();
    if let Some(object) = options.as_object_mut() {
        object.remove("api_key");
        object.remove("auth");
    }
    json!({
        "dialect": match dialect { Dialect::Native => "native", Dialect::Kraken => "kraken" },
        "endpoint": match endpoint { Endpoint::Url => "url", Endpoint::Upload => "upload" },
        "options": options,
        "file_name": file_name,
    })
}

/// The body of a `202`: the job is queued.
#[derive(Debug, Serialize, ToSchema)]
pub struct Queued {
    /// The job id (32 hex digits); callbacks carry it in `X-Pixpress-Job-Id` (and Kraken's
    /// also as `id` in the body).
    #[schema(example = "9f0c2d6e4b1a48c7a3e5f60718293a4b")]
    pub id: String,
    /// `queued` (native requests; Kraken's answer `{"id"}` alone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// The body of the 202: Kraken's `{"id"}`, or natively `{"id", "status": "queued"}`.
pub fn accepted_body(job_id: &str, dialect: Dialect) -> Queued {
    Queued {
        id: job_id.to_string(),
        status: match dialect {
            Dialect::Kraken => None,
            Dialect::Native => Some("queued".into()),
        },
    }
}

/// The kept request's parts.
struct Kept<'a> {
    dialect: Dialect,
    endpoint: Endpoint,
    options: &'a Value,
    file_name: &'a str,
}

fn read(request: &Value) -> Kept<'_> {
    Kept {
        dialect: match request["dialect"].as_str() {
            Some("kraken") => Dialect::Kraken,
            _ => Dialect::Native,
        },
        endpoint: match request["endpoint"].as_str() {
            Some("upload") => Endpoint::Upload,
            _ => Endpoint::Url,
        },
        options: &request["options"],
        file_name: request["file_name"].as_str().unwrap_or_default(),
    }
}

/// The edge as the callback worker sees it.
pub struct HttpEdge;

impl Edge for HttpEdge {
    fn job(&self, request: &Value) -> Result<Job, Rendered> {
        let kept = read(request);
        parse_options(kept.options, kept.endpoint, kept.dialect)
            .map(|options| options.job)
            .map_err(|e| rendered_error(e.in_dialect(kept.dialect)))
    }

    fn render(
        &self,
        job_id: &str,
        request: &Value,
        outcome: Result<Answer, ServiceError>,
    ) -> Rendered {
        let kept = read(request);
        // Error bodies carry the job id where a synchronous one carries its request id.
        let (status, body) = request_id::sync_scope(job_id.to_string(), || {
            answer_json(outcome, kept.dialect, kept.file_name)
        });
        let body = match kept.dialect {
            Dialect::Native => body,
            Dialect::Kraken => with_kraken_id(body, job_id),
        };
        Rendered {
            status,
            body: body.to_string(),
        }
    }
}

/// The synchronous answer's status and JSON, in the dialect's shape.
fn answer_json(
    outcome: Result<Answer, ServiceError>,
    dialect: Dialect,
    file_name: &str,
) -> (u16, Value) {
    let answer = match outcome {
        Ok(answer) => answer,
        Err(e) => return ApiError::from(e).in_dialect(dialect).status_and_body(),
    };
    let body = match dialect {
        Dialect::Native => serde_json::to_value(&answer),
        Dialect::Kraken => Ok(kraken::answer(&answer, file_name)),
    };
    match body {
        Ok(body) => (error::OK, body),
        Err(e) => ApiError::internal("rendering a callback", e)
            .in_dialect(dialect)
            .status_and_body(),
    }
}

/// Kraken's callbacks carry the job's `id` beside the synchronous fields, as Kraken's do.
fn with_kraken_id(mut body: Value, job_id: &str) -> Value {
    if let Some(object) = body.as_object_mut() {
        object.insert("id".into(), Value::String(job_id.to_string()));
    }
    body
}

fn rendered_error(error: ApiError) -> Rendered {
    let (status, body) = error.status_and_body();
    Rendered {
        status,
        body: body.to_string(),
    }
}
