//! `coffer-load`: drives a Coffer server with real SigV4-signed AWS JSON 1.1 requests over
//! HTTP/1.1 keep-alive connections (one per worker) and reports throughput and latency.

mod endpoint;
mod report;
mod request;
mod run;
mod stats;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;

use crate::request::Signer;
use crate::run::{Limits, ParameterSet, Report, Scenario, run_scenario};

/// Without --duration or --requests a scenario runs this long.
const DEFAULT_DURATION_SECS: f64 = 10.0;
/// Hard ceiling on any scenario's wall time, also when only --requests bounds it.
const MAX_DURATION_SECS: f64 = 3600.0;
/// Pause between the scenarios of all-gate so one's tail does not bleed into the next.
const SETTLE: Duration = Duration::from_secs(1);

/// Not Debug: it carries the secret access key.
#[derive(Parser)]
#[command(name = "coffer-load", version, about)]
struct Args {
    /// What to send.
    #[arg(long, value_enum, default_value = "get-secret-value")]
    scenario: Scenario,
    /// Server URL (http only).
    #[arg(long, default_value = "http://127.0.0.1:4700")]
    endpoint: String,
    /// Allow a non-loopback endpoint.
    #[arg(long)]
    allow_remote: bool,
    /// SigV4 region (credential scope).
    #[arg(long, default_value = "us-east-1")]
    region: String,
    #[arg(long, env = "AWS_ACCESS_KEY_ID", hide_env_values = true)]
    access_key_id: Option<String>,
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
    secret_access_key: Option<String>,
    /// Concurrent keep-alive connections, one worker each.
    #[arg(long, default_value_t = 16)]
    connections: usize,
    /// Seconds per scenario (default 10 unless --requests is given; at most 3600).
    #[arg(long)]
    duration: Option<f64>,
    /// Stop a scenario after this many requests.
    #[arg(long)]
    requests: Option<u64>,
    /// Per-request timeout in seconds.
    #[arg(long, default_value_t = 10.0)]
    timeout: f64,
    /// SecretString size in bytes for created and written values.
    #[arg(long, default_value_t = 100)]
    value_size: usize,
    /// put-secret-value: how many secrets the writes spread over (default: one per connection;
    /// a multiple of --connections keeps each secret to one writer, fewer makes writers collide).
    #[arg(long)]
    put_secrets: Option<usize>,
    /// get-parameters-by-path: String parameters in the set (created at setup unless reused).
    #[arg(long, default_value_t = 100_000)]
    parameters_total: usize,
    /// get-parameters-by-path: parameters under each prefix `/load/<set>/p<k>`.
    #[arg(long, default_value_t = 10_000)]
    parameters_per_prefix: usize,
    /// Parameter Store scenarios: a fixed set name (`/load/<name>/...`). A complete set of the
    /// same size is reused without setup, and the set is kept after the run. Without it, each
    /// run creates a random set and deletes it afterwards.
    #[arg(long)]
    parameter_set: Option<String>,
    /// get-parameters-by-path: Recursive=true (default false, as the SDKs send it).
    #[arg(long)]
    recursive: bool,
    /// Tokio worker threads of the load tool (default: available cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Print JSON instead of a table.
    #[arg(long)]
    json: bool,
}

