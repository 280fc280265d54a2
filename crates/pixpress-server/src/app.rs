//! The axum application: shared state, the router, and start-up (database, first key, stores,
//! background sweep, graceful shutdown). Instances keep no state of their own beyond caches:
//! keys and result records are in the database, result bytes in the result store.

use std::net::SocketAddr;

use axum::extract::DefaultBodyLimit;
use axum::http::{header, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::{get, post, MethodRouter};
use axum::Router;
use pixpress_core::Limits;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::config::ServerConfig;
use crate::db::{self, Db};
use crate::error::ApiError;
use crate::export::Exporter;
use crate::fetch::Fetcher;
use crate::fetch_guard::AddressPolicy;
use crate::gate::WorkGate;
use crate::plans::Plans;
use crate::ratelimit::RateLimiter;
use crate::results::ResultStore;
use crate::storage::ObjectStore;
use crate::{keys, request_id, routes};

/// JSON option bodies are small; the image itself comes by URL or in the multipart upload.
const MAX_JSON_BODY: usize = 1024 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub results: ResultStore,
    pub fetcher: Fetcher,
    pub limits: Limits,
    pub public_url: String,
    pub gate: WorkGate,
    pub plans: Plans,
    pub limiter: RateLimiter,
    /// Writes to the users' own buckets (`s3_store`, `azure_store`, `gcs_store`).
    pub exporter: Exporter,
}

impl AppState {
    /// Runs CPU-heavy image work on the blocking pool once the gate admits it (worker slot and
    /// predicted memory), so one big image never stalls the async runtime serving everyone else.
    pub async fn run_image_work<T, F>(&self, cost_mib: u64, work: F) -> Result<T, ApiError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let admission = self.gate.admit(cost_mib).await?;
        let result = tokio::task::spawn_blocking(work).await;
        drop(admission);
        result.map_err(|e| ApiError::internal("image worker failed", e))
    }
}

pub fn router(state: AppState, max_upload_bytes: u64) -> Router {
    let upload_limit = usize::try_from(max_upload_bytes)
        .unwrap_or(usize::MAX)
        .saturating_add(MAX_JSON_BODY);
    let v1 = Router::new()
        .route("/v1/", limited(post(routes::optimize_url), MAX_JSON_BODY))
        .route(
            "/v1/url",
            limited(post(routes::optimize_url), MAX_JSON_BODY),
        )
        .route(
            "/v1/upload",
            limited(post(routes::optimize_upload), upload_limit),
        )
        .route("/v1/images/{file}", get(routes::hosted_image))
        .route("/v1/usage", get(routes::usage_report))
        .route("/healthz", get(routes::healthz))
        .route("/readyz", get(routes::readyz));
    v1.fallback(routes::not_found_fallback)
        .layer(axum::middleware::from_fn(request_id::middleware))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .with_state(state)
}

/// Caps a route's body at `limit` bytes: declared lengths are refused before reading, and
/// undeclared (chunked) bodies are cut off by axum's limit while streaming.
fn limited(route: MethodRouter<AppState>, limit: usize) -> MethodRouter<AppState> {
    route
        .layer(DefaultBodyLimit::max(limit))
        .layer(axum::middleware::from_fn_with_state(
            limit,
            reject_declared_oversize,
        ))
}

/// Answers 413 from the Content-Length header alone, before a byte of an oversized body is read.
async fn reject_declared_oversize(
    axum::extract::State(limit): axum::extract::State<usize>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match declared {
        Some(len) if len > limit as u64 => ApiError::too_large(limit as u64).into_response(),
        _ => next.run(request).await,
    }
}

/// Opens the database and prints a first key when the key store is empty.
pub async fn open_database(config: &ServerConfig) -> anyhow::Result<Db> {
    db::open(&config.data_dir, config.database_url.as_deref()).await
}

