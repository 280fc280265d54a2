//! The OpenAPI 3.1 document served at `GET /v1/openapi.json`, derived from the types the server
//! really answers with: the paths come from the handlers' `#[utoipa::path]` attributes, the
//! bodies from the answer, usage, error and option types, and the list of error codes from
//! [`ErrorCode`] itself. This module also serves the document (its own handler, so that the handlers'
//! module does not reach back here); the response sets the paths share are in `responses`.

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr, Schema};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::accounts::usage::AllowanceReport;
use crate::http::error::ErrorCode;
use crate::http::handlers;
use crate::http::options::schema::UploadForm;
use crate::service::answer::{
    DryRunAnswer, DryRunOutput, MultiResponse, OptimizeResponse, PixelRect, WarningSchema,
};
use crate::storage::export::StoredEntry;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "pixpress",
        description = "Self-hosted image optimisation API. Errors are `{\"error\": {\"code\", \"message\", \"request_id\", \"details\"?}}`; the codes are listed in the `ErrorCode` schema.",
        license(name = "GPL-3.0-or-later", identifier = "GPL-3.0-or-later")
    ),
    paths(
        handlers::optimize_url,
        handlers::optimize_url_alias,
        handlers::optimize_upload,
        handlers::hosted_image,
        handlers::usage_report,
        handlers::healthz,
        handlers::readyz,
        openapi_document,
        handlers::metrics_text,
    ),
    components(schemas(
        ErrorCode,
        UploadForm,
        OptimizeResponse,
        MultiResponse,
        DryRunAnswer,
        DryRunOutput,
        PixelRect,
        WarningSchema,
        StoredEntry,
        AllowanceReport
    )),
    modifiers(&SecuritySchemes, &ErrorCodeList)
)]
struct ApiDoc;

/// The document, as served.
pub fn document() -> Document {
    ApiDoc::openapi()
}

/// The three ways to present a key: `Authorization: Bearer`, `?api_key=`, or `api_key` in the
/// options (the last is a body field, so it is documented there, not here).
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("An API key, `pxk_…`"))
                    .build(),
            ),
        );
        components.add_security_scheme(
            "api_key",
            SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::new("api_key"))),
        );
    }
}

/// Writes what each error code means into the `ErrorCode` schema's description, from the same
/// list that answers them.
struct ErrorCodeList;

impl Modify for ErrorCodeList {
    fn modify(&self, openapi: &mut Document) {
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        let list: Vec<String> = ErrorCode::ALL
            .iter()
            .map(|code| format!("- `{}`: {}", code.as_str(), code.meaning()))
            .collect();
        if let Some(RefOr::T(Schema::Object(schema))) =
            components.schemas.get_mut(ErrorCode::name().as_ref())
        {
            schema.description = Some(format!(
                "Every error code the API answers with, and its status:\n{}",
                list.join("\n")
            ));
        }
    }
}

/// `GET /v1/openapi.json`: this document. No key needed.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    operation_id = "openapi_document",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3.1 document of this API", body = Object))
)]
pub async fn openapi_document() -> axum::Json<Document> {
    axum::Json(document())
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    use super::*;

    fn json() -> Value {
        serde_json::to_value(document()).unwrap()
    }

    #[test]
    fn the_document_is_openapi_3_1() {
        let doc = json();
        assert!(
            doc["openapi"].as_str().unwrap().starts_with("3.1."),
            "{}",
            doc["openapi"]
        );
        for path in [
            "/v1/",
            "/v1/url",
            "/v1/upload",
            "/v1/images/{file}",
            "/v1/usage",
            "/v1/openapi.json",
            "/metrics",
            "/healthz",
            "/readyz",
        ] {
            assert!(doc["paths"].get(path).is_some(), "{path} is not documented");
        }
    }

    #[test]
    fn every_error_code_is_listed() {
        let doc = json();
        let schema = &doc["components"]["schemas"]["ErrorCode"];
        let listed: Vec<&str> = schema["enum"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        let codes: Vec<&str> = ErrorCode::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(listed, codes);
        let description = schema["description"].as_str().unwrap();
        for code in codes {
            assert!(description.contains(&format!("`{code}`")), "{code}");
        }
    }

    #[test]
    fn every_reference_resolves() {
        let doc = json();
        let text = doc.to_string();
        let schemas = doc["components"]["schemas"].as_object().unwrap();
        for part in text.split("\"#/components/schemas/").skip(1) {
            let name = part.split('"').next().unwrap();
            assert!(
                schemas.contains_key(name),
                "{name} is referenced but not defined"
            );
        }
    }

    #[test]
    fn error_codes_serialise_as_their_wire_names() {
        for code in ErrorCode::ALL {
            assert_eq!(serde_json::to_value(code).unwrap(), code.as_str());
        }
    }

    #[test]
    fn the_optimise_paths_document_every_status_they_answer() {
        let doc = json();
        for (path, method) in [
            ("/v1/", "post"),
            ("/v1/url", "post"),
            ("/v1/upload", "post"),
        ] {
            let responses = doc["paths"][path][method]["responses"].as_object().unwrap();
            let statuses: Vec<&str> = responses.keys().map(String::as_str).collect();
            assert_eq!(
                statuses,
                ["200", "202", "400", "401", "413", "415", "422", "429", "500", "502", "503"],
                "{path}"
            );
        }
    }
}
