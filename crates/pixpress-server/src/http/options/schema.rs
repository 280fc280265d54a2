//! The options as OpenAPI schemas: typed mirrors of what the parser in this folder reads from
//! JSON (`POST /v1/` and `/v1/url`, the `data` part of `/v1/upload`, `resize`, the `*_store`
//! objects). The parser works over `serde_json::Value` and these types are never deserialised
//! into; the tests below check that each one names exactly the fields its parser accepts, so the
//! document cannot drift from the parser.

#![allow(dead_code)] // the types exist for their schemas only

use std::collections::BTreeMap;

use serde::Deserialize;
use utoipa::ToSchema;

/// Declares the two option objects from one field list: [`UrlOptions`] (with the required
/// `url`) and [`UploadOptions`] (the `data` part, which takes no `url`).
macro_rules! option_objects {
    ($($(#[$attr:meta])* $field:ident: $ty:ty,)*) => {
        /// The JSON body of `POST /v1/` and `POST /v1/url`. Unknown fields are ignored and
        /// named in `warnings`.
        #[derive(Deserialize, ToSchema)]
        pub struct UrlOptions {
            /// The http(s) address of the image. Loopback, private, link-local and metadata
            /// addresses are refused (400 `url_not_allowed`) unless the server allows them.
            #[schema(format = "uri", example = "https://example.com/photo.jpg")]
            pub url: String,
            $($(#[$attr])* pub $field: $ty,)*
        }

        /// The `data` part of `POST /v1/upload`: the same options without `url`.
        #[derive(Deserialize, ToSchema)]
        pub struct UploadOptions {
            $($(#[$attr])* pub $field: $ty,)*
        }
    };
}

option_objects! {
    /// The API key; it may also come as `Authorization: Bearer` or `?api_key=`.
    api_key: Option<String>,
    /// `false` (default): no pixel changes. `true`: lossy, at `quality` or a searched one.
    lossy: Option<bool>,
    /// The encoder's quality (only with `lossy: true`); without it the quality is searched.
    #[schema(minimum = 0, maximum = 100)]
    quality: Option<u8>,
    /// The SSIMULACRA2 score the quality search aims at (default 80; only with `lossy: true`).
    #[schema(minimum = 0, maximum = 100)]
    quality_target: Option<f64>,
    resize: Option<ResizeOption>,
    format: Option<FormatName>,
    metadata: Option<MetadataOption>,
    /// The opaque colour transparent pixels are flattened on for JPEG output (default white).
    #[schema(example = "#ffffff")]
    background: Option<String>,
    /// `true`: measure and report `ssimulacra2` for a fixed `quality` too (a searched quality
    /// is always scored). Default `false`: a fixed quality does not pay for a score.
    score: Option<bool>,
    s3_store: Option<S3StoreOptions>,
    azure_store: Option<AzureStoreOptions>,
    gcs_store: Option<GcsStoreOptions>,
    /// Asynchronous mode: answer `202` with a job id at once, and POST the answer this call
    /// would have given (its JSON, with its status in `X-Pixpress-Status`) to this http(s)
    /// URL when it is ready, signed with the key's callback secret (`X-Pixpress-Signature:
    /// sha256=` HMAC-SHA256 of `<X-Pixpress-Timestamp>.<body>`), retried with backoff. The
    /// address policy of `url` applies (400 `url_not_allowed`). Not with `dry_run`.
    #[schema(format = "uri", example = "https://example.com/pixpress-callback")]
    callback_url: Option<String>,
    /// `true`: plan the request without encoding, hosting or metering it: the answer gives the
    /// upright source size, each output's crop rectangle in source pixels, its size and
    /// format, and the warnings known before encoding.
    dry_run: Option<bool>,
    /// A byte budget (with `lossy: true`): alone, the quality (fixed or searched) is lowered
    /// until the output fits, down to the codec's lowest (warning `max_bytes_not_reached`);
    /// with `min_ssimulacra2`, both must hold or the answer is 422 `budget_unreachable`.
    #[schema(minimum = 1)]
    max_bytes: Option<u64>,
    /// A score floor (with `lossy: true`, without `quality`/`quality_target`): the smallest
    /// output whose SSIMULACRA2 keeps it, in every candidate format for `auto`.
    #[schema(minimum = 0, maximum = 100)]
    min_ssimulacra2: Option<f64>,
}

/// The multipart body of `POST /v1/upload`.
#[derive(Deserialize, ToSchema)]
pub struct UploadForm {
    /// The image file (at most the server's input limit, 32 MB by default): JPEG, PNG, GIF,
    /// WebP, AVIF (an image sequence gives its first frame), BMP, TIFF (its first page) or
    /// JPEG XL (its first frame). Anything else, HEIC included, is 415 `unsupported_media_type`.
    #[schema(value_type = String, format = Binary)]
    pub image: Vec<u8>,
    /// The options, as JSON.
    pub data: Option<UploadOptions>,
}

/// The output format; default the input's, or for inputs pixpress reads but does not write,
/// PNG (BMP, TIFF, and JPEG XL coded losslessly or with alpha) or JPEG (other JPEG XL).
/// `auto` keeps the smallest candidate.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum FormatName {
    Jpeg,
    Jpg,
    Png,
    Webp,
    Avif,
    Gif,
    Auto,
}

/// Which metadata to keep: `strip` (default), `keep`, or a list of parts.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum MetadataOption {
    Preset(MetadataPreset),
    Parts(Vec<MetadataPart>),
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MetadataPreset {
    Strip,
    Keep,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MetadataPart {
    Exif,
    Icc,
    Xmp,
    Copyright,
    Geotag,
}

/// One resize, or an array of 1 to 10 (then the answer has `results`, one per entry).
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ResizeOption {
    One(ResizeSpecOptions),
    Many(Vec<ResizeSpecOptions>),
}

/// One resize; which fields a strategy reads is in the README (others are warned about).
#[derive(Deserialize, ToSchema)]
pub struct ResizeSpecOptions {
    pub strategy: StrategyName,
    #[schema(minimum = 1, maximum = 16384)]
    pub width: Option<u32>,
    #[schema(minimum = 1, maximum = 16384)]
    pub height: Option<u32>,
    /// The side of a `square`.
    #[schema(minimum = 1, maximum = 16384)]
    pub size: Option<u32>,
    /// The left edge of a `crop` window (with `y`).
    #[schema(minimum = 0, maximum = 16384)]
    pub x: Option<u32>,
    /// The top edge of a `crop` window (with `x`).
    #[schema(minimum = 0, maximum = 16384)]
    pub y: Option<u32>,
    /// A `crop` window's scale, in percent.
    #[schema(minimum = 1, maximum = 1000)]
    pub scale: Option<u32>,
    /// `n`/`t`, `nw`/`tl`, `ne`/`tr`, `w`/`l`, `c` (default), `e`/`r`, `se`/`br`, `sw`/`bl`,
    /// `s`/`b` or `smart`; an unknown value falls back to `c` with a warning.
    pub crop_mode: Option<String>,
    /// The padding colour of `fill` (CSS colour or `transparent`; default white).
    pub background: Option<String>,
    /// Allow `portrait`, `landscape` and `auto` to scale up.
    pub enlarge: Option<bool>,
    /// Names this entry's result in `results` (unique within the array).
    pub id: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum StrategyName {
    Exact,
    Portrait,
    Landscape,
    Auto,
    Fit,
    Crop,
    Square,
    Fill,
}

/// Also write the result to this S3 bucket (only the request's credentials are used).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct S3StoreOptions {
    pub key: String,
    pub secret: String,
    pub bucket: String,
    /// The object's key; ending in `/` makes it a folder. `{id}`, `{width}`, `{height}` and
    /// `{ext}` are replaced.
    pub path: String,
    /// Default `us-east-1`.
    pub region: Option<String>,
    /// An S3-compatible endpoint; it must pass the fetch address policy.
    #[schema(format = "uri")]
    pub endpoint: Option<String>,
    pub acl: Option<CannedAcl>,
    /// `Cache-Control`, `Content-Type`, `Content-Encoding` and `x-amz-meta-*` only.
    pub headers: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "kebab-case")]
pub enum CannedAcl {
    Private,
    PublicRead,
    PublicReadWrite,
    AuthenticatedRead,
    AwsExecRead,
    BucketOwnerRead,
    BucketOwnerFullControl,
}

/// Also write the result to this Azure Blob container.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AzureStoreOptions {
    pub account: String,
    /// The storage account's access key (base64).
    pub key: String,
    pub container: String,
    pub path: String,
    #[schema(format = "uri")]
    pub endpoint: Option<String>,
}

/// Also write the result to this Google Cloud Storage bucket.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GcsStoreOptions {
    pub credentials: GcsCredentialsOption,
    pub bucket: String,
    pub path: String,
    /// For emulators.
    #[schema(format = "uri")]
    pub endpoint: Option<String>,
}

/// A service-account key (as an object, or its JSON as a string), or an OAuth2 access token.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub enum GcsCredentialsOption {
    ServiceAccount(GcsServiceAccount),
    Token(String),
}

#[derive(Deserialize, ToSchema)]
pub struct GcsServiceAccount {
    #[serde(rename = "type")]
    pub kind: ServiceAccountType,
    pub client_email: String,
    pub private_key: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ServiceAccountType {
    ServiceAccount,
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;
    use utoipa::PartialSchema;

    use super::*;
    use crate::http::options::{resize, stores, NOT_YET, OPTION_FIELDS};

    fn properties<T: PartialSchema>() -> BTreeSet<String> {
        let schema = serde_json::to_value(T::schema()).unwrap();
        schema["properties"]
            .as_object()
            .unwrap_or_else(|| panic!("no properties in {schema}"))
            .keys()
            .cloned()
            .collect()
    }

    fn names(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn the_option_objects_name_every_field_the_parser_reads() {
        let mut parsed = names(&OPTION_FIELDS);
        parsed.extend(NOT_YET.iter().map(|(field, _)| field.to_string()));
        assert_eq!(properties::<UrlOptions>(), parsed);
        parsed.remove("url");
        assert_eq!(properties::<UploadOptions>(), parsed);
    }

    #[test]
    fn the_resize_object_names_every_resize_field() {
        assert_eq!(
            properties::<ResizeSpecOptions>(),
            names(&resize::RESIZE_FIELDS)
        );
        let strategies = serde_json::to_value(StrategyName::schema()).unwrap();
        let listed: Vec<&str> = strategies["enum"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(listed, resize::STRATEGIES);
    }

    #[test]
    fn the_store_objects_name_every_store_field() {
        assert_eq!(
            properties::<S3StoreOptions>(),
            names(stores::store_fields("s3_store"))
        );
        assert_eq!(
            properties::<AzureStoreOptions>(),
            names(stores::store_fields("azure_store"))
        );
        assert_eq!(
            properties::<GcsStoreOptions>(),
            names(stores::store_fields("gcs_store"))
        );
        let acls = serde_json::to_value(CannedAcl::schema()).unwrap();
        let listed: Vec<&str> = acls["enum"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(listed, crate::storage::export::s3::CANNED_ACLS);
    }
}
