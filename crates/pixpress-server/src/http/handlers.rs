//! The handlers: each extracts what the request carries, calls the service, and answers. No
//! decision about the work is made here; errors become responses through `http::error`.

use axum::body::Bytes;
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::Value;

use crate::accounts::ratelimit::Decision;
use std::sync::Arc;

use subtle::ConstantTimeEq;

use crate::http::callback;
use crate::http::error::{self, ApiError, Dialect, ErrorBody};
use crate::http::kraken;
use crate::http::options::schema::UploadForm;
use crate::http::options::{self, Endpoint, ParsedOptions};
use crate::http::rate_headers::rate_headers;
use crate::http::responses::{OptimiseResponses, UsageResponses};
use crate::http::upload::{self, UploadError};
use crate::metrics;
use crate::service::answer::Answer;
use crate::service::callback::Submission;
use crate::service::job::Input;
use crate::service::optimise::Admitted;
use crate::service::Service;

#[derive(Debug, Default, Deserialize)]
pub struct KeyQuery {
    api_key: Option<String>,
}

/// The key from `Authorization: Bearer`, then `?api_key=`, then the options' `api_key`.
fn key_from<'a>(
    headers: &'a HeaderMap,
    query: &'a KeyQuery,
    options_key: Option<&'a str>,
) -> Option<&'a str> {
    bearer(headers).or(query.api_key.as_deref()).or(options_key)
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// `POST /v1/` (and `/v1/url`): JSON options naming the image by URL, natively or in Kraken's
/// dialect. The key is admitted before the URL is fetched.
#[utoipa::path(
    post,
    path = "/v1/",
    operation_id = "optimize_url",
    tag = "optimise",
    description = "Fetch the image at `url` and optimise it. The key comes from `Authorization: Bearer`, `?api_key=` or the body's `api_key`. With `callback_url` the answer is a `202` with a job id, and the answer is POSTed to the callback URL when ready.",
    params(("api_key" = Option<String>, Query, description = "The API key, if not sent otherwise")),
    request_body(content = crate::http::options::schema::UrlOptions, content_type = "application/json"),
    responses(OptimiseResponses),
    security((), ("bearer" = []), ("api_key" = []))
)]
pub async fn optimize_url(
    State(service): State<Service>,
    query: Result<Query<KeyQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let value = options::parse_json_body(&body?)?;
    let dialect = kraken::dialect_of(&value);
    optimize_url_in(&service, &query, &headers, &value, dialect)
        .await
        .map_err(|e| e.in_dialect(dialect))
}

async fn optimize_url_in(
    service: &Service,
    query: &KeyQuery,
    headers: &HeaderMap,
    value: &Value,
    dialect: Dialect,
) -> Result<Response, ApiError> {
    let options = match parse_options(value, Endpoint::Url, dialect) {
        Ok(options) => options,
        Err(e) => {
            let raw = raw_key(value, dialect);
            let key = key_from(headers, query, raw.as_deref());
            return Err(with_peeked_rate(service, key, e).await);
        }
    };
    let admitted = service
        .admit(key_from(headers, query, options.api_key.as_deref()))
        .await?;
    let url = options.url.unwrap_or_default();
    let file_name = kraken::file_name_of_url(&url);
    if let Some(callback_url) = options.callback_url {
        let submission = Submission {
            input: Input::Url(url),
            callback_url,
            request: callback::record(dialect, Endpoint::Url, value, &file_name),
        };
        return queue_callback(service, &admitted, submission, dialect).await;
    }
    let outcome = service
        .optimise(&admitted, Input::Url(url), options.job)
        .await;
    respond(
        outcome.map_err(ApiError::from),
        &admitted.rate,
        dialect,
        &file_name,
    )
}

/// `POST /v1/url`: the same call as `POST /v1/`, under the name some clients use.
#[utoipa::path(
    post,
    path = "/v1/url",
    operation_id = "optimize_url_alias",
    tag = "optimise",
    description = "The same call as `POST /v1/`.",
    params(("api_key" = Option<String>, Query, description = "The API key, if not sent otherwise")),
    request_body(content = crate::http::options::schema::UrlOptions, content_type = "application/json"),
    responses(OptimiseResponses),
    security((), ("bearer" = []), ("api_key" = []))
)]
pub async fn optimize_url_alias(
    service: State<Service>,
    query: Result<Query<KeyQuery>, QueryRejection>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    optimize_url(service, query, headers, body).await
}

