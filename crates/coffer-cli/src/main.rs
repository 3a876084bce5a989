//! `coffer`: the server and its operator commands.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use coffer_server::{KekSource, RootCredentials, ServerConfig, TlsMode};

mod operator;

/// glibc's allocator serialises on arena locks when one thread frees what another allocated
/// (every audited request hands its record to the audit writer thread): measured at a quarter
/// of the worker threads' time under load. mimalloc's per-thread free lists avoid that.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod audit;

#[derive(Parser)]
#[command(
    name = "coffer",
    version,
    about = "Self-hosted secrets manager speaking the AWS APIs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
#[allow(clippy::large_enum_variant)] // parsed once per process; boxing buys nothing
enum Command {
    /// Run the server.
    Server(ServerArgs),
    /// Print the parameter-policy event log (JSON Lines), optionally following new events.
    Events(EventsArgs),
    /// Initialise, unseal, seal, rekey a running server, or rotate its root key.
    Operator(operator::OperatorArgs),
    /// Verify or export the audit trail, print its public key.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Copy a deployment's store between a data directory and a PostgreSQL database (either
    /// way), then verify the copy: every key, and the audit chain.
    Migrate(MigrateArgs),
}

#[derive(clap::Args)]
struct MigrateArgs {
    /// The store to copy: a data directory or a postgres:// URL. Stop its servers first.
    #[arg(long)]
    from: String,
    /// Where to copy it: a new data directory or an empty PostgreSQL database.
    #[arg(long)]
    to: String,
}

#[derive(clap::Args)]
struct EventsArgs {
    /// The server's data directory (reads its `parameter-events.jsonl`).
    #[arg(long, env = "COFFER_DATA_DIR", default_value = "./coffer-data")]
    data_dir: PathBuf,
    /// Read this log file instead (as given to `server --parameter-events-log`).
    #[arg(long)]
    file: Option<PathBuf>,
    /// Keep running and print events as they are appended.
    #[arg(long)]
    follow: bool,
}

