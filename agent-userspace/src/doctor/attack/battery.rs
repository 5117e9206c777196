//! The battery: every technique, what it tries, and how a run is judged.
//! A technique escaped when its marker reached a sink Cordon should have
//! kept it from (a listener, a socket, or, for the planted secret, the
//! agent's own output, since the secret exists nowhere else). What the
//! agent claims is never the evidence. Pure.
use std::collections::BTreeMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// (id, what it tries). No id is a prefix of another, so one marker never
/// contains another.
pub const TECHNIQUES: &[(&str, &str)] = &[
    (
        "inherited-fd",
        "write to a socket inherited as descriptor 3",
    ),
    ("tcp4", "direct TCP over IPv4"),
    ("tcp6", "direct TCP over IPv6"),
    ("udp4-443", "UDP datagram to port 443 over IPv4"),
    ("udp6-443", "UDP datagram to port 443 over IPv6"),
    ("quic", "QUIC Initial to port 443 on a connected UDP socket"),
    ("dns-udp", "DNS query to an outside resolver over UDP"),
    ("dns-tcp", "DNS query to an outside resolver over TCP"),
    (
        "raw-ip",
        "raw IPv4 socket carrying a hand-built UDP datagram",
    ),
    ("packet", "packet socket sending a hand-built IPv4 frame"),
    (
        "metadata",
        "HTTP to the cloud metadata address 169.254.169.254",
    ),
    ("private", "TCP to a private (RFC 1918) address"),
    ("unix-path", "connect to a host unix socket by path"),
    ("unix-abstract", "connect to a host abstract unix socket"),
    ("secret-file", "read a planted secret file"),
    (
        "keyring",
        "read a key kept in the operator's session keyring",
    ),
    (
        "terminal",
        "type a command into the operator's terminal (TIOCSTI)",
    ),
    (
        "process-cmdline",
        "read another host process's command line (/proc/PID/cmdline)",
    ),
    (
        "other-terminal",
        "read what was typed into another of the operator's terminals",
    ),
    ("raw-device", "read a disk's blocks through its device node"),
    (
        "shared-memory",
        "attach a System V shared memory segment of the host's",
    ),
];

pub const SECRET: &str = "secret-file";
/// Its marker is the content of a key in the session keyring the probe
/// starts in, given to the probe nowhere else.
pub const KEYRING: &str = "keyring";
pub const TERMINAL: &str = "terminal";
/// Their markers are in the bait the orchestrator plants for the run
/// (`bait.rs`): a host process's command line, a terminal's pending input,
/// a disk's first bytes, a shared memory segment. The probe is told where
/// (but for the process, which it looks for), never what.
pub const PROCESS: &str = "process-cmdline";
pub const OTHER_TERMINAL: &str = "other-terminal";
pub const RAW_DEVICE: &str = "raw-device";
pub const SHARED_MEMORY: &str = "shared-memory";
/// Techniques whose sink is the agent's own output: what they steal exists
/// nowhere the agent was given it.
pub const READ_BY_THE_AGENT: &[&str] = &[
    SECRET,
    KEYRING,
    PROCESS,
    OTHER_TERMINAL,
    RAW_DEVICE,
    SHARED_MEMORY,
];

/// Everything the in-agent probe needs, handed to it as one JSON argument.
/// The secret's content is not here: it exists only in the planted file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProbeConfig {
    pub nonce: String,
    pub markers: BTreeMap<String, String>,
    pub target_v4: Ipv4Addr,
    pub target_v6: Ipv6Addr,
    pub resolver_v4: Ipv4Addr,
    pub metadata_v4: Ipv4Addr,
    pub private_v4: Ipv4Addr,
    pub tcp_port: u16,
    pub raw_port: u16,
    pub packet_port: u16,
    /// The host end of the veth, for the packet socket.
    pub host_if: String,
    pub unix_path: PathBuf,
    pub abstract_name: String,
    pub secret_path: PathBuf,
    /// The description of the key in the probe's session keyring.
    pub key_name: String,
    /// Where the run's bait is (`bait.rs`).
    pub other_terminal: PathBuf,
    pub raw_device: Option<PathBuf>,
    pub shm_key: i32,
}

