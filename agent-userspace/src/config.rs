//! The daemon's configuration: the host-wide file (/etc/cordon/cordon.toml)
//! merged with command-line flags, which win.
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use serde::Deserialize;

use crate::paths::{self, Paths};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigFile {
    pub state_dir: Option<PathBuf>,
    pub policies: Option<PathBuf>,
    /// Resolvers the DNS proxy forwards to; default: /etc/resolv.conf.
    pub dns_upstream: Option<Vec<SocketAddr>>,
    /// Extra CAs trusted for upstream TLS (beside the system roots).
    pub upstream_ca: Option<Vec<PathBuf>>,
    /// Fixed proxy/resolver ports; 0 or absent picks free ones.
    pub proxy_port: Option<u16>,
    pub dns_port: Option<u16>,
    /// Group allowed to use the control socket on a host install.
    pub socket_group: Option<String>,
    pub log_format: Option<String>,
    pub metrics_addr: Option<SocketAddr>,
    /// Pending approvals are POSTed here as JSON (http:// or https:// URL).
    pub approval_webhook: Option<String>,
    /// What to do with a request that carries a real-looking credential
    /// Cordon did not issue: `deny` (default) or `strip` it and go on.
    pub foreign_credentials: Option<ForeignCredentials>,
    #[serde(default)]
    pub audit: AuditSection,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForeignCredentials {
    #[default]
    Deny,
    Strip,
}

/// `[audit]` in cordon.toml.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// `strict` (default): a request is forwarded only after its record is
    /// committed. `batched`: committed within `batch_ms`.
    pub durability: Option<String>,
    pub batch_ms: Option<u64>,
    /// Retention: prune records older than this many days...
    pub max_age_days: Option<u64>,
    /// ...or beyond this many megabytes of records (a checkpoint of the
    /// chain head keeps verification working).
    pub max_size_mb: Option<u64>,
}

impl AuditSection {
    pub fn to_config(&self) -> Result<cordon_audit::AuditConfig, String> {
        let durability = match (self.durability.as_deref(), self.batch_ms) {
            (None | Some("strict"), None) => cordon_audit::Durability::Strict,
            (None | Some("strict"), Some(_)) => {
                return Err("audit.batch_ms only applies to durability = \"batched\"".into());
            }
            (Some("batched"), ms) => cordon_audit::Durability::Batched {
                max_delay_ms: ms.unwrap_or(50),
            },
            (Some(other), _) => {
                return Err(format!(
                    "audit.durability = {other:?}: use \"strict\" or \"batched\""
                ));
            }
        };
        let retention = (self.max_age_days.is_some() || self.max_size_mb.is_some()).then(|| {
            cordon_audit::Retention {
                max_age: self
                    .max_age_days
                    .map(|d| std::time::Duration::from_secs(d * 86_400)),
                max_size_bytes: self.max_size_mb.map(|m| m * 1024 * 1024),
                check_interval: std::time::Duration::from_secs(60),
            }
        });
        Ok(cordon_audit::AuditConfig {
            durability,
            retention,
            ..cordon_audit::AuditConfig::default()
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}:{col}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        col: usize,
        message: String,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("cannot read /etc/resolv.conf and no --dns-upstream was given: {0}")]
    NoResolver(std::io::Error),
}

impl ConfigFile {
    pub fn load(path: &Path) -> Result<ConfigFile, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.into(),
            source,
        })?;
        toml::from_str(&text).map_err(|e| {
            let (line, col) = e.span().map(|s| line_col(&text, s.start)).unwrap_or((1, 1));
            ConfigError::Parse {
                path: path.into(),
                line,
                col,
                message: e.message().to_string(),
            }
        })
    }
}

/// 1-based line and column of a byte offset.
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before
        .rfind('\n')
        .map_or(before.len(), |i| before.len() - i - 1)
        + 1;
    (line, col)
}

/// Everything the daemon needs, resolved.
#[derive(Debug, Clone)]
pub struct DaemonConfig {
    pub paths: Paths,
    /// The config file read, if any: kept from every agent.
    pub config_file: Option<PathBuf>,
    pub policies: PathBuf,
    pub dns_upstream: Vec<SocketAddr>,
    pub upstream_ca: Vec<PathBuf>,
    pub proxy_port: u16,
    pub dns_port: u16,
    pub socket_group: Option<String>,
    pub json_logs: bool,
    pub metrics_addr: Option<SocketAddr>,
    pub approval_webhook: Option<String>,
    pub foreign_credentials: ForeignCredentials,
    pub audit: cordon_audit::AuditConfig,
}

