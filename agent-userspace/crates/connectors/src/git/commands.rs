//! The command list at the start of a receive-pack request: one pkt-line
//! `<old> <new> <refname>` per ref (the first also carries the capabilities after a NUL),
//! optional `shallow` lines before them, a flush, push options (if negotiated) and a flush,
//! then the pack.

use super::GitPushError;
use super::oid::{HashKind, ObjectId};
use super::pktline::{Pkt, PktReader};

/// Most ref updates accepted in one push; more is refused rather than judged partly.
pub const MAX_COMMANDS: usize = 4096;

/// One `<old> <new> <refname>` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefCommand {
    pub old: ObjectId,
    pub new: ObjectId,
    pub refname: String,
}

impl RefCommand {
    pub fn is_create(&self) -> bool {
        self.old.is_zero()
    }

    pub fn is_delete(&self) -> bool {
        self.new.is_zero()
    }
}

/// What the client asked for on the first line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capabilities {
    pub report_status: bool,
    pub report_status_v2: bool,
    pub side_band_64k: bool,
    pub push_options: bool,
    pub atomic: bool,
    pub object_format: HashKind,
}

impl Capabilities {
    fn parse(text: &str) -> Result<Capabilities, GitPushError> {
        let mut caps = Capabilities {
            report_status: false,
            report_status_v2: false,
            side_band_64k: false,
            push_options: false,
            atomic: false,
            object_format: HashKind::Sha1,
        };
        for word in text.split_ascii_whitespace() {
            match word {
                "report-status" => caps.report_status = true,
                "report-status-v2" => caps.report_status_v2 = true,
                "side-band-64k" => caps.side_band_64k = true,
                "push-options" => caps.push_options = true,
                "atomic" => caps.atomic = true,
                "object-format=sha1" => caps.object_format = HashKind::Sha1,
                "object-format=sha256" => caps.object_format = HashKind::Sha256,
                w if w.starts_with("object-format=") => {
                    return Err(GitPushError::UnknownObjectFormat(w.to_string()));
                }
                _ => {}
            }
        }
        Ok(caps)
    }
}

/// The parsed head of a push request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushCommands {
    pub commands: Vec<RefCommand>,
    pub capabilities: Capabilities,
    pub push_options: Vec<String>,
    /// Where the pack starts in the body (the body's length when no pack follows).
    pub pack_offset: usize,
}

/// Parse the command list from the start of a receive-pack body. `body` may be a prefix of the
/// request, as long as it holds the whole list; otherwise the error is `Truncated`.
pub fn parse_commands(body: &[u8]) -> Result<PushCommands, GitPushError> {
    let mut reader = PktReader::new(body);
    let mut commands = Vec::new();
    let mut capabilities = None;
    loop {
        let line = match reader.next_pkt()? {
            Pkt::Flush => break,
            Pkt::Data(line) => line,
        };
        let line = line.strip_suffix(b"\n").unwrap_or(line);
        if capabilities.is_none() {
            if line.starts_with(b"shallow ") {
                continue;
            }
            if line.starts_with(b"push-cert") {
                return Err(GitPushError::SignedPush);
            }
            let (cmd, caps) = match line.iter().position(|&b| b == 0) {
                Some(nul) => (&line[..nul], &line[nul + 1..]),
                None => (line, &[][..]),
            };
            let caps = std::str::from_utf8(caps).map_err(|_| GitPushError::BadCommand)?;
            let caps = Capabilities::parse(caps)?;
            commands.push(command(cmd, caps.object_format)?);
            capabilities = Some(caps);
        } else {
            if commands.len() >= MAX_COMMANDS {
                return Err(GitPushError::TooManyCommands);
            }
            let format = capabilities
                .as_ref()
                .map_or(HashKind::Sha1, |c| c.object_format);
            commands.push(command(line, format)?);
        }
    }
    let capabilities = capabilities.ok_or(GitPushError::NoCommands)?;
    let mut push_options = Vec::new();
    if capabilities.push_options {
        loop {
            match reader.next_pkt()? {
                Pkt::Flush => break,
                Pkt::Data(opt) => {
                    let opt = opt.strip_suffix(b"\n").unwrap_or(opt);
                    let opt = std::str::from_utf8(opt).map_err(|_| GitPushError::BadCommand)?;
                    push_options.push(opt.to_string());
                }
            }
        }
    }
    Ok(PushCommands {
        commands,
        capabilities,
        push_options,
        pack_offset: reader.position(),
    })
}

