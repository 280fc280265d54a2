//! The Tinify (TinyPNG) dialect, so Tinify's own clients work with a changed base URL:
//! `POST /shrink` (the image as the body, or `{"source": {"url": …}}`), `GET /output/<id>`
//! (the compressed bytes) and `POST /output/<id>` with Tinify's commands (`resize`, `convert`,
//! `transform`, `preserve`, `store`). The key comes by HTTP Basic auth (user `api`, the key as
//! password). This module owns the dialect's shapes only: its commands become the native
//! options (parsed by `http::options`, the one parser) and the work goes through the same
//! service calls, plans, rate limits and metering as `/v1/`. Errors are the same
//! [`ApiError`]s, rendered in Tinify's `{"error", "message"}` shape by `http::error`.
//!
//! Every Tinify compression is lossy at the automatic quality (what a TinyPNG user expects);
//! commands re-process the hosted *source*, not the already-compressed output, and each one is
//! one more metered request, as Tinify counts it.

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::Response;
use base64::Engine;
use pixpress_core::{FormatSet, ImageFormat, Metadata, OutputFormat};
use serde_json::{json, Map, Value};

use crate::http::error::{self, ApiError};
use crate::http::options::fields::{describe, FieldError, OptionsError};
use crate::http::options::{self, Endpoint};
use crate::http::rate_headers::rate_headers;
use crate::service::answer::{Answer, OptimizeResponse};
use crate::service::job::{Input, Job};
use crate::service::optimise::Admitted;
use crate::service::Service;

/// The commands `POST /output/<id>` takes.
const COMMANDS: [&str; 5] = ["resize", "convert", "transform", "preserve", "store"];

/// `POST /shrink`.
pub async fn shrink(
    State(service): State<Service>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let outcome = async {
        let admitted = service.admit(basic_key(&headers).as_deref()).await?;
        shrink_admitted(&service, &admitted, &headers, body)
            .await
            .map_err(|e| e.with_rate_headers(&admitted.rate))
    };
    outcome.await.unwrap_or_else(ApiError::into_tinify_response)
}

async fn shrink_admitted(
    service: &Service,
    admitted: &Admitted,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let input = source_of(headers, body?)?;
    let retained = service
        .optimise_retaining_source(admitted, input, compression_job())
        .await?;
    let count = service.requests_this_month(&admitted.caller).await?;
    let location = format!("{}/output/{}", service.public_url, retained.handle);
    let output = &retained.output;
    let ratio = output.final_size as f64 / retained.source_size.max(1) as f64;
    let answer = json!({
        "input": {"size": retained.source_size, "type": retained.source_mime},
        "output": {
            "size": output.final_size,
            "type": mime_of(output),
            "width": output.final_width,
            "height": output.final_height,
            "ratio": (ratio * 10_000.0).round() / 10_000.0,
            "url": location,
        },
    });
    let mut response = error::created(header_value(&location)?, answer);
    rate_headers(&admitted.rate, response.headers_mut());
    set_count(response.headers_mut(), count);
    Ok(response)
}

/// `GET /output/<id>`. Tinify's Node client sends its commands as a GET body, so a body with
/// commands is answered as `POST` would be.
pub async fn output_get(
    State(service): State<Service>,
    Path(handle): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let outcome = async {
        let body = body?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return hosted_output(&service, &handle).await;
        }
        admitted_commands(&service, &headers, &handle, &body).await
    };
    outcome.await.unwrap_or_else(ApiError::into_tinify_response)
}

/// `POST /output/<id>`: the commands applied to the source, one more compression.
pub async fn output_post(
    State(service): State<Service>,
    Path(handle): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let outcome = async {
        let body = body?;
        admitted_commands(&service, &headers, &handle, &body).await
    };
    outcome.await.unwrap_or_else(ApiError::into_tinify_response)
}

/// The key admitted (Basic auth), then the commands applied; a refusal after admission
/// carries the key's rate-limit headers.
async fn admitted_commands(
    service: &Service,
    headers: &HeaderMap,
    handle: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    let admitted = service.admit(basic_key(headers).as_deref()).await?;
    output_commands(service, &admitted, handle, body)
        .await
        .map_err(|e| e.with_rate_headers(&admitted.rate))
}

/// The compressed output as `/shrink` left it.
async fn hosted_output(service: &Service, handle: &str) -> Result<Response, ApiError> {
    let hosted = service.retained_output(handle).await?;
    let bytes = service.read_result(&hosted).await?;
    let probe = pixpress_core::inspect(&bytes, &service.input_limits)
        .map_err(|e| ApiError::internal("reading a hosted output", e))?;
    let (width, height) = probe.oriented_dimensions();
    image_response(bytes, &hosted.result.content_type, width, height)
}

