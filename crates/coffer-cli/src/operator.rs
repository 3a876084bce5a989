//! `coffer operator ...`: talks to a running server's `/coffer/operator/*` endpoints.

use std::io::{BufRead, IsTerminal, Write};
use std::time::SystemTime;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[derive(clap::Args)]
pub struct OperatorArgs {
    /// The server's address (plain HTTP; operator commands are meant for the loopback listener).
    #[arg(
        long,
        env = "COFFER_ADDR",
        default_value = "http://127.0.0.1:4700",
        global = true
    )]
    address: String,
    #[command(subcommand)]
    command: OperatorCommand,
}

#[derive(clap::Subcommand)]
enum OperatorCommand {
    /// Initialise an uninitialised server: prints the unseal shares (or sets up auto-unseal) and
    /// the root credentials, once.
    Init {
        /// Number of unseal shares to create.
        #[arg(long, conflicts_with_all = ["auto_unseal_file", "auto_unseal_env"], requires = "key_threshold")]
        key_shares: Option<u8>,
        /// Shares needed to unseal.
        #[arg(long, requires = "key_shares")]
        key_threshold: Option<u8>,
        /// Auto-unseal with a key-encryption key in this file (on the server's host; 32 raw
        /// bytes, mode 0600, created if absent).
        #[arg(long, conflicts_with = "auto_unseal_env")]
        auto_unseal_file: Option<std::path::PathBuf>,
        /// Auto-unseal with a key-encryption key in this environment variable of the server
        /// process (base64 of 32 bytes).
        #[arg(long)]
        auto_unseal_env: Option<String>,
    },
    /// Give unseal shares, one at a time: the argument, or else one per line from stdin (a
    /// prompt on a terminal). An auto-unseal server needs none.
    Unseal {
        share: Option<String>,
        /// Forget the shares given so far.
        #[arg(long)]
        reset: bool,
    },
    /// Seal the server (needs the root credentials in AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY).
    Seal,
    /// Print whether the server is initialised and sealed, and the unseal progress.
    Status,
    /// New unseal shares for the same root key; reads a quorum of the current shares.
    Rekey {
        #[arg(long)]
        key_shares: u8,
        #[arg(long)]
        key_threshold: u8,
    },
    /// A new root key: every record sealed under it is rewrapped in one atomic batch (root
    /// credentials from the environment; a shares server also reads a quorum of shares).
    RotateRoot,
}