pub async fn serve(config: ServerConfig) -> anyhow::Result<()> {
    let db = open_database(&config).await?;
    let store = ObjectStore::open(&config.storage, &config.data_dir.join("results"))?;
    let results = ResultStore::new(store, config.result_ttl);
    tracing::info!(storage = %store_location(&results), "result store opened");
    let fetcher = Fetcher::new(
        AddressPolicy::new(config.fetch_allow.clone()),
        config.max_input_bytes,
        config.fetch_connect_timeout,
        config.fetch_timeout,
    )?;
    let exporter = Exporter::new(
        AddressPolicy::new(config.fetch_allow.clone()),
        config.fetch_connect_timeout,
        config.fetch_timeout,
    )?;
    let listener = std::net::TcpListener::bind(config.listen)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let tls = tls_config(&config).await?;
    let limiter = match &config.redis_url {
        Some(url) => RateLimiter::redis(url).await?,
        None => RateLimiter::memory(),
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let public_url = public_url(&config, scheme, bound);
    print_first_key_if_none(&db, &public_url).await?;

    let limits = Limits {
        max_pixels: config.max_pixels,
        ..Limits::default()
    };
    let state = AppState {
        db: db.clone(),
        results: results.clone(),
        fetcher,
        limits,
        public_url: public_url.clone(),
        gate: WorkGate::new(config.workers, config.memory_budget_mib, config.max_queue),
        plans: config.plans.clone(),
        limiter,
        exporter,
    };
    tokio::spawn(results.sweep_forever(db, config.sweep_interval));
    let app = router(state, config.max_input_bytes);
    println!("pixpress listening on {public_url}");
    tracing::info!(address = %bound, scheme, "listening");
    match tls {
        Some(tls) => {
            let handle = axum_server::Handle::new();
            let on_signal = handle.clone();
            tokio::spawn(async move {
                shutdown_signal().await;
                on_signal.graceful_shutdown(Some(std::time::Duration::from_secs(60)));
            });
            axum_server::from_tcp_rustls(listener, tls)
                .handle(handle)
                .serve(app.into_make_service())
                .await?;
        }
        None => {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            axum::serve(listener, app)
                .with_graceful_shutdown(shutdown_signal())
                .await?;
        }
    }
    tracing::info!("shut down cleanly");
    Ok(())
}

fn store_location(results: &ResultStore) -> String {
    results.store().location().to_string()
}

fn public_url(config: &ServerConfig, scheme: &str, bound: SocketAddr) -> String {
    match &config.public_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => format!("{scheme}://{bound}"),
    }
}

/// HTTPS with rustls (ring): TLS 1.2 and 1.3 only, as rustls offers nothing older.
async fn tls_config(
    config: &ServerConfig,
) -> anyhow::Result<Option<axum_server::tls_rustls::RustlsConfig>> {
    match (&config.tls_cert, &config.tls_key) {
        (Some(cert), Some(key)) => {
            // Several crates could register a provider; the first install wins, which is fine.
            let _ = rustls::crypto::ring::default_provider().install_default();
            let tls = axum_server::tls_rustls::RustlsConfig::from_pem_file(cert, key)
                .await
                .map_err(|e| anyhow::anyhow!("loading the TLS certificate/key: {e}"))?;
            Ok(Some(tls))
        }
        (None, None) => Ok(None),
        _ => anyhow::bail!("--tls-cert and --tls-key go together"),
    }
}

/// On first start the key store is empty: create one free key and show it once (SPEC §1).
async fn print_first_key_if_none(db: &Db, public_url: &str) -> anyhow::Result<()> {
    if keys::count(db).await? > 0 {
        return Ok(());
    }
    let (key, info) = keys::create(db, "free", Some("first key")).await?;
    println!(
        "pixpress: created your first API key (id {}, plan {}). It is shown only this once:",
        info.id, info.plan
    );
    println!("  {key}");
    println!("Try it:");
    println!(
        "  curl -F 'image=@photo.jpg' -F 'data={{\"api_key\": \"{key}\", \"lossy\": true}}' {public_url}/v1/upload"
    );
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}