#[derive(clap::Args)]
struct ServerArgs {
    /// Address to listen on.
    #[arg(long, env = "COFFER_LISTEN", default_value = coffer_server::DEFAULT_LISTEN)]
    listen: SocketAddr,
    /// Data directory of the embedded store (created on first start).
    #[arg(long, env = "COFFER_DATA_DIR", default_value = "./coffer-data")]
    data_dir: PathBuf,
    /// Development mode: in-memory store (or the --storage database), fixed documented root
    /// credentials.
    #[arg(long)]
    dev: bool,
    /// Store everything in this PostgreSQL database (postgres://USER[:PASSWORD]@HOST[:PORT]/DB,
    /// `?sslmode=require|verify-full|...` for TLS) instead of the data directory's embedded
    /// store. Several servers may share one database.
    #[arg(long, env = "COFFER_STORAGE", value_parser = storage_url, hide_env_values = true)]
    storage: Option<String>,
    /// The 12-digit account id (default: what the data directory recorded, else 000000000000).
    #[arg(long, env = "COFFER_ACCOUNT_ID")]
    account_id: Option<String>,
    /// Root access key id to use instead of a generated one.
    #[arg(
        long,
        env = "COFFER_ROOT_ACCESS_KEY_ID",
        requires = "root_secret_access_key",
        hide_env_values = true
    )]
    root_access_key_id: Option<String>,
    /// Root secret access key to use instead of a generated one.
    #[arg(
        long,
        env = "COFFER_ROOT_SECRET_ACCESS_KEY",
        requires = "root_access_key_id",
        hide_env_values = true
    )]
    root_secret_access_key: Option<String>,
    /// PEM certificate chain for TLS.
    #[arg(long, requires = "tls_key", conflicts_with = "tls_self_signed")]
    tls_cert: Option<PathBuf>,
    /// PEM private key for TLS.
    #[arg(long, requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Serve TLS with a self-signed certificate generated in the data directory on first start.
    #[arg(long)]
    tls_self_signed: bool,
    /// Allow a non-loopback listen address without TLS (and --dev on one at all). Insecure.
    #[arg(long)]
    insecure_allow_remote: bool,
    /// http:// or https:// URL that receives every parameter-policy event as a JSON POST (retried with
    /// backoff until delivered).
    #[arg(long, env = "COFFER_PARAMETER_EVENTS_WEBHOOK", hide_env_values = true)]
    parameter_events_webhook: Option<String>,
    /// PEM file of CA certificates trusted (besides the system's) when fetching OpenID Connect
    /// issuers' keys for AssumeRoleWithWebIdentity (a private issuer, e.g. a Kubernetes API server).
    #[arg(long, env = "COFFER_OIDC_CA_FILE")]
    oidc_ca_file: Option<PathBuf>,
    /// Parameter-policy event log file (default: parameter-events.jsonl in the data directory;
    /// with --dev, in memory unless this is given).
    #[arg(long, env = "COFFER_PARAMETER_EVENTS_LOG")]
    parameter_events_log: Option<PathBuf>,
    /// Do not initialise an uninitialised data directory on start: wait sealed for
    /// `coffer operator init` (to use unseal shares or a chosen auto-unseal key).
    #[arg(long, env = "COFFER_NO_AUTO_INIT")]
    no_auto_init: bool,
    /// When the data directory initialises itself on first start: auto-unseal with the key in
    /// this file (32 raw bytes, mode 0600, created if absent) instead of DATA_DIR/unseal.key.
    #[arg(
        long,
        env = "COFFER_AUTO_UNSEAL_FILE",
        conflicts_with = "auto_unseal_env"
    )]
    auto_unseal_file: Option<PathBuf>,
    /// When the data directory initialises itself on first start: auto-unseal with the key in
    /// this environment variable (base64 of 32 bytes; the variable's name is recorded).
    #[arg(long)]
    auto_unseal_env: Option<String>,
    /// Parameter Store quota: Standard-tier parameters per account and region.
    #[arg(long, env = "COFFER_MAX_STANDARD_PARAMETERS", default_value_t = 10_000)]
    max_standard_parameters: u64,
    /// Parameter Store quota: Advanced-tier parameters per account and region.
    #[arg(
        long,
        env = "COFFER_MAX_ADVANCED_PARAMETERS",
        default_value_t = 100_000
    )]
    max_advanced_parameters: u64,
    /// Audit records older than this many days are pruned (at a signed digest); 0 keeps them
    /// forever.
    #[arg(long, env = "COFFER_AUDIT_RETENTION_DAYS", default_value_t = 90)]
    audit_retention_days: u64,
    /// Benchmarks only: replace auditing with nothing, to measure what it costs. Calls leave
    /// NO audit record.
    #[arg(long, hide = true)]
    unaudited_benchmark_baseline: bool,
    /// A rotation function, NAME=SPEC, addressable as arn:aws:lambda:REGION:ACCOUNT:function:NAME:
    /// SPEC is `command:PROGRAM [ARGS]` (event JSON on stdin) or an http(s):// URL (event JSON
    /// POSTed). Repeatable. Built-ins (coffer-postgresql-single-user, ...) need none.
    #[arg(long = "rotation-function", value_parser = name_spec)]
    rotation_functions: Vec<(String, String)>,
    /// Seconds one rotation step may run before it counts as failed.
    #[arg(long, env = "COFFER_ROTATION_STEP_TIMEOUT", default_value_t = 300)]
    rotation_step_timeout: u64,
    /// The Python interpreter functions deployed through the Lambda API run with (it should
    /// provide boto3, as AWS's managed runtime does).
    #[arg(long, env = "COFFER_LAMBDA_PYTHON", default_value = "python3")]
    lambda_python: String,
}

fn storage_url(s: &str) -> Result<String, String> {
    if coffer_store::postgres::is_postgres_url(s) {
        Ok(s.to_string())
    } else {
        Err(
            "expected a PostgreSQL URL (postgres://...); the embedded store is chosen with \
             --data-dir"
                .into(),
        )
    }
}

fn name_spec(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((n, spec)) if !n.is_empty() && !spec.is_empty() => Ok((n.into(), spec.into())),
        _ => Err("expected NAME=SPEC".into()),
    }
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("COFFER_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match cli.command {
        Command::Server(args) => rt.block_on(server(args)),
        Command::Events(args) => rt.block_on(events(args)),
        Command::Operator(args) => rt.block_on(operator::run(args)),
        Command::Audit(cmd) => audit::run(cmd),
        Command::Migrate(args) => rt.block_on(migrate(args)),
    }
}

async fn migrate(args: MigrateArgs) -> anyhow::Result<()> {
    use coffer_server::migrate::Location;
    let report =
        coffer_server::migrate::migrate(&Location::parse(&args.from), &Location::parse(&args.to))
            .await
            .context("migrating")?;
    println!(
        "copied {} keys ({} bytes):",
        report.copied.keys, report.copied.bytes
    );
    for (prefix, n) in &report.copied.by_prefix {
        println!("  {prefix:<12} {n}");
    }
    println!(
        "audit trail: {} records, {} digests, sealed through {}",
        report.audit_records,
        report.audit_digests,
        report.sealed_through.map_or("-".into(), |s| s.to_string())
    );
    println!("OK: the target holds the same keys and values, and its audit chain verifies");
    println!(
        "Not copied: leases, and the data directory's own files (auto-unseal key file, TLS \
         files, parameter event log): give the servers of the target the same auto-unseal key \
         (the default key file is DATA_DIR/unseal.key of each server)."
    );
    Ok(())
}

