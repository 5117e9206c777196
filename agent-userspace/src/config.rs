//! The daemon's configuration: the host-wide file (/etc/cordon/cordon.toml)
//! merged with command-line flags, which win.
use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
};

use serde::Deserialize;

use crate::paths::{self, Paths};

mod caps;
mod proxy;
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

/// `[audit]` in cordon.toml.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// `strict` (default): a request is forwarded only after its record is
    /// committed. `batched`: committed within `batch_ms`.
    pub durability: Option<String>,
    pub batch_ms: Option<u64>,
    /// Strict only: under load, the least time in µs between the end of one
    /// log sync and the next, so more requests share each sync (default 300,
    /// at most 2000, 0 syncs every group at once).
    pub sync_pace_us: Option<u64>,
    /// Retention: prune records older than this many days...
    pub max_age_days: Option<u64>,
    /// ...or beyond this many megabytes of records (a checkpoint of the
    /// chain head keeps verification working).
    pub max_size_mb: Option<u64>,
    /// `outcomes = false`: no `outcome` record per forwarded exchange (the
    /// trail holds decisions only). Default true.
    pub outcomes: Option<bool>,
    /// `[audit.forward]`: stream the trail to a syslog collector.
    pub forward: Option<ForwardSection>,
}

/// `[audit.forward]` in cordon.toml: RFC 5424 syslog over TCP (octet
/// counting), optionally TLS, to a collector. See docs/config.md.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardSection {
    /// `host:port` of the collector.
    pub address: String,
    #[serde(default)]
    pub tls: bool,
    /// PEM CA(s) the collector's certificate must chain to; default: the
    /// system roots.
    pub ca_file: Option<PathBuf>,
    /// The name verified in the collector's certificate; default: the host
    /// part of `address`.
    pub server_name: Option<String>,
    /// Message body: `jsonl` (default) or `ocsf`, as `cordon audit export`.
    pub format: Option<String>,
    /// Syslog facility name; default `audit` (13).
    pub facility: Option<String>,
    /// HOSTNAME of the messages; default: this host's name.
    pub hostname: Option<String>,
    /// How long a record the collector's TCP stack acknowledged must stay
    /// unchallenged before it counts as delivered; default 2000.
    pub ack_grace_ms: Option<u64>,
}

impl ForwardSection {
    /// The forwarder's settings; `state_dir` holds its cursor.
    pub fn to_config(
        &self,
        state_dir: &Path,
    ) -> Result<cordon_audit::forward::ForwardConfig, String> {
        use cordon_audit::forward::{Facility, Header, TlsSettings};
        let host = forward_host(&self.address)?;
        if self.ca_file.is_some() && !self.tls {
            return Err("audit.forward.ca_file needs tls = true".into());
        }
        let tls = if self.tls {
            Some(
                TlsSettings::new(self.ca_file.as_deref())
                    .map_err(|e| format!("audit.forward: {e}"))?,
            )
        } else {
            None
        };
        let format = match self.format.as_deref() {
            None | Some("jsonl") => cordon_audit::ExportFormat::Jsonl,
            Some("ocsf") => cordon_audit::ExportFormat::Ocsf,
            Some(other) => {
                return Err(format!(
                    "audit.forward.format = {other:?}: use \"jsonl\" or \"ocsf\""
                ));
            }
        };
        let facility = match self.facility.as_deref() {
            None => Facility::AUDIT,
            Some(name) => Facility::parse(name).ok_or_else(|| {
                let known: Vec<&str> = Facility::names().collect();
                format!(
                    "audit.forward.facility = {name:?}: use one of {}",
                    known.join(", ")
                )
            })?,
        };
        let hostname = match &self.hostname {
            Some(h) => h.clone(),
            // Empty (unreadable) becomes the NILVALUE `-` in the header.
            None => std::fs::read_to_string("/proc/sys/kernel/hostname")
                .map(|h| h.trim().to_string())
                .unwrap_or_default(),
        };
        Ok(cordon_audit::forward::ForwardConfig {
            address: self.address.clone(),
            tls,
            server_name: self.server_name.clone().unwrap_or_else(|| host.to_string()),
            format,
            header: Header::new(
                facility,
                &hostname,
                "cordon",
                &std::process::id().to_string(),
            ),
            cursor_file: state_dir.join("audit-forward.cursor"),
            ack_grace: std::time::Duration::from_millis(self.ack_grace_ms.unwrap_or(2000)),
            batch: 512,
        })
    }
}

