//! Start-up wiring, the one place `anyhow` is allowed: opens the database, the result store,
//! the fetcher, exporter and rate limiter, the callback queue and deliverer, builds the
//! [`Service`], prints a first key when there is none, starts the background sweep and this
//! instance's callback worker, and serves the router (HTTP or HTTPS) until a shutdown
//! signal, through `conn`'s accept loop (deadlines, connection cap). Instances keep no state
//! of their own beyond caches: keys, result records and callback jobs are in the database,
//! result bytes and callback jobs' uploads in the result store.

use std::net::SocketAddr;
use std::sync::Arc;

use pixpress_core::Limits;

use crate::accounts::keys;
use crate::accounts::ratelimit::RateLimiter;
use crate::config::ServerConfig;
use crate::conn;
use crate::db::{self, Db};
use crate::fetch::client::Fetcher;
use crate::fetch::guard::AddressPolicy;
use crate::http::callback::HttpEdge;
use crate::http::deadline::{self, MinRate};
use crate::http::router::router;
use crate::service::admission::WorkGate;
use crate::service::callback::run::Runner;
use crate::service::callback::{Callbacks, Deliverer, Queue};
use crate::service::Service;
use crate::storage::export::Exporter;
use crate::storage::hosted::ObjectStore;
use crate::storage::results::ResultStore;

/// Opens the database and prints a first key when the key store is empty.
pub async fn open_database(config: &ServerConfig) -> anyhow::Result<Db> {
    Ok(db::open(&config.data_dir, config.database_url.as_deref()).await?)
}

pub async fn serve(config: ServerConfig) -> anyhow::Result<()> {
    config.connections.check()?;
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
    let callbacks = Callbacks {
        queue: Queue::open(&db::url(&config.data_dir, config.database_url.as_deref())?).await?,
        deliverer: Deliverer::new(
            AddressPolicy::new(config.fetch_allow.clone()),
            config.fetch_connect_timeout,
        )?,
    };
    let listener = std::net::TcpListener::bind(config.listen)?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let tls = tls_config(&config).await?;
    let limiter = match &config.redis_url {
        Some(url) => RateLimiter::redis(url, config.redis_down).await?,
        None => RateLimiter::memory(),
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let public_url = public_url(&config, scheme, bound);
    print_first_key_if_none(&db, &public_url).await?;

    let input_limits = Limits {
        max_pixels: config.max_pixels,
        ..Limits::default()
    };
    let service = Service {
        db: db.clone(),
        results: results.clone(),
        fetcher,
        input_limits,
        public_url: public_url.clone(),
        gate: work_gate(&config),
        plans: config.plans.clone(),
        limiter,
        exporter,
        callbacks: callbacks.clone(),
    };
    tokio::spawn(results.sweep_forever(db.clone(), config.sweep_interval));
    tokio::spawn(
        callbacks
            .clone()
            .sweep_forever(db, config.sweep_interval, config.result_ttl),
    );
    let runner = Runner {
        service: service.clone(),
        edge: Arc::new(HttpEdge),
    };
    tokio::spawn(callbacks.queue.work(worker_name(), runner));
    crate::metrics::install()?;
    let limits = config.connections;
    let min_rate = MinRate {
        bytes_per_second: limits.body_min_rate,
        grace: limits.body_rate_grace,
    };
    let app = router(
        service,
        config.max_input_bytes,
        config.metrics_token.clone(),
    )
    .layer(axum::middleware::from_fn_with_state(
        min_rate,
        deadline::middleware,
    ));
    println!("pixpress listening on {public_url}");
    tracing::info!(address = %bound, scheme, "listening");
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let tls = tls.map(|tls| http1_only(&tls));
    conn::serve(listener, tls, app, limits, shutdown_signal()).await;
    tracing::info!("shut down cleanly");
    Ok(())
}

/// This instance's name in the callback queue: unique, so that a dead instance's jobs are
/// told from a live one's.
fn worker_name() -> String {
    format!("pixpress-{}", crate::http::request_id::new_id())
}

/// The work gate, with a warning when the largest image the pixel limit lets in is predicted
/// to need more than the whole memory budget (such images then run one at a time).
fn work_gate(config: &ServerConfig) -> WorkGate {
    let largest = pixpress_core::largest_predicted_memory(config.max_pixels);
    let budget = u64::from(config.memory_budget_mib) * 1024 * 1024;
    if largest > budget {
        tracing::warn!(
            "an image of --max-pixels {} is predicted to need {} MiB, more than \
             --memory-budget-mib {}: such images will run alone, and peak memory can exceed \
             the budget",
            config.max_pixels,
            largest.div_ceil(1024 * 1024),
            config.memory_budget_mib
        );
    }
    WorkGate::new(config.workers, config.memory_budget_mib, config.max_queue)
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

/// The rustls settings with ALPN offering HTTP/1.1 alone, the only protocol `conn` serves
/// (clients that would prefer h2 fall back to it).
fn http1_only(tls: &axum_server::tls_rustls::RustlsConfig) -> tokio_rustls::TlsAcceptor {
    let mut settings = rustls::ServerConfig::clone(&tls.get_inner());
    settings.alpn_protocols = vec![b"http/1.1".to_vec()];
    tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(settings))
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
