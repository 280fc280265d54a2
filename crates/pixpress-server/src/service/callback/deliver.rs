//! Delivering a callback: the answer's exact bytes POSTed to the callback URL, signed with the
//! key's callback secret, through the guarded client (the fetch address policy checked again
//! on every connection, no redirects, no proxies), retried with backoff. This module owns the
//! signature scheme, the headers and the retry schedule.
//!
//! Signature: `X-Pixpress-Signature: sha256=<hex>` is HMAC-SHA256, keyed with the key's secret
//! (`pxs_…`, its UTF-8 bytes), of `<X-Pixpress-Timestamp>.<body>`: the timestamp's decimal
//! digits, one `.`, then the body bytes as sent. The timestamp (Unix seconds) is when the answer
//! was signed; every attempt sends the same body, timestamp and signature.
//!
//! Retries: an attempt fails on a connection error, a timeout or any non-2xx status; after a
//! failure the next attempt waits [`BACKOFF`] (1, 4, 16, 64 s), [`ATTEMPTS`] in all. The
//! receiver's answer body is never read.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::fetch::client::{check_url_now, guarded_client, FetchError};
use crate::fetch::guard::AddressPolicy;
use crate::storage::secret::Secret;

pub const SIGNATURE_HEADER: &str = "x-pixpress-signature";
pub const TIMESTAMP_HEADER: &str = "x-pixpress-timestamp";
pub const JOB_ID_HEADER: &str = "x-pixpress-job-id";
/// The status the synchronous call would have answered with (200, or the error's).
pub const STATUS_HEADER: &str = "x-pixpress-status";
/// 1 for the first attempt; not signed, so the signature is the same on every attempt.
pub const ATTEMPT_HEADER: &str = "x-pixpress-delivery-attempt";

/// Attempts per delivery.
pub const ATTEMPTS: usize = 5;
/// The wait after each failed attempt but the last.
pub const BACKOFF: [Duration; ATTEMPTS - 1] = [
    Duration::from_secs(1),
    Duration::from_secs(4),
    Duration::from_secs(16),
    Duration::from_secs(64),
];
/// How long one attempt may take, connection included.
pub const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// `sha256=` and the hex HMAC-SHA256 of `<timestamp>.<body>` under `secret`.
pub fn signature(secret: &Secret, timestamp: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.expose().as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// One callback to send: where, and the signed answer.
#[derive(Debug)]
pub struct Letter<'a> {
    pub url: &'a str,
    pub job_id: &'a str,
    pub status: u16,
    pub body: &'a str,
    pub timestamp: i64,
    pub signature: String,
}

/// How a delivery ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Delivered {
    /// The receiver answered 2xx on attempt `attempts`.
    Accepted { attempts: usize },
    /// Every attempt failed; `last` says how the last one did.
    GaveUp { attempts: usize, last: String },
}

#[derive(Clone)]
pub struct Deliverer {
    client: reqwest::Client,
    policy: Arc<AddressPolicy>,
    backoff: Vec<Duration>,
}

impl Deliverer {
    pub fn new(policy: AddressPolicy, connect_timeout: Duration) -> reqwest::Result<Self> {
        let policy = Arc::new(policy);
        Ok(Deliverer {
            client: guarded_client(policy.clone(), connect_timeout, ATTEMPT_TIMEOUT)?,
            policy,
            backoff: BACKOFF.to_vec(),
        })
    }

    /// The same deliverer with another wait between attempts (one attempt more than waits).
    pub fn with_backoff(mut self, backoff: Vec<Duration>) -> Self {
        self.backoff = backoff;
        self
    }

    /// The check made at submission: an http(s) URL whose host passes the address policy now.
    pub async fn check(&self, url: &str) -> Result<(), FetchError> {
        check_url_now(url, &self.policy).await.map(|_| ())
    }

