//! `cordon vault`: secrets go in from stdin or a file, never from argv
//! (shell history, `ps`), and never come back out.
mod entry;

use std::{io::Read, process::ExitCode, sync::Arc, time::Duration};

use anyhow::{Context, bail};
use zeroize::Zeroizing;

use super::args::{Client, VaultCmd};
use crate::{
    control::{
        client::{self, ClientError},
        proto::Request,
    },
    paths::Paths,
};

const TIMEOUT: Duration = Duration::from_secs(60);

pub fn run(cmd: VaultCmd) -> anyhow::Result<ExitCode> {
    match cmd {
        VaultCmd::Set {
            name,
            from_stdin,
            from_file,
            kind,
            client,
        } => {
            cordon_vault::validate_name("name", &name)?;
            let value = read_value(from_stdin, from_file.as_deref())?;
            let value = entry::structured_value(&kind, value)?;
            let req = Request::VaultSet {
                name: name.clone(),
                kind,
                value_hex: hex::encode(&*value),
            };
            let body = call_or_offline(&client, &req)?;
            println!("stored {name} (version {})", body["version"]);
        }
        VaultCmd::List { client } => {
            let body = call_or_offline(&client, &Request::VaultList)?;
            println!(
                "{:<28} {:<10} {:>3} {:<22} {:<22} USED BY",
                "NAME", "KIND", "VER", "CREATED", "LAST USED"
            );
            for s in body.as_array().into_iter().flatten() {
                let used_by: Vec<&str> = s["used_by"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|v| v.as_str())
                    .collect();
                println!(
                    "{:<28} {:<10} {:>3} {:<22} {:<22} {}{}",
                    s["name"].as_str().unwrap_or(""),
                    s["kind"].as_str().unwrap_or(""),
                    s["version"],
                    short_time(&s["created"]),
                    short_time(&s["last_used"]),
                    used_by.join(","),
                    s["problem"]
                        .as_str()
                        .map(|p| format!("  PROBLEM: {p}"))
                        .unwrap_or_default()
                );
            }
        }
        VaultCmd::Rm { name, client } => {
            call_or_offline(&client, &Request::VaultRm { name: name.clone() })?;
            println!("removed {name}");
        }
        VaultCmd::RotateKey { client } => {
            call_or_offline(&client, &Request::VaultRotateKey)?;
            println!("vault re-sealed under a new master key");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn short_time(v: &serde_json::Value) -> String {
    v.as_str()
        .map(|s| s.chars().take(19).collect())
        .unwrap_or_else(|| "-".into())
}

fn read_value(
    from_stdin: bool,
    from_file: Option<&std::path::Path>,
) -> anyhow::Result<Zeroizing<Vec<u8>>> {
    let mut buf = Zeroizing::new(Vec::new());
    match (from_stdin, from_file) {
        (true, None) => {
            std::io::stdin()
                .read_to_end(&mut buf)
                .context("reading the secret from stdin")?;
        }
        (false, Some(p)) => {
            let mut f =
                std::fs::File::open(p).with_context(|| format!("opening {}", p.display()))?;
            f.read_to_end(&mut buf)
                .with_context(|| format!("reading {}", p.display()))?;
        }
        _ => bail!(
            "give the secret with exactly one of --from-stdin or --from-file PATH (never on the command line)"
        ),
    }
    // A trailing newline from `echo` or an editor is not part of a token.
    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        buf.pop();
    }
    if buf.is_empty() {
        bail!("the secret is empty");
    }
    Ok(buf)
}

/// Through the daemon when it runs (it holds the database); directly, as
/// root, when it does not.
fn call_or_offline(c: &Client, req: &Request) -> anyhow::Result<serde_json::Value> {
    let p = Paths::resolve(c.state_dir.as_deref());
    match client::call(&p.socket, req, TIMEOUT) {
        Ok(v) => Ok(v),
        Err(ClientError::NoSocket(_) | ClientError::Stale(_)) => offline(&p, req),
        Err(e) => Err(e.into()),
    }
}

fn offline(p: &Paths, req: &Request) -> anyhow::Result<serde_json::Value> {
    if !nix::unistd::geteuid().is_root() {
        bail!("the daemon is not running and using the vault without it needs root");
    }
    let key = crate::daemon::start::vault_key(p)?;
    let db = Arc::new(
        crate::daemon::start::open_database(&p.db)
            .with_context(|| format!("opening {}", p.db.display()))?,
    );
    let vault = cordon_vault::Vault::open(db, key).context("opening the vault")?;
    Ok(match req {
        Request::VaultSet {
            name,
            kind,
            value_hex,
        } => {
            let value = Zeroizing::new(hex::decode(value_hex)?);
            serde_json::json!({"version": vault.set(name, kind, &value)?})
        }
        Request::VaultList => serde_json::to_value(vault.list()?)?,
        Request::VaultRm { name } => {
            vault.remove(name)?;
            serde_json::json!({})
        }
        Request::VaultRotateKey => {
            vault.rotate_key(cordon_vault::MasterKey::generate()?)?;
            serde_json::json!({})
        }
        _ => bail!("not a vault request"),
    })
}
