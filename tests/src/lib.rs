//! The privileged end-to-end harness: a fake internet in network namespaces (HTTP, HTTPS, git,
//! TCP echo, UDP sink), a test DNS upstream on loopback, a test CA, and helpers that drive the
//! real `cordon` daemon and agents. Everything is RAII and every wait is bounded.
//!
//! Addresses come from documentation ranges (203.0.113.0/24, 198.51.100.0/24, 2001:db8::/32)
//! and are only routed to the veth of the namespace that owns them.

pub mod agent_cgroup;
pub mod browser;
pub mod cgroup;
pub mod daemon;
pub mod demo;
pub mod dns;
pub mod error;
pub mod full_disk;
pub mod git_http;
pub mod host;
pub mod http;
pub mod jit;
pub mod kernel_audit;
pub mod netns;
pub mod nginx;
pub mod operator;
pub mod operator_session;
pub mod probes;
pub mod process;
pub mod py_upstream;
mod root;
pub mod rsyslog;
pub mod secrets;
mod server_thread;
pub mod tcp_echo;
pub mod tls;
pub mod trail;
pub mod udp_sink;
pub mod world;
pub mod ws_client;
pub mod ws_echo;
pub mod ws_reflect;

/// Re-exported for [`HttpServer::route`].
pub use ::http::Method;
pub use cgroup::TestCgroupRoot;
pub use daemon::{Daemon, DaemonOpts, PolicyDir, cordon_bin, workspace_root};
pub use dns::{DnsAnswer, RecordType, ResponseCode, TestDns, dns_query, dns_query_tcp};
pub use error::{Error, Result};
pub use git_http::{GitServer, hermetic_git};
pub use http::{ConnInfo, Gzip, HttpServer, HttpsServer, Recorded, Reply};
pub use netns::NetNs;
pub use process::{copy_executable, run_checked, run_with_timeout, wait_until};
pub use root::{SKIP_LOG_ENV, require_root};
pub use tcp_echo::TcpEcho;
pub use tls::{DEFAULT_TLS_NAMES, TestCa};
pub use trail::{Trail, read_trail, read_trail_when};
pub use udp_sink::UdpSink;
pub use world::World;
