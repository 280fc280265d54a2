//! The `s3_store`, `azure_store` and `gcs_store` options (SPEC §6): parsed into the typed stores
//! `storage::export` writes to, with secrets wrapped so they never print and never echoed in a
//! message (a wrong-typed secret is described by its type only). Unknown fields inside a store
//! object are an error, unlike at the top level: a misspelt credential must not pass silently.

use base64::Engine;
use serde_json::{Map, Value};

use crate::http::options::fields::{expected, type_name, FieldError, Fields, OptionsError};
use crate::storage::export::azure::AzureStore;
use crate::storage::export::gcs::{GcsCredentials, GcsStore};
use crate::storage::export::s3::{S3Store, CANNED_ACLS};
use crate::storage::export::target::WriteHeaders;
use crate::storage::export::Stores;
use crate::storage::secret::Secret;

fn invalid(field: impl Into<String>, message: impl Into<String>) -> OptionsError {
    OptionsError::Invalid(FieldError::new(field, message))
}

fn unsupported(field: impl Into<String>, message: impl Into<String>) -> OptionsError {
    OptionsError::Unsupported(FieldError::new(field, message))
}

/// Parses whichever of the three `*_store` objects are present.
pub fn parse_stores(options: &Fields) -> Result<Stores, OptionsError> {
    let mut stores = Stores::default();
    if let Some(v) = options.present("s3_store") {
        stores.s3 = Some(parse_s3(v)?);
    }
    if let Some(v) = options.present("azure_store") {
        stores.azure = Some(parse_azure(v)?);
    }
    if let Some(v) = options.present("gcs_store") {
        stores.gcs = Some(parse_gcs(v)?);
    }
    Ok(stores)
}

/// The fields each store object takes.
pub(crate) fn store_fields(store: &str) -> &'static [&'static str] {
    match store {
        "s3_store" => &[
            "key", "secret", "bucket", "path", "region", "endpoint", "acl", "headers",
        ],
        "azure_store" => &["account", "key", "container", "path", "endpoint"],
        _ => &["credentials", "bucket", "path", "endpoint"],
    }
}

/// The store's object, refusing any field it does not take.
fn open<'a>(store: &'static str, value: &'a Value) -> Result<Fields<'a>, OptionsError> {
    let object = value
        .as_object()
        .ok_or_else(|| expected(store, store, "an object", value))?;
    let known = store_fields(store);
    if let Some(key) = object.keys().find(|k| !known.contains(&k.as_str())) {
        return Err(invalid(
            format!("{store}.{key}"),
            format!(
                "{store}.{key} is not a field of {store}; it takes {}",
                known.join(", ")
            ),
        ));
    }
    Ok(Fields::new(object, store))
}

/// A trimmed, non-empty string. A secret's value is never echoed, only its type.
fn text(f: &Fields, field: &str) -> Result<Option<String>, OptionsError> {
    let name = f.path(field);
    match f.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => {
            Err(invalid(&name, format!("{name} must not be empty")))
        }
        Some(Value::String(s)) => Ok(Some(s.trim().to_string())),
        Some(other) => Err(invalid(
            &name,
            format!(
                "Expected a string for {name} but received a value of type {}",
                type_name(other)
            ),
        )),
    }
}

fn required(f: &Fields, field: &str) -> Result<String, OptionsError> {
    text(f, field)?.ok_or_else(|| {
        let name = f.path(field);
        invalid(&name, format!("{name} is required"))
    })
}

fn endpoint(f: &Fields) -> Result<Option<String>, OptionsError> {
    let Some(endpoint) = text(f, "endpoint")? else {
        return Ok(None);
    };
    let name = f.path("endpoint");
    let url = url::Url::parse(&endpoint)
        .map_err(|e| invalid(&name, format!("{name} must be an http(s) URL: {e}")))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(invalid(
            &name,
            format!("{name} must be an http or https URL"),
        ));
    }
    Ok(Some(endpoint.trim_end_matches('/').to_string()))
}

fn object_path(f: &Fields) -> Result<String, OptionsError> {
    let path = required(f, "path")?;
    let path = path.trim_start_matches('/').to_string();
    if path.is_empty() || path.chars().any(char::is_control) {
        let name = f.path("path");
        return Err(invalid(
            &name,
            format!("{name} must name an object, e.g. \"images/photo.jpg\" or \"images/\""),
        ));
    }
    Ok(path)
}

