//! Handlers: each extracts, calls into the pipeline or the stores, and answers. The shared work
//! of both optimise endpoints is [`optimize_and_host`].

use axum::body::Bytes;
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Multipart, Path, Query, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use pixpress_core::{Output, Warning};
use serde::{Deserialize, Serialize};

use crate::app::AppState;
use crate::error::{code, ApiError};
use crate::export::{ExportItem, StoredEntry, Stores};
use crate::gate::predicted_mib;
use crate::keys::{self, Verdict};
use crate::options::{self, Endpoint, ParsedOptions};
use crate::ratelimit::Decision;
use crate::storage::StorageError;
use crate::usage;

#[derive(Debug, Default, Deserialize)]
pub struct KeyQuery {
    api_key: Option<String>,
}

/// The response body of SPEC §6.
#[derive(Debug, Serialize)]
pub struct OptimizeResponse {
    /// The resize entry's `id`, in `results` of a resize array.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    pub original_size: u64,
    pub original_width: u32,
    pub original_height: u32,
    pub final_size: u64,
    pub final_width: u32,
    pub final_height: u32,
    pub bytes_saved: u64,
    pub url: String,
    pub format: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quality: Option<u8>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ssimulacra2: Option<f64>,
    pub expires_at: String,
    pub warnings: Vec<Warning>,
    pub stored: Vec<StoredEntry>,
}

/// The response to a `resize` array: one [`OptimizeResponse`] per entry, in request order.
#[derive(Debug, Serialize)]
pub struct MultiResponse {
    pub original_size: u64,
    pub original_width: u32,
    pub original_height: u32,
    pub results: Vec<OptimizeResponse>,
    pub warnings: Vec<Warning>,
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Answer {
    One(OptimizeResponse),
    Many(MultiResponse),
}

pub async fn optimize_url(
    State(state): State<AppState>,
    Query(query): Query<KeyQuery>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let body = body.map_err(|e| {
        ApiError::new(
            e.status(),
            code::INVALID_JSON,
            format!("could not read the request body: {}", e.body_text()),
        )
    })?;
    let value = options::parse_json_body(&body)?;
    let options = options::parse(&value, Endpoint::Url)?;
    let key = authenticate(&state, key_from(&headers, &query, &options)).await?;
    // Rate limit and quota are checked before the URL is fetched.
    let decision = admit_key(&state, &key).await?;
    let url = options.url.clone().unwrap_or_default();
    let outcome = async {
        let input = state.fetcher.fetch(&url).await?;
        optimize_metered(&state, &key, input, options).await
    };
    respond(outcome.await, &decision)
}

pub async fn optimize_upload(
    State(state): State<AppState>,
    Query(query): Query<KeyQuery>,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Result<Response, ApiError> {
    let multipart = multipart.map_err(|e| {
        ApiError::bad_request(
            code::INVALID_MULTIPART,
            format!(
                "expected multipart/form-data with parts `image` and `data`: {}",
                e.body_text()
            ),
        )
    })?;
    // A key in the header or query is checked, and its rate limit applied, before the upload is read.
    let early = match key_from(&headers, &query, &ParsedOptions::default()) {
        Some(k) => {
            let key = authenticate(&state, Some(k)).await?;
            let decision = admit_key(&state, &key).await?;
            Some((key, decision))
        }
        None => None,
    };
    let (image, data) = read_upload_parts(multipart, state.fetcher.max_bytes()).await?;
    let options = match data {
        Some(text) => options::parse(
            &options::parse_json_body(text.as_bytes())?,
            Endpoint::Upload,
        )?,
        None => ParsedOptions::default(),
    };
    let (key, decision) = match early {
        Some(admitted) => admitted,
        None => {
            let key = authenticate(&state, key_from(&headers, &query, &options)).await?;
            let decision = admit_key(&state, &key).await?;
            (key, decision)
        }
    };
    let outcome = async {
        let image = image.ok_or_else(|| {
            ApiError::field(
                code::MISSING_FIELD,
                "image",
                "the multipart part `image` (the file) is missing",
            )
        })?;
        optimize_metered(&state, &key, image, options).await
    };
    respond(outcome.await, &decision)
}

/// The authenticated caller: key id and plan.
#[derive(Clone, Debug)]
pub struct Caller {
    pub id: String,
    pub plan: String,
}

/// The key from `Authorization: Bearer`, then `?api_key=`, then the options' `api_key`.
fn key_from<'a>(
    headers: &'a HeaderMap,
    query: &'a KeyQuery,
    options: &'a ParsedOptions,
) -> Option<&'a str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    bearer
        .or(query.api_key.as_deref())
        .or(options.api_key.as_deref())
}