    /// Sends `letter` until the receiver takes it or the attempts run out; `on_attempt` is
    /// told of each attempt before it is made (to count them).
    pub async fn deliver<F, Fut>(&self, letter: &Letter<'_>, mut on_attempt: F) -> Delivered
    where
        F: FnMut(usize) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        let attempts = self.backoff.len() + 1;
        let mut last = String::new();
        for attempt in 1..=attempts {
            on_attempt(attempt).await;
            match self.attempt(letter, attempt).await {
                Ok(()) => return Delivered::Accepted { attempts: attempt },
                Err(why) => last = why,
            }
            tracing::warn!(
                job_id = letter.job_id,
                attempt,
                "callback delivery failed: {last}"
            );
            if let Some(wait) = self.backoff.get(attempt - 1) {
                tokio::time::sleep(*wait).await;
            }
        }
        Delivered::GaveUp { attempts, last }
    }

    /// One POST; Ok for a 2xx. The response body is dropped unread.
    async fn attempt(&self, letter: &Letter<'_>, attempt: usize) -> Result<(), String> {
        let response = self
            .client
            .post(letter.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(SIGNATURE_HEADER, &letter.signature)
            .header(TIMESTAMP_HEADER, letter.timestamp.to_string())
            .header(JOB_ID_HEADER, letter.job_id)
            .header(STATUS_HEADER, letter.status.to_string())
            .header(ATTEMPT_HEADER, attempt.to_string())
            .body(letter.body.to_string())
            .send()
            .await
            .map_err(|e| describe(&e))?;
        let status = response.status();
        drop(response);
        if status.is_success() {
            Ok(())
        } else {
            Err(format!(
                "the callback URL answered HTTP {}",
                status.as_u16()
            ))
        }
    }
}

/// A failed attempt in words: the error and its causes (an address refusal among them).
fn describe(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(err) = source {
        text.push_str(": ");
        text.push_str(&err.to_string());
        source = err.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_covers_timestamp_and_body() {
        let secret = Secret::new("pxs_test");
        let signed = signature(&secret, 1_700_000_000, b"{\"a\":1}");
        assert!(
            signed.starts_with("sha256=") && signed.len() == 7 + 64,
            "{signed}"
        );
        assert_eq!(signed, signature(&secret, 1_700_000_000, b"{\"a\":1}"));
        assert_ne!(signed, signature(&secret, 1_700_000_001, b"{\"a\":1}"));
        assert_ne!(signed, signature(&secret, 1_700_000_000, b"{\"a\":2}"));
        assert_ne!(
            signed,
            signature(&Secret::new("pxs_other"), 1_700_000_000, b"{\"a\":1}")
        );
    }

    #[test]
    fn the_signature_is_standard_hmac_sha256() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        let secret = Secret::new("Jefe");
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        let expected = hex::encode(mac.finalize().into_bytes());
        assert_eq!(
            expected,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
        // "<timestamp>.<body>" with the timestamp's digits: here "1.x" equals data "1." + "x".
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"1.x");
        let ours = format!("sha256={}", hex::encode(mac.finalize().into_bytes()));
        assert_eq!(signature(&secret, 1, b"x"), ours);
    }

    #[tokio::test]
    async fn refused_addresses_are_refused_before_and_at_delivery() {
        let deliverer = Deliverer::new(AddressPolicy::default(), Duration::from_secs(1))
            .unwrap()
            .with_backoff(vec![Duration::ZERO]);
        for url in [
            "http://127.0.0.1:9/cb",
            "http://169.254.169.254/latest",
            "http://10.1.2.3/",
        ] {
            assert!(
                matches!(deliverer.check(url).await, Err(FetchError::Refused(_))),
                "{url}"
            );
        }
        assert!(matches!(
            deliverer.check("ftp://example.com/").await,
            Err(FetchError::InvalidUrl(_))
        ));
        let letter = Letter {
            url: "http://127.0.0.1:9/cb",
            job_id: "j",
            status: 200,
            body: "{}",
            timestamp: 1,
            signature: "sha256=00".into(),
        };
        let mut counted = 0;
        let outcome = deliverer
            .deliver(&letter, |_| {
                counted += 1;
                async {}
            })
            .await;
        assert!(
            matches!(outcome, Delivered::GaveUp { attempts: 2, .. }),
            "{outcome:?}"
        );
        assert_eq!(counted, 2);
    }
}