async fn output_commands(
    service: &Service,
    admitted: &Admitted,
    handle: &str,
    body: &[u8],
) -> Result<Response, ApiError> {
    let commands = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        options::parse_json_body(body)?
    };
    let (job, stores) = parse_commands(&commands)?;
    let answer = service.reprocess_retained(admitted, handle, job).await?;
    let Answer::One(output) = answer else {
        return Err(ApiError::internal("tinify output", "a resize array answer"));
    };
    let count = service.requests_this_month(&admitted.caller).await?;
    let mut response = if stores {
        stored_response(&output)?
    } else {
        let hosted = service.find_result(&output.hosted_file).await?;
        let bytes = service.read_result(&hosted).await?;
        image_response(
            bytes,
            &hosted.result.content_type,
            output.final_width,
            output.final_height,
        )?
    };
    rate_headers(&admitted.rate, response.headers_mut());
    set_count(response.headers_mut(), count);
    Ok(response)
}

/// A `store` command's answer: the stored object's address in `Location`, no body.
fn stored_response(output: &OptimizeResponse) -> Result<Response, ApiError> {
    let stored = output
        .stored
        .first()
        .ok_or_else(|| ApiError::internal("tinify store", "no stored object listed"))?;
    let mut response = error::ok_empty();
    let headers = response.headers_mut();
    headers.insert(header::LOCATION, header_value(&stored.url)?);
    headers.insert("image-width", HeaderValue::from(output.final_width));
    headers.insert("image-height", HeaderValue::from(output.final_height));
    Ok(response)
}

fn image_response(
    bytes: Bytes,
    content_type: &str,
    width: u32,
    height: u32,
) -> Result<Response, ApiError> {
    let mut response = error::ok_bytes(bytes);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, header_value(content_type)?);
    headers.insert("image-width", HeaderValue::from(width));
    headers.insert("image-height", HeaderValue::from(height));
    Ok(response)
}

fn header_value(text: &str) -> Result<HeaderValue, ApiError> {
    HeaderValue::from_str(text).map_err(|e| ApiError::internal("tinify header", e))
}

fn set_count(headers: &mut HeaderMap, count: u64) {
    headers.insert("compression-count", HeaderValue::from(count));
}

fn mime_of(output: &OptimizeResponse) -> &'static str {
    match output.format {
        "jpeg" => ImageFormat::Jpeg.mime(),
        "png" => ImageFormat::Png.mime(),
        "gif" => ImageFormat::Gif.mime(),
        "webp" => ImageFormat::Webp.mime(),
        _ => ImageFormat::Avif.mime(),
    }
}

/// The key from `Authorization: Basic base64(api:KEY)`: the password is the key.
fn basic_key(headers: &HeaderMap) -> Option<String> {
    let encoded = headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (_, key) = text.split_once(':')?;
    Some(key.to_string())
}

/// What `/shrink` compresses: a JSON body names a URL, any other body is the image itself.
fn source_of(headers: &HeaderMap, body: Bytes) -> Result<Input, OptionsError> {
    let is_json = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().starts_with("application/json"));
    if !is_json {
        if body.is_empty() {
            return Err(missing(
                "source",
                "Input missing: send the image as the request body, or JSON {\"source\": {\"url\": \"…\"}}",
            ));
        }
        return Ok(Input::Upload(body));
    }
    let value = options::parse_json_body(&body)?;
    match value.pointer("/source/url") {
        Some(Value::String(url)) => Ok(Input::Url(url.clone())),
        Some(other) => Err(invalid(
            "source.url",
            format!(
                "Expected a string for source.url but received {}",
                describe(other)
            ),
        )),
        None => Err(missing(
            "source.url",
            "Input missing: the JSON body must be {\"source\": {\"url\": \"…\"}}",
        )),
    }
}

/// Tinify's default compression: lossy, quality chosen by the perceptual search.
fn compression_job() -> Job {
    let mut job = Job::default();
    job.request.lossy = true;
    job
}

