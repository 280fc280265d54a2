//! The Kraken.io dialect (SPEC §12), kept at the edge: a request whose JSON carries an `auth`
//! object is Kraken's. This module owns the mapping of Kraken's request fields onto the native
//! options (then read by the one options parser), the Kraken shape of the answer (`success`,
//! `kraked_url`, `results` keyed by id, …) and of `POST /user_status`. Kraken options that map
//! onto a pixpress feature are honoured; the others are named in `warnings`, never dropped
//! silently. Errors keep their status from `http::error`, which also renders their Kraken body.

use pixpress_core::Warning;
use serde_json::{json, Map, Value};

use crate::accounts::usage::UsageReport;
use crate::http::error::Dialect;
use crate::http::options::fields::{describe, expected, FieldError, OptionsError};
use crate::http::options::{self, Endpoint, ParsedOptions};
use crate::service::answer::{Answer, OptimizeResponse};

/// A Kraken option this server has no feature for; the request goes on without it.
pub const KRAKEN_OPTION_IGNORED: &str = "kraken_option_ignored";

/// Kraken's top-level options with no pixpress counterpart (named so the warning can say so).
const UNMAPPED: [(&str, &str); 3] = [
    (
        "dev",
        "Kraken's sandbox mode is not built in pixpress; this request was really optimised and metered",
    ),
    (
        "sampling_scheme",
        "choosing the chroma subsampling is not built in pixpress",
    ),
    (
        "webp_lossless",
        "not built in pixpress; lossy: false with a WebP output is lossless",
    ),
];

/// Which dialect a parsed JSON body speaks: Kraken's carries an `auth` object.
pub fn dialect_of(value: &Value) -> Dialect {
    if value.get("auth").is_some_and(Value::is_object) {
        Dialect::Kraken
    } else {
        Dialect::Native
    }
}

/// Reads a Kraken request: its fields mapped onto native options, then the one options parser;
/// the mapping's warnings join the parser's.
pub fn parse(value: &Value, endpoint: Endpoint) -> Result<ParsedOptions, OptionsError> {
    let (native, warnings) = to_native(value)?;
    let mut options = options::parse(&Value::Object(native), endpoint)?;
    options.job.warnings.extend(warnings);
    Ok(options)
}

/// The key in `auth.api_key`. `auth.api_secret` may be sent (Kraken's clients always send it)
/// but is not a credential here: a pixpress key alone authenticates.
pub fn auth_key(value: &Value) -> Result<Option<String>, OptionsError> {
    let Some(auth) = value.get("auth").filter(|v| !v.is_null()) else {
        return Ok(None);
    };
    let auth = auth
        .as_object()
        .ok_or_else(|| expected("auth", "auth", "an object {api_key, api_secret}", auth))?;
    if let Some(secret) = auth
        .get("api_secret")
        .filter(|v| !v.is_null() && !v.is_string())
    {
        // Only its type is named: a secret is never echoed.
        return Err(FieldError::new(
            "auth.api_secret",
            format!(
                "Expected a string for api_secret but received a value of type {}",
                options::fields::type_name(secret)
            ),
        )
        .into());
    }
    match auth.get("api_key").filter(|v| !v.is_null()) {
        None => Ok(None),
        Some(Value::String(key)) => Ok(Some(key.clone())),
        Some(other) => Err(FieldError::new(
            "auth.api_key",
            format!(
                "Expected a string for api_key but received a value of type {}",
                options::fields::type_name(other)
            ),
        )
        .into()),
    }
}

type Native = (Map<String, Value>, Vec<Warning>);

