//! Scenario setup, the per-connection workers, and cleanup.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde_json::json;
use tokio::net::TcpStream;

use crate::request::{Service, Signer, json_body};
use crate::stats::{Latencies, Summary, rate};

/// How many error responses are kept verbatim per scenario.
const MAX_ERROR_SAMPLES: usize = 5;
/// Error bodies are AWS error envelopes; a few hundred characters show the code and message.
const MAX_ERROR_SAMPLE_CHARS: usize = 300;
/// Pause after a failed connect so a dead server does not turn the worker into a busy loop.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(100);

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Scenario {
    /// GET /health, unsigned: the HTTP ceiling.
    Health,
    /// GetSecretValue on one ~value-size secret created at setup.
    GetSecretValue,
    /// PutSecretValue with a fresh value per request (one durable write each).
    PutSecretValue,
    /// DescribeSecret on one secret created at setup.
    DescribeSecret,
    /// GetParameter WithDecryption on one SecureString parameter created at setup.
    GetParameter,
    /// GetParametersByPath, first page of 10 under one prefix of a populated parameter set.
    GetParametersByPath,
    /// KMS Encrypt of a ~value-size plaintext (at most 4096 bytes) under a key created at setup.
    KmsEncrypt,
    /// KMS Decrypt (no KeyId) of one ciphertext made at setup.
    KmsDecrypt,
    /// KMS GenerateDataKey (AES_256) under a key created at setup.
    KmsGenerateDataKey,
    /// health, then get-secret-value, then put-secret-value; prints GetSecretValue/health.
    AllGate,
}

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Health => "health",
            Scenario::GetSecretValue => "get-secret-value",
            Scenario::PutSecretValue => "put-secret-value",
            Scenario::DescribeSecret => "describe-secret",
            Scenario::GetParameter => "get-parameter",
            Scenario::GetParametersByPath => "get-parameters-by-path",
            Scenario::KmsEncrypt => "kms-encrypt",
            Scenario::KmsDecrypt => "kms-decrypt",
            Scenario::KmsGenerateDataKey => "kms-generate-data-key",
            Scenario::AllGate => "all-gate",
        }
    }

    /// The service its calls are signed for.
    pub fn service(self) -> Service {
        match self {
            Scenario::GetParameter | Scenario::GetParametersByPath => Service::Ssm,
            Scenario::KmsEncrypt | Scenario::KmsDecrypt | Scenario::KmsGenerateDataKey => {
                Service::Kms
            }
            _ => Service::SecretsManager,
        }
    }
}

/// Run bounds shared by every scenario of one invocation.
#[derive(Clone, Debug)]
pub struct Limits {
    pub connections: usize,
    pub duration: Duration,
    pub max_requests: Option<u64>,
    pub request_timeout: Duration,
    pub value_size: usize,
    /// PutSecretValue: number of secrets the writes spread over.
    pub put_secrets: usize,
    pub parameters: ParameterSet,
}

/// The parameters the Parameter Store scenarios read: `total` String parameters named
/// `/load/<set>/p<k>/n<i>`, `per_prefix` under each `p<k>`, plus `/load/<set>/secure`
/// (SecureString) and `/load/<set>/ready` (written last: marks a complete population).
#[derive(Clone, Debug)]
pub struct ParameterSet {
    pub total: usize,
    pub per_prefix: usize,
    /// A named set is reused when already complete and kept after the run; without a name the
    /// run uses a random one and deletes what it created.
    pub name: Option<String>,
    /// GetParametersByPath with Recursive=true (default: false, the SDKs' default).
    pub recursive: bool,
}

impl ParameterSet {
    fn prefixes(&self) -> usize {
        self.total.div_ceil(self.per_prefix.max(1))
    }

    fn parameter(&self, root: &str, i: usize) -> String {
        format!("{root}/p{}/n{i:07}", i / self.per_prefix.max(1))
    }

    /// The prefix the listing reads: the middle one, so it has neighbours on both sides.
    fn queried_prefix(&self, root: &str) -> String {
        format!("{root}/p{}", self.prefixes().saturating_sub(1) / 2)
    }

    fn marker_value(&self) -> String {
        format!("total={} per-prefix={}", self.total, self.per_prefix)
    }
}

/// The measured outcome of one scenario.
#[derive(Clone, Debug)]
pub struct Report {
    pub scenario: &'static str,
    pub connections: usize,
    pub elapsed_secs: f64,
    pub ok: u64,
    pub non_2xx: u64,
    pub transport_errors: u64,
    pub latency: Summary,
    pub error_samples: Vec<String>,
}

