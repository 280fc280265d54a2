//! Reading `POST /v1/upload`'s multipart body: the `image` part (or `file`, as Kraken's clients
//! name it; counted against the byte limit as it streams in) and the `data` part (the options'
//! JSON, at most 64 KiB). Unknown parts are drained and ignored, like unknown JSON fields.

use axum::body::Bytes;
use axum::extract::multipart::{MultipartError, MultipartRejection};
use axum::extract::Multipart;

/// Largest `data` part.
const MAX_DATA_PART: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("expected multipart/form-data with parts `image` and `data`: {}", .0.body_text())]
    NotMultipart(#[from] MultipartRejection),
    #[error("{}", .0.body_text())]
    Malformed(#[from] MultipartError),
    #[error("the multipart part `{0}` was sent more than once")]
    Duplicate(&'static str),
    /// The image is larger than the byte limit.
    #[error("the image is larger than the limit of {0} bytes")]
    ImageTooLarge(u64),
    #[error("the `data` part is larger than 64 KiB")]
    DataTooLarge,
    #[error("the `data` part is not UTF-8 JSON")]
    DataNotUtf8,
    #[error("the multipart part `image` (the file; `file` is accepted too) is missing")]
    MissingImage,
}

/// The parts of one upload, as sent.
pub struct Parts {
    pub image: Option<Bytes>,
    /// The image part's file name as the client gave it (Kraken answers echo it).
    pub file_name: Option<String>,
    pub data: Option<String>,
}

/// Reads the `image` (or `file`) and `data` parts, counting image bytes as they stream in.
pub async fn read_parts(mut multipart: Multipart, max_bytes: u64) -> Result<Parts, UploadError> {
    let mut parts = Parts {
        image: None,
        file_name: None,
        data: None,
    };
    while let Some(mut field) = multipart.next_field().await? {
        let name = field.name().unwrap_or_default().to_string();
        match name.as_str() {
            "image" | "file" => {
                if parts.image.is_some() {
                    return Err(UploadError::Duplicate(if name == "file" {
                        "file"
                    } else {
                        "image"
                    }));
                }
                parts.file_name = field.file_name().map(str::to_string);
                let mut buf = bytes::BytesMut::new();
                while let Some(chunk) = field.chunk().await? {
                    if (buf.len() + chunk.len()) as u64 > max_bytes {
                        return Err(UploadError::ImageTooLarge(max_bytes));
                    }
                    buf.extend_from_slice(&chunk);
                }
                parts.image = Some(buf.freeze());
            }
            "data" => {
                if parts.data.is_some() {
                    return Err(UploadError::Duplicate("data"));
                }
                let mut buf = Vec::new();
                while let Some(chunk) = field.chunk().await? {
                    if buf.len() + chunk.len() > MAX_DATA_PART {
                        return Err(UploadError::DataTooLarge);
                    }
                    buf.extend_from_slice(&chunk);
                }
                parts.data = Some(String::from_utf8(buf).map_err(|_| UploadError::DataNotUtf8)?);
            }
            _ => while field.chunk().await?.is_some() {},
        }
    }
    Ok(parts)
}
