//! The refusal of a push in git's own report-status format, so `git push` prints the reason:
//!
//! ```text
//! unpack ok
//! ng refs/heads/main denied by policy: never push to main
//! ```
//!
//! as pkt-lines ending in a flush, and when the client negotiated `side-band-64k`, that whole
//! stream carried in band 1 packets followed by a flush.

use super::commands::PushCommands;
use super::pktline::{MAX_PKT_LEN, write_flush, write_pkt};

/// Content type of a receive-pack response.
pub const RECEIVE_PACK_RESULT_CONTENT_TYPE: &str = "application/x-git-receive-pack-result";

/// Why one ref is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefRefusal {
    pub refname: String,
    /// Shown by git after the ref name; newlines are replaced by spaces.
    pub reason: String,
}

/// The response body refusing the whole push: every ref of `push` gets an `ng` line, with its
/// own reason if listed in `refused`, else `other_reason` (e.g. "push refused: another ref was
/// denied by policy"). The pack is never unpacked by anyone, but git only prints per-ref
/// reasons after `unpack ok`.
pub fn refusal_body(push: &PushCommands, refused: &[RefRefusal], other_reason: &str) -> Vec<u8> {
    let mut report = Vec::new();
    write_pkt(&mut report, b"unpack ok\n");
    for cmd in &push.commands {
        let reason = refused
            .iter()
            .find(|r| r.refname == cmd.refname)
            .map_or(other_reason, |r| r.reason.as_str());
        let line = format!("ng {} {}\n", cmd.refname, one_line(reason));
        write_pkt(&mut report, truncate_line(line.as_bytes()));
    }
    write_flush(&mut report);
    if !push.capabilities.side_band_64k {
        return report;
    }
    // Band 1 carries the report; each side-band packet has one byte of band number.
    let mut out = Vec::new();
    for chunk in report.chunks(MAX_PKT_LEN - 5) {
        let mut payload = Vec::with_capacity(chunk.len() + 1);
        payload.push(1);
        payload.extend_from_slice(chunk);
        write_pkt(&mut out, &payload);
    }
    write_flush(&mut out);
    out
}

fn one_line(reason: &str) -> String {
    reason.replace(['\n', '\r'], " ")
}

/// Keep a report line within one pkt-line.
fn truncate_line(line: &[u8]) -> &[u8] {
    &line[..line.len().min(MAX_PKT_LEN - 4)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::commands::parse_commands;
    use crate::git::pktline::{Pkt, PktReader};

    fn push(caps: &str) -> PushCommands {
        let a = "1".repeat(40);
        let b = "2".repeat(40);
        let mut body = Vec::new();
        write_pkt(
            &mut body,
            format!("{a} {b} refs/heads/main\0{caps}\n").as_bytes(),
        );
        write_pkt(&mut body, format!("{a} {b} refs/heads/dev\n").as_bytes());
        write_flush(&mut body);
        parse_commands(&body).unwrap()
    }

    fn lines(stream: &[u8]) -> Vec<String> {
        let mut r = PktReader::new(stream);
        let mut out = Vec::new();
        while let Ok(Pkt::Data(d)) = r.next_pkt() {
            out.push(String::from_utf8(d.to_vec()).unwrap());
        }
        out
    }

    #[test]
    fn plain_report_names_each_ref_with_its_reason() {
        let refused = [RefRefusal {
            refname: "refs/heads/main".into(),
            reason: "denied by policy: never push\nto main".into(),
        }];
        let body = refusal_body(&push("report-status"), &refused, "push refused");
        assert_eq!(
            lines(&body),
            vec![
                "unpack ok\n",
                "ng refs/heads/main denied by policy: never push to main\n",
                "ng refs/heads/dev push refused\n",
            ]
        );
        assert!(body.ends_with(b"0000"));
    }

    #[test]
    fn side_band_wraps_the_report_in_band_one() {
        let refused = [RefRefusal {
            refname: "refs/heads/dev".into(),
            reason: "denied by policy: no".into(),
        }];
        let plain = refusal_body(&push("report-status"), &refused, "push refused");
        let banded = refusal_body(
            &push("report-status side-band-64k"),
            &refused,
            "push refused",
        );
        let outer = {
            let mut r = PktReader::new(&banded);
            let Pkt::Data(d) = r.next_pkt().unwrap() else {
                panic!("expected data")
            };
            assert_eq!(r.next_pkt().unwrap(), Pkt::Flush);
            d.to_vec()
        };
        assert_eq!(outer[0], 1);
        assert_eq!(&outer[1..], &plain[..]);
    }
}
