//! Rotation functions outside the server: a command that receives the event JSON on stdin, and an
//! HTTP endpoint that receives it as a POST. Both call back into Secrets Manager over its HTTP API
//! with the endpoint and credentials in [`crate::CallbackEnv`].

use std::process::Stdio;
use std::sync::Arc;

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::event::Event;
use crate::function::{InvokeContext, RotationFunction};

/// How much of a failed command's stderr goes into the rotation record.
const STDERR_TAIL: usize = 2048;

/// A program and its arguments. Exit status 0 = the step succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub program: String,
    pub args: Vec<String>,
}

impl Command {
    /// `program arg ...`, split on whitespace.
    pub fn parse(line: &str) -> Option<Self> {
        let mut parts = line.split_whitespace().map(str::to_owned);
        let program = parts.next()?;
        Some(Self {
            program,
            args: parts.collect(),
        })
    }
}

#[async_trait]
impl RotationFunction for Command {
    async fn invoke(&self, event: &Event, ctx: &InvokeContext) -> Result<(), String> {
        let mut cmd = tokio::process::Command::new(&self.program);
        cmd.args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            // A step that times out is dropped by the driver: the child goes with it.
            .kill_on_drop(true);
        if let Some(cb) = &ctx.callback {
            cmd.envs(cb.vars(&ctx.region));
        }
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", self.program))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin
                .write_all(event.to_json().as_bytes())
                .await
                .map_err(|e| format!("cannot write the event to {}: {e}", self.program))?;
        }
        let mut stderr = Vec::new();
        if let Some(mut err) = child.stderr.take() {
            let _ = err.read_to_end(&mut stderr).await;
        }
        let status = child
            .wait()
            .await
            .map_err(|e| format!("{} failed: {e}", self.program))?;
        if status.success() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&stderr);
        let start = text.len().saturating_sub(STDERR_TAIL);
        let start = (start..text.len())
            .find(|i| text.is_char_boundary(*i))
            .unwrap_or(text.len());
        Err(format!(
            "{} exited with {status}: {}",
            self.program,
            text[start..].trim()
        ))
    }
}

/// Sends a body as an HTTP POST and judges the answer (the server provides it, with its TLS
/// setup). `Ok` for a 2xx status.
#[async_trait]
pub trait Poster: Send + Sync {
    async fn post(&self, body: &str) -> Result<(), String>;
}

/// An HTTP endpoint receiving each step's event as a JSON POST; any 2xx = the step succeeded.
pub struct Http {
    pub url: String,
    pub poster: Arc<dyn Poster>,
}

#[async_trait]
impl RotationFunction for Http {
    async fn invoke(&self, event: &Event, _ctx: &InvokeContext) -> Result<(), String> {
        self.poster
            .post(&event.to_json())
            .await
            .map_err(|e| format!("POST {}: {e}", self.url))
    }
}
