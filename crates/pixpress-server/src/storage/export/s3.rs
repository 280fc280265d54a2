//! `s3_store`: an S3 or S3-compatible bucket. This module owns the typed store (credentials as
//! [`Secret`]s, canned ACL, write headers), its target settings, and PutObjectAcl — the one S3
//! call OpenDAL does not make.

use crate::storage::export::target::{TargetSpec, WriteHeaders};
use crate::storage::operator::{self, Backend};
use crate::storage::secret::Secret;

/// `s3_store`: an S3 or S3-compatible bucket.
#[derive(Clone, Debug)]
pub struct S3Store {
    pub key: Secret,
    pub secret: Secret,
    pub bucket: String,
    pub path: String,
    pub region: String,
    pub endpoint: Option<String>,
    /// A canned ACL (`public-read`, …) set with PutObjectAcl after the write.
    pub acl: Option<String>,
    pub headers: WriteHeaders,
}

/// S3's canned ACLs (<https://docs.aws.amazon.com/AmazonS3/latest/userguide/acl-overview.html#canned-acl>).
pub const CANNED_ACLS: [&str; 7] = [
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
];

impl S3Store {
    /// AWS's regional endpoint unless the request named one.
    fn endpoint_or_default(&self) -> String {
        self.endpoint
            .clone()
            .unwrap_or_else(|| format!("https://s3.{}.amazonaws.com", self.region))
    }

    pub(super) fn spec(&self) -> TargetSpec {
        let backend = Backend::S3(operator::S3 {
            bucket: self.bucket.clone(),
            root: None,
            region: self.region.clone(),
            endpoint: self.endpoint.clone(),
            access_key_id: Some(self.key.clone()),
            secret_access_key: Some(self.secret.clone()),
        });
        TargetSpec {
            provider: "s3",
            bucket: self.bucket.clone(),
            path: self.path.clone(),
            backend,
            base_url: format!("{}/{}", self.endpoint_or_default(), self.bucket),
            headers: self.headers.clone(),
            secrets: vec![self.key.clone(), self.secret.clone()],
            endpoint_to_check: self.endpoint.clone(),
        }
    }
}

/// Sets a canned ACL on an object just written: S3's PutObjectAcl (`PUT /bucket/key?acl`
/// with `x-amz-acl`), signed with SigV4 by reqsign. Buckets with ACLs disabled (S3's default for
/// new buckets) refuse it with their own message, which is returned.
pub(super) async fn put_object_acl(
    client: &reqwest::Client,
    s3: &S3Store,
    path: &str,
    acl: &str,
) -> Result<(), String> {
    let mut url = url::Url::parse(&s3.endpoint_or_default()).map_err(|e| e.to_string())?;
    url.path_segments_mut()
        .map_err(|()| "the endpoint cannot take a path".to_string())?
        .pop_if_empty()
        .push(&s3.bucket)
        .extend(path.split('/'));
    url.set_query(Some("acl"));
    let mut request = client
        .put(url)
        .header("x-amz-acl", acl)
        .build()
        .map_err(|e| e.to_string())?;
    let credential = reqsign::AwsCredential {
        access_key_id: s3.key.expose().to_string(),
        secret_access_key: s3.secret.expose().to_string(),
        session_token: None,
        expires_in: None,
    };
    reqsign::AwsV4Signer::new("s3", &s3.region)
        .sign(&mut request, &credential)
        .map_err(|e| e.to_string())?;
    let response = client
        .execute(request)
        .await
        .map_err(|e| format!("the store could not be reached: {e}"))?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let body = response.text().await.unwrap_or_default();
    Err(
        match (xml_element(&body, "Code"), xml_element(&body, "Message")) {
            (Some(code), Some(message)) => format!("{code}: {message}"),
            _ => format!("HTTP {status}"),
        },
    )
}

/// The text of `<name>…</name>` in an S3 error body.
fn xml_element<'a>(xml: &'a str, name: &str) -> Option<&'a str> {
    let start = xml.find(&format!("<{name}>"))? + name.len() + 2;
    let len = xml[start..].find('<')?;
    Some(&xml[start..start + len])
}