/// Tinify's commands as a native job, and whether it stores the result.
fn parse_commands(commands: &Value) -> Result<(Job, bool), ApiError> {
    let object = commands.as_object().ok_or_else(|| {
        OptionsError::Json(format!(
            "expected a JSON object of commands but received {}",
            describe(commands)
        ))
    })?;
    if let Some(unknown) = object.keys().find(|k| !COMMANDS.contains(&k.as_str())) {
        return Err(invalid(
            unknown,
            format!("{unknown:?} is not a command; use {}", COMMANDS.join(", ")),
        )
        .into());
    }
    let mut native = Map::new();
    native.insert("lossy".into(), Value::Bool(true));
    if let Some(resize) = object.get("resize") {
        native.insert("resize".into(), native_resize(resize)?);
    }
    if let Some(transform) = object.get("transform") {
        if let Some(background) = transform_background(transform)? {
            native.insert("background".into(), background);
        }
    }
    let stores = object.get("store").is_some();
    if let Some(store) = object.get("store") {
        let (field, store) = native_store(store)?;
        native.insert(field.into(), store);
    }
    let mut job = options::parse(&Value::Object(native), Endpoint::Upload)?.job;
    if let Some(convert) = object.get("convert") {
        job.request.format = convert_format(convert)?;
    }
    if let Some(preserve) = object.get("preserve") {
        job.request.metadata = preserved(preserve)?;
    }
    Ok((job, stores))
}

/// `resize`: `scale` (one of width/height), `fit` (inside the box), `cover` (the box, centre
/// crop), `thumb` (the box, the smart crop's most salient window).
fn native_resize(resize: &Value) -> Result<Value, OptionsError> {
    let object = command_object("resize", resize)?;
    let (width, height) = (object.get("width"), object.get("height"));
    let method = object.get("method").and_then(Value::as_str);
    let mut native = Map::new();
    let mut put = |k: &str, v: Value| native.insert(k.to_string(), v);
    match (method, width, height) {
        (Some("scale"), Some(w), None) => {
            put("strategy", json!("landscape"));
            put("width", w.clone());
        }
        (Some("scale"), None, Some(h)) => {
            put("strategy", json!("portrait"));
            put("height", h.clone());
        }
        (Some("scale"), _, _) => {
            return Err(invalid(
                "resize",
                "resize method \"scale\" takes exactly one of width and height",
            ))
        }
        (Some(method @ ("fit" | "cover" | "thumb")), Some(w), Some(h)) => {
            let strategy = if method == "fit" { "auto" } else { "fit" };
            put("strategy", json!(strategy));
            put("width", w.clone());
            put("height", h.clone());
            if method != "fit" {
                put(
                    "crop_mode",
                    json!(if method == "thumb" { "smart" } else { "c" }),
                );
            }
        }
        (Some("fit" | "cover" | "thumb"), _, _) => {
            return Err(invalid(
                "resize",
                "resize methods \"fit\", \"cover\" and \"thumb\" take both width and height",
            ))
        }
        _ => {
            return Err(invalid(
                "resize.method",
                format!(
                    "Expected \"scale\", \"fit\", \"cover\" or \"thumb\" for resize.method but received {}",
                    object.get("method").map_or("nothing".to_string(), describe)
                ),
            ))
        }
    }
    Ok(Value::Object(native))
}

/// `convert.type`: one MIME type, or a list of which the smallest is kept; `*/*` is the
/// smallest of JPEG, PNG and WebP.
fn convert_format(convert: &Value) -> Result<OutputFormat, OptionsError> {
    let object = command_object("convert", convert)?;
    let types: Vec<&Value> = match object.get("type") {
        Some(Value::Array(items)) => items.iter().collect(),
        Some(one) => vec![one],
        None => return Err(missing("convert.type", "convert.type is required")),
    };
    let mut set = FormatSet::default();
    for item in types {
        set = match item.as_str() {
            Some("image/jpeg" | "image/jpg") => set.with(ImageFormat::Jpeg),
            Some("image/png") => set.with(ImageFormat::Png),
            Some("image/webp") => set.with(ImageFormat::Webp),
            Some("image/avif") => set.with(ImageFormat::Avif),
            Some("*/*") => set
                .with(ImageFormat::Jpeg)
                .with(ImageFormat::Png)
                .with(ImageFormat::Webp),
            _ => {
                return Err(invalid(
                    "convert.type",
                    format!(
                        "Expected image/jpeg, image/png, image/webp, image/avif or */* in convert.type but received {}",
                        describe(item)
                    ),
                ))
            }
        };
    }
    Ok(match set.single() {
        Some(ImageFormat::Jpeg) => OutputFormat::Jpeg,
        Some(ImageFormat::Png) => OutputFormat::Png,
        Some(ImageFormat::Webp) => OutputFormat::Webp,
        Some(ImageFormat::Avif) => OutputFormat::Avif,
        Some(ImageFormat::Gif) => OutputFormat::Gif,
        None if set.is_empty() => {
            return Err(invalid("convert.type", "convert.type must name a format"))
        }
        None => OutputFormat::Among(set),
    })
}

