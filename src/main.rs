//! The `pixpress` binary: argument parsing and wiring only. `serve` runs the API, `keys`
//! manages API keys in the same database the server uses, `optimize` runs the pipeline on
//! local files (src/optimize/).

mod memory;
mod optimize;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Parser, Subcommand};
use ipnet::IpNet;
use pixpress_server::accounts::keys;
use pixpress_server::{app, ServerConfig};

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser, Debug)]
#[command(
    name = "pixpress",
    version,
    about = "Self-hosted image optimisation API"
)]
struct Cli {
    #[command(flatten)]
    state: StateArgs,
    /// Log format on stderr.
    #[arg(long, env = "PIXPRESS_LOG_FORMAT", default_value = "text", value_parser = ["text", "json"], global = true)]
    log_format: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Args, Debug, Clone)]
struct StateArgs {
    /// Where the SQLite database and hosted results live.
    #[arg(
        long,
        env = "PIXPRESS_DATA_DIR",
        default_value = "./pixpress-data",
        global = true
    )]
    data_dir: PathBuf,
    /// Database URL (sqlite:…); default: DATA_DIR/pixpress.db.
    #[arg(long = "database", env = "PIXPRESS_DATABASE_URL", global = true)]
    database_url: Option<String>,
    /// TOML config file: plan limits (`[plans.free] bytes_per_month = …`) and the result store
    /// (`[storage] url, endpoint, region, access_key_id, secret_access_key, account_name,
    /// account_key, credential_path, redirect`).
    #[arg(long, env = "PIXPRESS_CONFIG", global = true)]
    config: Option<PathBuf>,
}

/// The TOML config file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    plans: std::collections::BTreeMap<String, pixpress_server::accounts::plans::PlanOverride>,
    #[serde(default)]
    storage: pixpress_server::storage::hosted::StorageSettings,
}

fn load_config(path: Option<&PathBuf>) -> anyhow::Result<ConfigFile> {
    Ok(match path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            toml::from_str::<ConfigFile>(&text)
                .with_context(|| format!("parsing {}", path.display()))?
        }
        None => ConfigFile::default(),
    })
}

// Parsed once at start-up: the size of the `serve` variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
enum Command {
    /// Run the HTTP API.
    Serve(ServeArgs),
    /// Manage API keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Optimise image files and directories locally, in parallel, into --out (or in place).
    Optimize(optimize::OptimizeArgs),
}

#[derive(Args, Debug)]
struct ServeArgs {
    /// Address to listen on (port 0 picks a free port and prints it).
    #[arg(long, env = "PIXPRESS_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Base URL of hosted results, e.g. https://img.example.com (default: http://LISTEN).
    #[arg(long, env = "PIXPRESS_PUBLIC_URL")]
    public_url: Option<String>,
    /// How long hosted results live: 1d, 6h, 90s, …
    #[arg(long, env = "PIXPRESS_RESULT_TTL", default_value = "1d", value_parser = humantime::parse_duration)]
    result_ttl: Duration,
    /// How often expired results are deleted.
    #[arg(long, env = "PIXPRESS_SWEEP_INTERVAL", default_value = "60s", value_parser = humantime::parse_duration)]
    sweep_interval: Duration,
    /// CIDR that URL fetches may reach even though it is private/loopback (repeatable).
    #[arg(long, env = "PIXPRESS_FETCH_ALLOW", value_delimiter = ',')]
    fetch_allow: Vec<IpNet>,
    /// Largest input image in bytes (upload or URL).
    #[arg(long, env = "PIXPRESS_MAX_INPUT_BYTES", default_value_t = 32 * 1024 * 1024)]
    max_input_bytes: u64,
    /// Largest input in pixels (width × height × frames).
    #[arg(long, env = "PIXPRESS_MAX_PIXELS", default_value_t = 100_000_000)]
    max_pixels: u64,
    /// Images processed at once (default: number of CPUs).
    #[arg(long, env = "PIXPRESS_WORKERS")]
    workers: Option<usize>,
    /// Predicted decode memory admitted at once, in MiB (width × height × frames × 4 × 3).
    #[arg(long, env = "PIXPRESS_MEMORY_BUDGET_MIB", default_value_t = 2048)]
    memory_budget_mib: u32,
    /// Requests that may wait for a worker; beyond this the answer is 503 with Retry-After.
    #[arg(long, env = "PIXPRESS_MAX_QUEUE", default_value_t = 64)]
    max_queue: usize,
    /// PEM certificate chain; with --tls-key the server speaks HTTPS only (TLS 1.2+).
    #[arg(long, env = "PIXPRESS_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for --tls-cert.
    #[arg(long, env = "PIXPRESS_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// When set, GET /metrics needs it as `Authorization: Bearer` (default: /metrics is open).
    #[arg(long, env = "PIXPRESS_METRICS_TOKEN", hide_env_values = true)]
    metrics_token: Option<String>,
    /// redis://… to share rate-limit state between instances (default: in memory).
    #[arg(long = "redis", env = "PIXPRESS_REDIS_URL")]
    redis_url: Option<String>,
    /// While --redis cannot be reached: fail-open (let requests through, warn, count) or
    /// fail-closed (503 rate_limiter_unavailable with Retry-After).
    #[arg(long, env = "PIXPRESS_REDIS_DOWN", default_value = "fail-open")]
    redis_down: pixpress_server::accounts::ratelimit::RedisDown,
    /// Where hosted results live: a directory (default DATA_DIR/results), s3://bucket/prefix,
    /// azblob://container/prefix or gcs://bucket/prefix. Credentials: see README (Storage).
    #[arg(long, env = "PIXPRESS_STORAGE")]
    storage: Option<String>,
    /// Object-store endpoint: an S3-compatible server (MinIO, R2, …), Azure or a GCS emulator.
    #[arg(long, env = "PIXPRESS_STORAGE_ENDPOINT")]
    storage_endpoint: Option<String>,
    /// S3 region (default AWS_REGION, else us-east-1).
    #[arg(long, env = "PIXPRESS_STORAGE_REGION")]
    storage_region: Option<String>,
    /// Answer GET /v1/images/… with a 307 to a presigned store URL instead of streaming.
    #[arg(long, env = "PIXPRESS_STORAGE_REDIRECT")]
    storage_redirect: bool,
    #[command(flatten)]
    connections: ConnectionArgs,
}

