//! Which answers can be scrubbed at all, and asking for one that can.
use http::{
    HeaderMap, HeaderValue,
    header::{ACCEPT_ENCODING, CONTENT_ENCODING, TRANSFER_ENCODING},
};

use super::Echoes;

/// Asks the upstream for its answer as it is: a compressed echo of the secret would pass
/// any search for it, and the agent could inflate it. (An absent `Accept-Encoding` would
/// leave the choice to the server.)
pub fn ask_identity(request: &mut HeaderMap) {
    request.insert(ACCEPT_ENCODING, HeaderValue::from_static("identity"));
}

/// Why an answer cannot be scrubbed, if it cannot: a content or transfer coding other than
/// identity (and chunked framing, which hyper removes) hides the secret's bytes from the
/// search. Such an answer must not reach the agent. The reason quotes the upstream's header,
/// so it is scrubbed too: it goes to the agent and to the trail.
pub fn unscrubbable(response: &HeaderMap, echoes: &Echoes) -> Option<String> {
    Some(echoes.scrub_text(&coded(response)?))
}

/// The reason, quoting the header as the upstream sent it, when a coding hides the bytes.
fn coded(response: &HeaderMap) -> Option<String> {
    for (name, allowed) in [
        (CONTENT_ENCODING, &["identity"][..]),
        (TRANSFER_ENCODING, &["identity", "chunked"][..]),
    ] {
        for value in response.get_all(&name) {
            let codings = value.to_str().unwrap_or("?");
            let hidden = codings
                .split(',')
                .map(str::trim)
                .any(|c| !allowed.iter().any(|a| c.eq_ignore_ascii_case(a)));
            if hidden {
                return Some(format!(
                    "the upstream answered with {name}: {codings} though asked for identity; \
                     an answer to a request carrying an injected credential is scrubbed of it, \
                     and coded bytes cannot be, so it was withheld"
                ));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_answer_in_identity_coding_can_be_scrubbed() {
        let answer = |pairs: &[(&str, &str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.append(
                    http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                    v.parse().unwrap(),
                );
            }
            coded(&h)
        };
        assert_eq!(answer(&[]), None);
        assert_eq!(answer(&[("content-encoding", "identity")]), None);
        assert_eq!(answer(&[("transfer-encoding", "chunked")]), None);
        assert_eq!(answer(&[("content-type", "application/gzip")]), None);
        for coded in [
            &[("content-encoding", "gzip")][..],
            &[("content-encoding", "identity, br")],
            &[
                ("content-encoding", "identity"),
                ("content-encoding", "zstd"),
            ],
            &[("content-encoding", "x-custom")],
            &[("transfer-encoding", "gzip, chunked")],
        ] {
            let why = answer(coded).expect("a coded answer is refused");
            assert!(why.contains("withheld"), "{why}");
        }
        let mut h = HeaderMap::new();
        ask_identity(&mut h);
        assert_eq!(h[ACCEPT_ENCODING], "identity");
    }

    #[test]
    fn the_reason_quotes_no_secret_the_upstream_put_in_its_coding() {
        let echoes = Echoes::new(
            cordon_vault::Secret::from_slice(b"ghp_secret123"),
            cordon_connectors::Spellings::default(),
        );
        let mut h = HeaderMap::new();
        h.insert(CONTENT_ENCODING, "gzip, ghp_secret123".parse().unwrap());
        let why = unscrubbable(&h, &echoes).expect("coded");
        assert!(why.contains("gzip, [REDACTED]"), "{why}");
        assert!(!why.contains("ghp_secret123"), "{why}");
        assert_eq!(unscrubbable(&HeaderMap::new(), &echoes), None);
    }
}
