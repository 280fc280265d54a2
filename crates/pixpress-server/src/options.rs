//! Request options, validated once at the edge (SPEC §3). JSON is parsed into a typed
//! [`ParsedOptions`]; every error names the field, what was expected and what was received, in
//! the style of sharp's option checks. The core never re-validates. Unknown fields are not an
//! error but are named in `warnings`; options whose feature is not built yet are a clear 400
//! rather than being silently ignored.

use pixpress_core::warning::{self, Warning};
use pixpress_core::{parse_color, Metadata, OutputFormat, Request, ResizeSpec};
use serde_json::{Map, Value};

use crate::error::{code, ApiError};
use crate::resize_json;

/// Where the options came from: the URL endpoint needs `url`, the upload endpoint refuses it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Url,
    Upload,
}

#[derive(Clone, Debug, Default)]
pub struct ParsedOptions {
    pub api_key: Option<String>,
    pub url: Option<String>,
    pub request: Request,
    pub resize: Option<ResizeRequest>,
    /// `s3_store`, `azure_store`, `gcs_store`: where the result is also written.
    pub stores: crate::export::Stores,
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

const KNOWN_FIELDS: [&str; 12] = [
    "api_key",
    "url",
    "lossy",
    "quality",
    "resize",
    "format",
    "metadata",
    "quality_target",
    "background",
    "s3_store",
    "azure_store",
    "gcs_store",
];

/// Options from the SPEC whose features land in later work: present → 400 `not_supported_yet`.
const NOT_YET: [(&str, &str); 4] = [
    ("callback_url", "asynchronous callbacks"),
    ("dry_run", "dry runs"),
    ("max_bytes", "byte budgets"),
    ("min_ssimulacra2", "byte budgets with a quality floor"),
];

pub fn parse_json_body(body: &[u8]) -> Result<Value, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::bad_request(
            code::INVALID_JSON,
            format!("the request body is not valid JSON: {e}"),
        )
    })
}

pub fn parse(value: &Value, endpoint: Endpoint) -> Result<ParsedOptions, ApiError> {
    let object = value.as_object().ok_or_else(|| {
        ApiError::bad_request(
            code::INVALID_JSON,
            format!(
                "expected a JSON object of options but received {}",
                describe(value)
            ),
        )
    })?;
    refuse_unbuilt_options(object)?;
    let mut options = ParsedOptions {
        api_key: optional_string(object, "api_key")?,
        url: optional_string(object, "url")?,
        request: Request {
            lossy: optional_bool(object, "lossy")?.unwrap_or(false),
            quality: optional_quality(object)?,
            quality_target: optional_quality_target(object)?,
            format: optional_format(object)?,
            metadata: optional_metadata(object)?,
            background: optional_background(object)?,
        },
        resize: parse_resize(object)?,
        stores: crate::export::parse_stores(object)?,
        warnings: unknown_field_warnings(object),
    };
    match endpoint {
        Endpoint::Url if options.url.is_none() => {
            return Err(ApiError::field(
                code::MISSING_FIELD,
                "url",
                "url is required: the http(s) address of the image to optimise (or upload the file to POST /v1/upload)",
            ))
        }
        Endpoint::Upload if options.url.is_some() => {
            return Err(ApiError::field(
                code::INVALID_FIELD,
                "url",
                "url is not accepted on POST /v1/upload, which takes the image as the `image` part; use POST /v1/ to fetch a URL",
            ))
        }
        _ => {}
    }
    if options.request.quality_target.is_some() && !options.request.lossy {
        options.warnings.push(Warning::new(
            "quality_target_ignored",
            "quality_target only applies with \"lossy\": true; the image was compressed losslessly",
        ));
    } else if options.request.quality_target.is_some() && options.request.quality.is_some() {
        options.warnings.push(Warning::new(
            "quality_target_ignored",
            "quality was given, so no quality search ran and quality_target was not used",
        ));
    }
    if options.request.quality.is_some() && !options.request.lossy {
        options.warnings.push(Warning::new(
            "quality_ignored",
            "quality only applies with \"lossy\": true; the image was compressed losslessly",
        ));
    }
    Ok(options)
}

