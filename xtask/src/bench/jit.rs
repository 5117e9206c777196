//! The JIT-token scenario's setup: a daemon (`cordon-jit`, this build,
//! strict durability) whose policies bind one connector, `bench-api`
//! (host `localhost`), to a static vault token for agent `bench-static` and
//! to a `github-app` entry for agent `bench-jit`, so the second gets a
//! minted installation token (minted once per `cordon run` instance, then
//! served from the cache). Its own daemon because a connector on
//! `localhost` would name every request of the other scenarios too.
//!
//! The upstream (nginx, its own port) plays GitHub's mint and revoke
//! endpoints and serves the measured path only to a request carrying one of
//! the two tokens; each token's requests are logged to their own file, so
//! `jit_run` can check that every request carried its agent's token.
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};

use super::{certs::Certs, cordon::Cordon, upstream::SMALL_BODY};

pub const STATIC_AGENT: &str = "bench-static";
pub const JIT_AGENT: &str = "bench-jit";
/// The measured path, the same for both agents.
pub const PATH: &str = "/jit/data";
/// What the static vault entry holds (injected as `Bearer`).
const STATIC_TOKEN: &str = "bench-static-token-0123456789abcdef";
/// What the fake mint endpoint hands out.
const MINTED_TOKEN: &str = "ghs_benchMintedInstallationToken0123456789";
const INSTALLATION: u64 = 4242;

/// Where nginx logs: one line per request carrying each token, one per mint.
pub struct Logs {
    pub static_token: PathBuf,
    pub minted_token: PathBuf,
    pub mints: PathBuf,
}

impl Logs {
    pub fn at(dir: &Path) -> Self {
        Logs {
            static_token: dir.join("jit-static-token.log"),
            minted_token: dir.join("jit-minted-token.log"),
            mints: dir.join("jit-mints.log"),
        }
    }
}

/// The nginx `http`-level text for the JIT upstream on `port`: the maps
/// that tell the two tokens apart (their keys outgrow the default
/// 64-byte hash bucket) and the server. The minted token expires
/// an hour after nginx starts, as GitHub's do; with less than 5 minutes
/// left Cordon would mint another, which this endpoint also answers.
pub fn nginx(dir: &Path, port: u16) -> String {
    let l = Logs::at(dir);
    let expires = rfc3339(std::time::SystemTime::now() + std::time::Duration::from_secs(3600));
    format!(
        r#"    map_hash_bucket_size 128;
    map $http_authorization $jit_static {{ "Bearer {STATIC_TOKEN}" 1; default 0; }}
    map $http_authorization $jit_minted {{ "Bearer {MINTED_TOKEN}" 1; default 0; }}
    map "$jit_static$jit_minted" $jit_refused {{ "00" 1; default 0; }}
    log_format jit '$msec $status';
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name localhost;
        location = {PATH} {{
            access_log {st} jit buffer=64k flush=1s if=$jit_static;
            access_log {mt} jit buffer=64k flush=1s if=$jit_minted;
            if ($jit_refused) {{ return 401; }}
            return 200 "{SMALL_BODY}";
        }}
        location = /app/installations/{INSTALLATION}/access_tokens {{
            access_log {mints} jit;
            default_type application/json;
            return 201 '{{"token":"{MINTED_TOKEN}","expires_at":"{expires}","permissions":{{"contents":"read"}}}}';
        }}
        location = /installation/token {{ access_log off; return 204; }}
        location / {{ access_log off; return 404; }}
    }}
"#,
        st = l.static_token.display(),
        mt = l.minted_token.display(),
        mints = l.mints.display(),
    )
}

/// `SystemTime` as `YYYY-MM-DDTHH:MM:SSZ` (civil-from-days, H. Hinnant).
fn rfc3339(t: std::time::SystemTime) -> String {
    let secs = t
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs()) as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    )
}

const CONNECTOR: &str = r#"name = "bench-api"
description = "the bench upstream, for the JIT-token scenario"
hosts = ["localhost"]

[credential]
scheme = "bearer"

[[route]]
method = "GET"
path = "/jit/data"
action = "bench.data.read"
"#;

/// The rules both agents share: loopback is SSRF-guarded (see cordon.rs).
fn policy(agent: &str, credentials: &str) -> String {
    format!(
        r#"agents = ["{agent}"]
default = "deny"

[[rule]]
id = "bench-loopback"
action = "tcp.connect"
cidrs = ["127.0.0.1/32"]
decision = "allow"

[[rule]]
id = "bench-api"
action = "bench.data.read"
decision = "allow"

{credentials}"#
    )
}

/// Starts `cordon-jit` against the upstream's JIT port and fills its vault.
pub fn start(bin: &Path, dir: &Path, certs: &Certs, port: u16) -> anyhow::Result<Cordon> {
    let policies = dir.join("cordon-jit-policies");
    std::fs::create_dir_all(policies.join("connectors"))?;
    std::fs::write(policies.join("connectors/bench-api.toml"), CONNECTOR)?;
    std::fs::write(
        policies.join("static.toml"),
        policy(
            STATIC_AGENT,
            "[credentials]\nbench-api = \"bench-static-token\"\n",
        ),
    )?;
    std::fs::write(
        policies.join("jit.toml"),
        policy(
            JIT_AGENT,
            "[[credentials.bench-api]]\nentry = \"bench-app\"\npermissions = { contents = \"read\" }\n",
        ),
    )?;
    // The daemon reaches the issuer itself (not redirected), trusting the
    // upstream CA; the leaf names 127.0.0.1, so no resolver is involved.
    let toml = format!(
        "[audit]\ndurability = \"strict\"\n\n[credentials]\ngithub_api = \"https://127.0.0.1:{port}\"\n"
    );
    let cordon = Cordon::start_with("cordon-jit", bin, dir, certs, &policies, &toml)?;
    let secrets = dir.join("jit-secrets");
    std::fs::create_dir_all(&secrets)?;
    let token = secrets.join("static-token");
    std::fs::write(&token, STATIC_TOKEN)?;
    cordon.vault_set("bench-static-token", "token", &token)?;
    // The upstream accepts any JWT: only Cordon's signing must succeed.
    let key = secrets.join("app.pem");
    let out = std::process::Command::new("openssl")
        .args(["genrsa", "-out"])
        .arg(&key)
        .arg("2048")
        .output()
        .context("running openssl genrsa")?;
    if !out.status.success() {
        bail!("openssl genrsa: {}", String::from_utf8_lossy(&out.stderr));
    }
    let app = secrets.join("app.toml");
    std::fs::write(
        &app,
        format!(
            "app_id = 1\ninstallation_id = {INSTALLATION}\nprivate_key_file = \"{}\"\n",
            key.display()
        ),
    )?;
    cordon.vault_set("bench-app", "github-app", &app)?;
    Ok(cordon)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_utc() {
        let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(1_709_210_096);
        assert_eq!(rfc3339(t), "2024-02-29T12:34:56Z");
        assert_eq!(rfc3339(std::time::UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }
}
