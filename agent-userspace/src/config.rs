//! The daemon's configuration: the host-wide file (/etc/cordon/cordon.toml)
//! merged with command-line flags, which win.
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use serde::Deserialize;

use crate::paths::{self, Paths};

mod audit;
mod caps;
mod proxy;
pub use audit::AuditSection;
pub use caps::{CapDefaults, CapsSection};
pub use proxy::ProxySection;

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
    #[serde(default)]
    pub credentials: CredentialsSection,
    /// `[console]`: the web console, off unless configured.
    pub console: Option<crate::console::config::ConsoleSection>,
    /// `[caps]`: per-agent caps for agents whose policy sets none.
    #[serde(default)]
    pub caps: CapsSection,
    /// `[proxy]`: how many cores serve agent connections.
    #[serde(default)]
    pub proxy: ProxySection,
}

/// `[credentials]` in cordon.toml: where just-in-time credentials are
/// minted (GitHub App installation tokens, AWS STS role sessions).
/// Overridable for GitHub Enterprise, a regional STS endpoint, or a test
/// upstream; trust is the daemon's upstream TLS roots.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CredentialsSection {
    pub github_api: Option<String>,
    pub sts_endpoint: Option<String>,
}

/// GitHub's REST API, where installation tokens are minted and revoked.
pub const DEFAULT_GITHUB_API: &str = "https://api.github.com";
/// The global STS endpoint, where role sessions are assumed.
pub const DEFAULT_STS_ENDPOINT: &str = "https://sts.amazonaws.com";

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ForeignCredentials {
    #[default]
    Deny,
    Strip,
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
    /// `[audit.forward]`, when configured.
    pub audit_forward: Option<cordon_audit::forward::ForwardConfig>,
    /// `[credentials] github_api`: the GitHub API base URL.
    pub github_api: String,
    /// `[credentials] sts_endpoint`: the STS endpoint URL.
    pub sts_endpoint: String,
    /// `[console]` / `--console` / `--console-socket`: where the web
    /// console listens, and how operators reach it.
    pub console: Option<crate::console::config::ConsoleConfig>,
    /// `[caps]`: the per-agent caps' defaults.
    pub caps: CapDefaults,
    /// `[proxy] cores`: proxy threads, each with its own listeners.
    pub cores: usize,
    /// `[proxy] slice_us`: the scheduler slice the daemon's threads ask
    /// for; `None` leaves the kernel's default.
    pub slice: Option<std::time::Duration>,
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
    pub console: crate::console::config::ConsoleFlags,
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
        let invalid = |message| ConfigError::Invalid {
            path: flags
                .config
                .clone()
                .unwrap_or_else(|| PathBuf::from(paths::HOST_CONFIG)),
            message,
        };
        let console = crate::console::config::resolve(flags.console.clone(), file.console.as_ref())
            .map_err(invalid)?;
        let caps = file.caps.resolve().map_err(invalid)?;
        let cores = file
            .proxy
            .resolve(proxy::available_cores())
            .map_err(invalid)?;
        let slice = file.proxy.slice().map_err(invalid)?;
        let audit_forward = match &file.audit.forward {
            Some(f) => Some(f.to_config(&paths.state_dir).map_err(invalid)?),
            None => None,
        };
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
            audit_forward,
            github_api: file
                .credentials
                .github_api
                .unwrap_or_else(|| DEFAULT_GITHUB_API.to_string()),
            sts_endpoint: file
                .credentials
                .sts_endpoint
                .unwrap_or_else(|| DEFAULT_STS_ENDPOINT.to_string()),
            console,
            caps,
            cores,
            slice,
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
    fn credentials_section_names_the_issuers_and_rejects_unknown_keys() {
        let f: ConfigFile = toml::from_str(
            "[credentials]\ngithub_api = \"https://ghe.example/api/v3\"\nsts_endpoint = \"https://sts.eu-west-1.amazonaws.com\"\n",
        )
        .unwrap();
        assert_eq!(
            f.credentials.github_api.as_deref(),
            Some("https://ghe.example/api/v3")
        );
        assert_eq!(
            f.credentials.sts_endpoint.as_deref(),
            Some("https://sts.eu-west-1.amazonaws.com")
        );
        assert!(toml::from_str::<ConfigFile>("[credentials]\ngithub = \"x\"\n").is_err());
        assert!(ConfigFile::default().credentials.github_api.is_none());
    }

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
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab", 0), (1, 1));
    }

    #[test]
    fn the_console_section_is_read_from_the_file() {
        let file: ConfigFile = toml::from_str("[console]\nlisten = \"127.0.0.1:7443\"\n").unwrap();
        assert_eq!(
            file.console.and_then(|c| c.listen),
            Some("127.0.0.1:7443".parse().unwrap())
        );
        assert!(toml::from_str::<ConfigFile>("[console]\nlisten = \"x\"\n").is_err());
    }
}