/// Applies the plan's rate limit and, for plans with a hard quota, refuses a used-up month.
async fn admit_key(state: &AppState, caller: &Caller) -> Result<Decision, ApiError> {
    let limits = state.plans.get(&caller.plan);
    let decision = state
        .limiter
        .check(&caller.id, limits.requests_per_second)
        .await;
    if !decision.allowed {
        let wait = decision.retry_after.as_secs_f64().ceil().max(1.0);
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            code::RATE_LIMITED,
            format!(
                "the {} plan allows {} request(s) per second; retry in {wait} s",
                caller.plan, limits.requests_per_second
            ),
        )
        .with_rate_headers(&decision));
    }
    if limits.hard_quota {
        let used = usage::this_month(&state.db, &caller.id)
            .await
            .map_err(|e| ApiError::internal("usage lookup", e))?;
        if used.bytes >= limits.bytes_per_month {
            return Err(quota_exceeded(caller, limits.bytes_per_month, used.bytes)
                .with_rate_headers(&decision));
        }
    }
    Ok(decision)
}

fn quota_exceeded(caller: &Caller, quota: u64, used: u64) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        code::QUOTA_EXCEEDED,
        format!(
            "the {} plan's monthly quota of {quota} bytes is used up ({used} bytes this month); it renews on the 1st (UTC) or upgrade the plan",
            caller.plan
        ),
    )
    .with_details(serde_json::json!({ "quota_bytes": quota, "used_bytes": used }))
}

/// Runs the pipeline and, only when it succeeded, meters the input bytes.
async fn optimize_metered(
    state: &AppState,
    caller: &Caller,
    input: Bytes,
    options: ParsedOptions,
) -> Result<Answer, ApiError> {
    let size = input.len() as u64;
    let limits = state.plans.get(&caller.plan);
    if limits.hard_quota {
        let used = usage::this_month(&state.db, &caller.id)
            .await
            .map_err(|e| ApiError::internal("usage lookup", e))?;
        if used.bytes.saturating_add(size) > limits.bytes_per_month {
            return Err(quota_exceeded(caller, limits.bytes_per_month, used.bytes));
        }
    }
    let outcome = optimize_and_host(state, &caller.id, input, options).await;
    // A refused export still cost the work, and its hosted result is kept: it is metered.
    if outcome.is_ok()
        || outcome
            .as_ref()
            .is_err_and(|e| e.code == code::EXPORT_FAILED)
    {
        usage::record(&state.db, &caller.id, size)
            .await
            .map_err(|e| ApiError::internal("recording usage", e))?;
    }
    outcome
}

fn respond(outcome: Result<Answer, ApiError>, decision: &Decision) -> Result<Response, ApiError> {
    match outcome {
        Ok(answer) => {
            let mut response = Json(answer).into_response();
            rate_headers(decision, response.headers_mut());
            Ok(response)
        }
        Err(e) => Err(e.with_rate_headers(decision)),
    }
}

/// `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset` (seconds), and `Retry-After` when refused.
pub fn rate_headers(decision: &Decision, headers: &mut HeaderMap) {
    let secs = |d: std::time::Duration| d.as_secs_f64().ceil() as u64;
    headers.insert("ratelimit-limit", HeaderValue::from(decision.limit));
    headers.insert("ratelimit-remaining", HeaderValue::from(decision.remaining));
    headers.insert("ratelimit-reset", HeaderValue::from(secs(decision.reset)));
    if !decision.allowed {
        headers.insert(
            header::RETRY_AFTER,
            HeaderValue::from(secs(decision.retry_after).max(1)),
        );
    }
}

