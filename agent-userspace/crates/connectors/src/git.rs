//! Git smart HTTP, recognised on any host: `info/refs?service=git-upload-pack` and
//! `POST …/git-upload-pack` fetch, the `git-receive-pack` pair pushes. A push's body is read
//! into one action per ref (`push`), with `force` proven from the pack (`pack`, `ancestry`),
//! and a refusal is answered in git's report-status format (`report`).

mod ancestry;
mod commands;
mod delta;
mod inflate;
mod oid;
mod pack;
mod pktline;
mod push;
mod report;

pub use commands::{Capabilities, MAX_COMMANDS, PushCommands, RefCommand, parse_commands};
pub use oid::{HashKind, ObjectId};
pub use pack::{PackCommits, PackLimits, PackStop, scan as scan_pack};
pub use pktline::MAX_PKT_LEN;
pub use push::{Push, RefUpdate, parse_push};
pub use report::{RECEIVE_PACK_RESULT_CONTENT_TYPE, RefRefusal, refusal_body};

use http::Method;

/// Why a receive-pack body could not be read as a push. The proxy answers 400 and audits it:
/// a push Cordon cannot read is never forwarded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitPushError {
    #[error("the push body ends inside its command list")]
    Truncated,
    #[error("invalid pkt-line length")]
    BadPktLength,
    #[error("a push command is not `<old> <new> <ref>`")]
    BadCommand,
    #[error("the push has no ref commands")]
    NoCommands,
    #[error("more than {MAX_COMMANDS} ref updates in one push")]
    TooManyCommands,
    #[error("signed pushes (push-cert) are not supported")]
    SignedPush,
    #[error("unknown object format {0:?}")]
    UnknownObjectFormat(String),
}

/// Which git operation a request belongs to, and the repository path (without `.git`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct GitRequest {
    pub service: Service,
    pub repo: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Service {
    /// `GET info/refs?service=git-upload-pack` or `POST git-upload-pack`.
    Fetch,
    /// `GET info/refs?service=git-receive-pack`: the ref list a push starts with.
    PushAdvertisement,
    /// `POST git-receive-pack`: the commands and the pack.
    Push,
}

pub(crate) fn recognise(
    method: &Method,
    segments: &[String],
    query: Option<&str>,
) -> Option<GitRequest> {
    let (last, before) = segments.split_last()?;
    let (service, repo_segments) = match (method, last.as_str()) {
        (&Method::GET, "refs") => {
            let (info, repo) = before.split_last()?;
            if info != "info" {
                return None;
            }
            let service = match advertised_service(query)?.as_str() {
                "git-receive-pack" => Service::PushAdvertisement,
                _ => Service::Fetch,
            };
            (service, repo)
        }
        (&Method::POST, "git-upload-pack") => (Service::Fetch, before),
        (&Method::POST, "git-receive-pack") => (Service::Push, before),
        _ => return None,
    };
    if repo_segments.is_empty() {
        return None;
    }
    let joined = repo_segments.join("/");
    let repo = joined.strip_suffix(".git").unwrap_or(&joined).to_string();
    Some(GitRequest { service, repo })
}

/// The `service` query value, if it is exactly one of the two git services.
fn advertised_service(query: Option<&str>) -> Option<String> {
    let mut values = form_urlencoded::parse(query?.as_bytes())
        .filter(|(k, _)| k == "service")
        .map(|(_, v)| v.into_owned());
    let first = values.next()?;
    if values.any(|v| v != first) {
        return None;
    }
    matches!(first.as_str(), "git-upload-pack" | "git-receive-pack").then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segs(p: &str) -> Vec<String> {
        crate::path::normalize(p).unwrap()
    }

    #[test]
    fn recognises_both_services_and_strips_dot_git() {
        let r = recognise(
            &Method::GET,
            &segs("/g/sub/p.git/info/refs"),
            Some("service=git-receive-pack"),
        )
        .unwrap();
        assert_eq!(
            r,
            GitRequest {
                service: Service::PushAdvertisement,
                repo: "g/sub/p".into()
            }
        );
        let r = recognise(&Method::POST, &segs("/o/r/git-upload-pack"), None).unwrap();
        assert_eq!(
            r,
            GitRequest {
                service: Service::Fetch,
                repo: "o/r".into()
            }
        );
        let r = recognise(&Method::POST, &segs("/o/r.git/git-receive-pack"), None).unwrap();
        assert_eq!(r.service, Service::Push);
    }

    #[test]
    fn ambiguous_or_missing_service_is_not_git() {
        let s = segs("/o/r/info/refs");
        assert!(recognise(&Method::GET, &s, None).is_none());
        assert!(
            recognise(
                &Method::GET,
                &s,
                Some("service=git-upload-pack&service=git-receive-pack")
            )
            .is_none()
        );
        assert!(
            recognise(
                &Method::GET,
                &segs("/info/refs"),
                Some("service=git-upload-pack")
            )
            .is_none()
        );
    }
}
