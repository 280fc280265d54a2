//! Fetch: getting a user's image from a URL. The client (`client`: timeouts, redirects, the byte
//! limit while streaming) and the address policy every connection must pass (`guard`: SSRF).

pub mod client;
pub mod guard;
