//! Running one invocation: the function's code extracted once per code hash into a cache
//! directory, then a Python subprocess running the embedded shim, which imports the handler
//! module, calls `function(event, context)` and writes the result as JSON. The environment is
//! built from nothing (the server's own environment never reaches a function): the function's
//! variables, the Lambda runtime's, and the endpoint and credentials to call back with.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const SHIM: &str = include_str!("shim.py");
/// How much of a function's log (stderr) is kept: AWS's `LogType: Tail` returns the last 4 KB.
pub const LOG_TAIL: usize = 4096;
/// The largest result a synchronous invocation returns (AWS's 6 MB).
pub const MAX_RESPONSE: usize = 6 * 1024 * 1024;

/// Where and with what functions run.
#[derive(Debug, Clone)]
pub struct Runtime {
    /// The Python interpreter (`COFFER_LAMBDA_PYTHON`, default `python3`); it should provide
    /// boto3, as AWS's managed runtime does.
    pub python: String,
    /// Extracted code, one directory per code hash.
    pub cache_dir: PathBuf,
}

impl Runtime {
    /// `python` from `COFFER_LAMBDA_PYTHON` when unset by the operator, else `python3`.
    pub fn new(python: Option<String>, cache_dir: PathBuf) -> Self {
        let python = python
            .or_else(|| std::env::var("COFFER_LAMBDA_PYTHON").ok())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| "python3".into());
        Self { python, cache_dir }
    }
}

/// One invocation's outcome.
#[derive(Debug)]
pub struct Outcome {
    /// The handler's result, or AWS's error object (`errorMessage`, `errorType`, `stackTrace`).
    pub payload: Value,
    /// `true` when `payload` is an error (`X-Amz-Function-Error: Unhandled`).
    pub failed: bool,
    /// The end of what the function wrote to stderr.
    pub log_tail: String,
}

/// What to run.
pub struct Invocation<'a> {
    pub code_dir: &'a Path,
    pub handler: &'a str,
    pub timeout: Duration,
    pub env: Vec<(String, String)>,
    pub event: &'a [u8],
}

/// The last `max` bytes of `text`, cut at a character boundary.
pub fn tail(text: &str, max: usize) -> &str {
    let start = text.len().saturating_sub(max);
    let start = (start..text.len())
        .find(|i| text.is_char_boundary(*i))
        .unwrap_or(text.len());
    &text[start..]
}

fn runtime_error(kind: &str, message: String) -> Value {
    json!({"errorMessage": message, "errorType": kind, "stackTrace": []})
}

impl Runtime {
    /// The directory holding the code of a zip whose SHA-256 is `sha_hex`, extracted now if it
    /// is not there yet (`zip` is called only then).
    pub async fn code_dir(
        &self,
        sha_hex: &str,
        zip: impl AsyncFnOnce() -> Result<Vec<u8>, String>,
    ) -> Result<PathBuf, String> {
        let dir = self.cache_dir.join(sha_hex);
        if tokio::fs::metadata(&dir).await.is_ok() {
            return Ok(dir);
        }
        let bytes = zip().await?;
        tokio::fs::create_dir_all(&self.cache_dir)
            .await
            .map_err(|e| format!("cannot create the code cache: {e}"))?;
        let unique = uuid::Uuid::new_v4().simple().to_string();
        let tmp_zip = self.cache_dir.join(format!(".{unique}.zip"));
        let tmp_dir = self.cache_dir.join(format!(".{unique}"));
        tokio::fs::write(&tmp_zip, &bytes)
            .await
            .map_err(|e| format!("cannot write the code: {e}"))?;
        // Python's zipfile drops absolute paths and `..` components, so nothing lands outside.
        let out = tokio::process::Command::new(&self.python)
            .args(["-I", "-m", "zipfile", "-e"])
            .arg(&tmp_zip)
            .arg(&tmp_dir)
            .env_clear()
            .stdin(Stdio::null())
            .output()
            .await;
        let _ = tokio::fs::remove_file(&tmp_zip).await;
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => {
                let _ = tokio::fs::remove_dir_all(&tmp_dir).await;
                return Err(format!(
                    "cannot extract the code: {}",
                    tail(String::from_utf8_lossy(&o.stderr).trim(), 512)
                ));
            }
            Err(e) => return Err(format!("cannot start {}: {e}", self.python)),
        }
        // Another invocation may have won the race: its directory holds the same code.
        if tokio::fs::rename(&tmp_dir, &dir).await.is_err() {
            let _ = tokio::fs::remove_dir_all(&tmp_dir).await;
        }
        Ok(dir)
    }

    /// Runs one invocation to its end or its timeout.
    pub async fn invoke(&self, inv: Invocation<'_>) -> Outcome {
        let mut cmd = tokio::process::Command::new(&self.python);
        cmd.arg("-c")
            .arg(SHIM)
            .arg(inv.handler)
            .arg(inv.timeout.as_millis().to_string())
            .current_dir(inv.code_dir)
            .env_clear()
            .envs(base_env())
            .envs(inv.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                return Outcome {
                    payload: runtime_error(
                        "Runtime.Unknown",
                        format!("cannot start {}: {e}", self.python),
                    ),
                    failed: true,
                    log_tail: String::new(),
                };
            }
        };
        let stdin = child.stdin.take();
        let stdout = child.stdout.take();
        let stderr = child.stderr.take();
        let event = inv.event.to_vec();
        let run = async move {
            let feed = async move {
                if let Some(mut s) = stdin {
                    let _ = s.write_all(&event).await;
                }
            };
            let (_, out, err) = tokio::join!(
                feed,
                read_bounded(stdout, MAX_RESPONSE + 1, false),
                read_bounded(stderr, LOG_TAIL, true)
            );
            (child.wait().await, out, err)
        };
        match tokio::time::timeout(inv.timeout, run).await {
            Ok((status, out, err)) => {
                let log_tail = String::from_utf8_lossy(&err).into_owned();
                if out.len() > MAX_RESPONSE {
                    return Outcome {
                        payload: runtime_error(
                            "Function.ResponseSizeTooLarge",
                            format!(
                                "Response payload size exceeded maximum allowed payload size ({MAX_RESPONSE} bytes)."
                            ),
                        ),
                        failed: true,
                        log_tail,
                    };
                }
                match serde_json::from_slice::<Value>(&out) {
                    Ok(mut v) if v.get("ok").is_some() => Outcome {
                        failed: v["ok"] != Value::Bool(true),
                        payload: v["payload"].take(),
                        log_tail,
                    },
                    _ => {
                        let status = status.map(|s| s.to_string()).unwrap_or_default();
                        Outcome {
                            payload: runtime_error(
                                "Runtime.ExitError",
                                format!("Runtime exited without providing a reason ({status})"),
                            ),
                            failed: true,
                            log_tail,
                        }
                    }
                }
            }
            // Dropping the future drops the child, which kills it.
            Err(_) => Outcome {
                payload: runtime_error(
                    "Sandbox.Timedout",
                    format!(
                        "Task timed out after {:.2} seconds",
                        inv.timeout.as_secs_f64()
                    ),
                ),
                failed: true,
                log_tail: String::new(),
            },
        }
    }
}