impl Report {
    pub fn errors(&self) -> u64 {
        self.non_2xx + self.transport_errors
    }

    /// Successful (2xx) requests per second.
    pub fn rps(&self) -> f64 {
        rate(self.ok, self.elapsed_secs)
    }
}

/// One HTTP/1.1 keep-alive connection, driven by its own task.
struct Conn {
    sender: SendRequest<Full<Bytes>>,
}

impl Conn {
    async fn connect(addr: SocketAddr) -> anyhow::Result<Self> {
        let tcp = TcpStream::connect(addr)
            .await
            .with_context(|| format!("connect {addr}"))?;
        tcp.set_nodelay(true).context("TCP_NODELAY")?;
        let (sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .context("HTTP/1.1 handshake")?;
        // The connection future ends when the server closes or the sender is dropped; its error,
        // if any, surfaces on the next send.
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(Self { sender })
    }

    async fn send(&mut self, request: Request<Full<Bytes>>) -> anyhow::Result<(StatusCode, Bytes)> {
        self.sender.ready().await.context("connection closed")?;
        let response = self.sender.send_request(request).await.context("send")?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .context("read body")?
            .to_bytes();
        Ok((status, body))
    }
}

/// Setup and cleanup calls: must succeed (cleanup only warns).
async fn call_once(
    conn: &mut Conn,
    signer: &Signer,
    timeout: Duration,
    operation: &str,
    body: serde_json::Value,
) -> anyhow::Result<Bytes> {
    let request = signer.call(operation, json_body(&body))?;
    let (status, body) = tokio::time::timeout(timeout, conn.send(request))
        .await
        .with_context(|| format!("{operation} timed out"))??;
    if !status.is_success() {
        bail!("{operation} failed with {status}: {}", sample(&body));
    }
    Ok(body)
}

fn sample(body: &[u8]) -> String {
    String::from_utf8_lossy(body)
        .chars()
        .take(MAX_ERROR_SAMPLE_CHARS)
        .collect()
}

fn random_hex(bytes: usize) -> anyhow::Result<String> {
    let mut buf = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buf).map_err(|_| anyhow::anyhow!("system RNG failed"))?;
    Ok(hex::encode(buf))
}

/// A value of exactly `size` ASCII characters, distinct per (worker, sequence).
pub fn fresh_value(worker: usize, seq: u64, size: usize) -> String {
    let mut value = format!("w{worker}-n{seq}-");
    if value.len() < size {
        value.extend(std::iter::repeat_n('v', size - value.len()));
    } else {
        value.truncate(size);
    }
    value
}

/// Which of `secrets` secrets worker `worker` writes on its `seq`-th request. With at least as
/// many secrets as connections each worker cycles through its own residue class (index ≡ worker
/// mod connections), so no two workers ever write the same secret; with fewer they share.
pub fn put_target(worker: usize, seq: u64, connections: usize, secrets: usize) -> usize {
    if secrets == 0 || connections == 0 {
        return 0;
    }
    if secrets < connections {
        return worker % secrets;
    }
    let own = secrets.div_ceil(connections);
    let round = usize::try_from(seq % own as u64).unwrap_or(0);
    let index = worker + connections * round;
    if index < secrets {
        index
    } else {
        worker % secrets
    }
}

/// What each worker sends; secret ids are fixed at setup.
#[derive(Clone)]
enum Work {
    Health,
    Read {
        operation: &'static str,
        body: Bytes,
    },
    Put {
        secret_ids: Arc<Vec<String>>,
    },
}

struct Shared {
    signer: Arc<Signer>,
    work: Work,
    deadline: Instant,
    max_requests: Option<u64>,
    issued: AtomicU64,
    request_timeout: Duration,
    value_size: usize,
    connections: usize,
    error_samples: Mutex<Vec<String>>,
}

impl Shared {
    fn note_error(&self, text: String) {
        if let Ok(mut samples) = self.error_samples.lock()
            && samples.len() < MAX_ERROR_SAMPLES
        {
            samples.push(text);
        }
    }

    /// Claims the next request slot; false once the time or count bound is reached.
    fn claim(&self) -> bool {
        if Instant::now() >= self.deadline {
            return false;
        }
        match self.max_requests {
            Some(max) => self.issued.fetch_add(1, Ordering::Relaxed) < max,
            None => true,
        }
    }

