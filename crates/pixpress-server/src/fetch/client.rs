//! Fetching a user's image URL: http/https only, every resolved address and every redirect hop
//! checked by [`AddressPolicy`], the connection pinned to the checked address, at most five
//! redirects, connect and total timeouts, and the byte limit enforced while the body streams
//! (a lying or absent Content-Length cannot make us buffer more than the limit). This module
//! owns the [`Fetcher`], its typed [`FetchError`], and the guarded client that exports reuse.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::Url;

use crate::fetch::guard::AddressPolicy;

pub const MAX_REDIRECTS: usize = 5;

#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    #[error("url must be an absolute http or https URL ({0})")]
    InvalidUrl(String),
    #[error("url points to {0}, an address pixpress does not fetch from (loopback, private, link-local, metadata or similar)")]
    Refused(String),
    #[error("the URL answered HTTP {0}")]
    Status(u16),
    #[error("the image at the URL is larger than the limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("more than {MAX_REDIRECTS} redirects")]
    TooManyRedirects,
    #[error("the URL could not be reached: {0}")]
    Unreachable(String),
}

/// The address-refusal error, carried through reqwest's error chain and recognised again.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct RefusedAddress(String);

#[derive(Debug, thiserror::Error)]
#[error("too many redirects")]
struct RedirectLimit;

/// A DNS resolver that drops every address the policy refuses; reqwest then connects to what
/// this returned, so the checked address is the connected one.
struct GuardedResolver {
    policy: Arc<AddressPolicy>,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let host = name.as_str().to_string();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let permitted: Vec<SocketAddr> = addrs
                .iter()
                .copied()
                .filter(|a| policy.permits(a.ip()))
                .collect();
            if permitted.is_empty() {
                let shown = addrs
                    .first()
                    .map_or_else(|| host.clone(), |a| format!("{host} ({})", a.ip()));
                return Err(
                    Box::new(RefusedAddress(shown)) as Box<dyn std::error::Error + Send + Sync>
                );
            }
            Ok(Box::new(permitted.into_iter()) as Addrs)
        })
    }
}

#[derive(Clone)]
pub struct Fetcher {
    client: reqwest::Client,
    policy: Arc<AddressPolicy>,
    max_bytes: u64,
}

impl Fetcher {
    pub fn new(
        policy: AddressPolicy,
        max_bytes: u64,
        connect_timeout: Duration,
        total_timeout: Duration,
    ) -> reqwest::Result<Self> {
        let policy = Arc::new(policy);
        let redirect_policy = policy.clone();
        let client = reqwest::Client::builder()
            // Environment proxies would connect on our behalf and bypass the address check.
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver {
                policy: policy.clone(),
            }))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() > MAX_REDIRECTS {
                    return attempt.error(RedirectLimit);
                }
                match check_url_literal(attempt.url(), &redirect_policy) {
                    Ok(()) => attempt.follow(),
                    Err(FetchError::Refused(what)) => attempt.error(RefusedAddress(what)),
                    Err(e) => attempt.error(RefusedAddress(e.to_string())),
                }
            }))
            .connect_timeout(connect_timeout)
            .timeout(total_timeout)
            .user_agent(concat!("pixpress/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Fetcher {
            client,
            policy,
            max_bytes,
        })
    }

    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// The address check alone, ahead of a later fetch (a queued job's image URL).
    pub async fn check(&self, raw_url: &str) -> Result<(), FetchError> {
        check_url_now(raw_url, &self.policy).await.map(|_| ())
    }

    pub async fn fetch(&self, raw_url: &str) -> Result<Bytes, FetchError> {
        let url = Url::parse(raw_url).map_err(|e| FetchError::InvalidUrl(e.to_string()))?;
        check_url_literal(&url, &self.policy)?;
        let mut response = self.client.get(url).send().await.map_err(classify)?;
        if !response.status().is_success() {
            return Err(FetchError::Status(response.status().as_u16()));
        }
        if response
            .content_length()
            .is_some_and(|n| n > self.max_bytes)
        {
            return Err(FetchError::TooLarge {
                limit: self.max_bytes,
            });
        }
        let mut body = BytesMut::new();
        while let Some(chunk) = response.chunk().await.map_err(classify)? {
            if body.len() as u64 + chunk.len() as u64 > self.max_bytes {
                return Err(FetchError::TooLarge {
                    limit: self.max_bytes,
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    }
}

/// A client for other outbound requests on a user's behalf (exports to a user-named endpoint):
/// no proxies, no redirects, every resolved address checked by `policy`, bounded waits.
pub fn guarded_client(
    policy: Arc<AddressPolicy>,
    connect_timeout: Duration,
    total_timeout: Duration,
) -> reqwest::Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .dns_resolver(Arc::new(GuardedResolver { policy }))
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(connect_timeout)
        .timeout(total_timeout)
        .user_agent(concat!("pixpress/", env!("CARGO_PKG_VERSION")))
        .build()
}

/// Scheme check, and the address check for hosts written as IP literals (those never reach
/// the resolver).
pub fn check_url_literal(url: &Url, policy: &AddressPolicy) -> Result<(), FetchError> {
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(FetchError::InvalidUrl(format!(
            "scheme {:?} is not http or https",
            url.scheme()
        )));
    }
    let ip = match url.host() {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        Some(url::Host::Domain(_)) => return Ok(()),
        None => return Err(FetchError::InvalidUrl("the URL has no host".into())),
    };
    if policy.permits(ip) {
        Ok(())
    } else {
        Err(FetchError::Refused(ip.to_string()))
    }
}

/// [`check_url_literal`], then the addresses the host resolves to now: at least one must pass
/// the policy (a URL checked ahead of use, such as a callback's; the connection is checked
/// again by the guarded resolver when it is made).
pub async fn check_url_now(raw_url: &str, policy: &AddressPolicy) -> Result<Url, FetchError> {
    let url = Url::parse(raw_url).map_err(|e| FetchError::InvalidUrl(e.to_string()))?;
    check_url_literal(&url, policy)?;
    let Some(url::Host::Domain(host)) = url.host() else {
        return Ok(url);
    };
    let port = url.port_or_known_default().unwrap_or(80);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| FetchError::InvalidUrl(format!("the host {host} does not resolve: {e}")))?
        .collect();
    if addrs.iter().any(|a| policy.permits(a.ip())) {
        return Ok(url);
    }
    let shown = addrs
        .first()
        .map_or_else(|| host.to_string(), |a| format!("{host} ({})", a.ip()));
    Err(FetchError::Refused(shown))
}

fn classify(e: reqwest::Error) -> FetchError {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(err) = source {
        if let Some(refused) = err.downcast_ref::<RefusedAddress>() {
            return FetchError::Refused(refused.0.clone());
        }
        if err.downcast_ref::<RedirectLimit>().is_some() {
            return FetchError::TooManyRedirects;
        }
        source = err.source();
    }
    if e.is_timeout() {
        return FetchError::Unreachable("timed out".into());
    }
    FetchError::Unreachable(error_chain_text(&e))
}

fn error_chain_text(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(err) = source {
        text.push_str(": ");
        text.push_str(&err.to_string());
        source = err.source();
    }
    text
}