pub async fn usage_report(
    State(state): State<AppState>,
    Query(query): Query<KeyQuery>,
    headers: HeaderMap,
) -> Result<Json<usage::UsageReport>, ApiError> {
    let caller = authenticate(
        &state,
        key_from(&headers, &query, &ParsedOptions::default()),
    )
    .await?;
    let limits = state.plans.get(&caller.plan);
    let used = usage::this_month(&state.db, &caller.id)
        .await
        .map_err(|e| ApiError::internal("usage lookup", e))?;
    Ok(Json(usage::report(&caller.id, &caller.plan, limits, used)))
}

const MAX_DATA_PART: usize = 64 * 1024;

/// Reads the `image` and `data` parts, counting image bytes as they stream in.
async fn read_upload_parts(
    mut multipart: Multipart,
    max_bytes: u64,
) -> Result<(Option<Bytes>, Option<String>), ApiError> {
    let mut image: Option<Bytes> = None;
    let mut data: Option<String> = None;
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "image" => {
                if image.is_some() {
                    return Err(duplicate_part("image"));
                }
                let mut buf = bytes::BytesMut::new();
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    if (buf.len() + chunk.len()) as u64 > max_bytes {
                        return Err(ApiError::too_large(max_bytes));
                    }
                    buf.extend_from_slice(&chunk);
                }
                image = Some(buf.freeze());
            }
            "data" => {
                if data.is_some() {
                    return Err(duplicate_part("data"));
                }
                let mut buf = Vec::new();
                while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
                    if buf.len() + chunk.len() > MAX_DATA_PART {
                        return Err(ApiError::field(
                            code::INVALID_FIELD,
                            "data",
                            "the `data` part is larger than 64 KiB",
                        ));
                    }
                    buf.extend_from_slice(&chunk);
                }
                data = Some(String::from_utf8(buf).map_err(|_| {
                    ApiError::bad_request(code::INVALID_JSON, "the `data` part is not UTF-8 JSON")
                })?);
            }
            // Unknown parts are drained and ignored, like unknown JSON fields.
            _ => while field.chunk().await.map_err(multipart_error)?.is_some() {},
        }
    }
    Ok((image, data))
}

fn duplicate_part(name: &str) -> ApiError {
    ApiError::field(
        code::INVALID_MULTIPART,
        name,
        format!("the multipart part `{name}` was sent more than once"),
    )
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        return ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            code::INPUT_TOO_LARGE,
            e.body_text(),
        );
    }
    ApiError::bad_request(
        code::INVALID_MULTIPART,
        format!("malformed multipart body: {}", e.body_text()),
    )
}

/// Checks the presented key: 401 when missing, unknown or revoked.
async fn authenticate(state: &AppState, key: Option<&str>) -> Result<Caller, ApiError> {
    let key = key.ok_or_else(|| {
        ApiError::unauthorized(
            code::MISSING_API_KEY,
            "an API key is required: send \"api_key\" in the options, ?api_key=, or Authorization: Bearer",
        )
    })?;
    match keys::verify(&state.db, key)
        .await
        .map_err(|e| ApiError::internal("key lookup", e))?
    {
        Verdict::Valid { id, plan } => Ok(Caller { id, plan }),
        Verdict::Unknown => Err(ApiError::unauthorized(
            code::INVALID_API_KEY,
            "the API key is not valid",
        )),
        Verdict::Revoked => Err(ApiError::unauthorized(
            code::REVOKED_API_KEY,
            "the API key has been revoked",
        )),
    }
}

/// The perceptual search's own working memory, charged on top of the decode estimate.
fn scoring_mib(request: &pixpress_core::Request, width: u32, height: u32) -> u64 {
    if !request.lossy {
        return 0;
    }
    pixpress_core::scoring_memory_bytes(width, height).div_ceil(1024 * 1024)
}

/// Optimises and hosts every output, then writes them to the stores the request named.
async fn optimize_and_host(
    state: &AppState,
    key_id: &str,
    input: Bytes,
    options: ParsedOptions,
) -> Result<Answer, ApiError> {
    let stores = options.stores.clone();
    let mut exports = Vec::new();
    let answer = optimize_and_host_outputs(state, key_id, input, options, &mut exports).await?;
    export_outputs(state, &stores, answer, exports).await
}

