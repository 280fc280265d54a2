//! Request options, validated once at the edge (SPEC §3): the one options parser. JSON (the
//! body of `POST /v1/`, the `data` part of an upload) becomes a typed [`ParsedOptions`]: the key
//! and URL, and the service's [`Job`] — the core [`Request`], the resize specs (`resize`) and the
//! export stores (`stores`). Every error names the field, what was expected and what was
//! received, in the style of sharp's option checks; JSON objects are read by `fields`, the one
//! reader. The core never re-validates. Unknown top-level fields are not an error but are named
//! in `warnings`; options whose feature is not built yet are a clear 400 rather than being
//! silently ignored.

pub mod fields;
pub mod resize;
pub mod schema;
pub mod stores;

use pixpress_core::warning::{self, Warning};
use pixpress_core::{parse_color, Metadata, OutputFormat, Request};
use serde_json::Value;

use crate::http::options::fields::{describe, expected, FieldError, Fields, OptionsError};
use crate::service::job::{Job, ResizeEntry, ResizeRequest};

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
    /// Answer with a 202 and POST the answer here when it is ready (`http::callback`).
    pub callback_url: Option<String>,
    /// What the service is asked to do with the image.
    pub job: Job,
}

/// Every top-level option this server reads; anything else is warned about and ignored.
pub(crate) const OPTION_FIELDS: [&str; 17] = [
    "api_key",
    "url",
    "callback_url",
    "lossy",
    "quality",
    "resize",
    "format",
    "metadata",
    "quality_target",
    "background",
    "score",
    "dry_run",
    "max_bytes",
    "min_ssimulacra2",
    "s3_store",
    "azure_store",
    "gcs_store",
];

/// Options from the SPEC whose features land in later work: present → 400 `not_supported_yet`.
/// (None at present: the seam stays for the next one.)
pub(crate) const NOT_YET: [(&str, &str); 0] = [];

pub fn parse_json_body(body: &[u8]) -> Result<Value, OptionsError> {
    serde_json::from_slice(body)
        .map_err(|e| OptionsError::Json(format!("the request body is not valid JSON: {e}")))
}

pub fn parse(value: &Value, endpoint: Endpoint) -> Result<ParsedOptions, OptionsError> {
    let object = value.as_object().ok_or_else(|| {
        OptionsError::Json(format!(
            "expected a JSON object of options but received {}",
            describe(value)
        ))
    })?;
    let fields = Fields::new(object, "");
    refuse_unbuilt_options(&fields)?;
    let mut options = ParsedOptions {
        api_key: optional_string(&fields, "api_key")?,
        url: optional_string(&fields, "url")?,
        callback_url: optional_string(&fields, "callback_url")?,
        job: Job {
            request: Request {
                lossy: fields
                    .optional_bool("lossy", "true or false")?
                    .unwrap_or(false),
                quality: optional_quality(&fields)?,
                quality_target: optional_quality_target(&fields)?,
                format: optional_format(&fields)?,
                metadata: optional_metadata(&fields)?,
                background: optional_background(&fields)?,
                score: fields
                    .optional_bool("score", "true or false")?
                    .unwrap_or(false),
                max_bytes: optional_max_bytes(&fields)?,
                min_ssimulacra2: optional_score_floor(&fields)?,
            },
            resize: parse_resize(&fields)?,
            stores: stores::parse_stores(&fields)?,
            dry_run: fields
                .optional_bool("dry_run", "true or false")?
                .unwrap_or(false),
            warnings: unknown_field_warnings(&fields),
        },
    };
    check_endpoint(&options, endpoint)?;
    check_callback(&options)?;
    check_budget(&options.job.request)?;
    options
        .job
        .warnings
        .extend(ignored_quality_warnings(&options.job.request));
    Ok(options)
}

