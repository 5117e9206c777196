//! Vault operations over the control socket. The daemon holds the
//! database, so while it runs every vault change goes through here (no
//! lost writes between the CLI and the proxy). Values never appear in
//! replies, logs or audit records.
use serde_json::json;
use zeroize::Zeroizing;

use super::proto::{Reply, Request};
use crate::daemon::Shared;

pub async fn handle(d: &Shared, who: &str, req: Request) -> Reply {
    // A change is recorded before it is made: a credential change the trail
    // could not hold is not made at all (the trail may over-report a change
    // that then failed, never under-report one that happened).
    let planned = match &req {
        Request::VaultSet { name, .. } => Some(("set", name.clone())),
        Request::VaultRm { name } => Some(("rm", name.clone())),
        Request::VaultRotateKey => Some(("rotate-key", String::new())),
        _ => None,
    };
    if let Some((op, name)) = &planned
        && let Err(e) = audit(d, who, op, name).await
    {
        return Reply::err(format!(
            "vault {op} refused: its audit record could not be written ({e})"
        ));
    }
    let vault = d.vault.clone();
    let result = match req {
        Request::VaultSet {
            name,
            kind,
            value_hex,
        } => {
            let value = match hex::decode(&value_hex) {
                Ok(v) => Zeroizing::new(v),
                Err(_) => return Reply::err("vault set: the value was not sent hex-encoded"),
            };
            let n = name.clone();
            blocking(move || {
                vault
                    .set(&n, &kind, &value)
                    .map(|v| json!({"name": n, "version": v}))
            })
            .await
        }
        Request::VaultList => blocking(move || vault.list().map(|l| json!(l))).await,
        Request::VaultRm { name } => {
            let n = name.clone();
            blocking(move || vault.remove(&n).map(|_| json!({"removed": n}))).await
        }
        Request::VaultRotateKey => {
            blocking(move || {
                let new = cordon_vault::MasterKey::generate()?;
                vault.rotate_key(new)?;
                Ok(json!({"rotated": true}))
            })
            .await
        }
        other => return Reply::err(format!("{} is not a vault operation", other.name())),
    };
    match result {
        Ok(v) => Reply::ok(v),
        Err(e) => Reply::err(e),
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> cordon_vault::Result<T> + Send + 'static,
) -> Result<T, String> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
}

async fn audit(d: &Shared, who: &str, op: &str, name: &str) -> Result<(), String> {
    let mut params = serde_json::Map::new();
    if !name.is_empty() {
        params.insert("name".into(), json!(name));
    }
    let rec = cordon_audit::NewRecord {
        action: Some(format!("vault.{op}")),
        params,
        approver: Some(who.to_string()),
        ..cordon_audit::NewRecord::new(cordon_audit::EventKind::VaultChange)
    };
    d.audit.append(&rec).await.map(|_| ()).map_err(|e| {
        tracing::error!("audit of vault {op} failed: {e}");
        e.to_string()
    })
}