/// `transform.background`: what transparent pixels are flattened on (`white`, `black`, `#rrggbb`).
fn transform_background(transform: &Value) -> Result<Option<Value>, OptionsError> {
    let object = command_object("transform", transform)?;
    if let Some(unknown) = object.keys().find(|k| k.as_str() != "background") {
        return Err(invalid(
            format!("transform.{unknown}"),
            "transform takes background only",
        ));
    }
    Ok(object.get("background").cloned())
}

/// `preserve`: `copyright`, `creation`, `location` (EXIF's GPS tags), kept on JPEG output.
fn preserved(preserve: &Value) -> Result<Metadata, OptionsError> {
    let items = preserve.as_array().ok_or_else(|| {
        invalid(
            "preserve",
            format!(
                "Expected a list for preserve but received {}",
                describe(preserve)
            ),
        )
    })?;
    let mut kept = Metadata::default();
    for item in items {
        match item.as_str() {
            Some("copyright") => kept.copyright = true,
            Some("creation") => kept.creation = true,
            Some("location") => kept.geotag = true,
            _ => {
                return Err(invalid(
                    "preserve",
                    format!(
                        "Expected \"copyright\", \"creation\" or \"location\" in preserve but received {}",
                        describe(item)
                    ),
                ))
            }
        }
    }
    Ok(kept)
}

/// `store` as the native `s3_store` / `gcs_store`: `path` is `bucket/object`. For S3, Tinify
/// makes the object public unless `acl` is `no-acl`. `endpoint` (S3-compatible stores, GCS
/// emulators) is this server's addition and passes the same address policy as native exports.
fn native_store(store: &Value) -> Result<(&'static str, Value), OptionsError> {
    let object = command_object("store", store)?;
    let text = |field: &str| -> Result<Option<String>, OptionsError> {
        match object.get(field) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(invalid(
                format!("store.{field}"),
                format!(
                    "Expected a string for store.{field} but received a value of type {}",
                    crate::http::options::fields::type_name(other)
                ),
            )),
        }
    };
    let required = |field: &str| -> Result<String, OptionsError> {
        text(field)?.ok_or_else(|| {
            missing(
                &format!("store.{field}"),
                &format!("store.{field} is required"),
            )
        })
    };
    let (bucket, path) = split_bucket_path(&required("path")?)?;
    let service = required("service")?;
    let (native_field, allowed, mut native): (&'static str, &[&str], Map<String, Value>) =
        match service.as_str() {
            "s3" => {
                let mut native = Map::new();
                native.insert("key".into(), json!(required("aws_access_key_id")?));
                native.insert("secret".into(), json!(required("aws_secret_access_key")?));
                if let Some(region) = text("region")? {
                    native.insert("region".into(), json!(region));
                }
                match text("acl")?.as_deref() {
                    Some("no-acl") => {}
                    Some(acl) => {
                        native.insert("acl".into(), json!(acl));
                    }
                    None => {
                        native.insert("acl".into(), json!("public-read"));
                    }
                }
                if let Some(headers) = object.get("headers") {
                    native.insert("headers".into(), headers.clone());
                }
                (
                    "s3_store",
                    &[
                        "service",
                        "aws_access_key_id",
                        "aws_secret_access_key",
                        "region",
                        "path",
                        "headers",
                        "acl",
                        "endpoint",
                    ],
                    native,
                )
            }
            "gcs" => {
                let mut native = Map::new();
                native.insert("credentials".into(), json!(required("gcp_access_token")?));
                (
                    "gcs_store",
                    &["service", "gcp_access_token", "path", "endpoint"],
                    native,
                )
            }
            other => {
                return Err(invalid(
                    "store.service",
                    format!("Expected \"s3\" or \"gcs\" for store.service but received {other:?}"),
                ))
            }
        };
    if let Some(unknown) = object.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(invalid(
            format!("store.{unknown}"),
            format!(
                "store.{unknown} is not a field of a {service} store; it takes {}",
                allowed.join(", ")
            ),
        ));
    }
    native.insert("bucket".into(), json!(bucket));
    native.insert("path".into(), json!(path));
    if let Some(endpoint) = text("endpoint")? {
        native.insert("endpoint".into(), json!(endpoint));
    }
    Ok((native_field, Value::Object(native)))
}

