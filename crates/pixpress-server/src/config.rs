//! [`ServerConfig`]: the server's settings, filled by the binary from flags, env vars and the
//! config file, read once by `app` at start-up.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use ipnet::IpNet;

#[derive(Clone, Debug)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// `sqlite:` URL; None means `DATA_DIR/pixpress.db`.
    pub database_url: Option<String>,
    /// Base of hosted result URLs; None means `http://<bound address>`.
    pub public_url: Option<String>,
    pub result_ttl: Duration,
    pub sweep_interval: Duration,
    pub fetch_allow: Vec<IpNet>,
    pub fetch_connect_timeout: Duration,
    pub fetch_timeout: Duration,
    pub max_input_bytes: u64,
    pub max_pixels: u64,
    /// Images processed at once; more wait for a slot.
    pub workers: usize,
    /// Predicted decode memory admitted at once, in MiB.
    pub memory_budget_mib: u32,
    /// Requests that may wait for a slot; beyond this the answer is 503.
    pub max_queue: usize,
    /// PEM certificate chain and private key: when both are set the server speaks HTTPS only.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub plans: crate::accounts::plans::Plans,
    /// `redis://…`: rate-limit state shared by every instance; None keeps it in memory.
    pub redis_url: Option<String>,
    /// What a request gets while Redis cannot be reached: let through, or 503.
    pub redis_down: crate::accounts::ratelimit::RedisDown,
    /// Where hosted results live (directory or object store) and how to reach it.
    pub storage: crate::storage::hosted::StorageSettings,
    /// When set, `GET /metrics` needs it as `Authorization: Bearer`; else it is open.
    pub metrics_token: Option<String>,
    /// Header, idle and body deadlines and the connection cap (README "Slow clients").
    pub connections: crate::conn::ConnectionLimits,
}

impl ServerConfig {
    pub fn with_data_dir(data_dir: PathBuf) -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir,
            database_url: None,
            public_url: None,
            result_ttl: Duration::from_secs(24 * 3600),
            sweep_interval: Duration::from_secs(60),
            fetch_allow: Vec::new(),
            fetch_connect_timeout: Duration::from_secs(5),
            fetch_timeout: Duration::from_secs(30),
            max_input_bytes: 32 * 1024 * 1024,
            max_pixels: 100_000_000,
            workers: std::thread::available_parallelism().map_or(2, |n| n.get()),
            memory_budget_mib: 2048,
            max_queue: 64,
            tls_cert: None,
            tls_key: None,
            plans: crate::accounts::plans::Plans::default(),
            redis_url: None,
            redis_down: crate::accounts::ratelimit::RedisDown::FailOpen,
            storage: crate::storage::hosted::StorageSettings::default(),
            metrics_token: None,
            connections: crate::conn::ConnectionLimits::default(),
        }
    }
}