/// `POST /v1/upload`: the `image` (or `file`) and `data` parts. A key in the header or query is
/// admitted before the upload is read; a key in `data` once the parts are read. Errors answer
/// in Kraken's shape once the `data` part shows the request is Kraken's.
#[utoipa::path(
    post,
    path = "/v1/upload",
    operation_id = "optimize_upload",
    tag = "optimise",
    description = "Optimise an uploaded image: part `image` is the file, part `data` the JSON options. With `callback_url` the answer is a `202` with a job id, and the answer is POSTed to the callback URL when ready.",
    params(("api_key" = Option<String>, Query, description = "The API key, if not sent otherwise")),
    request_body(
        content = UploadForm,
        content_type = "multipart/form-data",
        encoding(("data" = (content_type = "application/json")))
    ),
    responses(OptimiseResponses),
    security((), ("bearer" = []), ("api_key" = []))
)]
pub async fn optimize_upload(
    State(service): State<Service>,
    query: Result<Query<KeyQuery>, QueryRejection>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let multipart = multipart?;
    let early = match key_from(&headers, &query, None) {
        Some(key) => Some(service.admit(Some(key)).await?),
        None => None,
    };
    // A body that cannot be read answers with the rate state of a key admitted before it.
    let with_early_rate = |e: ApiError| match &early {
        Some(admitted) => e.with_rate_headers(&admitted.rate),
        None => e,
    };
    let parts = upload::read_parts(multipart, service.fetcher.max_bytes())
        .await
        .map_err(|e| with_early_rate(e.into()))?;
    let value = match &parts.data {
        Some(text) => {
            Some(options::parse_json_body(text.as_bytes()).map_err(|e| with_early_rate(e.into()))?)
        }
        None => None,
    };
    let dialect = value.as_ref().map_or(Dialect::Native, kraken::dialect_of);
    optimize_upload_in(&service, &query, &headers, early, parts, value, dialect)
        .await
        .map_err(|e| e.in_dialect(dialect))
}

async fn optimize_upload_in(
    service: &Service,
    query: &KeyQuery,
    headers: &HeaderMap,
    early: Option<Admitted>,
    parts: upload::Parts,
    value: Option<Value>,
    dialect: Dialect,
) -> Result<Response, ApiError> {
    let parsed = match &value {
        Some(value) => parse_options(value, Endpoint::Upload, dialect),
        None => Ok(ParsedOptions::default()),
    };
    let options = match (parsed, &early) {
        (Ok(options), _) => options,
        (Err(e), Some(admitted)) => return Err(e.with_rate_headers(&admitted.rate)),
        (Err(e), None) => {
            let raw = value.as_ref().and_then(|v| raw_key(v, dialect));
            let key = key_from(headers, query, raw.as_deref());
            return Err(with_peeked_rate(service, key, e).await);
        }
    };
    let admitted = match early {
        Some(admitted) => admitted,
        None => {
            service
                .admit(key_from(headers, query, options.api_key.as_deref()))
                .await?
        }
    };
    if let (Some(callback_url), Some(value)) = (options.callback_url, &value) {
        let file_name = parts.file_name.unwrap_or_default();
        let Some(image) = parts.image else {
            return Err(ApiError::from(UploadError::MissingImage).with_rate_headers(&admitted.rate));
        };
        let submission = Submission {
            input: Input::Upload(image),
            callback_url,
            request: callback::record(dialect, Endpoint::Upload, value, &file_name),
        };
        return queue_callback(service, &admitted, submission, dialect).await;
    }
    let outcome = match parts.image {
        Some(image) => service
            .optimise(&admitted, Input::Upload(image), options.job)
            .await
            .map_err(ApiError::from),
        None => Err(UploadError::MissingImage.into()),
    };
    let file_name = parts.file_name.unwrap_or_default();
    respond(outcome, &admitted.rate, dialect, &file_name)
}

