//! The accept loop for both listeners (plain and TLS): this module owns the connection-level
//! defences against slow and idle clients. Every connection holds one of `max_connections`
//! slots; when all are taken the loop stops accepting and new connections wait in the kernel's
//! listen backlog until a slot frees (rather than being refused: every slot is bounded by the
//! deadlines below, so a slot always frees within about `header_timeout`, and a real client
//! waiting briefly is better than one turned away). A TLS handshake and a request head must
//! each arrive within `header_timeout`, and an idle keep-alive connection is closed after the
//! same time (hyper's header read timer starts as soon as it waits for the next request's
//! head). Slow request bodies are the `http::deadline` layer's business. Connections speak
//! HTTP/1.1 only (also over TLS), so these deadlines hold for every connection; HTTP/2's
//! streams would need their own.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::service::TowerToHyperService;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

/// How long in-flight requests may take to finish after a shutdown signal.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);

/// How long to pause accepting after an accept error that is not the client's (out of file
/// descriptors, …), so the loop does not spin while the condition lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// The deadlines and the cap of README's "Slow clients and connections".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// A TLS handshake, a request head and a keep-alive idle wait each end after this.
    pub header_timeout: Duration,
    /// Request bodies slower than this, in bytes per second averaged from their start, are cut
    /// once `body_rate_grace` has passed (0: no minimum).
    pub body_min_rate: u64,
    pub body_rate_grace: Duration,
    /// Connections open at once; more wait in the listen backlog for a slot.
    pub max_connections: u32,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_timeout: Duration::from_secs(10),
            body_min_rate: 16 * 1024,
            body_rate_grace: Duration::from_secs(10),
            max_connections: 1024,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LimitsError {
    #[error("--header-timeout must be more than zero")]
    ZeroHeaderTimeout,
    #[error("--max-connections must be at least 1")]
    NoConnections,
}

impl ConnectionLimits {
    /// Refuses settings hyper or the semaphore cannot work with.
    pub fn check(&self) -> Result<(), LimitsError> {
        if self.header_timeout.is_zero() {
            return Err(LimitsError::ZeroHeaderTimeout);
        }
        if self.max_connections == 0 {
            return Err(LimitsError::NoConnections);
        }
        Ok(())
    }
}

/// Serves `app` on `listener` (through `tls` when given) until `shutdown` completes, then
/// stops accepting, lets in-flight requests finish (at most [`DRAIN_TIMEOUT`]) and returns.
pub async fn serve(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    limits: ConnectionLimits,
    shutdown: impl std::future::Future<Output = ()>,
) {
    let slots = Arc::new(Semaphore::new(limits.max_connections as usize));
    let (stop_tx, stop_rx) = watch::channel(false);
    let builder = Arc::new(http1_builder(limits.header_timeout));
    tokio::pin!(shutdown);
    loop {
        let slot = tokio::select! {
            () = &mut shutdown => break,
            slot = Arc::clone(&slots).acquire_owned() => slot,
        };
        // The semaphore is never closed; an error here cannot happen, but is not worth a panic.
        let Ok(slot) = slot else { break };
        let accepted = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                let connection = Connection {
                    tls: tls.clone(),
                    app: app.clone(),
                    builder: Arc::clone(&builder),
                    stop: stop_rx.clone(),
                    handshake_timeout: limits.header_timeout,
                    _slot: slot,
                };
                tokio::spawn(connection.run(stream));
            }
            Err(e) if is_client_error(&e) => {}
            Err(e) => {
                tracing::warn!("accepting a connection failed: {e}");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection returns its slot when it ends: holding them all means none is left.
    let drained =
        tokio::time::timeout(DRAIN_TIMEOUT, slots.acquire_many(limits.max_connections)).await;
    if drained.is_err() {
        tracing::warn!("connections still open after {DRAIN_TIMEOUT:?}; closing them");
    }
}

/// HTTP/1.1 with hyper's header read timeout (which needs a timer to run at all).
fn http1_builder(header_timeout: Duration) -> Builder<TokioExecutor> {
    let mut builder = Builder::new(TokioExecutor::new()).http1_only();
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    builder
}

/// Errors that concern one connection only (the peer gave up before we accepted it).
fn is_client_error(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    )
}

/// One accepted connection and what it needs; dropping it returns its slot.
struct Connection {
    tls: Option<TlsAcceptor>,
    app: Router,
    builder: Arc<Builder<TokioExecutor>>,
    stop: watch::Receiver<bool>,
    handshake_timeout: Duration,
    _slot: OwnedSemaphorePermit,
}

impl Connection {
    async fn run(self, stream: TcpStream) {
        // Small JSON answers should not wait for Nagle.
        let _ = stream.set_nodelay(true);
        match self.tls.clone() {
            None => self.http(TokioIo::new(stream)).await,
            Some(acceptor) => {
                match tokio::time::timeout(self.handshake_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => self.http(TokioIo::new(stream)).await,
                    Ok(Err(e)) => tracing::debug!("TLS handshake failed: {e}"),
                    Err(_) => tracing::debug!("TLS handshake not done within the header timeout"),
                }
            }
        }
    }

    /// Serves requests on `io` until the client leaves, a deadline cuts it off, or shutdown
    /// (which lets the request in flight finish and then closes).
    async fn http<I>(mut self, io: I)
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        let service = TowerToHyperService::new(self.app.clone());
        let connection = self.builder.serve_connection(io, service);
        tokio::pin!(connection);
        let stop = async {
            // The guard `wait_for` returns must not live across the awaits below.
            let _ = self.stop.wait_for(|stop| *stop).await;
        };
        tokio::pin!(stop);
        tokio::select! {
            result = connection.as_mut() => log_end(result),
            () = &mut stop => {
                connection.as_mut().graceful_shutdown();
                log_end(connection.await);
            }
        }
    }
}

/// A connection ending with an error is the client's doing (it left, or was cut off).
fn log_end(result: Result<(), Box<dyn std::error::Error + Send + Sync>>) {
    if let Err(e) = result {
        tracing::debug!("connection ended: {e}");
    }
}