    fn build(&self, worker: usize, seq: u64) -> anyhow::Result<Request<Full<Bytes>>> {
        match &self.work {
            Work::Health => self.signer.health(),
            Work::Read { operation, body } => self.signer.call(operation, body.clone()),
            Work::Put { secret_ids } => {
                let index = put_target(worker, seq, self.connections, secret_ids.len());
                let id = secret_ids.get(index).map(String::as_str).unwrap_or("");
                let body = json!({
                    "SecretId": id,
                    "ClientRequestToken": uuid::Uuid::new_v4().to_string(),
                    "SecretString": fresh_value(worker, seq, self.value_size),
                });
                self.signer.call("PutSecretValue", json_body(&body))
            }
        }
    }
}

struct WorkerOutcome {
    latencies: Latencies,
    ok: u64,
    non_2xx: u64,
    transport_errors: u64,
}

async fn worker(shared: Arc<Shared>, index: usize) -> anyhow::Result<WorkerOutcome> {
    let mut out = WorkerOutcome {
        latencies: Latencies::new()?,
        ok: 0,
        non_2xx: 0,
        transport_errors: 0,
    };
    let addr = shared.signer.endpoint().addr;
    let mut conn: Option<Conn> = None;
    let mut seq = 0u64;
    while shared.claim() {
        seq += 1;
        let active = match conn.as_mut() {
            Some(c) => c,
            None => match Conn::connect(addr).await {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    out.transport_errors += 1;
                    shared.note_error(format!("transport: {e:#}"));
                    tokio::time::sleep(RECONNECT_BACKOFF).await;
                    continue;
                }
            },
        };
        let request = shared.build(index, seq)?;
        let started = Instant::now();
        match tokio::time::timeout(shared.request_timeout, active.send(request)).await {
            Ok(Ok((status, body))) => {
                if status.is_success() {
                    out.ok += 1;
                    out.latencies.record_micros(
                        started.elapsed().as_micros().try_into().unwrap_or(u64::MAX),
                    );
                } else {
                    out.non_2xx += 1;
                    shared.note_error(format!("HTTP {status}: {}", sample(&body)));
                }
            }
            Ok(Err(e)) => {
                out.transport_errors += 1;
                shared.note_error(format!("transport: {e:#}"));
                conn = None;
            }
            Err(_) => {
                out.transport_errors += 1;
                shared.note_error(format!(
                    "transport: no response within {:?}",
                    shared.request_timeout
                ));
                // The connection may still deliver the late response; start clean.
                conn = None;
            }
        }
    }
    Ok(out)
}