/// `url` is required on `POST /v1/` and refused on `POST /v1/upload`.
fn check_endpoint(options: &ParsedOptions, endpoint: Endpoint) -> Result<(), OptionsError> {
    match endpoint {
        Endpoint::Url if options.url.is_none() => Err(OptionsError::Missing(FieldError::new(
            "url",
            "url is required: the http(s) address of the image to optimise (or upload the file to POST /v1/upload)",
        ))),
        Endpoint::Upload if options.url.is_some() => Err(OptionsError::Invalid(FieldError::new(
            "url",
            "url is not accepted on POST /v1/upload, which takes the image as the `image` part; use POST /v1/ to fetch a URL",
        ))),
        _ => Ok(()),
    }
}

/// `dry_run` answers at once and does no work, so there is nothing to call back about.
fn check_callback(options: &ParsedOptions) -> Result<(), OptionsError> {
    if options.callback_url.is_some() && options.job.dry_run {
        return Err(OptionsError::Invalid(FieldError::new(
            "callback_url",
            "callback_url cannot be combined with \"dry_run\": true: a dry run answers at once \
             on the same connection; remove one of them",
        )));
    }
    Ok(())
}

/// A byte budget or score floor picks the quality of a lossy encoder: without `lossy` there is
/// nothing to lower, and a fixed `quality` or a `quality_target` beside a floor would be a
/// second answer to the same question.
fn check_budget(request: &Request) -> Result<(), OptionsError> {
    let named = if request.min_ssimulacra2.is_some() {
        "min_ssimulacra2"
    } else if request.max_bytes.is_some() {
        "max_bytes"
    } else {
        return Ok(());
    };
    let refuse = |message: String| Err(OptionsError::Invalid(FieldError::new(named, message)));
    if !request.lossy {
        return refuse(format!(
            "{named} chooses a lossy quality: send \"lossy\": true with it (a lossless output \
             cannot be made smaller on demand)"
        ));
    }
    if request.min_ssimulacra2.is_some() && request.quality.is_some() {
        return refuse("min_ssimulacra2 chooses the quality: do not send quality with it".into());
    }
    if request.min_ssimulacra2.is_some() && request.quality_target.is_some() {
        return refuse(
            "min_ssimulacra2 is the score the search keeps: do not send quality_target with it"
                .into(),
        );
    }
    Ok(())
}

/// Quality options that cannot apply to this request, named so the caller learns why.
fn ignored_quality_warnings(request: &Request) -> Vec<Warning> {
    let mut warnings = Vec::new();
    if request.quality_target.is_some() && !request.lossy {
        warnings.push(Warning::new(
            "quality_target_ignored",
            "quality_target only applies with \"lossy\": true; the image was compressed losslessly",
        ));
    } else if request.quality_target.is_some() && request.quality.is_some() {
        warnings.push(Warning::new(
            "quality_target_ignored",
            "quality was given, so no quality search ran and quality_target was not used",
        ));
    }
    if request.quality.is_some() && !request.lossy {
        warnings.push(Warning::new(
            "quality_ignored",
            "quality only applies with \"lossy\": true; the image was compressed losslessly",
        ));
    }
    warnings
}