/// Queues the request to be answered by callback: a 202 with the job id, in the dialect's
/// shape, with the key's rate-limit headers.
async fn queue_callback(
    service: &Service,
    admitted: &Admitted,
    submission: Submission,
    dialect: Dialect,
) -> Result<Response, ApiError> {
    match service.submit_callback(admitted, submission).await {
        Ok(job_id) => {
            let mut response = error::accepted(callback::accepted_body(&job_id, dialect));
            rate_headers(&admitted.rate, response.headers_mut());
            Ok(response)
        }
        Err(e) => Err(ApiError::from(e).with_rate_headers(&admitted.rate)),
    }
}

/// The key inside options that failed to parse, where the dialect puts it.
fn raw_key(value: &Value, dialect: Dialect) -> Option<String> {
    match dialect {
        Dialect::Native => value
            .get("api_key")
            .and_then(Value::as_str)
            .map(str::to_string),
        Dialect::Kraken => kraken::auth_key(value).ok().flatten(),
    }
}

/// A mistake found before admission still answers with the rate-limit state of the key the
/// request carries, when that key is valid (peeked: the mistake is not counted).
async fn with_peeked_rate(service: &Service, key: Option<&str>, error: ApiError) -> ApiError {
    if key.is_none() {
        return error;
    }
    match service.peek_rate(key).await {
        Some(decision) => error.with_rate_headers(&decision),
        None => error,
    }
}

/// Answers `body` as JSON with the key's rate-limit headers, when there are any.
fn json_with_rate(body: impl serde::Serialize, rate: Option<&Decision>) -> Response {
    let mut response = Json(body).into_response();
    if let Some(decision) = rate {
        rate_headers(decision, response.headers_mut());
    }
    response
}

/// The options read by the dialect's reader.
pub(crate) fn parse_options(
    value: &Value,
    endpoint: Endpoint,
    dialect: Dialect,
) -> Result<ParsedOptions, ApiError> {
    let options = match dialect {
        Dialect::Native => options::parse(value, endpoint)?,
        Dialect::Kraken => kraken::parse(value, endpoint)?,
    };
    Ok(options)
}

/// The answer as JSON in the dialect's shape; success or failure, it carries the key's
/// rate-limit headers.
fn respond(
    outcome: Result<Answer, ApiError>,
    decision: &Decision,
    dialect: Dialect,
    file_name: &str,
) -> Result<Response, ApiError> {
    match outcome {
        Ok(answer) => {
            let mut response = match dialect {
                Dialect::Native => Json(answer).into_response(),
                Dialect::Kraken => Json(kraken::answer(&answer, file_name)).into_response(),
            };
            rate_headers(decision, response.headers_mut());
            Ok(response)
        }
        Err(e) => Err(e.with_rate_headers(decision)),
    }
}

/// `POST /user_status` (Kraken's): JSON `{"auth": {"api_key", "api_secret"}}` → the key's plan
/// and this month's usage. Errors answer in Kraken's shape.
pub async fn user_status(
    State(service): State<Service>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    user_status_in(&service, body)
        .await
        .map_err(|e| e.in_dialect(Dialect::Kraken))
}

async fn user_status_in(
    service: &Service,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let value = options::parse_json_body(&body?)?;
    let key = kraken::auth_key(&value)?;
    let reported = service.usage_report(key.as_deref()).await?;
    let body = kraken::user_status(&reported.report);
    Ok(json_with_rate(body, reported.rate.as_ref()))
}

/// `GET /v1/usage`: this month's usage of the presented key.
#[utoipa::path(
    get,
    path = "/v1/usage",
    operation_id = "usage_report",
    tag = "account",
    params(("api_key" = Option<String>, Query, description = "The API key, if not sent as a Bearer token")),
    responses(UsageResponses),
    security(("bearer" = []), ("api_key" = []))
)]
pub async fn usage_report(
    State(service): State<Service>,
    query: Result<Query<KeyQuery>, QueryRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let reported = service
        .usage_report(key_from(&headers, &query, None))
        .await?;
    Ok(json_with_rate(reported.report, reported.rate.as_ref()))
}