pub async fn run(args: OperatorArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.address)?;
    match args.command {
        OperatorCommand::Status => {
            let s = client.call("GET", "status", Value::Null, false).await?;
            print_status(&s);
        }
        OperatorCommand::Init {
            key_shares,
            key_threshold,
            auto_unseal_file,
            auto_unseal_env,
        } => {
            let body = match (key_shares, key_threshold, auto_unseal_file, auto_unseal_env) {
                (Some(n), Some(t), None, None) => json!({"key_shares": n, "key_threshold": t}),
                (None, None, Some(f), None) => json!({"auto_unseal_file": f}),
                (None, None, None, Some(v)) => json!({"auto_unseal_env": v}),
                _ => bail!(
                    "give --key-shares and --key-threshold, or --auto-unseal-file, or --auto-unseal-env"
                ),
            };
            let out = client.call("POST", "init", body, false).await?;
            let shares = out["shares"].as_array().cloned().unwrap_or_default();
            if !shares.is_empty() {
                println!(
                    "Unseal shares (shown once; give each to a different person; {} of them unseal):",
                    out["status"]["threshold"]
                );
                for (i, s) in shares.iter().enumerate() {
                    println!("Unseal share {}: {}", i + 1, s.as_str().unwrap_or_default());
                }
                println!();
            }
            if let Some(c) = out["root_credentials"].as_object() {
                println!("Root credentials (shown once; store them safely):");
                println!("export AWS_ENDPOINT_URL={}", client.base);
                println!(
                    "export AWS_ACCESS_KEY_ID={}",
                    c["access_key_id"].as_str().unwrap_or_default()
                );
                println!(
                    "export AWS_SECRET_ACCESS_KEY={}",
                    c["secret_access_key"].as_str().unwrap_or_default()
                );
                println!("export AWS_DEFAULT_REGION=us-east-1");
            }
            print_status(&out["status"]);
        }
        OperatorCommand::Unseal { share, reset } => {
            let status = client.call("GET", "status", Value::Null, false).await?;
            if reset {
                let s = client
                    .call("POST", "unseal", json!({"reset": true}), false)
                    .await?;
                print_status(&s);
                if share.is_none() {
                    return Ok(());
                }
            }
            if status["unseal_method"] == "auto" || status["sealed"] == false {
                let s = client.call("POST", "unseal", json!({}), false).await?;
                print_status(&s);
                return Ok(());
            }
            let mut given = 0;
            let mut submit = async |share: &str| -> anyhow::Result<bool> {
                let started = std::time::Instant::now();
                let s = client
                    .call("POST", "unseal", json!({"share": share}), false)
                    .await?;
                given += 1;
                print_status(&s);
                let unsealed = s["sealed"] == false;
                if unsealed {
                    // The unseal-time figure (BENCHMARKS.md): the last share's round trip, which
                    // combines the shares, opens the root key and rebuilds the services.
                    println!(
                        "Unsealed in {:.1} ms",
                        started.elapsed().as_secs_f64() * 1e3
                    );
                }
                Ok(unsealed)
            };
            match share {
                Some(s) => {
                    submit(&s).await?;
                }
                None => {
                    for line in ShareLines::new("Unseal share: ") {
                        let line = line?;
                        if submit(&line).await? {
                            break;
                        }
                    }
                }
            }
            if given == 0 {
                bail!("no share given");
            }
        }
        OperatorCommand::Seal => {
            let s = client.call("POST", "seal", json!({}), true).await?;
            print_status(&s);
        }
        OperatorCommand::Rekey {
            key_shares,
            key_threshold,
        } => {
            let status = client.call("GET", "status", Value::Null, false).await?;
            let current = read_quorum(&status)?;
            let out = client
                .call(
                    "POST",
                    "rekey",
                    json!({"shares": current, "key_shares": key_shares, "key_threshold": key_threshold}),
                    false,
                )
                .await?;
            let new: Vec<String> = out["shares"]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .iter()
                .filter_map(|s| s.as_str().map(str::to_string))
                .collect();
            println!(
                "New unseal shares (shown once; give each to a different person; \
                 {key_threshold} of them unseal):"
            );
            for (i, s) in new.iter().enumerate() {
                println!("Unseal share {}: {s}", i + 1);
            }
            let _ = std::io::stdout().flush();
            // The new set takes over only once a quorum of it comes back: now that it has been
            // printed, hand it back, and the old shares stop working.
            let quorum: Vec<&String> = new.iter().take(usize::from(key_threshold)).collect();
            client
                .call("POST", "rekey", json!({"verify": quorum}), false)
                .await?;
            println!("The new shares are in force; the old ones no longer work.");
        }
        OperatorCommand::RotateRoot => {
            let status = client.call("GET", "status", Value::Null, false).await?;
            let current = if status["unseal_method"] == "shares" {
                read_quorum(&status)?
            } else {
                Vec::new()
            };
            let out = client
                .call("POST", "rotate-root", json!({"shares": current}), true)
                .await?;
            println!(
                "Root key rotated; {} root-sealed records rewrapped. The unseal shares (or \
                 auto-unseal key) stay the same.",
                out["rewrapped_records"]
            );
        }
    }
    Ok(())
}

fn print_status(s: &Value) {
    let initialized = s["initialized"] == true;
    let sealed = s["sealed"] != false;
    let state = match (initialized, sealed) {
        (false, _) => "uninitialized",
        (true, true) => "sealed",
        (true, false) => "unsealed",
    };
    let mut line = format!("Status: {state}");
    if let Some(m) = s["unseal_method"].as_str() {
        line.push_str(&format!("; unseal method: {m}"));
    }
    if s["unseal_method"] == "shares" {
        line.push_str(&format!(
            "; threshold {} of {}",
            s["threshold"], s["shares"]
        ));
        if sealed {
            line.push_str(&format!("; progress {}/{}", s["progress"], s["threshold"]));
        }
    }
    println!("{line}");
}