fn parse_resize(fields: &Fields) -> Result<Option<ResizeRequest>, OptionsError> {
    let Some(value) = fields.present("resize") else {
        return Ok(None);
    };
    let entries = resize::parse_resize_list(value)?;
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

fn refuse_unbuilt_options(fields: &Fields) -> Result<(), OptionsError> {
    for (field, feature) in NOT_YET {
        if fields.get(field).is_some() {
            return Err(OptionsError::Unsupported(FieldError::new(
                field,
                format!("{field}: {feature} is not supported yet by this server; remove the field"),
            )));
        }
    }
    Ok(())
}

fn unknown_field_warnings(fields: &Fields) -> Vec<Warning> {
    fields
        .keys()
        .filter(|k| !OPTION_FIELDS.contains(k))
        .map(|k| {
            Warning::new(
                warning::UNKNOWN_FIELD,
                format!("unknown field {k:?} was ignored"),
            )
        })
        .collect()
}

fn optional_string(fields: &Fields, field: &str) -> Result<Option<String>, OptionsError> {
    Ok(fields.optional_str(field, "a string")?.map(str::to_string))
}

fn optional_quality(fields: &Fields) -> Result<Option<u8>, OptionsError> {
    let Some(value) = fields.present("quality") else {
        return Ok(None);
    };
    match value.as_u64() {
        Some(q) if q <= 100 => Ok(Some(q as u8)),
        _ => Err(expected("quality", "quality", "an integer from 0 to 100", value).into()),
    }
}

fn optional_quality_target(fields: &Fields) -> Result<Option<f64>, OptionsError> {
    let Some(value) = fields.present("quality_target") else {
        return Ok(None);
    };
    match value.as_f64() {
        Some(t) if (0.0..=100.0).contains(&t) => Ok(Some(t)),
        _ => Err(OptionsError::Invalid(FieldError::new(
            "quality_target",
            format!(
                "Expected a SSIMULACRA2 score from 0 to 100 for quality_target (90: visually \
                 lossless, 80: high, 70: good, 50: medium) but received {}",
                describe(value)
            ),
        ))),
    }
}

fn optional_max_bytes(fields: &Fields) -> Result<Option<u64>, OptionsError> {
    let Some(value) = fields.present("max_bytes") else {
        return Ok(None);
    };
    match value.as_u64() {
        Some(n) if n > 0 => Ok(Some(n)),
        _ => Err(expected(
            "max_bytes",
            "max_bytes",
            "a positive integer (bytes)",
            value,
        )
        .into()),
    }
}

fn optional_score_floor(fields: &Fields) -> Result<Option<f64>, OptionsError> {
    let Some(value) = fields.present("min_ssimulacra2") else {
        return Ok(None);
    };
    match value.as_f64() {
        Some(t) if (0.0..=100.0).contains(&t) => Ok(Some(t)),
        _ => Err(expected(
            "min_ssimulacra2",
            "min_ssimulacra2",
            "a SSIMULACRA2 score from 0 to 100 (90: visually lossless, 80: high, 70: good)",
            value,
        )
        .into()),
    }
}

const FORMATS: &str = "jpeg, png, webp, avif, gif or auto";

fn optional_format(fields: &Fields) -> Result<OutputFormat, OptionsError> {
    let Some(value) = fields.present("format") else {
        return Ok(OutputFormat::Same);
    };
    let invalid = || expected("format", "format", &format!("one of {FORMATS}"), value);
    let name = value.as_str().ok_or_else(invalid)?;
    match name.to_ascii_lowercase().as_str() {
        "jpeg" | "jpg" => Ok(OutputFormat::Jpeg),
        "png" => Ok(OutputFormat::Png),
        "webp" => Ok(OutputFormat::Webp),
        "gif" => Ok(OutputFormat::Gif),
        "auto" => Ok(OutputFormat::Auto),
        "avif" => Ok(OutputFormat::Avif),
        _ => Err(invalid().into()),
    }
}

const METADATA_FORMS: &str =
    "\"strip\", \"keep\", or a list of \"exif\", \"icc\", \"xmp\", \"copyright\", \"geotag\"";

fn optional_metadata(fields: &Fields) -> Result<Metadata, OptionsError> {
    let Some(value) = fields.present("metadata") else {
        return Ok(Metadata::default());
    };
    let invalid = |what: String| OptionsError::Invalid(FieldError::new("metadata", what));
    match value {
        Value::String(s) if s == "strip" => Ok(Metadata::default()),
        Value::String(s) if s == "keep" => Ok(Metadata::everything()),
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

fn optional_background(fields: &Fields) -> Result<Option<[u8; 4]>, OptionsError> {
    let Some(text) = optional_string(fields, "background")? else {
        return Ok(None);
    };
    let colour = parse_color(&text).map_err(|e| FieldError::new("background", e.to_string()))?;
    if colour.a < 255 {
        return Err(OptionsError::Invalid(FieldError::new(
            "background",
            format!(
                "background is what transparent pixels are flattened on, so it must be opaque; \
                 {text:?} is not"
            ),
        )));
    }
    Ok(Some(colour.to_array()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn err(v: Value) -> OptionsError {
        parse(&v, Endpoint::Url).unwrap_err()
    }

    #[test]
    fn valid_options_parse() {
        let o = parse(
            &json!({"api_key": "k", "url": "http://x/y.png", "lossy": true, "quality": 70}),
            Endpoint::Url,
        )
        .unwrap();
        assert_eq!(o.job.request.quality, Some(70));
        assert!(o.job.request.lossy);
        assert!(o.job.warnings.is_empty());
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
            assert!(matches!(&e, OptionsError::Invalid(f) if f.field == "quality"));
            assert!(e.to_string().contains("quality"), "{e}");
        }
        assert!(err(json!({"url": "http://x", "quality": "high"}))
            .to_string()
            .contains("\"high\" of type string"));
    }

    #[test]
    fn missing_url_and_wrong_types() {
        assert!(matches!(
            err(json!({"lossy": true})),
            OptionsError::Missing(_)
        ));
        assert!(matches!(err(json!({"url": 5})), OptionsError::Invalid(_)));
        assert!(matches!(
            err(json!({"url": "http://x", "lossy": "yes"})),
            OptionsError::Invalid(_)
        ));
        assert!(matches!(err(json!([1, 2])), OptionsError::Json(_)));
    }

    #[test]
    fn unbuilt_features_are_refused_and_unknown_fields_warned() {
        let o = parse(
            &json!({"url": "http://x", "callback_url": "http://y/cb"}),
            Endpoint::Url,
        )
        .unwrap();
        assert_eq!(o.callback_url.as_deref(), Some("http://y/cb"));
        assert!(o.job.warnings.is_empty());
        assert!(matches!(
            err(json!({"url": "http://x", "callback_url": 5})),
            OptionsError::Invalid(_)
        ));
        assert!(matches!(
            err(json!({"url": "http://x", "callback_url": "http://y", "dry_run": true})),
            OptionsError::Invalid(_)
        ));
        assert!(matches!(
            err(json!({"url": "http://x", "resize": {"strategy": "exact"}})),
            OptionsError::Invalid(_)
        ));
        let o = parse(
            &json!({"url": "http://x", "resize": [{"strategy": "square", "size": 10, "id": "a"}]}),
            Endpoint::Url,
        )
        .unwrap();
        assert!(o.job.resize.unwrap().is_array);
        let o = parse(&json!({"url": "http://x", "colour": "red"}), Endpoint::Url).unwrap();
        assert_eq!(o.job.warnings[0].code, warning::UNKNOWN_FIELD);
        assert!(parse(&json!({"url": "http://x"}), Endpoint::Upload).is_err());
    }

    #[test]
    fn budgets_need_lossy_and_one_way_to_pick_the_quality() {
        let ok = parse(
            &json!({"url": "http://x", "lossy": true, "max_bytes": 5000, "min_ssimulacra2": 70}),
            Endpoint::Url,
        )
        .unwrap();
        assert_eq!(ok.job.request.max_bytes, Some(5000));
        assert_eq!(ok.job.request.min_ssimulacra2, Some(70.0));
        let field_of = |v: Value| match err(v) {
            OptionsError::Invalid(f) => f.field,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            field_of(json!({"url": "http://x", "max_bytes": 5000})),
            "max_bytes"
        );
        assert_eq!(
            field_of(json!({"url": "http://x", "lossy": true, "max_bytes": 0})),
            "max_bytes"
        );
        assert_eq!(
            field_of(
                json!({"url": "http://x", "lossy": true, "min_ssimulacra2": 70, "quality": 80})
            ),
            "min_ssimulacra2"
        );
        assert_eq!(
            field_of(json!({"url": "http://x", "lossy": true, "min_ssimulacra2": 101})),
            "min_ssimulacra2"
        );
        // A budget alone may start from a fixed quality and lower it.
        assert!(parse(
            &json!({"url": "http://x", "lossy": true, "max_bytes": 5000, "quality": 90}),
            Endpoint::Url
        )
        .is_ok());
    }
}