fn parse_resize(object: &Map<String, Value>) -> Result<Option<ResizeRequest>, ApiError> {
    let value = match object.get("resize") {
        None | Some(Value::Null) => return Ok(None),
        Some(v) => v,
    };
    let entries = resize_json::parse_resize_list(value)
        .map_err(|e| ApiError::field(code::INVALID_FIELD, &e.field, e.message.clone()))?;
    Ok(Some(ResizeRequest {
        is_array: value.is_array(),
        entries: entries
            .into_iter()
            .map(|(id, spec, warnings)| ResizeEntry {
                id,
                spec,
                warnings: warnings
                    .into_iter()
                    .map(|(code, message)| Warning::new(warning_code(&code), message))
                    .collect(),
            })
            .collect(),
    }))
}

/// Maps the resize parser's warning codes onto the stable constants.
fn warning_code(code: &str) -> &'static str {
    match code {
        "unknown_crop_mode" => warning::UNKNOWN_CROP_MODE,
        "unknown_field" => warning::UNKNOWN_FIELD,
        _ => warning::IGNORED_FIELD,
    }
}

fn refuse_unbuilt_options(object: &Map<String, Value>) -> Result<(), ApiError> {
    for (field, feature) in NOT_YET {
        if object.contains_key(field) {
            return Err(ApiError::field(
                code::NOT_SUPPORTED_YET,
                field,
                format!("{field}: {feature} is not supported yet by this server; remove the field"),
            ));
        }
    }
    Ok(())
}

fn unknown_field_warnings(object: &Map<String, Value>) -> Vec<Warning> {
    object
        .keys()
        .filter(|k| !KNOWN_FIELDS.contains(&k.as_str()))
        .map(|k| {
            Warning::new(
                warning::UNKNOWN_FIELD,
                format!("unknown field {k:?} was ignored"),
            )
        })
        .collect()
}

/// "\"high\" of type string", "1.5 of type number", … for error messages.
pub fn describe(value: &Value) -> String {
    format!(
        "{} of type {}",
        resize_json::describe(value),
        resize_json::type_name(value)
    )
}

fn optional_string(object: &Map<String, Value>, field: &str) -> Result<Option<String>, ApiError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(ApiError::field(
            code::INVALID_FIELD,
            field,
            format!(
                "Expected a string for {field} but received {}",
                describe(other)
            ),
        )),
    }
}

fn optional_bool(object: &Map<String, Value>, field: &str) -> Result<Option<bool>, ApiError> {
    match object.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(other) => Err(ApiError::field(
            code::INVALID_FIELD,
            field,
            format!(
                "Expected true or false for {field} but received {}",
                describe(other)
            ),
        )),
    }
}

fn optional_quality(object: &Map<String, Value>) -> Result<Option<u8>, ApiError> {
    let value = match object.get("quality") {
        None | Some(Value::Null) => return Ok(None),
        Some(v) => v,
    };
    match value.as_u64() {
        Some(q) if q <= 100 => Ok(Some(q as u8)),
        _ => Err(ApiError::field(
            code::INVALID_FIELD,
            "quality",
            format!(
                "Expected an integer from 0 to 100 for quality but received {}",
                describe(value)
            ),
        )),
    }
}

fn optional_quality_target(object: &Map<String, Value>) -> Result<Option<f64>, ApiError> {
    let value = match object.get("quality_target") {
        None | Some(Value::Null) => return Ok(None),
        Some(v) => v,
    };
    match value.as_f64() {
        Some(t) if (0.0..=100.0).contains(&t) => Ok(Some(t)),
        _ => Err(ApiError::field(
            code::INVALID_FIELD,
            "quality_target",
            format!(
                "Expected a SSIMULACRA2 score from 0 to 100 for quality_target (90: visually \
                 lossless, 80: high, 70: good, 50: medium) but received {}",
                describe(value)
            ),
        )),
    }
}

const FORMATS: &str = "jpeg, png, webp, avif, gif or auto";

fn optional_format(object: &Map<String, Value>) -> Result<OutputFormat, ApiError> {
    let value = match object.get("format") {
        None | Some(Value::Null) => return Ok(OutputFormat::Same),
        Some(v) => v,
    };
    let invalid = || {
        ApiError::field(
            code::INVALID_FIELD,
            "format",
            format!(
                "Expected one of {FORMATS} for format but received {}",
                describe(value)
            ),
        )
    };
    let name = value.as_str().ok_or_else(invalid)?;
    match name.to_ascii_lowercase().as_str() {
        "jpeg" | "jpg" => Ok(OutputFormat::Jpeg),
        "png" => Ok(OutputFormat::Png),
        "webp" => Ok(OutputFormat::Webp),
        "gif" => Ok(OutputFormat::Gif),
        "auto" => Ok(OutputFormat::Auto),
        "avif" => Ok(OutputFormat::Avif),
        _ => Err(invalid()),
    }
}

