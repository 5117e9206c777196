//! A test world for just-in-time credentials: a namespace, the test CA and
//! DNS, the issuers (a local GitHub, moto as S3 and STS) started before the
//! daemon, and the daemon configured to mint at them (`[credentials]` in
//! its config file) and to trust the test CA upstream.

pub mod github;
pub mod moto;

use std::net::IpAddr;
use std::path::PathBuf;

use crate::daemon::{Daemon, DaemonOpts, PolicyDir};
use crate::dns::TestDns;
use crate::error::{IoContext, Result};
use crate::netns::NetNs;
use crate::tls::TestCa;
use crate::world::POLICY_FILE;

/// The network the issuers and upstreams live in, before the daemon.
#[derive(Debug)]
pub struct Net {
    pub ns: NetNs,
    pub ca: TestCa,
    pub dns: TestDns,
}

impl Net {
    pub fn new() -> Result<Net> {
        Ok(Net {
            ns: NetNs::new()?,
            ca: TestCa::new()?,
            dns: TestDns::start()?,
        })
    }

    /// Resolves each of `names` to `ip` for agents (through Cordon's DNS).
    pub fn resolve(&self, names: &[&str], ip: IpAddr) {
        for name in names {
            self.dns.set(name, &[ip]);
        }
    }
}

/// A daemon whose config file names the issuers.
#[derive(Debug)]
pub struct JitDaemon {
    pub policies: PolicyDir,
    pub daemon: Daemon,
    config: tempfile::TempDir,
}

impl JitDaemon {
    /// The config file the daemon was started with.
    pub fn config_file(&self) -> PathBuf {
        self.config.path().join("cordon.toml")
    }

    /// Starts the daemon on `policy`, minting GitHub tokens at `github_api`
    /// and assuming roles at `sts_endpoint`.
    pub fn start(net: &Net, policy: &str, github_api: &str, sts_endpoint: &str) -> Result<Self> {
        Self::start_bin(net, policy, github_api, sts_endpoint, None)
    }

    /// As [`JitDaemon::start`], running `bin` instead of the built `cordon`.
    pub fn start_bin(
        net: &Net,
        policy: &str,
        github_api: &str,
        sts_endpoint: &str,
        bin: Option<&std::path::Path>,
    ) -> Result<Self> {
        let config = tempfile::Builder::new()
            .prefix("cordon-e2e-config-")
            .tempdir()
            .ctx(|| "config dir".into())?;
        let path: PathBuf = config.path().join("cordon.toml");
        std::fs::write(
            &path,
            format!(
                "[credentials]\ngithub_api = {github_api:?}\nsts_endpoint = {sts_endpoint:?}\n"
            ),
        )
        .ctx(|| "write cordon.toml".into())?;
        let policies = PolicyDir::new()?;
        policies.write(POLICY_FILE, policy)?;
        let mut opts = DaemonOpts::new(&policies.path(), net.dns.addr())
            .upstream_ca(&net.ca.pem_path())
            .arg("--config")
            .arg(&path.display().to_string());
        if let Some(bin) = bin {
            opts = opts.bin(bin);
        }
        let daemon = Daemon::start(opts)?;
        Ok(JitDaemon {
            policies,
            daemon,
            config,
        })
    }
}

/// The issuer URL for a credential kind a test does not use: nothing listens there.
pub const UNUSED_ISSUER: &str = "https://127.0.0.1:9";

/// A JIT daemon whose vault entry `aws-agent` (an `aws-role`) is served by a
/// moto server in the test namespace, which answers for `names`. Dropped in
/// field order: the namespace first, as the tests always did.
pub struct AwsWorld {
    pub net: Net,
    pub moto: moto::Moto,
    pub d: JitDaemon,
}

impl AwsWorld {
    pub fn start(names: &[&str], policy: &str) -> Result<AwsWorld> {
        let net = Net::new()?;
        let ip = IpAddr::V4(net.ns.v4_at(2));
        let moto = moto::Moto::start(&net.ns, &net.ca, ip, names)?;
        net.resolve(names, ip);
        let d = JitDaemon::start(&net, policy, UNUSED_ISSUER, &moto.url())?;
        let set =
            crate::secrets::vault_set_stdin(&d.daemon, "aws-agent", "aws-role", &moto.entry_json)?;
        assert!(set.status.success(), "{}", crate::world::show(&set));
        Ok(AwsWorld { net, moto, d })
    }
}