/// `GET /v1/images/{id}.{ext}`: a redirect to the store (`--storage-redirect`), a 304 for a
/// matching `If-None-Match`, or the bytes streamed from the store.
#[utoipa::path(
    get,
    path = "/v1/images/{file}",
    operation_id = "hosted_image",
    tag = "results",
    params(("file" = String, Path, description = "`ID.EXT`, as in an answer's `url`")),
    responses(
        (status = 200, description = "The image, with `ETag` and `Cache-Control`",
         content(
            (Vec<u8> = "image/jpeg"), (Vec<u8> = "image/png"), (Vec<u8> = "image/webp"),
            (Vec<u8> = "image/gif"), (Vec<u8> = "image/avif")
         )),
        (status = 304, description = "Not modified: the `If-None-Match` matched the `ETag`"),
        (status = 307, description = "With `--storage-redirect`: `Location` is a presigned store URL"),
        (status = 404, description = "`not_found`: no such result, or it expired", body = ErrorBody),
        (status = 500, description = "`internal_error`", body = ErrorBody),
        (status = 503, description = "`overloaded`: the store cannot be reached", body = ErrorBody),
    )
)]
pub async fn hosted_image(
    State(service): State<Service>,
    file: Result<Path<String>, PathRejection>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    // A file name that is not even valid UTF-8 names no result.
    let Path(file) = file.map_err(|_| ApiError::not_found("no such hosted result"))?;
    let hosted = service.find_result(&file).await?;
    if service.redirects_reads() {
        let url = service.presigned_url(&hosted).await?;
        let location =
            HeaderValue::from_str(&url).map_err(|e| ApiError::internal("location", e))?;
        return Ok(error::temporary_redirect(location));
    }
    let result = &hosted.result;
    let etag = HeaderValue::from_str(&result.etag).map_err(|e| ApiError::internal("etag", e))?;
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v == etag)
    {
        return Ok(error::not_modified(etag));
    }
    let body = axum::body::Body::from_stream(service.stream_result(&hosted).await?);
    let content_type = HeaderValue::from_str(&result.content_type)
        .map_err(|e| ApiError::internal("content type", e))?;
    let cache_control = format!("public, max-age={}, immutable", hosted.remaining_secs);
    let cache_control = HeaderValue::from_str(&cache_control)
        .map_err(|e| ApiError::internal("cache control", e))?;
    Ok((
        [
            (header::CONTENT_TYPE, content_type),
            (header::ETAG, etag),
            (header::CACHE_CONTROL, cache_control),
            (header::CONTENT_LENGTH, HeaderValue::from(result.size)),
        ],
        body,
    )
        .into_response())
}

/// `GET /healthz`: the process answers.
#[utoipa::path(
    get,
    path = "/healthz",
    operation_id = "healthz",
    tag = "operations",
    responses((status = 200, description = "Alive", body = String, content_type = "text/plain"))
)]
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: 200 when the database and the result store answer, else 503.
#[utoipa::path(
    get,
    path = "/readyz",
    operation_id = "readyz",
    tag = "operations",
    responses(
        (status = 200, description = "The database and the result store answer", body = String, content_type = "text/plain"),
        (status = 503, description = "`overloaded`: the database or the store does not answer", body = ErrorBody),
    )
)]
pub async fn readyz(State(service): State<Service>) -> Result<&'static str, ApiError> {
    service.ready().await.map_err(ApiError::from)?;
    Ok("ready")
}

/// `GET /metrics`: Prometheus text. Open unless the server was started with a metrics token,
/// which must then come as `Authorization: Bearer`.
#[utoipa::path(
    get,
    path = "/metrics",
    operation_id = "metrics_text",
    tag = "operations",
    responses(
        (status = 200, description = "Prometheus text exposition format 0.0.4", body = String, content_type = "text/plain"),
        (status = 401, description = "`invalid_metrics_token` (only with `--metrics-token`)", body = ErrorBody),
        (status = 404, description = "`not_found`: no metrics recorder in this process", body = ErrorBody),
    )
)]
pub async fn metrics_text(
    token: Option<Arc<str>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if let Some(expected) = token.as_deref() {
        let presented = bearer(&headers).unwrap_or_default();
        if !bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
            return Err(ApiError::metrics_token());
        }
    }
    let text = metrics::render()
        .ok_or_else(|| ApiError::not_found("metrics are not recorded by this process"))?;
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4"),
        )],
        text,
    )
        .into_response())
}

pub async fn not_found_fallback() -> ApiError {
    ApiError::not_found(
        "no such endpoint; see POST /v1/, POST /v1/upload, GET /v1/images/{id}.{ext}, POST /user_status",
    )
}
