//! `[audit]` and `[audit.forward]` in cordon.toml: how durable a record is
//! before its request is forwarded, how long the trail is kept, and where
//! it is streamed. Every refusal names the field.
use std::path::{Path, PathBuf};

use serde::Deserialize;

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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::AuditSection;
    use crate::config::{ConfigFile, ForeignCredentials};

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
}