fn command(line: &[u8], format: HashKind) -> Result<RefCommand, GitPushError> {
    let mut parts = line.splitn(3, |&b| b == b' ');
    let (Some(old), Some(new), Some(refname)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(GitPushError::BadCommand);
    };
    let old = ObjectId::from_hex(old, format).ok_or(GitPushError::BadCommand)?;
    let new = ObjectId::from_hex(new, format).ok_or(GitPushError::BadCommand)?;
    let refname = std::str::from_utf8(refname).map_err(|_| GitPushError::BadCommand)?;
    // git's own check-ref-format forbids these; an odd name could be read differently by a
    // policy than by the server.
    if refname.is_empty() || refname.chars().any(|c| c.is_ascii_control() || c == ' ') {
        return Err(GitPushError::BadCommand);
    }
    Ok(RefCommand {
        old,
        new,
        refname: refname.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::git::pktline::{write_flush, write_pkt};

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";
    const Z: &str = "0000000000000000000000000000000000000000";

    fn body(lines: &[String], options: Option<&[&str]>, pack: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        for l in lines {
            write_pkt(&mut out, l.as_bytes());
        }
        write_flush(&mut out);
        if let Some(opts) = options {
            for o in opts {
                write_pkt(&mut out, o.as_bytes());
            }
            write_flush(&mut out);
        }
        out.extend_from_slice(pack);
        out
    }

    #[test]
    fn parses_every_command_and_the_first_lines_capabilities() {
        let b = body(
            &[
                format!("{A} {B} refs/heads/main\0report-status side-band-64k agent=git/2.47\n"),
                format!("{Z} {B} refs/heads/new\n"),
                format!("{A} {Z} refs/tags/old\n"),
            ],
            None,
            b"PACK...",
        );
        let p = parse_commands(&b).unwrap();
        assert_eq!(p.commands.len(), 3);
        assert_eq!(p.commands[0].refname, "refs/heads/main");
        assert!(p.commands[1].is_create() && !p.commands[1].is_delete());
        assert!(p.commands[2].is_delete());
        assert!(p.capabilities.report_status && p.capabilities.side_band_64k);
        assert!(!p.capabilities.report_status_v2);
        assert_eq!(&b[p.pack_offset..], b"PACK...");
    }

    #[test]
    fn push_options_are_read_before_the_pack() {
        let b = body(
            &[format!(
                "{A} {B} refs/heads/x\0report-status push-options\n"
            )],
            Some(&["ci.skip\n"]),
            b"PACK",
        );
        let p = parse_commands(&b).unwrap();
        assert_eq!(p.push_options, vec!["ci.skip"]);
        assert_eq!(&b[p.pack_offset..], b"PACK");
    }

    #[test]
    fn shallow_lines_before_the_commands_are_skipped() {
        let b = body(
            &[
                format!("shallow {A}"),
                format!("{A} {B} refs/heads/x\0report-status\n"),
            ],
            None,
            b"",
        );
        assert_eq!(parse_commands(&b).unwrap().commands.len(), 1);
    }

    #[test]
    fn malformed_lists_are_typed_errors() {
        let short = body(&[format!("{A} {B}\0report-status\n")], None, b"");
        assert!(matches!(
            parse_commands(&short),
            Err(GitPushError::BadCommand)
        ));
        let bad_hex = body(
            &[format!("{} {B} refs/heads/x\n", "g".repeat(40))],
            None,
            b"",
        );
        assert!(matches!(
            parse_commands(&bad_hex),
            Err(GitPushError::BadCommand)
        ));
        let empty = body(&[], None, b"");
        assert!(matches!(
            parse_commands(&empty),
            Err(GitPushError::NoCommands)
        ));
        let cut = &body(&[format!("{A} {B} refs/heads/x\n")], None, b"")[..20];
        assert!(matches!(parse_commands(cut), Err(GitPushError::Truncated)));
        let signed = body(&["push-cert\0report-status\n".to_string()], None, b"");
        assert!(matches!(
            parse_commands(&signed),
            Err(GitPushError::SignedPush)
        ));
        let ctl = body(&[format!("{A} {B} refs/heads/a\tb\n")], None, b"");
        assert!(matches!(
            parse_commands(&ctl),
            Err(GitPushError::BadCommand)
        ));
    }

    #[test]
    fn sha256_ids_need_the_object_format_capability() {
        let a = "a".repeat(64);
        let b = "b".repeat(64);
        let ok = body(
            &[format!(
                "{a} {b} refs/heads/x\0report-status object-format=sha256\n"
            )],
            None,
            b"",
        );
        assert_eq!(
            parse_commands(&ok).unwrap().capabilities.object_format,
            HashKind::Sha256
        );
        let no_cap = body(
            &[format!("{a} {b} refs/heads/x\0report-status\n")],
            None,
            b"",
        );
        assert!(matches!(
            parse_commands(&no_cap),
            Err(GitPushError::BadCommand)
        ));
    }
}
