//! Git smart HTTP, recognised on any host: `info/refs?service=git-upload-pack` and
//! `POST …/git-upload-pack` fetch, the `git-receive-pack` pair pushes.

use http::Method;

/// Which git operation a request belongs to, and the repository path (without `.git`).
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct GitRequest {
    pub push: bool,
    pub repo: String,
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
            (advertised_service(query)?, repo)
        }
        (&Method::POST, "git-upload-pack") => ("git-upload-pack".to_string(), before),
        (&Method::POST, "git-receive-pack") => ("git-receive-pack".to_string(), before),
        _ => return None,
    };
    if repo_segments.is_empty() {
        return None;
    }
    let joined = repo_segments.join("/");
    let repo = joined.strip_suffix(".git").unwrap_or(&joined).to_string();
    Some(GitRequest {
        push: service == "git-receive-pack",
        repo,
    })
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
                push: true,
                repo: "g/sub/p".into()
            }
        );
        let r = recognise(&Method::POST, &segs("/o/r/git-upload-pack"), None).unwrap();
        assert_eq!(
            r,
            GitRequest {
                push: false,
                repo: "o/r".into()
            }
        );
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