/// Reads a child's stream to its end, keeping at most `max` bytes: the first ones, or the last
/// ones when `keep_tail` (a function's log can be endless; memory is not).
async fn read_bounded(
    stream: Option<impl tokio::io::AsyncRead + Unpin>,
    max: usize,
    keep_tail: bool,
) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(mut s) = stream else {
        return kept;
    };
    let mut buf = [0u8; 8192];
    loop {
        match s.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                if keep_tail {
                    kept.extend_from_slice(&buf[..n]);
                    if kept.len() > max {
                        kept.drain(..kept.len() - max);
                    }
                } else if kept.len() < max {
                    let take = n.min(max - kept.len());
                    kept.extend_from_slice(&buf[..take]);
                }
            }
        }
    }
    kept
}

/// What every function's environment starts from: a `PATH` and a locale, nothing else of the
/// server's.
fn base_env() -> Vec<(&'static str, String)> {
    vec![
        (
            "PATH",
            std::env::var("PATH").unwrap_or_else(|_| "/usr/local/bin:/usr/bin:/bin".into()),
        ),
        ("LANG", "C.UTF-8".into()),
        ("PYTHONUNBUFFERED", "1".into()),
        ("PYTHONDONTWRITEBYTECODE", "1".into()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn python() -> Option<String> {
        let ok = std::process::Command::new("python3")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !ok && std::env::var_os("CI").is_some() {
            panic!("python3 is required under CI");
        }
        ok.then(|| "python3".to_owned())
    }

    async fn run(handler: &str, source: &str, timeout_ms: u64) -> Option<Outcome> {
        let py = python()?;
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("app.py"), source).unwrap();
        let rt = Runtime::new(Some(py), dir.path().join("cache"));
        Some(
            rt.invoke(Invocation {
                code_dir: dir.path(),
                handler,
                timeout: Duration::from_millis(timeout_ms),
                env: vec![("AWS_LAMBDA_FUNCTION_NAME".into(), "f".into())],
                event: br#"{"x": 1}"#,
            })
            .await,
        )
    }

    const APP: &str = "import sys, time\n\
def ok(event, context):\n    print('to the log')\n    sys.stderr.write('x' * 10000)\n    return {'x': event['x'], 'name': context.function_name}\n\
def bad(event, context):\n    raise RuntimeError('nope')\n\
def slow(event, context):\n    time.sleep(20)\n\
def huge(event, context):\n    return 'y' * (7 * 1024 * 1024)\n";

    #[tokio::test]
    async fn results_errors_timeouts_and_bounds() {
        let Some(o) = run("app.ok", APP, 10_000).await else {
            return;
        };
        assert!(!o.failed, "{:?}", o.payload);
        assert_eq!(o.payload, json!({"x": 1, "name": "f"}));
        assert_eq!(
            o.log_tail.len(),
            LOG_TAIL,
            "only the end of the log is kept"
        );

        let o = run("app.bad", APP, 10_000).await.unwrap();
        assert!(o.failed);
        assert_eq!(o.payload["errorType"], "RuntimeError");
        assert_eq!(o.payload["errorMessage"], "nope");

        let o = run("app.missing", APP, 10_000).await.unwrap();
        assert_eq!(o.payload["errorType"], "Runtime.HandlerNotFound");
        let o = run("nomodule.f", APP, 10_000).await.unwrap();
        assert_eq!(o.payload["errorType"], "Runtime.ImportModuleError");

        let started = std::time::Instant::now();
        let o = run("app.slow", APP, 500).await.unwrap();
        assert!(started.elapsed() < Duration::from_secs(5));
        assert_eq!(o.payload["errorType"], "Sandbox.Timedout");

        let o = run("app.huge", APP, 10_000).await.unwrap();
        assert_eq!(o.payload["errorType"], "Function.ResponseSizeTooLarge");
    }
}
