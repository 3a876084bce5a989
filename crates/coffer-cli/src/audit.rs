//! `coffer audit verify | export | public-key`: offline work on the audit trail, from a data
//! directory (read-only, beside a running server) or from an export file.

use std::path::PathBuf;

use anyhow::{Context, bail};
use coffer_audit::digest::PublicKeyInfo;
use coffer_audit::verify::Trail;

#[derive(clap::Subcommand)]
pub enum AuditCommand {
    /// Check the chain and its signed digests; report the first broken, missing, reordered or
    /// inserted record by sequence number. Exit status 1 when the trail does not verify.
    Verify(VerifyArgs),
    /// Write the trail with its digests, as JSON Lines or as CloudTrail's {"Records": [...]}.
    Export(ExportArgs),
    /// Print the digest-signing public key (pin it for `verify --public-key`).
    PublicKey(SourceArgs),
}

#[derive(clap::Args)]
pub struct SourceArgs {
    /// The server's data directory (read-only; works while the server runs).
    #[arg(long, env = "COFFER_DATA_DIR", default_value = "./coffer-data")]
    data_dir: PathBuf,
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// Verify this export (either form) instead of the data directory.
    #[arg(long)]
    file: Option<PathBuf>,
    /// The trusted public key (the output of `coffer audit public-key`). Without it the key
    /// recorded in the trail itself is used, which proves integrity only against whoever
    /// cannot also replace that key.
    #[arg(long)]
    public_key: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct ExportArgs {
    #[command(flatten)]
    source: SourceArgs,
    /// `jsonl` or `cloudtrail`.
    #[arg(long, default_value = "jsonl")]
    format: String,
    /// Output file (default: standard output).
    #[arg(long, short)]
    output: Option<PathBuf>,
}

pub fn run(cmd: AuditCommand) -> anyhow::Result<()> {
    match cmd {
        AuditCommand::Verify(a) => verify(a),
        AuditCommand::Export(a) => export(a),
        AuditCommand::PublicKey(a) => {
            let (_, key) = read_data_dir(&a)?;
            let key = key.context("the trail has no signing key yet")?;
            println!("{}", serde_json::to_string_pretty(&key)?);
            Ok(())
        }
    }
}

fn read_data_dir(a: &SourceArgs) -> anyhow::Result<(Trail, Option<PublicKeyInfo>)> {
    coffer_audit::log::read_data_dir(&a.data_dir)
        .with_context(|| format!("reading {}", a.data_dir.display()))
}

fn verify(a: VerifyArgs) -> anyhow::Result<()> {
    let (trail, recorded) = match &a.file {
        Some(f) => {
            let text =
                std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
            coffer_audit::export::parse(&text)?
        }
        None => read_data_dir(&a.source)?,
    };
    let (key, pinned) = match &a.public_key {
        Some(p) => {
            let text =
                std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            let info: PublicKeyInfo = serde_json::from_str(&text)
                .context("not a public key from `coffer audit public-key`")?;
            (info, true)
        }
        None => (
            recorded.context("no public key in the trail; pass --public-key")?,
            false,
        ),
    };
    let raw = key.raw().context("malformed public key")?;
    let report = coffer_audit::verify::verify(&trail, &raw);
    println!(
        "records: {} ({}..{}), digests: {}, sealed through: {}, key: {} ({})",
        report.records,
        report.first.map_or("-".into(), |s| s.to_string()),
        report.last.map_or("-".into(), |s| s.to_string()),
        report.digests,
        report.sealed_through.map_or("-".into(), |s| s.to_string()),
        key.fingerprint,
        if pinned {
            "pinned"
        } else {
            "as recorded in the trail"
        },
    );
    match report.problem {
        None => {
            println!("OK: the chain is intact");
            Ok(())
        }
        Some(p) => {
            println!("FAILED: {p}");
            std::process::exit(1);
        }
    }
}

fn export(a: ExportArgs) -> anyhow::Result<()> {
    let (trail, key) = read_data_dir(&a.source)?;
    let text = match a.format.as_str() {
        "jsonl" => coffer_audit::export::to_jsonl(&trail, key.as_ref()),
        "cloudtrail" => coffer_audit::export::to_cloudtrail(&trail, key.as_ref()),
        other => bail!("unknown format {other:?}: use jsonl or cloudtrail"),
    };
    match &a.output {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?,
        None => {
            use std::io::Write;
            std::io::stdout().write_all(text.as_bytes())?;
        }
    }
    Ok(())
}
