//! Request options, validated once at the edge (SPEC §3). JSON is parsed into a typed
//! [`ParsedOptions`]; every error names the field, what was expected and what was received, in
//! the style of sharp's option checks. The core never re-validates. Unknown fields are not an
//! error but are named in `warnings`; options whose feature is not built yet are a clear 400
//! rather than being silently ignored.

use pixpress_core::pipeline::plan::ResizeSpec;
use pixpress_core::warning::{self, Warning};
use pixpress_core::Request;
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

const KNOWN_FIELDS: [&str; 8] = [
    "api_key",
    "url",
    "lossy",
    "quality",
    "resize",
    "s3_store",
    "azure_store",
    "gcs_store",
];

/// Options from the SPEC whose features land in later work: present → 400 `not_supported_yet`.
const NOT_YET: [(&str, &str); 7] = [
    ("format", "format conversion"),
    ("metadata", "choosing which metadata to keep"),
    ("quality_target", "a perceptual quality target"),
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
            err(json!({"url": "http://x", "format": "avif"})).code,
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
