//! The host configuration file `cordon install` writes when none exists.
//! Only keys `ConfigFile` accepts (it denies unknown ones); the optional
//! ones are shown commented out with their defaults.
use super::layout::GROUP;
use crate::paths::{HOST_POLICIES, HOST_STATE_DIR};

pub fn config_toml() -> String {
    format!(
        "\
# Cordon host configuration, read by `cordon daemon --config /etc/cordon/cordon.toml`.
# After a change: `systemctl restart cordon` (policies alone: `systemctl reload cordon`).
state_dir = \"{HOST_STATE_DIR}\"
policies = \"{HOST_POLICIES}\"
# Members of this group may use the control socket (`cordon ps`, `cordon run`).
socket_group = \"{GROUP}\"

# Resolvers the DNS proxy forwards to (default: the nameservers of /etc/resolv.conf).
# dns_upstream = [\"127.0.0.53:53\"]
# Extra CAs trusted for upstream TLS, beside the system roots.
# upstream_ca = [\"/etc/cordon/upstream-ca.pem\"]
# Fixed proxy and resolver ports (0: any free port).
# proxy_port = 0
# dns_port = 0
# log_format = \"json\"
# metrics_addr = \"127.0.0.1:9464\"
# Pending approvals are POSTed here as JSON.
# approval_webhook = \"http://127.0.0.1:8080/cordon\"
"
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigFile;

    #[test]
    fn default_config_is_accepted_by_the_daemon_config_parser() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cordon.toml");
        std::fs::write(&p, config_toml()).unwrap();
        let cfg = ConfigFile::load(&p).unwrap();
        assert_eq!(
            cfg.state_dir.unwrap(),
            std::path::Path::new("/var/lib/cordon")
        );
        assert_eq!(
            cfg.policies.unwrap(),
            std::path::Path::new("/etc/cordon/policies")
        );
        assert_eq!(cfg.socket_group.as_deref(), Some("cordon"));
        assert!(cfg.proxy_port.is_none() && cfg.dns_upstream.is_none());
    }

    #[test]
    fn every_commented_key_is_a_valid_key_when_uncommented() {
        let uncommented: String = config_toml()
            .lines()
            .map(|l| match l.strip_prefix("# ") {
                Some(rest) if rest.contains(" = ") => rest,
                _ if l.starts_with('#') => "",
                _ => l,
            })
            .map(|l| format!("{l}\n"))
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cordon.toml");
        std::fs::write(&p, &uncommented).unwrap();
        let cfg = ConfigFile::load(&p).unwrap_or_else(|e| panic!("{e}\n{uncommented}"));
        assert_eq!(cfg.log_format.as_deref(), Some("json"));
        assert!(cfg.approval_webhook.is_some() && cfg.metrics_addr.is_some());
    }
}