/// Slow and idle clients (README "Slow clients and connections").
#[derive(Args, Debug)]
struct ConnectionArgs {
    /// Longest wait for a TLS handshake, a request's headers or, on a kept-alive connection,
    /// the next request; then the connection is closed.
    #[arg(long, env = "PIXPRESS_HEADER_TIMEOUT", default_value = "10s", value_parser = humantime::parse_duration)]
    header_timeout: Duration,
    /// Slowest request body in bytes/s, averaged from its start once --body-rate-grace has
    /// passed; slower is a 408 and the connection closes (0: no minimum).
    #[arg(long, env = "PIXPRESS_BODY_MIN_RATE", default_value_t = 16 * 1024)]
    body_min_rate: u64,
    /// How long a request body may take before --body-min-rate applies.
    #[arg(long, env = "PIXPRESS_BODY_RATE_GRACE", default_value = "10s", value_parser = humantime::parse_duration)]
    body_rate_grace: Duration,
    /// Connections open at once; more wait in the listen backlog until one closes.
    #[arg(long, env = "PIXPRESS_MAX_CONNECTIONS", default_value_t = 1024)]
    max_connections: u32,
}

impl ConnectionArgs {
    fn limits(&self) -> pixpress_server::conn::ConnectionLimits {
        pixpress_server::conn::ConnectionLimits {
            header_timeout: self.header_timeout,
            body_min_rate: self.body_min_rate,
            body_rate_grace: self.body_rate_grace,
            max_connections: self.max_connections,
        }
    }
}

#[derive(Subcommand, Debug)]
enum KeysCommand {
    /// Create a key and print it (it is shown only once); stderr also shows its callback
    /// signing secret.
    Create {
        #[arg(long, default_value = "free")]
        plan: String,
        #[arg(long)]
        label: Option<String>,
    },
    /// List keys (ids, plans, labels; never the keys themselves).
    List,
    /// Revoke a key by its id (or the key itself).
    Revoke { key_id: String },
    /// Move a key to another plan.
    SetPlan { key_id: String, plan: String },
    /// Print a key's callback signing secret (`callback_url` bodies are signed with it).
    Secret {
        key_id: String,
        /// Replace it with a new one first; callbacks signed from then on use the new one.
        #[arg(long)]
        rotate: bool,
    },
}

