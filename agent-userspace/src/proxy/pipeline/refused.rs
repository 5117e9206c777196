//! A request whose actions were refused is answered in its own protocol:
//! an MCP POST with JSON-RPC errors carrying the calls' ids, a git push
//! with git's report-status, anything else with Cordon's JSON refusal.
//! Every refusal here is already in the trail (`decide_all` recorded it).
use cordon_connectors::Completion;
use http::{Response, StatusCode};

use super::{decide_all::Refused, git_answer, mcp_answer};
use crate::proxy::{answer, body::ProxyBody};

/// How a refused request is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// JSON-RPC errors, one per request id.
    Mcp,
    /// `ng <ref> <reason>` lines git prints.
    Git,
    /// Cordon's JSON refusal with the refusal's status.
    Http,
}

/// The form for `completion`. An MCP refusal that is not a denial (the
/// trail could not be written: 503, worth retrying) keeps its HTTP status,
/// since a JSON-RPC error would read as a final "denied by policy".
pub fn form(completion: &Completion, refused: &Refused) -> Form {
    match completion {
        Completion::Mcp(_)
            if refused
                .all()
                .iter()
                .all(|(_, r)| r.status() == StatusCode::FORBIDDEN) =>
        {
            Form::Mcp
        }
        Completion::GitPush { .. } => Form::Git,
        Completion::Mcp(_) | Completion::Http(_) => Form::Http,
    }
}

/// The answer to a request none of whose actions is forwarded. `rest` is
/// the unread body (a refused push is read to its end first).
pub async fn answer(
    completion: &Completion,
    refused: &Refused,
    rest: ProxyBody,
) -> Response<ProxyBody> {
    match (form(completion, refused), completion) {
        (Form::Mcp, Completion::Mcp(request)) => mcp_answer::response(request, refused.all()),
        (Form::Git, Completion::GitPush { push, .. }) => {
            git_answer::response(push, refused.all(), rest).await
        }
        _ => {
            let (i, refusal) = refused.first();
            match completion.actions().get(i) {
                Some(a) => answer::response(refusal, &a.name, &a.params),
                None => answer::response(refusal, "", &Default::default()),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use cordon_connectors::{Action, mcp::parse_request};
    use cordon_policy::Source;

    use super::*;
    use crate::proxy::pipeline::decide_all::Refused;
    use crate::request::{Attribution, Kind, Refusal};

    fn refusal(kind: Kind) -> Refusal {
        Refusal::new(kind, "r", Attribution::cordon(Arc::from("v1")))
    }

    fn policy() -> Kind {
        Kind::Policy {
            rule: Arc::from("x"),
            source: Source::Rule,
        }
    }

    #[test]
    fn an_mcp_denial_is_answered_in_json_rpc_and_an_audit_failure_in_http() {
        let mcp = Completion::Mcp(
            parse_request(
                "s",
                None,
                br#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"t"}}"#,
            )
            .unwrap(),
        );
        assert_eq!(form(&mcp, &Refused::one(0, refusal(policy()))), Form::Mcp);
        assert_eq!(
            form(&mcp, &Refused::one(0, refusal(Kind::AuditUnavailable))),
            Form::Http
        );
        let http = Completion::Http(Action {
            connector: None,
            name: "http.request".into(),
            params: Default::default(),
            enrich: Vec::new(),
        });
        assert_eq!(form(&http, &Refused::one(0, refusal(policy()))), Form::Http);
    }
}