fn parse_s3(value: &Value) -> Result<S3Store, OptionsError> {
    let f = open("s3_store", value)?;
    let acl = text(&f, "acl")?;
    if let Some(acl) = &acl {
        if !CANNED_ACLS.contains(&acl.as_str()) {
            return Err(invalid(
                "s3_store.acl",
                format!(
                    "s3_store.acl {acl:?} is not a canned ACL; use one of {}",
                    CANNED_ACLS.join(", ")
                ),
            ));
        }
    }
    Ok(S3Store {
        key: Secret::new(required(&f, "key")?),
        secret: Secret::new(required(&f, "secret")?),
        bucket: required(&f, "bucket")?,
        path: object_path(&f)?,
        region: text(&f, "region")?.unwrap_or_else(|| "us-east-1".into()),
        endpoint: endpoint(&f)?,
        acl,
        headers: parse_headers(f.get("headers"))?,
    })
}

fn parse_headers(value: Option<&Value>) -> Result<WriteHeaders, OptionsError> {
    let mut headers = WriteHeaders::default();
    let object = match value {
        None | Some(Value::Null) => return Ok(headers),
        Some(Value::Object(o)) => o,
        Some(other) => {
            return Err(expected(
                "s3_store.headers",
                "s3_store.headers",
                "an object of header names to strings",
                other,
            )
            .into())
        }
    };
    for (name, value) in object {
        let field = format!("s3_store.headers.{name}");
        let Some(text) = value.as_str() else {
            return Err(expected(&field, &field, "a string", value).into());
        };
        if text.chars().any(char::is_control) {
            return Err(invalid(
                &field,
                format!("{field} must not contain control characters"),
            ));
        }
        set_header(&mut headers, name, text.to_string(), field)?;
    }
    Ok(headers)
}

/// The headers an export can carry: Cache-Control, Content-Type, Content-Encoding, x-amz-meta-*.
fn set_header(
    headers: &mut WriteHeaders,
    name: &str,
    text: String,
    field: String,
) -> Result<(), OptionsError> {
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "cache-control" => headers.cache_control = Some(text),
        "content-type" => headers.content_type = Some(text),
        "content-encoding" => headers.content_encoding = Some(text),
        _ => match lower.strip_prefix("x-amz-meta-") {
            Some(meta) if !meta.is_empty() => headers.metadata.push((meta.to_string(), text)),
            _ => {
                return Err(unsupported(
                    field,
                    format!(
                        "s3_store.headers: {name:?} is not supported; pixpress can set Cache-Control, Content-Type, Content-Encoding and x-amz-meta-* on an export"
                    ),
                ))
            }
        },
    }
    Ok(())
}

fn parse_azure(value: &Value) -> Result<AzureStore, OptionsError> {
    let f = open("azure_store", value)?;
    let key = required(&f, "key")?;
    if base64::engine::general_purpose::STANDARD
        .decode(&key)
        .is_err()
    {
        return Err(invalid(
            "azure_store.key",
            "azure_store.key must be the storage account's access key (base64), as shown under Access keys",
        ));
    }
    Ok(AzureStore {
        account: required(&f, "account")?,
        key: Secret::new(key),
        container: required(&f, "container")?,
        path: object_path(&f)?,
        endpoint: endpoint(&f)?,
    })
}

fn parse_gcs(value: &Value) -> Result<GcsStore, OptionsError> {
    let f = open("gcs_store", value)?;
    let credentials = gcs_credentials(f.get("credentials"))?;
    Ok(GcsStore {
        credentials,
        bucket: required(&f, "bucket")?,
        path: object_path(&f)?,
        endpoint: endpoint(&f)?,
    })
}

/// A service-account key (as an object or its JSON text) or an OAuth2 access token.
fn gcs_credentials(value: Option<&Value>) -> Result<GcsCredentials, OptionsError> {
    match value {
        Some(Value::Object(o)) => service_account(o),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Object(o)) => service_account(&o),
            _ if !s.trim().is_empty() && !s.trim_start().starts_with('{') => {
                Ok(GcsCredentials::Token(Secret::new(s.trim())))
            }
            _ => Err(invalid(
                "gcs_store.credentials",
                "gcs_store.credentials is not valid JSON: give the service-account key file's JSON (as an object or a string) or an OAuth2 access token",
            )),
        },
        None | Some(Value::Null) => Err(invalid(
            "gcs_store.credentials",
            "gcs_store.credentials is required: the service-account key file's JSON, or an OAuth2 access token",
        )),
        Some(other) => Err(invalid(
            "gcs_store.credentials",
            format!(
                "Expected an object or a string for gcs_store.credentials but received a value of type {}",
                type_name(other)
            ),
        )),
    }
}