const METADATA_FORMS: &str =
    "\"strip\", \"keep\", or a list of \"exif\", \"icc\", \"xmp\", \"copyright\", \"geotag\"";

fn optional_metadata(object: &Map<String, Value>) -> Result<Metadata, ApiError> {
    let value = match object.get("metadata") {
        None | Some(Value::Null) => return Ok(Metadata::default()),
        Some(v) => v,
    };
    let invalid = |what: String| ApiError::field(code::INVALID_FIELD, "metadata", what);
    match value {
        Value::String(s) if s == "strip" => Ok(Metadata::default()),
        Value::String(s) if s == "keep" => Ok(Metadata {
            exif: true,
            icc: true,
            xmp: true,
            copyright: true,
            geotag: true,
        }),
        Value::Array(items) => {
            let mut kept = Metadata::default();
            for item in items {
                match item.as_str() {
                    Some("exif") => kept.exif = true,
                    Some("icc") => kept.icc = true,
                    Some("xmp") => kept.xmp = true,
                    Some("copyright") => kept.copyright = true,
                    Some("geotag") => kept.geotag = true,
                    _ => {
                        return Err(invalid(format!(
                            "Expected {METADATA_FORMS} for metadata but the list holds {}",
                            describe(item)
                        )))
                    }
                }
            }
            Ok(kept)
        }
        other => Err(invalid(format!(
            "Expected {METADATA_FORMS} for metadata but received {}",
            describe(other)
        ))),
    }
}

fn optional_background(object: &Map<String, Value>) -> Result<Option<[u8; 4]>, ApiError> {
    let Some(text) = optional_string(object, "background")? else {
        return Ok(None);
    };
    let colour = parse_color(&text)
        .map_err(|e| ApiError::field(code::INVALID_FIELD, "background", e.to_string()))?;
    if colour.a < 255 {
        return Err(ApiError::field(
            code::INVALID_FIELD,
            "background",
            format!(
                "background is what transparent pixels are flattened on, so it must be opaque; \
                 {text:?} is not"
            ),
        ));
    }
    Ok(Some(colour.to_array()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> ApiError {
        parse(&v, Endpoint::Url).unwrap_err()
    }

    #[test]
    fn valid_options_parse() {
        let o = parse(
            &json!({"api_key": "k", "url": "http://x/y.png", "lossy": true, "quality": 70}),
            Endpoint::Url,
        )
        .unwrap();
        assert_eq!(o.request.quality, Some(70));
        assert!(o.request.lossy);
        assert!(o.warnings.is_empty());
    }

    #[test]
    fn quality_must_be_an_integer_in_range() {
        for bad in [
            json!(101),
            json!("high"),
            json!(-1),
            json!(80.5),
            json!("80"),
        ] {
            let e = err(json!({"url": "http://x", "quality": bad}));
            assert_eq!(e.status, 400);
            assert!(e.message.contains("quality"), "{}", e.message);
        }
        assert!(err(json!({"url": "http://x", "quality": "high"}))
            .message
            .contains("\"high\" of type string"));
    }

    #[test]
    fn missing_url_and_wrong_types() {
        assert_eq!(err(json!({"lossy": true})).code, code::MISSING_FIELD);
        assert_eq!(err(json!({"url": 5})).code, code::INVALID_FIELD);
        assert_eq!(
            err(json!({"url": "http://x", "lossy": "yes"})).code,
            code::INVALID_FIELD
        );
        assert_eq!(err(json!([1, 2])).code, code::INVALID_JSON);
    }

    #[test]
    fn unbuilt_features_are_refused_and_unknown_fields_warned() {
        assert_eq!(
            err(json!({"url": "http://x", "dry_run": true})).code,
            code::NOT_SUPPORTED_YET
        );
        assert_eq!(
            err(json!({"url": "http://x", "resize": {"strategy": "exact"}})).code,
            code::INVALID_FIELD
        );
        let o = parse(
            &json!({"url": "http://x", "resize": [{"strategy": "square", "size": 10, "id": "a"}]}),
            Endpoint::Url,
        )
        .unwrap();
        assert!(o.resize.unwrap().is_array);
        let o = parse(&json!({"url": "http://x", "colour": "red"}), Endpoint::Url).unwrap();
        assert_eq!(o.warnings[0].code, warning::UNKNOWN_FIELD);
        assert!(parse(&json!({"url": "http://x"}), Endpoint::Upload).is_err());
    }
}