/// Runs one (non-composite) scenario end to end: setup, load, cleanup.
pub async fn run_scenario(
    signer: Arc<Signer>,
    scenario: Scenario,
    limits: &Limits,
) -> anyhow::Result<Report> {
    let addr = signer.endpoint().addr;
    let timeout = limits.request_timeout;
    let run_id = random_hex(6)?;
    let mut created = Scratch::Parameters(Vec::new());

    let work = match scenario {
        Scenario::Health => Work::Health,
        Scenario::AllGate => bail!("all-gate is a sequence of scenarios, not one"),
        Scenario::GetParameter | Scenario::GetParametersByPath => {
            let set = &limits.parameters;
            let root = format!("/load/{}", set.name.as_deref().unwrap_or(&run_id));
            let setup = parameter_setup(&signer, scenario, limits, &root, &mut created).await;
            match setup {
                Ok(work) => work,
                Err(e) => {
                    cleanup(&signer, limits, &created).await;
                    return Err(e.context("scenario setup"));
                }
            }
        }
        Scenario::KmsEncrypt | Scenario::KmsDecrypt | Scenario::KmsGenerateDataKey => {
            match kms_setup(&signer, scenario, limits, &mut created).await {
                Ok(work) => work,
                Err(e) => {
                    cleanup(&signer, limits, &created).await;
                    return Err(e.context("scenario setup"));
                }
            }
        }
        Scenario::GetSecretValue | Scenario::DescribeSecret | Scenario::PutSecretValue => {
            let mut created_secrets = Vec::new();
            let mut setup = Conn::connect(addr).await.context("setup connection")?;
            let secrets = if scenario == Scenario::PutSecretValue {
                limits.put_secrets.max(1)
            } else {
                1
            };
            for i in 0..secrets {
                let name = format!("load/{run_id}-{i}");
                // Random initial value: only its size matters.
                let value: String = random_hex(limits.value_size.div_ceil(2))?
                    .chars()
                    .take(limits.value_size)
                    .collect();
                let result = call_once(
                    &mut setup,
                    &signer,
                    timeout,
                    "CreateSecret",
                    json!({
                        "Name": name,
                        "ClientRequestToken": uuid::Uuid::new_v4().to_string(),
                        "SecretString": value,
                        "Description": "coffer-load scratch secret",
                    }),
                )
                .await;
                if let Err(e) = result {
                    cleanup(&signer, limits, &Scratch::Secrets(created_secrets)).await;
                    return Err(e.context("scenario setup"));
                }
                created_secrets.push(name);
            }
            created = Scratch::Secrets(created_secrets);
            match scenario {
                Scenario::PutSecretValue => Work::Put {
                    secret_ids: Arc::new(created.names().to_vec()),
                },
                _ => {
                    let operation = if scenario == Scenario::GetSecretValue {
                        "GetSecretValue"
                    } else {
                        "DescribeSecret"
                    };
                    Work::Read {
                        operation,
                        body: json_body(&json!({ "SecretId": created.names()[0] })),
                    }
                }
            }
        }
    };

    let started = Instant::now();
    let shared = Arc::new(Shared {
        signer: Arc::clone(&signer),
        work,
        deadline: started + limits.duration,
        max_requests: limits.max_requests,
        issued: AtomicU64::new(0),
        request_timeout: timeout,
        value_size: limits.value_size,
        connections: limits.connections,
        error_samples: Mutex::new(Vec::new()),
    });
    let handles: Vec<_> = (0..limits.connections)
        .map(|i| tokio::spawn(worker(Arc::clone(&shared), i)))
        .collect();
    let mut total = Latencies::new()?;
    let (mut ok, mut non_2xx, mut transport_errors) = (0, 0, 0);
    let mut failure = None;
    for handle in handles {
        match handle.await {
            Ok(Ok(w)) => {
                total.merge(&w.latencies);
                ok += w.ok;
                non_2xx += w.non_2xx;
                transport_errors += w.transport_errors;
            }
            Ok(Err(e)) => failure = Some(e),
            Err(e) => failure = Some(anyhow::anyhow!("worker task failed: {e}")),
        }
    }
    let elapsed_secs = started.elapsed().as_secs_f64();
    cleanup(&signer, limits, &created).await;
    if let Some(e) = failure {
        return Err(e);
    }
    let error_samples = shared
        .error_samples
        .lock()
        .map(|s| s.clone())
        .unwrap_or_default();
    Ok(Report {
        scenario: scenario.name(),
        connections: limits.connections,
        elapsed_secs,
        ok,
        non_2xx,
        transport_errors,
        latency: total.summary(),
        error_samples,
    })
}

/// What a scenario created and removes at the end.
enum Scratch {
    Secrets(Vec<String>),
    Parameters(Vec<String>),
    /// KMS key ids; KMS keys cannot be deleted at once, so cleanup schedules their deletion
    /// with the shortest waiting period (7 days).
    Keys(Vec<String>),
}

impl Scratch {
    fn names(&self) -> &[String] {
        match self {
            Scratch::Secrets(n) | Scratch::Parameters(n) | Scratch::Keys(n) => n,
        }
    }
}

/// Deletes the scratch secrets (without a recovery window) or parameters; failures only warn.
async fn cleanup(signer: &Arc<Signer>, limits: &Limits, scratch: &Scratch) {
    let timeout = limits.request_timeout;
    match scratch {
        Scratch::Secrets(names) if !names.is_empty() => {
            let mut conn = match Conn::connect(signer.endpoint().addr).await {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("warning: cleanup skipped: {e:#}");
                    return;
                }
            };
            for name in names {
                let body = json!({ "SecretId": name, "ForceDeleteWithoutRecovery": true });
                if let Err(e) = call_once(&mut conn, signer, timeout, "DeleteSecret", body).await {
                    eprintln!("warning: could not delete {name}: {e:#}");
                }
            }
        }
        Scratch::Keys(ids) if !ids.is_empty() => {
            let mut conn = match Conn::connect(signer.endpoint().addr).await {
                Ok(c) => c,
                Err(e) => {
                    eprintln!("warning: cleanup skipped: {e:#}");
                    return;
                }
            };
            for id in ids {
                let body = json!({ "KeyId": id, "PendingWindowInDays": 7 });
                if let Err(e) =
                    call_once(&mut conn, signer, timeout, "ScheduleKeyDeletion", body).await
                {
                    eprintln!("warning: could not schedule deletion of key {id}: {e:#}");
                }
            }
        }
        Scratch::Parameters(names) if !names.is_empty() => {
            let names = Arc::new(names.clone());
            let batches = names.len().div_ceil(DELETE_BATCH);
            let result = fan_out(signer, limits, batches, "deleting", move |b| {
                let end = ((b + 1) * DELETE_BATCH).min(names.len());
                let chunk = names.get(b * DELETE_BATCH..end).unwrap_or_default();
                ("DeleteParameters", json!({ "Names": chunk }))
            })
            .await;
            if let Err(e) = result {
                eprintln!("warning: parameter cleanup incomplete: {e:#}");
            }
        }
        _ => {}
    }
}