/// Maps each Kraken field onto its native option; anything not Kraken-specific passes through,
/// so the native parser names unknown fields in `warnings` as for any request.
fn to_native(value: &Value) -> Result<Native, OptionsError> {
    let object = value.as_object().ok_or_else(|| {
        OptionsError::Json(format!(
            "expected a JSON object of options but received {}",
            describe(value)
        ))
    })?;
    let mut native = Map::new();
    let mut warnings = Vec::new();
    for (name, field) in object {
        match name.as_str() {
            "auth" => {
                if let Some(key) = auth_key(value)? {
                    native.insert("api_key".into(), Value::String(key));
                }
            }
            "wait" => {
                let has_callback = object.get("callback_url").is_some_and(|v| !v.is_null());
                read_wait(field, has_callback, &mut warnings)?
            }
            "convert" => read_convert(field, &mut native, &mut warnings)?,
            "webp" | "avif" => read_format_switch(name, field, &mut native)?,
            "preserve_meta" => {
                let metadata = read_preserve_meta(field, &mut warnings)?;
                native.insert("metadata".into(), metadata);
            }
            "auto_orient" => read_auto_orient(field, &mut warnings)?,
            "resize" => {
                require_set_ids(field)?;
                native.insert("resize".into(), field.clone());
            }
            "s3_store" => {
                let store = read_s3_store(field, &mut warnings)?;
                native.insert("s3_store".into(), store);
            }
            "gs_store" | "gcs_store" => {
                let store = read_gcs_store(name, field, &mut warnings)?;
                native.insert("gcs_store".into(), store);
            }
            other => match UNMAPPED.iter().find(|(n, _)| *n == other) {
                Some((_, what)) => warnings.push(ignored(other, what)),
                None => {
                    native.insert(other.to_string(), field.clone());
                }
            },
        }
    }
    Ok((native, warnings))
}

fn ignored(field: &str, why: &str) -> Warning {
    Warning::new(KRAKEN_OPTION_IGNORED, format!("{field} was ignored: {why}"))
}

/// `wait: true` answers on the same connection; `callback_url` (which passes through to the
/// native option) answers by callback; `wait: false` without a callback cannot be honoured.
fn read_wait(
    field: &Value,
    has_callback: bool,
    warnings: &mut Vec<Warning>,
) -> Result<(), OptionsError> {
    match field {
        Value::Null | Value::Bool(true) => Ok(()),
        Value::Bool(false) if has_callback => Ok(()),
        Value::Bool(false) => {
            warnings.push(ignored(
                "wait: false",
                "answers always come on the same connection, as with wait: true",
            ));
            Ok(())
        }
        other => Err(expected("wait", "wait", "true or false", other).into()),
    }
}

/// `convert: {format, background, keep_ext}` → `format` and `background`.
fn read_convert(
    field: &Value,
    native: &mut Map<String, Value>,
    warnings: &mut Vec<Warning>,
) -> Result<(), OptionsError> {
    let convert = field.as_object().ok_or_else(|| {
        expected(
            "convert",
            "convert",
            "an object {format, background, keep_ext}",
            field,
        )
    })?;
    for (name, value) in convert {
        match name.as_str() {
            "format" => {
                let format = value.as_str().ok_or_else(|| {
                    expected(
                        "convert.format",
                        "format",
                        "one of jpeg, png, gif, webp, avif",
                        value,
                    )
                })?;
                set_format("convert.format", &format.to_ascii_lowercase(), native)?;
            }
            "background" => {
                native.insert("background".into(), value.clone());
            }
            "keep_ext" => match value {
                Value::Bool(false) | Value::Null => {}
                Value::Bool(true) => warnings.push(ignored(
                    "convert.keep_ext",
                    "kraked_url always ends in the output format's own extension",
                )),
                other => {
                    return Err(
                        expected("convert.keep_ext", "keep_ext", "true or false", other).into(),
                    )
                }
            },
            other => warnings.push(Warning::new(
                pixpress_core::warning::UNKNOWN_FIELD,
                format!("convert.{other} is not a recognised convert option and was ignored"),
            )),
        }
    }
    Ok(())
}

/// Kraken's `webp: true` / `avif: true` ask for that output format.
fn read_format_switch(
    name: &str,
    field: &Value,
    native: &mut Map<String, Value>,
) -> Result<(), OptionsError> {
    match field {
        Value::Bool(true) => set_format(name, name, native),
        Value::Bool(false) | Value::Null => Ok(()),
        other => Err(expected(name, name, "true or false", other).into()),
    }
}