/// The host of `host:port` / `[v6]:port`; a missing or bad port is an error.
fn forward_host(address: &str) -> Result<&str, String> {
    let bad = || format!("audit.forward.address = {address:?}: expected host:port");
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    port.parse::<u16>().map_err(|_| bad())?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(bad());
    }
    Ok(host)
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
        let sync_pace = match (durability, self.sync_pace_us) {
            (_, None) => cordon_audit::DEFAULT_SYNC_PACE,
            (cordon_audit::Durability::Batched { .. }, Some(_)) => {
                return Err("audit.sync_pace_us only applies to durability = \"strict\"".into());
            }
            (cordon_audit::Durability::Strict, Some(us)) => {
                let pace = std::time::Duration::from_micros(us);
                if pace > cordon_audit::MAX_SYNC_PACE {
                    return Err(format!(
                        "audit.sync_pace_us = {us}: at most {}",
                        cordon_audit::MAX_SYNC_PACE.as_micros()
                    ));
                }
                pace
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
            sync_pace,
            outcomes: self.outcomes.unwrap_or(true),
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
    fn audit_outcomes_default_on_and_can_be_turned_off() {
        assert!(AuditSection::default().to_config().unwrap().outcomes);
        let f: ConfigFile = toml::from_str("[audit]\noutcomes = false\n").unwrap();
        assert!(!f.audit.to_config().unwrap().outcomes);
    }

    #[test]
    fn audit_sync_pace_defaults_is_bounded_and_only_applies_to_strict() {
        let pace = |toml_text: &str| {
            let f: ConfigFile = toml::from_str(toml_text).unwrap();
            f.audit.to_config().map(|c| c.sync_pace)
        };
        assert_eq!(pace("[audit]\n"), Ok(cordon_audit::DEFAULT_SYNC_PACE));
        assert_eq!(
            pace("[audit]\nsync_pace_us = 0\n"),
            Ok(std::time::Duration::ZERO)
        );
        assert_eq!(
            pace("[audit]\nsync_pace_us = 400\n"),
            Ok(std::time::Duration::from_micros(400))
        );
        let too_long = pace("[audit]\nsync_pace_us = 5000\n").unwrap_err();
        assert!(too_long.contains("audit.sync_pace_us = 5000"), "{too_long}");
        let batched = pace("[audit]\ndurability = \"batched\"\nsync_pace_us = 100\n").unwrap_err();
        assert!(batched.contains("audit.sync_pace_us"), "{batched}");
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
    fn audit_forward_resolves_defaults_and_keeps_its_cursor_in_the_state_dir() {
        let f: ConfigFile = toml::from_str(
            "[audit.forward]\naddress = \"logs.example.com:6514\"\nfacility = \"local3\"\nhostname = \"h1\"\n",
        )
        .unwrap();
        let c = f
            .audit
            .forward
            .unwrap()
            .to_config(Path::new("/var/lib/cordon"))
            .unwrap();
        assert_eq!(c.address, "logs.example.com:6514");
        assert_eq!(c.server_name, "logs.example.com");
        assert!(c.tls.is_none());
        assert_eq!(c.format, cordon_audit::ExportFormat::Jsonl);
        assert_eq!(c.header.facility.code(), 19);
        assert_eq!(c.header.hostname, "h1");
        assert_eq!(
            c.cursor_file,
            Path::new("/var/lib/cordon/audit-forward.cursor")
        );
        assert_eq!(c.ack_grace, std::time::Duration::from_secs(2));
    }

    #[test]
    fn bad_audit_forward_settings_are_refused_by_name() {
        let cases = [
            ("address = \"logs.example.com\"", "audit.forward.address"),
            ("address = \"h:99999\"", "audit.forward.address"),
            (
                "address = \"h:514\"\nformat = \"cef\"",
                "audit.forward.format",
            ),
            (
                "address = \"h:514\"\nfacility = \"mail2\"",
                "audit.forward.facility",
            ),
            (
                "address = \"h:514\"\nca_file = \"/x.pem\"",
                "audit.forward.ca_file",
            ),
        ];
        for (body, field) in cases {
            let f: ConfigFile = toml::from_str(&format!("[audit.forward]\n{body}\n")).unwrap();
            let err = f
                .audit
                .forward
                .unwrap()
                .to_config(Path::new("/s"))
                .unwrap_err();
            assert!(err.contains(field), "{body}: {err}");
        }
        let unknown =
            toml::from_str::<ConfigFile>("[audit.forward]\naddress = \"h:1\"\nport = 2\n");
        assert!(unknown.is_err(), "unknown keys are refused");
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