/// Creates the scenario's KMS key (and, for Decrypt, the one ciphertext every request decrypts).
async fn kms_setup(
    signer: &Arc<Signer>,
    scenario: Scenario,
    limits: &Limits,
    created: &mut Scratch,
) -> anyhow::Result<Work> {
    let timeout = limits.request_timeout;
    let mut conn = Conn::connect(signer.endpoint().addr)
        .await
        .context("setup connection")?;
    let out = call_once(
        &mut conn,
        signer,
        timeout,
        "CreateKey",
        json!({ "Description": "coffer-load scratch key" }),
    )
    .await?;
    let out: serde_json::Value = serde_json::from_slice(&out).context("CreateKey answer")?;
    let key_id = out["KeyMetadata"]["KeyId"]
        .as_str()
        .context("CreateKey answer without KeyId")?
        .to_owned();
    *created = Scratch::Keys(vec![key_id.clone()]);
    // Random plaintext: only its size matters; KMS takes at most 4096 bytes.
    let size = limits.value_size.min(4096);
    let plaintext: String = random_hex(size.div_ceil(2))?.chars().take(size).collect();
    let plaintext = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(plaintext)
    };
    let (operation, body) = match scenario {
        Scenario::KmsEncrypt => (
            "Encrypt",
            json!({ "KeyId": key_id, "Plaintext": plaintext }),
        ),
        Scenario::KmsGenerateDataKey => (
            "GenerateDataKey",
            json!({ "KeyId": key_id, "KeySpec": "AES_256" }),
        ),
        _ => {
            let out = call_once(
                &mut conn,
                signer,
                timeout,
                "Encrypt",
                json!({ "KeyId": key_id, "Plaintext": plaintext }),
            )
            .await?;
            let out: serde_json::Value = serde_json::from_slice(&out).context("Encrypt answer")?;
            let blob = out["CiphertextBlob"]
                .as_str()
                .context("Encrypt answer without CiphertextBlob")?
                .to_owned();
            ("Decrypt", json!({ "CiphertextBlob": blob }))
        }
    };
    Ok(Work::Read {
        operation,
        body: json_body(&body),
    })
}

/// DeleteParameters takes at most 10 names.
const DELETE_BATCH: usize = 10;

/// Sends `count` setup calls, `make(i)` for i in 0..count, over `limits.connections`
/// connections at once. A `ParameterAlreadyExists` answer counts as done, so an interrupted
/// population resumes. Prints progress every tenth.
async fn fan_out<F>(
    signer: &Arc<Signer>,
    limits: &Limits,
    count: usize,
    label: &'static str,
    make: F,
) -> anyhow::Result<()>
where
    F: Fn(usize) -> (&'static str, serde_json::Value) + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let next = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let step = (count / 10).max(1);
    let handles: Vec<_> = (0..limits.connections.min(count.max(1)))
        .map(|_| {
            let (signer, make, next, done) = (
                Arc::clone(signer),
                Arc::clone(&make),
                Arc::clone(&next),
                Arc::clone(&done),
            );
            let timeout = limits.request_timeout;
            tokio::spawn(async move {
                let mut conn = Conn::connect(signer.endpoint().addr).await?;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= count {
                        return anyhow::Ok(());
                    }
                    let (operation, body) = make(i);
                    let request = signer.call(operation, json_body(&body))?;
                    let (status, reply) = tokio::time::timeout(timeout, conn.send(request))
                        .await
                        .with_context(|| format!("{operation} timed out"))??;
                    let exists = reply
                        .windows(b"ParameterAlreadyExists".len())
                        .any(|w| w == b"ParameterAlreadyExists");
                    if !status.is_success() && !exists {
                        bail!("{operation} failed with {status}: {}", sample(&reply));
                    }
                    let n = done.fetch_add(1, Ordering::Relaxed) + 1;
                    if n % step == 0 {
                        let secs = started.elapsed().as_secs_f64();
                        eprintln!(
                            "{label}: {n}/{count} in {secs:.1}s ({:.0}/s)",
                            rate(n as u64, secs)
                        );
                    }
                }
            })
        })
        .collect();
    let mut failure = None;
    for handle in handles {
        match handle.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => failure = Some(e),
            Err(e) => failure = Some(anyhow::anyhow!("setup task failed: {e}")),
        }
    }
    failure.map_or(Ok(()), Err)
}