/// Sets the output format once; two fields asking for different formats are a 400.
fn set_format(
    field: &str,
    format: &str,
    native: &mut Map<String, Value>,
) -> Result<(), OptionsError> {
    let format = if format == "jpg" { "jpeg" } else { format };
    if !["jpeg", "png", "gif", "webp", "avif"].contains(&format) {
        return Err(FieldError::new(
            field,
            format!(
                "Expected one of jpeg, png, gif, webp, avif for {field} but received {format:?}"
            ),
        )
        .into());
    }
    match native.get("format").and_then(Value::as_str) {
        Some(already) if already != format => Err(FieldError::new(
            field,
            format!("{field} asks for {format} but another option already asked for {already}"),
        )
        .into()),
        _ => {
            native.insert("format".into(), Value::String(format.into()));
            Ok(())
        }
    }
}

/// `preserve_meta: ["profile","date","copyright","geotag","orientation"]` → `metadata`.
fn read_preserve_meta(field: &Value, warnings: &mut Vec<Warning>) -> Result<Value, OptionsError> {
    const FORMS: &str =
        "a list of \"profile\", \"date\", \"copyright\", \"geotag\", \"orientation\"";
    let items = field
        .as_array()
        .ok_or_else(|| expected("preserve_meta", "preserve_meta", FORMS, field))?;
    let mut kept = Vec::new();
    for item in items {
        match item.as_str() {
            Some("profile") => kept.push("icc"),
            Some("copyright") => kept.push("copyright"),
            Some("geotag") => kept.push("geotag"),
            Some("date") => warnings.push(ignored(
                "preserve_meta \"date\"",
                "keeping only EXIF's date tags is not built in pixpress (metadata: [\"exif\"] keeps EXIF whole)",
            )),
            Some("orientation") => warnings.push(ignored(
                "preserve_meta \"orientation\"",
                "the EXIF orientation is always applied to the pixels and the tag reset",
            )),
            _ => {
                return Err(FieldError::new(
                    "preserve_meta",
                    format!("Expected {FORMS} for preserve_meta but the list holds {}", describe(item)),
                )
                .into())
            }
        }
    }
    Ok(json!(kept))
}

/// Orientation is always applied to the pixels, which is what `auto_orient: true` asks for.
fn read_auto_orient(field: &Value, warnings: &mut Vec<Warning>) -> Result<(), OptionsError> {
    match field {
        Value::Bool(true) | Value::Null => Ok(()),
        Value::Bool(false) => {
            warnings.push(ignored(
                "auto_orient: false",
                "the EXIF orientation is always applied to the pixels",
            ));
            Ok(())
        }
        other => Err(expected("auto_orient", "auto_orient", "true or false", other).into()),
    }
}

/// An image set answers `results` keyed by id, so every entry of a `resize` array needs one.
fn require_set_ids(field: &Value) -> Result<(), OptionsError> {
    let Some(entries) = field.as_array() else {
        return Ok(());
    };
    for (i, entry) in entries.iter().enumerate() {
        if entry.get("id").is_none_or(Value::is_null) {
            return Err(OptionsError::Missing(FieldError::new(
                format!("resize[{i}].id"),
                format!("resize[{i}].id is required: an image set answers results keyed by id"),
            )));
        }
    }
    Ok(())
}