fn main() -> anyhow::Result<ExitCode> {
    let cli = Cli::parse();
    // A batch run reports through its own table; the codecs' info logs would drown it.
    let default_filter = match cli.command {
        Command::Optimize(_) => "warn",
        _ => "info,sqlx=warn",
    };
    init_logging(&cli.log_format, default_filter);
    // `optimize` is synchronous, CPU-bound work on its own threads: no async runtime.
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .on_thread_park(memory::collect_when_parking)
            .build()
            .context("starting the async runtime")
    };
    match cli.command {
        Command::Optimize(args) => Ok(optimize::run(args)),
        Command::Serve(args) => runtime()?
            .block_on(async {
                memory::collect_freed_memory_periodically();
                serve(cli.state, args).await
            })
            .map(|()| ExitCode::SUCCESS),
        Command::Keys(command) => runtime()?
            .block_on(run_keys(cli.state, command))
            .map(|()| ExitCode::SUCCESS),
    }
}

fn init_logging(format: &str, default_filter: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

async fn serve(state: StateArgs, args: ServeArgs) -> anyhow::Result<()> {
    let mut config = ServerConfig::with_data_dir(state.data_dir);
    config.database_url = state.database_url;
    let file = load_config(state.config.as_ref())?;
    config.plans =
        pixpress_server::accounts::plans::Plans::default().with_overrides(&file.plans)?;
    // Flags and env vars override the config file's [storage] table.
    config.storage = file.storage;
    if args.storage.is_some() {
        config.storage.url = args.storage;
    }
    if args.storage_endpoint.is_some() {
        config.storage.endpoint = args.storage_endpoint;
    }
    if args.storage_region.is_some() {
        config.storage.region = args.storage_region;
    }
    config.storage.redirect |= args.storage_redirect;
    config.redis_url = args.redis_url;
    config.redis_down = args.redis_down;
    config.listen = args.listen;
    config.public_url = args.public_url;
    config.result_ttl = args.result_ttl;
    config.sweep_interval = args.sweep_interval;
    config.fetch_allow = args.fetch_allow;
    config.max_input_bytes = args.max_input_bytes;
    config.max_pixels = args.max_pixels;
    config.memory_budget_mib = args.memory_budget_mib;
    config.max_queue = args.max_queue;
    config.tls_cert = args.tls_cert;
    config.tls_key = args.tls_key;
    config.metrics_token = args.metrics_token;
    config.connections = args.connections.limits();
    if let Some(workers) = args.workers {
        config.workers = workers;
    }
    pixpress_server::serve(config).await
}

async fn run_keys(state: StateArgs, command: KeysCommand) -> anyhow::Result<()> {
    let mut config = ServerConfig::with_data_dir(state.data_dir);
    config.database_url = state.database_url;
    let db = app::open_database(&config)
        .await
        .context("opening the database")?;
    match command {
        KeysCommand::Create { plan, label } => {
            let (key, info) = keys::create(&db, &plan, label.as_deref()).await?;
            println!("{key}");
            eprintln!(
                "created key {} on plan {} (shown only once; store it now)",
                info.id, info.plan
            );
            // Made now, so it is the one callbacks are signed with; `keys secret` shows it again.
            if let Some(secret) = keys::callback_secret(&db, &info.id).await? {
                eprintln!("callback signing secret: {}", secret.expose());
            }
        }
        KeysCommand::List => {
            println!("{:<10} {:<10} {:<8} LABEL", "ID", "PLAN", "STATUS");
            for k in keys::list(&db).await? {
                let status = if k.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                println!(
                    "{:<10} {:<10} {:<8} {}",
                    k.id,
                    k.plan,
                    status,
                    k.label.unwrap_or_default()
                );
            }
        }
        KeysCommand::SetPlan { key_id, plan } => {
            anyhow::ensure!(
                keys::set_plan(&db, &key_id, &plan).await?,
                "no key with id {key_id:?}"
            );
            println!("{key_id} is now on plan {plan}");
        }
        KeysCommand::Secret { key_id, rotate } => {
            let secret = if rotate {
                keys::rotate_callback_secret(&db, &key_id).await?
            } else {
                keys::callback_secret(&db, &key_id).await?
            };
            let secret = secret.with_context(|| format!("no key with id {key_id:?}"))?;
            println!("{}", secret.expose());
        }
        KeysCommand::Revoke { key_id } => {
            anyhow::ensure!(
                keys::revoke(&db, &key_id).await?,
                "no key with id {key_id:?}"
            );
            println!("revoked {key_id}");
        }
    }
    Ok(())
}
