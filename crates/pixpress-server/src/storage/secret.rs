//! Credentials for object stores, the server's own and those a request brings: [`Secret`] keeps
//! them out of `Debug` and serialisation, and [`redact`] takes them out of a store's messages.

/// A credential: kept out of `Debug`, `Display` and serialisation, so it cannot reach a log line
/// or a response by accident.
#[derive(Clone, Default, PartialEq, Eq, serde::Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for handing to the store client only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Replaces every occurrence of the given secrets (at least 4 characters long) in `text`.
pub fn redact(text: &str, secrets: &[&Secret]) -> String {
    let mut text = text.to_string();
    for secret in secrets {
        if secret.0.len() >= 4 {
            text = text.replace(&secret.0, "[redacted]");
        }
    }
    text
}
