//! The console's buttons as control-plane requests. Turning a form into a
//! `Request` is pure (tested here); running it is `ops::operator_as`, the
//! same function the control socket runs, so the console cannot decide
//! anything the CLI would not.
use serde::Deserialize;
use serde_json::Value;

use super::routes::Route;
use crate::control::proto::Request;

/// How an approval is answered: the four answers of `cordon approve`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(tag = "answer", rename_all = "snake_case")]
pub enum Grant {
    /// This request only.
    Once,
    /// This request and `n - 1` more of the same action by the same agent.
    Uses { n: u32 },
    /// This request and the same action by the same agent for `secs`.
    For { secs: u64 },
    /// A reviewed `approved` rule written into the policy directory.
    Always,
}

/// Longest grant the console hands out: a day; longer belongs in policy.
pub const MAX_GRANT_SECS: u64 = 24 * 3600;
/// Most uses the console hands out at once.
pub const MAX_GRANT_USES: u32 = 1000;

#[derive(Debug, Deserialize)]
struct ApproveForm {
    id: String,
    #[serde(flatten)]
    grant: Grant,
}

#[derive(Debug, Deserialize)]
struct DenyForm {
    id: String,
    #[serde(default)]
    reason: String,
}

#[derive(Debug, Deserialize)]
struct GrantForm {
    id: String,
}

#[derive(Debug, Deserialize)]
struct TargetForm {
    target: String,
    #[serde(default)]
    reason: String,
}

fn form<T: serde::de::DeserializeOwned>(body: &Value) -> Result<T, String> {
    serde_json::from_value(body.clone()).map_err(|e| format!("bad request: {e}"))
}

fn target(t: String) -> Result<Option<String>, String> {
    let t = t.trim().to_string();
    if t.is_empty() {
        return Err("name an agent (AGENT or AGENT/ID)".into());
    }
    Ok(Some(t))
}

/// The control request a console action stands for. `all` is never set:
/// stopping every agent at once stays a deliberate CLI command.
pub fn to_request(route: Route, body: &Value) -> Result<Request, String> {
    Ok(match route {
        Route::Approve => {
            let f: ApproveForm = form(body)?;
            let (grant_secs, uses, always) = match f.grant {
                Grant::Once => (None, None, false),
                Grant::Uses { n } if (2..=MAX_GRANT_USES).contains(&n) => (None, Some(n), false),
                Grant::Uses { n } => {
                    return Err(format!("a grant gives 2 to {MAX_GRANT_USES} uses, not {n}"));
                }
                Grant::For { secs } if (1..=MAX_GRANT_SECS).contains(&secs) => {
                    (Some(secs), None, false)
                }
                Grant::For { secs } => {
                    return Err(format!(
                        "a grant lasts 1 to {MAX_GRANT_SECS} seconds, not {secs}"
                    ));
                }
                Grant::Always => (None, None, true),
            };
            Request::Approve {
                id: f.id,
                grant_secs,
                uses,
                always,
                same_params: false,
            }
        }
        Route::GrantRevoke => Request::GrantRevoke {
            id: form::<GrantForm>(body)?.id,
        },
        Route::Deny => {
            let f: DenyForm = form(body)?;
            let reason = if f.reason.trim().is_empty() {
                "denied in the console".to_string()
            } else {
                f.reason
            };
            Request::Deny { id: f.id, reason }
        }
        Route::Kill => {
            let f: TargetForm = form(body)?;
            let reason = if f.reason.trim().is_empty() {
                "killed in the console".to_string()
            } else {
                f.reason
            };
            Request::Kill {
                target: target(f.target)?,
                all: false,
                reason,
                connector: None,
            }
        }
        Route::Resume => Request::Resume {
            target: target(form::<TargetForm>(body)?.target)?,
            all: false,
            connector: None,
        },
        Route::Terminate => Request::Terminate {
            target: target(form::<TargetForm>(body)?.target)?,
            all: false,
        },
        other => return Err(format!("{} is not an action", other.name())),
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn approve(body: serde_json::Value) -> (Option<u64>, Option<u32>, bool) {
        match to_request(Route::Approve, &body).unwrap() {
            Request::Approve {
                id,
                grant_secs,
                uses,
                always,
                same_params,
            } => {
                assert_eq!(id, "ab12");
                assert!(!same_params);
                (grant_secs, uses, always)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn the_four_answers_become_the_cli_request() {
        assert_eq!(
            approve(json!({"id": "ab12", "answer": "once"})),
            (None, None, false)
        );
        assert_eq!(
            approve(json!({"id": "ab12", "answer": "uses", "n": 3})),
            (None, Some(3), false)
        );
        assert_eq!(
            approve(json!({"id": "ab12", "answer": "for", "secs": 600})),
            (Some(600), None, false)
        );
        assert_eq!(
            approve(json!({"id": "ab12", "answer": "always"})),
            (None, None, true)
        );
    }

    #[test]
    fn revoking_names_a_grant() {
        let r = to_request(Route::GrantRevoke, &json!({"id": "g1"})).unwrap();
        assert!(matches!(r, Request::GrantRevoke { ref id } if id == "g1"));
        assert!(to_request(Route::GrantRevoke, &json!({})).is_err());
    }

    #[test]
    fn a_grant_out_of_bounds_or_an_unknown_answer_is_refused() {
        for body in [
            json!({"id": "a", "answer": "for", "secs": 0}),
            json!({"id": "a", "answer": "for", "secs": MAX_GRANT_SECS + 1}),
            json!({"id": "a", "answer": "for"}),
            json!({"id": "a", "answer": "uses", "n": 1}),
            json!({"id": "a", "answer": "uses", "n": MAX_GRANT_USES + 1}),
            json!({"id": "a", "answer": "uses"}),
            json!({"id": "a", "answer": "forever"}),
            json!({"id": "a"}),
            json!({"answer": "once"}),
        ] {
            assert!(to_request(Route::Approve, &body).is_err(), "{body}");
        }
    }

    #[test]
    fn kill_resume_terminate_name_one_target_and_never_all() {
        for route in [Route::Kill, Route::Resume, Route::Terminate] {
            let r = to_request(route, &json!({"target": "bot/ab"})).unwrap();
            let (t, all) = match r {
                Request::Kill { target, all, .. }
                | Request::Resume { target, all, .. }
                | Request::Terminate { target, all } => (target, all),
                other => panic!("{other:?}"),
            };
            assert_eq!(t.as_deref(), Some("bot/ab"));
            assert!(!all);
            assert!(to_request(route, &json!({"target": "  "})).is_err());
            assert!(to_request(route, &json!({})).is_err());
        }
    }

    #[test]
    fn reads_are_not_actions() {
        assert!(to_request(Route::Agents, &json!({})).is_err());
    }
}