/// Only service-account keys: other credential types (external accounts) name files or URLs
/// that the server would read or call, which a request must not be able to choose.
fn service_account(object: &Map<String, Value>) -> Result<GcsCredentials, OptionsError> {
    if object.get("type").and_then(Value::as_str) != Some("service_account") {
        return Err(unsupported(
            "gcs_store.credentials",
            "gcs_store.credentials must be a service-account key (\"type\": \"service_account\") or an OAuth2 access token; other credential types are not accepted",
        ));
    }
    for field in ["client_email", "private_key"] {
        if !object.get(field).is_some_and(Value::is_string) {
            return Err(invalid(
                "gcs_store.credentials",
                format!(
                    "gcs_store.credentials lacks {field}: give the whole service-account key file"
                ),
            ));
        }
    }
    Ok(GcsCredentials::ServiceAccount(Secret::new(
        Value::Object(object.clone()).to_string(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn stores(v: Value) -> Result<Stores, OptionsError> {
        parse_stores(&Fields::new(v.as_object().unwrap(), ""))
    }

    #[test]
    fn stores_parse_and_secrets_stay_hidden() {
        let s = stores(json!({
            "s3_store": {"key": "AKIAEXAMPLEKEY", "secret": "s3cr3t-value", "bucket": "b", "path": "/p/x.jpg",
                         "headers": {"Cache-Control": "max-age=60", "x-amz-meta-owner": "me"}},
            "azure_store": {"account": "acct", "key": "a2V5LXZhbHVl", "container": "c", "path": "p"},
            "gcs_store": {"credentials": "ya29.token-value", "bucket": "g", "path": "p"}
        }))
        .unwrap();
        let s3 = s.s3.as_ref().unwrap();
        assert_eq!(s3.path, "p/x.jpg");
        assert_eq!(s3.region, "us-east-1");
        assert_eq!(s3.headers.cache_control.as_deref(), Some("max-age=60"));
        assert_eq!(s3.headers.metadata, vec![("owner".into(), "me".into())]);
        assert!(matches!(
            s.gcs.as_ref().unwrap().credentials,
            GcsCredentials::Token(_)
        ));
        let printed = format!("{s:?}");
        for secret in [
            "AKIAEXAMPLEKEY",
            "s3cr3t-value",
            "a2V5LXZhbHVl",
            "ya29.token-value",
        ] {
            assert!(!printed.contains(secret), "{secret} leaked in {printed}");
        }
    }

    #[test]
    fn bad_stores_name_the_field() {
        let field = |v: Value| match stores(v).unwrap_err() {
            OptionsError::Invalid(e) | OptionsError::Unsupported(e) => e.field,
            e => panic!("{e}"),
        };
        assert_eq!(field(json!({"s3_store": "x"})), "s3_store");
        assert_eq!(
            field(json!({"s3_store": {"key": "k", "secret": "s", "bucket": "b"}})),
            "s3_store.path"
        );
        assert_eq!(
            field(
                json!({"s3_store": {"key": "k", "secret": "s", "bucket": "b", "path": "p", "acl": "world-writable"}})
            ),
            "s3_store.acl"
        );
        assert_eq!(
            field(
                json!({"s3_store": {"key": "k", "secret": "s", "bucket": "b", "path": "p", "headers": {"Expires": "x"}}})
            ),
            "s3_store.headers.Expires"
        );
        assert_eq!(
            field(
                json!({"s3_store": {"key": "k", "secret": "s", "bucket": "b", "path": "p", "endpoint": "ftp://x"}})
            ),
            "s3_store.endpoint"
        );
        assert_eq!(
            field(
                json!({"azure_store": {"account": "a", "key": "k", "container": "c", "path": "p", "bogus": 1}})
            ),
            "azure_store.bogus"
        );
        assert_eq!(
            field(
                json!({"gcs_store": {"credentials": {"type": "external_account", "credential_source": {"file": "/etc/passwd"}}, "bucket": "b", "path": "p"}})
            ),
            "gcs_store.credentials"
        );
        // A secret of the wrong type is described by its type only, never echoed.
        let e = stores(
            json!({"s3_store": {"key": 12345678, "secret": "s", "bucket": "b", "path": "p"}}),
        )
        .unwrap_err();
        assert!(!e.to_string().contains("12345678"), "{e}");
    }
}