fn limits(args: &Args) -> anyhow::Result<Limits> {
    if !(1..=4096).contains(&args.connections) {
        bail!("--connections must be between 1 and 4096");
    }
    if !(1..=65536).contains(&args.value_size) {
        bail!("--value-size must be between 1 and 65536 (the SecretString limit)");
    }
    if args.put_secrets.is_some_and(|n| !(1..=10_000).contains(&n)) {
        bail!("--put-secrets must be between 1 and 10000");
    }
    if !(1..=1_000_000).contains(&args.parameters_total) {
        bail!("--parameters-total must be between 1 and 1000000");
    }
    if !(1..=args.parameters_total).contains(&args.parameters_per_prefix) {
        bail!("--parameters-per-prefix must be between 1 and --parameters-total");
    }
    if let Some(name) = &args.parameter_set
        && (name.is_empty()
            || name.len() > 64
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.'))
    {
        bail!("--parameter-set must be 1-64 characters of a-z, A-Z, 0-9, '-', '_', '.'");
    }
    if args.requests == Some(0) {
        bail!("--requests must be at least 1");
    }
    let duration_secs = match (args.duration, args.requests) {
        (Some(d), _) => d,
        (None, Some(_)) => MAX_DURATION_SECS,
        (None, None) => DEFAULT_DURATION_SECS,
    };
    if !(duration_secs > 0.0 && duration_secs <= MAX_DURATION_SECS) {
        bail!("--duration must be in (0, {MAX_DURATION_SECS}] seconds");
    }
    if !(args.timeout > 0.0 && args.timeout <= 600.0) {
        bail!("--timeout must be in (0, 600] seconds");
    }
    Ok(Limits {
        connections: args.connections,
        duration: Duration::from_secs_f64(duration_secs),
        max_requests: args.requests,
        request_timeout: Duration::from_secs_f64(args.timeout),
        value_size: args.value_size,
        put_secrets: args.put_secrets.unwrap_or(args.connections),
        parameters: ParameterSet {
            total: args.parameters_total,
            per_prefix: args.parameters_per_prefix,
            name: args.parameter_set.clone(),
            recursive: args.recursive,
        },
    })
}

async fn run(args: Args, limits: Limits) -> anyhow::Result<()> {
    let endpoint = endpoint::resolve(&args.endpoint, args.allow_remote).await?;
    let needs_credentials = args.scenario != Scenario::Health;
    let (access_key_id, secret_access_key) = match (&args.access_key_id, &args.secret_access_key) {
        (Some(a), Some(s)) if !a.is_empty() && !s.is_empty() => (a.clone(), s.clone()),
        _ if needs_credentials => bail!(
            "credentials needed: --access-key-id/--secret-access-key or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY"
        ),
        _ => (String::new(), String::new()),
    };
    let signer_for = |scenario: Scenario| {
        Arc::new(
            Signer::new(
                endpoint.clone(),
                args.region.clone(),
                &access_key_id,
                &secret_access_key,
            )
            .with_service(scenario.service()),
        )
    };

    let scenarios: Vec<Scenario> = match args.scenario {
        Scenario::AllGate => vec![
            Scenario::Health,
            Scenario::GetSecretValue,
            Scenario::PutSecretValue,
        ],
        one => vec![one],
    };
    let mut reports: Vec<Report> = Vec::new();
    for (i, scenario) in scenarios.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(SETTLE).await;
        }
        eprintln!(
            "running {} against {} ({} connections, {:.1}s{})",
            scenario.name(),
            args.endpoint,
            limits.connections,
            limits.duration.as_secs_f64(),
            limits
                .max_requests
                .map(|n| format!(", at most {n} requests"))
                .unwrap_or_default()
        );
        let report = run_scenario(signer_for(*scenario), *scenario, &limits)
            .await
            .with_context(|| format!("scenario {}", scenario.name()))?;
        reports.push(report);
    }
    let gate = (args.scenario == Scenario::AllGate).then(|| report::Gate::from_reports(&reports));
    if args.json {
        println!("{}", report::to_json(&reports, gate.as_ref()));
    } else {
        print!("{}", report::to_table(&reports, gate.as_ref()));
    }
    Ok(())
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let outcome = limits(&args).and_then(|limits| {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.enable_all();
        if let Some(threads) = args.threads.filter(|t| *t > 0) {
            builder.worker_threads(threads);
        }
        let runtime = builder.build().context("tokio runtime")?;
        runtime.block_on(run(args, limits))
    });
    match outcome {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("coffer-load: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(extra: &[&str]) -> Args {
        let mut argv = vec!["coffer-load"];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv).unwrap()
    }

    #[test]
    fn duration_defaults_and_bounds() {
        let l = limits(&parse(&[])).unwrap();
        assert_eq!(l.duration, Duration::from_secs(10));
        assert_eq!(l.connections, 16);
        assert_eq!(l.max_requests, None);
        let l = limits(&parse(&["--requests", "500"])).unwrap();
        assert_eq!(l.max_requests, Some(500));
        assert_eq!(l.duration, Duration::from_secs(3600));
        for bad in [
            &["--duration", "0"][..],
            &["--duration", "-1"],
            &["--duration", "NaN"],
            &["--duration", "99999"],
            &["--requests", "0"],
            &["--connections", "0"],
            &["--value-size", "70000"],
            &["--put-secrets", "0"],
            &["--parameters-total", "0"],
            &["--parameters-total", "10", "--parameters-per-prefix", "11"],
            &["--parameter-set", "a/b"],
            &["--parameter-set", ""],
        ] {
            let argv = std::iter::once(&"coffer-load").chain(bad.iter());
            let rejected = Args::try_parse_from(argv).map_or(true, |a| limits(&a).is_err());
            assert!(rejected, "{bad:?} accepted");
        }
    }

    #[test]
    fn scenario_names_parse() {
        for (flag, scenario) in [
            ("health", Scenario::Health),
            ("get-secret-value", Scenario::GetSecretValue),
            ("put-secret-value", Scenario::PutSecretValue),
            ("describe-secret", Scenario::DescribeSecret),
            ("get-parameter", Scenario::GetParameter),
            ("get-parameters-by-path", Scenario::GetParametersByPath),
            ("all-gate", Scenario::AllGate),
        ] {
            assert!(parse(&["--scenario", flag]).scenario == scenario);
            assert_eq!(scenario.name(), flag);
        }
        assert!(Args::try_parse_from(["coffer-load", "--scenario", "nope"]).is_err());
    }
}