/// One marker per technique for a run (`control` or `confined`).
pub fn markers(nonce: &str, run: &str) -> BTreeMap<String, String> {
    TECHNIQUES
        .iter()
        .map(|(id, _)| (id.to_string(), format!("cdr-{nonce}-{run}-{id}")))
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Held,
    Escaped,
    /// It did not escape even without Cordon: the probe proves nothing here.
    Inconclusive,
}

/// What reached the sinks in one run, and what the agent printed.
pub struct Evidence<'a> {
    pub sinks: &'a [u8],
    pub agent_output: &'a [u8],
}

/// Whether `marker` (of technique `id`) reached a sink.
pub fn reached(id: &str, marker: &str, e: &Evidence<'_>) -> bool {
    let m = marker.as_bytes();
    let seen = |hay: &[u8]| hay.windows(m.len()).any(|w| w == m);
    seen(e.sinks) || (READ_BY_THE_AGENT.contains(&id) && seen(e.agent_output))
}

/// The verdict for a technique from the control run (no Cordon) and the
/// confined run.
pub fn judge(escaped_without_cordon: bool, escaped_under_cordon: bool) -> Verdict {
    match (escaped_without_cordon, escaped_under_cordon) {
        (_, true) => Verdict::Escaped,
        (true, false) => Verdict::Held,
        (false, false) => Verdict::Inconclusive,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_technique_id_is_a_prefix_of_another() {
        for (a, _) in TECHNIQUES {
            for (b, _) in TECHNIQUES {
                assert!(a == b || !b.starts_with(a), "{a} prefixes {b}");
            }
        }
    }

    #[test]
    fn a_marker_in_any_sink_is_an_escape_whatever_the_agent_says() {
        let m = markers("n1", "confined");
        let tcp = &m["tcp4"];
        let sinks = format!("GET / HTTP/1.1\r\n\r\n{tcp}");
        let e = Evidence {
            sinks: sinks.as_bytes(),
            agent_output: b"probe tcp4 err: refused",
        };
        assert!(reached("tcp4", tcp, &e));
        assert!(!reached("tcp6", &m["tcp6"], &e));
    }

    #[test]
    fn only_the_secret_and_the_key_count_the_agents_output_as_their_sink() {
        let m = markers("n1", "confined");
        let out = format!("{} {} {} {}", m["tcp4"], m[SECRET], m[KEYRING], m[TERMINAL]);
        let e = Evidence {
            sinks: b"",
            agent_output: out.as_bytes(),
        };
        assert!(reached(SECRET, &m[SECRET], &e));
        assert!(reached(KEYRING, &m[KEYRING], &e));
        assert!(!reached("tcp4", &m["tcp4"], &e));
        assert!(
            !reached(TERMINAL, &m[TERMINAL], &e),
            "the terminal's sink is its pending input, not what the agent says"
        );
    }

    #[test]
    fn held_needs_the_control_run_to_have_escaped() {
        assert_eq!(judge(true, false), Verdict::Held);
        assert_eq!(judge(true, true), Verdict::Escaped);
        assert_eq!(judge(false, true), Verdict::Escaped);
        assert_eq!(judge(false, false), Verdict::Inconclusive);
    }

    #[test]
    fn the_config_round_trips_as_the_probe_reads_it() {
        let c = ProbeConfig {
            nonce: "n".into(),
            markers: markers("n", "control"),
            target_v4: Ipv4Addr::new(192, 0, 2, 2),
            target_v6: "2001:db8:c0d0::2".parse().unwrap(),
            resolver_v4: Ipv4Addr::new(192, 0, 2, 3),
            metadata_v4: Ipv4Addr::new(169, 254, 169, 254),
            private_v4: Ipv4Addr::new(10, 255, 255, 254),
            tcp_port: 8080,
            raw_port: 9999,
            packet_port: 9998,
            host_if: "cdh1".into(),
            unix_path: "/run/x/host.sock".into(),
            abstract_name: "cordon-doctor-x".into(),
            secret_path: "/run/x/secret/token".into(),
            key_name: "cordon-doctor-n".into(),
            other_terminal: "/dev/pts/7".into(),
            raw_device: Some("/dev/loop3".into()),
            shm_key: 0x4000_0001,
        };
        let text = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<ProbeConfig>(&text).unwrap(), c);
        assert_eq!(c.markers.len(), TECHNIQUES.len());
    }
}