/// `bucket/path/name.png` → (`bucket`, `path/name.png`).
fn split_bucket_path(path: &str) -> Result<(String, String), OptionsError> {
    match path.trim_start_matches('/').split_once('/') {
        Some((bucket, object)) if !bucket.is_empty() && !object.is_empty() => {
            Ok((bucket.to_string(), object.to_string()))
        }
        _ => Err(invalid(
            "store.path",
            format!("store.path must be \"bucket/path/name\", e.g. \"my-bucket/images/photo.png\"; received {path:?}"),
        )),
    }
}

fn command_object<'a>(
    name: &str,
    value: &'a Value,
) -> Result<&'a Map<String, Value>, OptionsError> {
    value.as_object().ok_or_else(|| {
        invalid(
            name,
            format!(
                "Expected an object for {name} but received {}",
                describe(value)
            ),
        )
    })
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> OptionsError {
    OptionsError::Invalid(FieldError::new(field, message))
}

fn missing(field: &str, message: &str) -> OptionsError {
    OptionsError::Missing(FieldError::new(field, message))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn basic_auth_gives_the_password_as_the_key() {
        let mut headers = HeaderMap::new();
        let encoded = base64::engine::general_purpose::STANDARD.encode("api:pxk_1_secret");
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {encoded}")).unwrap(),
        );
        assert_eq!(basic_key(&headers).as_deref(), Some("pxk_1_secret"));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic !!"));
        assert_eq!(basic_key(&headers), None);
    }

    #[test]
    fn resize_methods_become_native_strategies() {
        let native = native_resize(&json!({"method": "scale", "width": 100})).unwrap();
        assert_eq!(native, json!({"strategy": "landscape", "width": 100}));
        let native = native_resize(&json!({"method": "thumb", "width": 5, "height": 6})).unwrap();
        assert_eq!(native["crop_mode"], "smart");
        let native = native_resize(&json!({"method": "fit", "width": 5, "height": 6})).unwrap();
        assert_eq!(native["strategy"], "auto");
        for bad in [
            json!({"method": "scale", "width": 1, "height": 2}),
            json!({"method": "cover", "width": 1}),
            json!({"method": "stretch", "width": 1, "height": 2}),
            json!({"width": 1}),
        ] {
            assert!(matches!(native_resize(&bad), Err(OptionsError::Invalid(_))));
        }
    }

    #[test]
    fn convert_takes_one_type_or_a_list() {
        assert_eq!(
            convert_format(&json!({"type": "image/webp"})).unwrap(),
            OutputFormat::Webp
        );
        assert_eq!(
            convert_format(&json!({"type": ["image/jpg"]})).unwrap(),
            OutputFormat::Jpeg
        );
        let OutputFormat::Among(set) = convert_format(&json!({"type": "*/*"})).unwrap() else {
            panic!("a set");
        };
        assert_eq!(
            set.formats(),
            vec![ImageFormat::Jpeg, ImageFormat::Png, ImageFormat::Webp]
        );
        assert!(convert_format(&json!({"type": "image/bmp"})).is_err());
        assert!(convert_format(&json!({"type": []})).is_err());
    }

    #[test]
    fn stores_map_onto_native_exports() {
        let (field, native) = native_store(&json!({
            "service": "s3", "aws_access_key_id": "AK", "aws_secret_access_key": "SK",
            "region": "eu-west-1", "path": "bucket/dir/name.png", "acl": "no-acl"
        }))
        .unwrap();
        assert_eq!(field, "s3_store");
        assert_eq!(native["bucket"], "bucket");
        assert_eq!(native["path"], "dir/name.png");
        assert!(native.get("acl").is_none());
        let (field, native) = native_store(&json!({
            "service": "gcs", "gcp_access_token": "tok", "path": "b/o.jpg"
        }))
        .unwrap();
        assert_eq!(
            (field, &native["credentials"]),
            ("gcs_store", &json!("tok"))
        );
        assert!(native_store(&json!({"service": "s3", "path": "nobucket"})).is_err());
        assert!(native_store(&json!({"service": "azure", "path": "b/o"})).is_err());
        assert!(native_store(&json!({
            "service": "gcs", "gcp_access_token": "t", "path": "b/o", "colour": "red"
        }))
        .is_err());
    }

    #[test]
    fn unknown_commands_and_preserve_values_are_refused() {
        assert!(parse_commands(&json!({"rotate": 90})).is_err());
        assert!(preserved(&json!(["copyright", "gps"])).is_err());
        let kept = preserved(&json!(["copyright", "creation", "location"])).unwrap();
        assert!(kept.copyright && kept.creation && kept.geotag && !kept.exif);
    }
}