/// Reads the threshold's worth of shares (one per line) for rekey / rotate-root.
fn read_quorum(status: &Value) -> anyhow::Result<Vec<String>> {
    let threshold = status["threshold"]
        .as_u64()
        .context("the server takes no shares (auto-unseal)")?;
    let mut out = Vec::new();
    for line in ShareLines::new("Current unseal share: ") {
        out.push(line?);
        if out.len() as u64 >= threshold {
            return Ok(out);
        }
    }
    bail!("{} of {threshold} current shares given", out.len())
}

/// Non-empty lines from stdin, with a prompt on stderr when stdin is a terminal.
struct ShareLines {
    prompt: &'static str,
    tty: bool,
    stdin: std::io::StdinLock<'static>,
}

impl ShareLines {
    fn new(prompt: &'static str) -> Self {
        let stdin = std::io::stdin();
        Self {
            prompt,
            tty: stdin.is_terminal(),
            stdin: stdin.lock(),
        }
    }
}

impl Iterator for ShareLines {
    type Item = anyhow::Result<String>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if self.tty {
                eprint!("{}", self.prompt);
                let _ = std::io::stderr().flush();
            }
            let mut line = String::new();
            match self.stdin.read_line(&mut line) {
                Ok(0) => return None,
                Ok(_) => {
                    let t = line.trim();
                    if !t.is_empty() {
                        return Some(Ok(t.to_string()));
                    }
                }
                Err(e) => return Some(Err(e.into())),
            }
        }
    }
}

struct Client {
    base: String,
    host: String,
}

impl Client {
    fn new(address: &str) -> anyhow::Result<Self> {
        let base = address.trim_end_matches('/').to_string();
        let Some(host) = base.strip_prefix("http://") else {
            bail!(
                "operator commands speak plain HTTP to the server's loopback address \
                 (--address http://127.0.0.1:4700); got {address}"
            );
        };
        Ok(Self {
            host: host.to_string(),
            base,
        })
    }

    /// One request; a non-2xx answer becomes an error carrying the server's message.
    async fn call(
        &self,
        method: &str,
        action: &str,
        body: Value,
        signed: bool,
    ) -> anyhow::Result<Value> {
        let path = format!("/coffer/operator/{action}");
        let body = if body.is_null() {
            Vec::new()
        } else {
            body.to_string().into_bytes()
        };
        let mut headers = vec![
            ("host".to_string(), self.host.clone()),
            ("content-type".to_string(), "application/json".to_string()),
        ];
        if signed {
            headers.extend(sign(method, &path, &headers, &body)?);
        }
        let mut stream = tokio::net::TcpStream::connect(&self.host)
            .await
            .with_context(|| format!("connecting to {}", self.base))?;
        let mut req = format!("{method} {path} HTTP/1.1\r\n");
        for (k, v) in &headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str(&format!(
            "content-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        ));
        stream.write_all(req.as_bytes()).await?;
        stream.write_all(&body).await?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).await?;
        let text = String::from_utf8_lossy(&raw);
        let (head, payload) = text
            .split_once("\r\n\r\n")
            .context("the server's answer is not HTTP")?;
        let status: u16 = head
            .lines()
            .next()
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|s| s.parse().ok())
            .context("the server's answer has no status")?;
        let json: Value = serde_json::from_str(payload).unwrap_or(Value::Null);
        if !(200..300).contains(&status) {
            let code = json["__type"].as_str().unwrap_or("error");
            let msg = json["message"].as_str().unwrap_or(payload);
            bail!("{code}: {msg}");
        }
        Ok(json)
    }
}

/// SigV4 headers with the root credentials from the environment (as the aws CLI reads them).
fn sign(
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: &[u8],
) -> anyhow::Result<Vec<(String, String)>> {
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    let akid = std::env::var("AWS_ACCESS_KEY_ID")
        .context("AWS_ACCESS_KEY_ID must hold the root access key id")?;
    let secret = std::env::var("AWS_SECRET_ACCESS_KEY")
        .context("AWS_SECRET_ACCESS_KEY must hold the root secret access key")?;
    let identity =
        aws_credential_types::Credentials::new(akid, secret, None, None, "coffer-operator").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("coffer")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()?
        .into();
    let req = SignableRequest::new(
        method,
        path,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )?;
    let (instructions, _) = sign(req, &params)?.into_parts();
    let (hs, _) = instructions.into_parts();
    Ok(hs
        .into_iter()
        .map(|h| (h.name().to_string(), h.value().to_string()))
        .collect())
}
