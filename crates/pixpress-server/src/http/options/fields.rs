//! The one reader of JSON option objects, shared by the top-level options, `resize` and the
//! `*_store` objects: [`Fields`] reads one object and names each field by its full path
//! (`quality`, `resize[2].width`, `s3_store.bucket`); [`FieldError`] is a refusal naming that
//! path; every "Expected … for … but received …" message is made by [`expected`], in the style
//! of sharp's option checks, with the received value shortened by [`describe`]. It also owns
//! [`OptionsError`], the options parser's one error type.

use std::fmt;

use serde_json::{Map, Value};

/// A rejected option, naming the offending field by its full path (`resize.width`,
/// `resize[2].id`) so clients can point at it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for FieldError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

impl std::error::Error for FieldError {}

/// One JSON object being read, with the path prefix its fields are named by ("" at the top).
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    prefix: &'a str,
}

impl<'a> Fields<'a> {
    pub fn new(map: &'a Map<String, Value>, prefix: &'a str) -> Self {
        Fields { map, prefix }
    }

    /// The object's own keys, in order.
    pub fn keys(&self) -> impl Iterator<Item = &'a str> {
        self.map.keys().map(String::as_str)
    }

    /// The field as sent, `null` included.
    pub fn get(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name)
    }

    /// The field's full path: `name` at the top level, else `prefix.name`.
    pub fn path(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{name}", self.prefix)
        }
    }

    /// The field, unless it is absent or `null` (both mean "not given").
    pub fn present(&self, name: &str) -> Option<&'a Value> {
        self.map.get(name).filter(|v| !v.is_null())
    }

    pub fn missing(&self, name: &str, expected: &str) -> FieldError {
        FieldError::new(
            self.path(name),
            format!("Expected {expected} for {name} but it is missing"),
        )
    }

    /// An optional string; `kind` is how the message names a string ("string", "a string").
    pub fn optional_str(&self, name: &str, kind: &str) -> Result<Option<&'a str>, FieldError> {
        self.present(name)
            .map(|value| {
                value
                    .as_str()
                    .ok_or_else(|| expected(&self.path(name), name, kind, value))
            })
            .transpose()
    }

    /// An optional boolean; `kind` is how the message names it ("boolean", "true or false").
    pub fn optional_bool(&self, name: &str, kind: &str) -> Result<Option<bool>, FieldError> {
        self.present(name)
            .map(|value| {
                value
                    .as_bool()
                    .ok_or_else(|| expected(&self.path(name), name, kind, value))
            })
            .transpose()
    }
}

/// "Expected {kind} for {name} but received {value} of type {type}", on the field at `path`.
pub fn expected(path: &str, name: &str, kind: &str, value: &Value) -> FieldError {
    FieldError::new(
        path,
        format!(
            "Expected {kind} for {name} but received {}",
            describe(value)
        ),
    )
}

/// [`expected`] for a field named by the last segment of its path.
pub fn expected_at(path: &str, kind: &str, value: &Value) -> FieldError {
    let name = path.rsplit('.').next().unwrap_or(path);
    expected(path, name, kind, value)
}

/// "\"high\" of type string", "1.5 of type number", … for error messages.
pub fn describe(value: &Value) -> String {
    format!("{} of type {}", shortened(value), type_name(value))
}

/// The received value as JSON, shortened so a huge payload can't bloat errors.
fn shortened(value: &Value) -> String {
    const LIMIT: usize = 60;
    let text = value.to_string();
    if text.chars().count() <= LIMIT {
        return text;
    }
    let cut: String = text.chars().take(LIMIT).collect();
    format!("{cut}…")
}

pub fn type_name(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Why the options were refused; each kind is one error code (`http::error` maps them).
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    /// The body or the `data` part is not a JSON object of options (400 `invalid_json`).
    #[error("{0}")]
    Json(String),
    /// A required option is absent (400 `missing_field`).
    #[error("{}", .0.message)]
    Missing(FieldError),
    /// An option of the wrong type or value (400 `invalid_field`).
    #[error("{}", .0.message)]
    Invalid(FieldError),
    /// A valid option this server does not carry out (400 `not_supported_yet`).
    #[error("{}", .0.message)]
    Unsupported(FieldError),
}

impl From<FieldError> for OptionsError {
    fn from(e: FieldError) -> Self {
        OptionsError::Invalid(e)
    }
}