/// Writes the hosted outputs to the user's stores and fills `stored`. When a store refuses, the
/// answer is 502 `export_failed`, whose details still carry the hosted answer (URLs and the
/// writes that succeeded), so nothing that was produced is lost.
async fn export_outputs(
    state: &AppState,
    stores: &Stores,
    mut answer: Answer,
    items: Vec<ExportItem>,
) -> Result<Answer, ApiError> {
    if stores.is_empty() {
        return Ok(answer);
    }
    let mut written = Vec::new();
    let outcome = state.exporter.export(stores, &items, &mut written).await;
    let responses: Vec<&mut OptimizeResponse> = match &mut answer {
        Answer::One(one) => vec![one],
        Answer::Many(many) => many.results.iter_mut().collect(),
    };
    for (response, entries) in responses.into_iter().zip(written) {
        response.stored = entries;
    }
    match outcome {
        Ok(()) => Ok(answer),
        Err(e) => {
            let mut error = ApiError::from(e);
            if let Some(details) = error.details.as_mut() {
                details["hosted"] = serde_json::to_value(&answer)
                    .map_err(|e| ApiError::internal("describing the result", e))?;
            }
            Err(error)
        }
    }
}

async fn optimize_and_host_outputs(
    state: &AppState,
    key_id: &str,
    input: Bytes,
    options: ParsedOptions,
    exports: &mut Vec<ExportItem>,
) -> Result<Answer, ApiError> {
    let original_size = input.len() as u64;
    let request = options.request.clone();
    let limits = state.limits;
    // Header-only: format, dimensions and frames, for the pixel limit and the memory estimate.
    let probe = pixpress_core::inspect(&input, &limits)?;
    let cost = predicted_mib(probe.width, probe.height, probe.frames)
        + scoring_mib(&request, probe.width, probe.height);
    let (original_width, original_height) = probe.oriented_dimensions();
    let Some(resize) = options.resize else {
        let output = state
            .run_image_work(cost, move || {
                pixpress_core::optimize(&input, &probe, &request, &limits)
            })
            .await??;
        return Ok(Answer::One(
            host(
                state,
                key_id,
                original_size,
                output,
                None,
                options.warnings,
                exports,
            )
            .await?,
        ));
    };
    let specs = resize.specs();
    let outputs = state
        .run_image_work(cost, move || {
            pixpress_core::optimize_resized(&input, &probe, &request, &specs, &limits)
        })
        .await??;
    if !resize.is_array {
        let mut warnings = options.warnings;
        warnings.extend(resize.entries.into_iter().flat_map(|e| e.warnings));
        let output = outputs
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::internal("resize", "no output"))?;
        return Ok(Answer::One(
            host(
                state,
                key_id,
                original_size,
                output,
                None,
                warnings,
                exports,
            )
            .await?,
        ));
    }
    let mut results = Vec::with_capacity(outputs.len());
    for (output, entry) in outputs.into_iter().zip(resize.entries) {
        results.push(
            host(
                state,
                key_id,
                original_size,
                output,
                entry.id,
                entry.warnings,
                exports,
            )
            .await?,
        );
    }
    Ok(Answer::Many(MultiResponse {
        original_size,
        original_width,
        original_height,
        results,
        warnings: options.warnings,
    }))
}

/// Stores one output as a hosted result and describes it.
async fn host(
    state: &AppState,
    key_id: &str,
    original_size: u64,
    output: Output,
    id: Option<String>,
    warnings: Vec<Warning>,
    exports: &mut Vec<ExportItem>,
) -> Result<OptimizeResponse, ApiError> {
    let bytes = Bytes::copy_from_slice(&output.bytes);
    let stored = state
        .results
        .put(
            &state.db,
            key_id,
            bytes.clone(),
            output.format.extension(),
            output.format.mime(),
        )
        .await
        .map_err(|e| ApiError::internal("storing the result", e))?;
    exports.push(ExportItem {
        bytes,
        ext: output.format.extension(),
        content_type: output.format.mime(),
        width: output.width,
        height: output.height,
        id: id.clone().unwrap_or_else(|| stored.id.clone()),
    });
    let url = format!(
        "{}/v1/images/{}.{}",
        state.public_url, stored.id, stored.ext
    );
    Ok(build_response(
        original_size,
        output,
        url,
        stored.expires_at_ms,
        id,
        warnings,
    ))
}