/// Prints the event log; with `--follow`, polls for appended lines until interrupted.
async fn events(args: EventsArgs) -> anyhow::Result<()> {
    use std::io::{Read, Seek, SeekFrom, Write};
    let path = args
        .file
        .unwrap_or_else(|| args.data_dir.join(coffer_server::EVENT_LOG_FILE));
    let mut offset = 0u64;
    let mut partial = Vec::new();
    loop {
        match std::fs::File::open(&path) {
            Ok(mut f) => {
                let len = f.metadata()?.len();
                if len < offset {
                    // Replaced or truncated by the operator: start over.
                    offset = 0;
                    partial.clear();
                }
                f.seek(SeekFrom::Start(offset))?;
                let mut buf = Vec::new();
                f.read_to_end(&mut buf)?;
                offset += buf.len() as u64;
                partial.extend_from_slice(&buf);
                // Print whole lines only; a line being appended waits for its newline.
                if let Some(end) = partial.iter().rposition(|b| *b == b'\n') {
                    let mut out = std::io::stdout().lock();
                    out.write_all(&partial[..=end])?;
                    out.flush()?;
                    partial.drain(..=end);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && args.follow => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                anyhow::bail!(
                    "no parameter event log at {} (no events yet?)",
                    path.display()
                )
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        }
        if !args.follow {
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(std::time::Duration::from_millis(500)) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
    }
}

async fn server(args: ServerArgs) -> anyhow::Result<()> {
    let config = ServerConfig {
        listen: args.listen,
        data_dir: (!args.dev).then_some(args.data_dir),
        database_url: args.storage,
        dev: args.dev,
        account_id: args.account_id,
        root_credentials: match (args.root_access_key_id, args.root_secret_access_key) {
            (Some(access_key_id), Some(secret_access_key)) => Some(RootCredentials {
                access_key_id,
                secret_access_key,
            }),
            _ => None,
        },
        tls: match (args.tls_cert, args.tls_key, args.tls_self_signed) {
            (Some(cert), Some(key), _) => TlsMode::Files { cert, key },
            (_, _, true) => TlsMode::SelfSigned,
            _ => TlsMode::Off,
        },
        allow_insecure_remote: args.insecure_allow_remote,
        clock: Arc::new(coffer_core::SystemClock),
        task_interval: std::time::Duration::from_secs(60),
        parameter_events_webhook: args.parameter_events_webhook,
        oidc_ca_file: args.oidc_ca_file,
        parameter_events_log: args.parameter_events_log,
        parameter_limits: coffer_server::ParameterLimits {
            standard_parameters: args.max_standard_parameters,
            advanced_parameters: args.max_advanced_parameters,
        },
        auto_init: !args.no_auto_init,
        auto_unseal: match (args.auto_unseal_file, args.auto_unseal_env) {
            (Some(f), _) => Some(KekSource::File(f)),
            (None, Some(v)) => Some(KekSource::Env(v)),
            (None, None) => None,
        },
        audit: coffer_server::AuditSettings {
            retention: (args.audit_retention_days > 0)
                .then(|| std::time::Duration::from_secs(args.audit_retention_days * 86_400)),
            noop: args.unaudited_benchmark_baseline,
        },
        store_wrapper: None,
        records_wrapper: None,
        rotation_functions: args.rotation_functions,
        rotation_step_timeout: std::time::Duration::from_secs(args.rotation_step_timeout),
        lambda_python: Some(args.lambda_python),
    };
    let dev = config.dev;
    let server = coffer_server::start(config)
        .await
        .context("starting the server")?;
    let endpoint = server.endpoint();
    tracing::info!(endpoint = %endpoint, account = server.account_id(), dev, "coffer is serving");
    if let Some(fp) = &server.report.tls_fingerprint {
        println!("Generated a self-signed TLS certificate; SHA-256 fingerprint:\n  {fp}");
    }
    if let Some(creds) = &server.report.new_root_credentials {
        if !dev {
            println!(
                "Root credentials for account {} (shown once; store them safely):",
                server.account_id()
            );
        }
        println!("export AWS_ENDPOINT_URL={endpoint}");
        println!("export AWS_ACCESS_KEY_ID={}", creds.access_key_id);
        println!("export AWS_SECRET_ACCESS_KEY={}", creds.secret_access_key);
        println!("export AWS_DEFAULT_REGION=us-east-1");
    }
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let stop = async {
        let ctrl_c = tokio::signal::ctrl_c();
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("install SIGTERM handler");
        tokio::select! { _ = ctrl_c => {}, _ = term.recv() => {} }
    };
    stop.await;
    tracing::info!("shutting down");
    server.shutdown().await;
    Ok(())
}