/// Flags given on the command line; they override the file.
#[derive(Debug, Default)]
pub struct DaemonFlags {
    pub config: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
    pub policies: Option<PathBuf>,
    pub dns_upstream: Vec<SocketAddr>,
    pub upstream_ca: Vec<PathBuf>,
    pub json_logs: bool,
    pub metrics_addr: Option<SocketAddr>,
    pub approval_webhook: Option<String>,
}

impl DaemonConfig {
    pub fn resolve(flags: DaemonFlags) -> Result<DaemonConfig, ConfigError> {
        let (file, config_file) = match &flags.config {
            Some(p) => (ConfigFile::load(p)?, Some(p.clone())),
            None if flags.state_dir.is_none() && Path::new(paths::HOST_CONFIG).exists() => (
                ConfigFile::load(Path::new(paths::HOST_CONFIG))?,
                Some(PathBuf::from(paths::HOST_CONFIG)),
            ),
            None => (ConfigFile::default(), None),
        };
        let state_dir = flags.state_dir.clone().or(file.state_dir.clone());
        let paths = match &state_dir {
            Some(d) if flags.state_dir.is_some() => Paths::for_state_dir(d),
            Some(d) => Paths {
                db: d.join("cordon.redb"),
                ca_dir: d.join("ca"),
                state_dir: d.clone(),
                ..Paths::host()
            },
            None => Paths::host(),
        };
        let policies = flags
            .policies
            .or(file.policies)
            .unwrap_or_else(|| PathBuf::from(paths::HOST_POLICIES));
        let dns_upstream = if !flags.dns_upstream.is_empty() {
            flags.dns_upstream
        } else if let Some(u) = file.dns_upstream {
            u
        } else {
            system_resolvers()?
        };
        let mut upstream_ca = file.upstream_ca.unwrap_or_default();
        upstream_ca.extend(flags.upstream_ca);
        Ok(DaemonConfig {
            paths,
            config_file,
            policies,
            dns_upstream,
            upstream_ca,
            proxy_port: file.proxy_port.unwrap_or(0),
            dns_port: file.dns_port.unwrap_or(0),
            socket_group: file.socket_group,
            json_logs: flags.json_logs || file.log_format.as_deref() == Some("json"),
            metrics_addr: flags.metrics_addr.or(file.metrics_addr),
            approval_webhook: flags.approval_webhook.or(file.approval_webhook),
            foreign_credentials: file.foreign_credentials.unwrap_or_default(),
            audit: file
                .audit
                .to_config()
                .map_err(|message| ConfigError::Invalid {
                    path: flags
                        .config
                        .clone()
                        .unwrap_or_else(|| PathBuf::from(paths::HOST_CONFIG)),
                    message,
                })?,
        })
    }
}

fn system_resolvers() -> Result<Vec<SocketAddr>, ConfigError> {
    let text = std::fs::read_to_string("/etc/resolv.conf").map_err(ConfigError::NoResolver)?;
    Ok(text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("nameserver"))
        .filter_map(|a| a.trim().parse::<std::net::IpAddr>().ok())
        .map(|ip| SocketAddr::new(ip, 53))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_config_key_is_reported_with_file_line_and_column() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cordon.toml");
        std::fs::write(&p, "proxy_port = 1\nproxy_prot = 2\n").unwrap();
        let err = ConfigFile::load(&p).unwrap_err().to_string();
        assert!(err.contains("cordon.toml:2:1"), "{err}");
        assert!(err.contains("proxy_prot"), "{err}");
    }

    #[test]
    fn audit_section_maps_durability_and_retention() {
        let f: ConfigFile = toml::from_str(
            "foreign_credentials = \"strip\"\n[audit]\ndurability = \"batched\"\nbatch_ms = 20\nmax_age_days = 30\n",
        )
        .unwrap();
        assert_eq!(f.foreign_credentials, Some(ForeignCredentials::Strip));
        let c = f.audit.to_config().unwrap();
        assert_eq!(
            c.durability,
            cordon_audit::Durability::Batched { max_delay_ms: 20 }
        );
        assert_eq!(
            c.retention.unwrap().max_age,
            Some(std::time::Duration::from_secs(30 * 86_400))
        );
        assert_eq!(
            AuditSection::default().to_config().unwrap().durability,
            cordon_audit::Durability::Strict
        );
    }

    #[test]
    fn an_unknown_audit_durability_is_refused_by_name() {
        let f: ConfigFile = toml::from_str("[audit]\ndurability = \"eventually\"\n").unwrap();
        let err = f.audit.to_config().unwrap_err();
        assert!(
            err.contains("audit.durability") && err.contains("eventually"),
            "{err}"
        );
    }

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab", 0), (1, 1));
    }
}