/// Creates (or, for a named complete set, finds) what a Parameter Store scenario reads and
/// returns the request it repeats. Names it creates in an unnamed set go to `created`.
async fn parameter_setup(
    signer: &Arc<Signer>,
    scenario: Scenario,
    limits: &Limits,
    root: &str,
    created: &mut Scratch,
) -> anyhow::Result<Work> {
    let set = limits.parameters.clone();
    let timeout = limits.request_timeout;
    let keep = set.name.is_some();
    let mut conn = Conn::connect(signer.endpoint().addr)
        .await
        .context("setup connection")?;
    let mut scratch = Vec::new();
    let work = if scenario == Scenario::GetParameter {
        let name = format!("{root}/secure");
        let value: String = random_hex(limits.value_size.div_ceil(2))?
            .chars()
            .take(limits.value_size)
            .collect();
        // Created once per set: a reused set keeps its parameter (no new version per run).
        let request = signer.call(
            "PutParameter",
            json_body(&json!({ "Name": name, "Value": value, "Type": "SecureString" })),
        )?;
        let (status, reply) = tokio::time::timeout(timeout, conn.send(request))
            .await
            .context("PutParameter timed out")??;
        if status.is_success() {
            scratch.push(name.clone());
        } else if !String::from_utf8_lossy(&reply).contains("ParameterAlreadyExists") {
            bail!("PutParameter failed with {status}: {}", sample(&reply));
        }
        Work::Read {
            operation: "GetParameter",
            body: json_body(&json!({ "Name": name, "WithDecryption": true })),
        }
    } else {
        let marker = format!("{root}/ready");
        let request = signer.call("GetParameter", json_body(&json!({ "Name": marker })))?;
        let (status, reply) = tokio::time::timeout(timeout, conn.send(request))
            .await
            .context("GetParameter timed out")??;
        let found = status.is_success().then(|| {
            serde_json::from_slice::<serde_json::Value>(&reply)
                .ok()
                .and_then(|v| v["Parameter"]["Value"].as_str().map(str::to_owned))
                .unwrap_or_default()
        });
        match found {
            Some(v) if v == set.marker_value() => {
                eprintln!("reusing parameter set {root} ({v})");
            }
            Some(v) => bail!(
                "parameter set {root} holds another population ({v}); pick another --parameter-set"
            ),
            None => {
                if !keep {
                    // Recorded before populating, so a failure half-way still cleans up.
                    scratch.extend((0..set.total).map(|i| set.parameter(root, i)));
                    scratch.push(marker.clone());
                    *created = Scratch::Parameters(std::mem::take(&mut scratch));
                }
                let (owned_root, s) = (root.to_owned(), set.clone());
                let size = limits.value_size;
                fan_out(signer, limits, set.total, "populating", move |i| {
                    (
                        "PutParameter",
                        json!({
                            "Name": s.parameter(&owned_root, i),
                            "Value": fresh_value(0, i as u64, size),
                            "Type": "String",
                        }),
                    )
                })
                .await?;
                call_once(
                    &mut conn,
                    signer,
                    timeout,
                    "PutParameter",
                    json!({
                        "Name": marker,
                        "Value": set.marker_value(),
                        "Type": "String",
                        "Overwrite": true,
                    }),
                )
                .await?;
            }
        }
        let path = set.queried_prefix(root);
        let body = json!({ "Path": path, "Recursive": set.recursive, "MaxResults": 10 });
        // One checked call: the page must be full and continue, as the scenario claims.
        let reply = call_once(
            &mut conn,
            signer,
            timeout,
            "GetParametersByPath",
            body.clone(),
        )
        .await?;
        let v: serde_json::Value = serde_json::from_slice(&reply).context("listing reply")?;
        let listed = v["Parameters"].as_array().map_or(0, Vec::len);
        let want = set.per_prefix.min(set.total).min(10);
        if listed != want || (set.per_prefix > 10 && v.get("NextToken").is_none()) {
            bail!(
                "GetParametersByPath {path} listed {listed} parameters (expected {want} and a NextToken)"
            );
        }
        Work::Read {
            operation: "GetParametersByPath",
            body: json_body(&body),
        }
    };
    if !keep && !scratch.is_empty() {
        *created = Scratch::Parameters(scratch);
    }
    Ok(work)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fresh_values_have_exact_size_and_differ() {
        let a = fresh_value(3, 41, 100);
        let b = fresh_value(3, 42, 100);
        assert_eq!(a.len(), 100);
        assert_eq!(b.len(), 100);
        assert_ne!(a, b);
        assert_eq!(fresh_value(123, 456789, 4).len(), 4);
    }

    #[test]
    fn put_targets_are_disjoint_per_worker() {
        use std::collections::{HashMap, HashSet};
        for (connections, secrets) in [(16, 16), (16, 64), (4, 10), (3, 7)] {
            let mut owner: HashMap<usize, usize> = HashMap::new();
            let mut used = HashSet::new();
            for worker in 0..connections {
                for seq in 0..50 {
                    let t = put_target(worker, seq, connections, secrets);
                    assert!(t < secrets);
                    used.insert(t);
                    assert_eq!(
                        *owner.entry(t).or_insert(worker),
                        worker,
                        "secret {t} shared"
                    );
                }
            }
            assert_eq!(
                used.len(),
                secrets,
                "every secret is written ({connections}, {secrets})"
            );
        }
        // Fewer secrets than connections: shared, but in range.
        assert!((0..16).all(|w| put_target(w, 3, 16, 1) == 0));
        assert_eq!(put_target(5, 1, 16, 4), 1);
        assert_eq!(put_target(0, 0, 0, 0), 0);
    }

    #[test]
    fn claim_honours_count_and_deadline() {
        let endpoint = crate::endpoint::Endpoint {
            authority: "127.0.0.1:1".into(),
            addr: SocketAddr::from(([127, 0, 0, 1], 1)),
        };
        let signer = Arc::new(Signer::new(endpoint, "us-east-1".into(), "AKID", "secret"));
        let make = |deadline: Instant, max: Option<u64>| Shared {
            signer: Arc::clone(&signer),
            work: Work::Health,
            deadline,
            max_requests: max,
            issued: AtomicU64::new(0),
            request_timeout: Duration::from_secs(1),
            value_size: 10,
            connections: 1,
            error_samples: Mutex::new(Vec::new()),
        };
        let far = Instant::now() + Duration::from_secs(60);
        let counted = make(far, Some(3));
        assert_eq!((0..10).filter(|_| counted.claim()).count(), 3);
        let expired = make(Instant::now(), None);
        assert!(!expired.claim());
        for i in 0..20 {
            counted.note_error(format!("e{i}"));
        }
        assert_eq!(
            counted.error_samples.lock().unwrap().len(),
            MAX_ERROR_SAMPLES
        );
    }

    #[tokio::test]
    async fn unreachable_server_counts_transport_errors_and_stops() {
        // Port 1 on loopback: nothing listens, connects fail fast.
        let endpoint = crate::endpoint::Endpoint {
            authority: "127.0.0.1:1".into(),
            addr: SocketAddr::from(([127, 0, 0, 1], 1)),
        };
        let signer = Arc::new(Signer::new(endpoint, "us-east-1".into(), "AKID", "secret"));
        let limits = Limits {
            connections: 2,
            duration: Duration::from_secs(5),
            max_requests: Some(4),
            request_timeout: Duration::from_secs(1),
            value_size: 100,
            put_secrets: 4,
            parameters: ParameterSet {
                total: 25,
                per_prefix: 20,
                name: None,
                recursive: false,
            },
        };
        let report = run_scenario(signer, Scenario::Health, &limits)
            .await
            .unwrap();
        assert_eq!(report.ok, 0);
        assert_eq!(report.transport_errors, 4);
        assert!(
            report.error_samples[0].starts_with("transport:"),
            "{:?}",
            report.error_samples
        );
    }

    /// A stand-in server on an ephemeral loopback port: answers /health, accepts signed JSON
    /// calls, and rejects PutSecretValue on the secret named `load/fail` style ids (none here), so
    /// the whole setup → load → cleanup path runs without the real server.
    async fn fake_server() -> (SocketAddr, Arc<Mutex<Vec<String>>>) {
        use hyper::service::service_fn;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<hyper::body::Incoming>| {
                        let log = Arc::clone(&log);
                        async move {
                            let target = req
                                .headers()
                                .get("x-amz-target")
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("")
                                .to_owned();
                            let signed = req
                                .headers()
                                .get("authorization")
                                .and_then(|v| v.to_str().ok())
                                .is_some_and(|a| a.starts_with("AWS4-HMAC-SHA256 "));
                            let path = req.uri().path().to_owned();
                            let body = req.into_body().collect().await?.to_bytes();
                            let (status, reply) = if path == "/health" {
                                (200, "{}".to_owned())
                            } else if !signed {
                                (
                                    400,
                                    "{\"__type\":\"MissingAuthenticationTokenException\"}"
                                        .to_owned(),
                                )
                            } else if target == "secretsmanager.DescribeSecret" {
                                (400, "{\"__type\":\"ResourceNotFoundException\",\"message\":\"nope\"}".to_owned())
                            } else {
                                let v: serde_json::Value =
                                    serde_json::from_slice(&body).unwrap_or_default();
                                let id = v
                                    .get("SecretId")
                                    .or(v.get("Name"))
                                    .and_then(|s| s.as_str())
                                    .unwrap_or("");
                                (200, format!("{{\"Name\":\"{id}\"}}"))
                            };
                            if let Ok(mut l) = log.lock() {
                                l.push(format!("{path} {target}"));
                            }
                            let response = hyper::Response::builder()
                                .status(status)
                                .body(Full::new(Bytes::from(reply)))
                                .unwrap();
                            Ok::<_, hyper::Error>(response)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tcp), service)
                        .await;
                });
            }
        });
        (addr, seen)
    }

    fn local_signer(addr: SocketAddr) -> Arc<Signer> {
        let endpoint = crate::endpoint::Endpoint {
            authority: addr.to_string(),
            addr,
        };
        Arc::new(Signer::new(
            endpoint,
            "us-east-1".into(),
            "AKIDEXAMPLE",
            "secret",
        ))
    }

    fn small_limits(max: u64) -> Limits {
        Limits {
            connections: 4,
            duration: Duration::from_secs(10),
            max_requests: Some(max),
            request_timeout: Duration::from_secs(5),
            value_size: 100,
            put_secrets: 4,
            parameters: ParameterSet {
                total: 25,
                per_prefix: 20,
                name: None,
                recursive: false,
            },
        }
    }

    #[tokio::test]
    async fn put_scenario_sets_up_loads_and_cleans_up() {
        let (addr, seen) = fake_server().await;
        let report = run_scenario(
            local_signer(addr),
            Scenario::PutSecretValue,
            &small_limits(40),
        )
        .await
        .unwrap();
        assert_eq!(report.ok, 40);
        assert_eq!(report.errors(), 0);
        assert!(report.latency.max_us > 0);
        let log = seen.lock().unwrap().clone();
        let count = |t: &str| log.iter().filter(|l| l.ends_with(t)).count();
        // One secret per connection, created first and force-deleted last.
        assert_eq!(count("secretsmanager.CreateSecret"), 4);
        assert_eq!(count("secretsmanager.PutSecretValue"), 40);
        assert_eq!(count("secretsmanager.DeleteSecret"), 4);
        assert!(log.first().unwrap().ends_with("CreateSecret"));
        assert!(log.last().unwrap().ends_with("DeleteSecret"));
    }

    #[tokio::test]
    async fn error_responses_are_counted_and_sampled() {
        let (addr, _) = fake_server().await;
        let report = run_scenario(
            local_signer(addr),
            Scenario::DescribeSecret,
            &small_limits(12),
        )
        .await
        .unwrap();
        assert_eq!(report.ok, 0);
        assert_eq!(report.non_2xx, 12);
        assert_eq!(report.error_samples.len(), MAX_ERROR_SAMPLES);
        assert!(
            report.error_samples[0].contains("ResourceNotFoundException"),
            "{:?}",
            report.error_samples
        );
    }

    #[tokio::test]
    async fn duration_bounds_the_run() {
        let (addr, _) = fake_server().await;
        let limits = Limits {
            duration: Duration::from_millis(300),
            max_requests: None,
            ..small_limits(1)
        };
        let started = Instant::now();
        let report = run_scenario(local_signer(addr), Scenario::Health, &limits)
            .await
            .unwrap();
        assert!(started.elapsed() < Duration::from_secs(3));
        assert!(report.ok > 0);
        assert_eq!(report.errors(), 0);
    }
}