fn build_response(
    original_size: u64,
    output: Output,
    url: String,
    expires_at_ms: i64,
    id: Option<String>,
    mut warnings: Vec<Warning>,
) -> OptimizeResponse {
    let final_size = output.bytes.len() as u64;
    warnings.extend(output.warnings);
    OptimizeResponse {
        id,
        original_size,
        original_width: output.original_width,
        original_height: output.original_height,
        final_size,
        final_width: output.width,
        final_height: output.height,
        bytes_saved: original_size.saturating_sub(final_size),
        url,
        format: output.format.name(),
        quality: output.quality,
        ssimulacra2: output.ssimulacra2,
        expires_at: rfc3339(expires_at_ms),
        warnings,
        stored: Vec::new(),
    }
}

fn rfc3339(unix_ms: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp_nanos(i128::from(unix_ms) * 1_000_000)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

pub async fn hosted_image(
    State(state): State<AppState>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let not_found =
        || ApiError::not_found(format!("no result {file:?}: unknown id, or it has expired"));
    let (id, ext) = file.rsplit_once('.').ok_or_else(not_found)?;
    let result = state
        .results
        .lookup(&state.db, id, ext)
        .await
        .map_err(|e| ApiError::internal("result lookup", e))?
        .ok_or_else(not_found)?;
    let remaining_secs = ((result.expires_at_ms - crate::db::now_unix_ms()) / 1000).max(0);
    if state.results.store().redirects() {
        return presigned_redirect(&state, &result, remaining_secs).await;
    }
    let cache_control = format!("public, max-age={remaining_secs}, immutable");
    let etag = HeaderValue::from_str(&result.etag).map_err(|e| ApiError::internal("etag", e))?;
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v == etag)
    {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, etag)]).into_response());
    }
    // Streamed from the store; a row whose object is gone (swept by another instance) is a 404.
    let body = match state.results.store().stream(&result.object_name()).await {
        Ok(stream) => axum::body::Body::from_stream(stream),
        Err(StorageError::NotFound) => return Err(not_found()),
        Err(e) => return Err(ApiError::internal("reading a result", e)),
    };
    let content_type = HeaderValue::from_str(&result.content_type)
        .map_err(|e| ApiError::internal("content type", e))?;
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

/// `--storage-redirect`: a 307 to a URL presigned for the result's remaining lifetime (at most
/// 7 days, S3's limit), so the bytes go from the store to the client directly.
async fn presigned_redirect(
    state: &AppState,
    result: &crate::results::StoredResult,
    remaining_secs: i64,
) -> Result<Response, ApiError> {
    let ttl = std::time::Duration::from_secs(remaining_secs.clamp(1, 7 * 24 * 3600) as u64);
    let url = state
        .results
        .store()
        .presigned_url(&result.object_name(), ttl)
        .await
        .map_err(|e| ApiError::internal("presigning a result", e))?;
    let location = HeaderValue::from_str(&url).map_err(|e| ApiError::internal("location", e))?;
    Ok((
        StatusCode::TEMPORARY_REDIRECT,
        [
            (header::LOCATION, location),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
    )
        .into_response())
}

pub async fn healthz() -> &'static str {
    "ok"
}

pub async fn readyz(State(state): State<AppState>) -> Result<&'static str, ApiError> {
    sqlx::query("SELECT 1")
        .execute(&state.db)
        .await
        .map_err(|e| {
            ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                code::OVERLOADED,
                format!("database not reachable: {e}"),
            )
        })?;
    state.results.store().check().await.map_err(|e| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            code::OVERLOADED,
            format!("result storage not reachable: {e}"),
        )
    })?;
    Ok("ready")
}

pub async fn not_found_fallback() -> ApiError {
    ApiError::not_found(
        "no such endpoint; see POST /v1/, POST /v1/upload, GET /v1/images/{id}.{ext}",
    )
}