/// Kraken's `s3_store`: `acl: "public_read"` is S3's `public-read` (and `private` the default
/// of a new object, so nothing is sent for it); `metadata` becomes `x-amz-meta-*` headers.
fn read_s3_store(field: &Value, warnings: &mut Vec<Warning>) -> Result<Value, OptionsError> {
    let Some(store) = field.as_object() else {
        return Ok(field.clone());
    };
    let mut native = Map::new();
    let mut headers = store
        .get("headers")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    for (name, value) in store {
        match (name.as_str(), value) {
            ("acl", Value::String(acl)) if acl == "public_read" => {
                native.insert("acl".into(), json!("public-read"));
            }
            ("acl", Value::String(acl)) if acl == "private" => {}
            ("metadata", Value::Object(meta)) => {
                for (k, v) in meta {
                    headers.insert(format!("x-amz-meta-{k}"), v.clone());
                }
            }
            ("tags", _) => warnings.push(ignored(
                "s3_store.tags",
                "object tags are not built in pixpress",
            )),
            ("headers", Value::Object(_)) => {}
            _ => {
                native.insert(name.clone(), value.clone());
            }
        }
    }
    if !headers.is_empty() {
        native.insert("headers".into(), Value::Object(headers));
    }
    Ok(Value::Object(native))
}

/// Kraken's `gcs_store` (also sent as `gs_store`): `acl: "private"` is the default; a public
/// ACL and object metadata are not written, and said so.
fn read_gcs_store(
    name: &str,
    field: &Value,
    warnings: &mut Vec<Warning>,
) -> Result<Value, OptionsError> {
    let Some(store) = field.as_object() else {
        return Err(expected(name, name, "an object", field).into());
    };
    let mut native = Map::new();
    for (key, value) in store {
        match (key.as_str(), value) {
            ("acl", Value::String(acl)) if acl == "private" => {}
            ("acl", _) => warnings.push(ignored(
                &format!("{name}.acl"),
                "object ACLs on GCS are not built in pixpress",
            )),
            ("metadata", _) => warnings.push(ignored(
                &format!("{name}.metadata"),
                "object metadata on GCS is not built in pixpress",
            )),
            _ => {
                native.insert(key.clone(), value.clone());
            }
        }
    }
    Ok(Value::Object(native))
}

/// The answer in Kraken's shape: one image, or an image set's `results` keyed by id.
pub fn answer(answer: &Answer, file_name: &str) -> Value {
    match answer {
        Answer::One(one) => {
            let mut body = kraked(one, file_name);
            body.insert("success".into(), json!(true));
            Value::Object(body)
        }
        Answer::Many(many) => {
            let results: Map<String, Value> = many
                .results
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let id = r.id.clone().unwrap_or_else(|| i.to_string());
                    (id, Value::Object(kraked(r, file_name)))
                })
                .collect();
            json!({"success": true, "results": results, "warnings": many.warnings})
        }
        // Not a Kraken option, but passed through: the plan in pixpress's own shape.
        Answer::DryRun(dry) => {
            let mut body = serde_json::to_value(dry).unwrap_or_default();
            body["success"] = json!(true);
            body
        }
    }
}

/// One output's Kraken fields, plus pixpress's own that Kraken clients simply ignore.
fn kraked(r: &OptimizeResponse, file_name: &str) -> Map<String, Value> {
    let mut body = Map::new();
    body.insert("file_name".into(), json!(file_name));
    body.insert("original_size".into(), json!(r.original_size));
    body.insert("kraked_size".into(), json!(r.final_size));
    body.insert("saved_bytes".into(), json!(r.bytes_saved));
    body.insert("kraked_url".into(), json!(r.url));
    body.insert("original_width".into(), json!(r.original_width));
    body.insert("original_height".into(), json!(r.original_height));
    body.insert("kraked_width".into(), json!(r.final_width));
    body.insert("kraked_height".into(), json!(r.final_height));
    body.insert("format".into(), json!(r.format));
    if let Some(quality) = r.quality {
        body.insert("quality".into(), json!(quality));
    }
    body.insert("expires_at".into(), json!(r.expires_at));
    body.insert("warnings".into(), json!(r.warnings));
    body.insert("stored".into(), json!(r.stored));
    body
}

/// The name Kraken reports for a URL input: the last segment of its path.
pub fn file_name_of_url(url: &str) -> String {
    url::Url::parse(url)
        .ok()
        .and_then(|u| {
            u.path_segments()
                .and_then(|mut segments| segments.next_back().map(str::to_string))
        })
        .filter(|name| !name.is_empty())
        .unwrap_or_default()
}

/// `POST /user_status`: the key's plan and this month's usage, in Kraken's fields.
pub fn user_status(report: &UsageReport) -> Value {
    json!({
        "success": true,
        "active": true,
        "plan_name": report.plan,
        "quota_total": report.limits.bytes_per_month,
        "quota_used": report.bytes,
        "quota_remaining": report.quota_remaining_bytes,
        "quota_is_hard": report.limits.quota_is_hard,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn native(v: Value) -> Native {
        to_native(&v).unwrap()
    }

    #[test]
    fn kraken_fields_map_onto_native_options() {
        let (n, w) = native(json!({
            "auth": {"api_key": "pxk_1", "api_secret": "s"}, "wait": true, "lossy": true,
            "convert": {"format": "WEBP", "background": "#ffffff"},
            "preserve_meta": ["profile", "geotag"], "auto_orient": true,
            "gs_store": {"bucket": "b", "credentials": "t", "acl": "private"},
            "s3_store": {"key": "k", "secret": "s", "bucket": "b", "acl": "public_read",
                         "metadata": {"owner": "web"}}
        }));
        assert_eq!(n["api_key"], "pxk_1");
        assert_eq!(n["format"], "webp");
        assert_eq!(n["background"], "#ffffff");
        assert_eq!(n["metadata"], json!(["icc", "geotag"]));
        assert_eq!(n["gcs_store"], json!({"bucket": "b", "credentials": "t"}));
        assert_eq!(n["s3_store"]["acl"], "public-read");
        assert_eq!(n["s3_store"]["headers"]["x-amz-meta-owner"], "web");
        assert!(!n.contains_key("wait") && !n.contains_key("auth"));
        assert!(w.is_empty(), "{w:?}");
    }

    #[test]
    fn unmapped_options_are_warned_about() {
        let (n, w) = native(json!({"auth": {}, "dev": true, "preserve_meta": ["date"],
                                   "auto_orient": false, "convert": {"format": "png", "keep_ext": true}}));
        assert!(!n.contains_key("dev"));
        let codes: Vec<_> = w.iter().map(|w| w.code).collect();
        assert_eq!(codes, vec![KRAKEN_OPTION_IGNORED; 4], "{w:?}");
    }

    #[test]
    fn callback_url_passes_through_and_wait_false_beside_it_is_not_warned() {
        let (n, w) = to_native(&json!({
            "auth": {"api_key": "pxk_1"}, "callback_url": "http://x/cb", "wait": false
        }))
        .unwrap();
        assert_eq!(n["callback_url"], "http://x/cb");
        assert!(w.is_empty(), "{w:?}");
        let (_, w) = to_native(&json!({"auth": {}, "wait": false})).unwrap();
        assert_eq!(w.len(), 1);
    }

    #[test]
    fn refusals_name_the_field() {
        let refused = |v: Value| to_native(&v).unwrap_err();
        assert!(
            matches!(refused(json!({"auth": {}, "convert": {"format": "bmp"}})),
            OptionsError::Invalid(f) if f.field == "convert.format")
        );
        assert!(
            matches!(refused(json!({"auth": {}, "convert": {"format": "png"}, "webp": true})),
            OptionsError::Invalid(f) if f.field == "webp")
        );
        assert!(
            matches!(refused(json!({"auth": {}, "resize": [{"strategy": "square", "size": 5}]})),
            OptionsError::Missing(f) if f.field == "resize[0].id")
        );
        let secret = refused(json!({"auth": {"api_key": "k", "api_secret": 12345}}));
        assert!(!secret.to_string().contains("12345"), "{secret}");
    }

    #[test]
    fn dialect_and_file_names() {
        assert_eq!(
            dialect_of(&json!({"auth": {"api_key": "k"}})),
            Dialect::Kraken
        );
        assert_eq!(dialect_of(&json!({"api_key": "k"})), Dialect::Native);
        assert_eq!(file_name_of_url("http://h/a/b/photo.jpg?x=1"), "photo.jpg");
        assert_eq!(file_name_of_url("http://h/"), "");
    }
}
