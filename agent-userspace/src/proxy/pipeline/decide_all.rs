//! Stage 6 for every action of a request. An MCP batch or a git push with
//! several refs holds several actions; each goes through the `Decider` on
//! its own, so each gets its decision record and an approval holds the
//! request like any other. The request is forwarded only if every action
//! is allowed.
//!
//! The order is chosen so no human is asked about a request that is going
//! to be refused anyway: actions the pinned policy denies outright are
//! decided first (all of them, so the agent learns every reason), then the
//! allowed ones, approvals last. After the first refusal among the rest,
//! the remaining actions are not decided: they were never going to run.
//! Actions allowed before a refusal get a `failed` outcome saying they did
//! not run, so the trail never shows an allow without what became of it.
use std::time::Instant;

use cordon_audit::{Outcome, OutcomeState};
use cordon_connectors::Action;
use cordon_policy::{ActionRequest, HttpInfo, Verdict};

use super::{ask, head::Head, outcome};
use crate::{
    proxy::{answer, serve_http::HttpCtx},
    request::{Answer, Pinned, Refusal},
};

/// Why an allowed action of a refused request was not forwarded.
pub const NOT_RUN: &str = "not run: another action of the same request was refused";

/// The refused actions (index into the request's actions, and the
/// recorded refusal), in the order they were decided; never empty.
#[derive(Debug)]
pub struct Refused(Vec<(usize, Refusal)>);

impl Refused {
    pub fn one(index: usize, refusal: Refusal) -> Refused {
        Refused(vec![(index, refusal)])
    }

    /// The first refusal: the one a plain HTTP answer shows.
    pub fn first(&self) -> (usize, &Refusal) {
        let (i, r) = &self.0[0];
        (*i, r)
    }

    pub fn all(&self) -> &[(usize, Refusal)] {
        &self.0
    }
}

/// Decides every action; `Ok` holds the allow record of each, in request
/// order.
pub async fn decide_all(
    ctx: &HttpCtx,
    pinned: &Pinned,
    head: &Head,
    actions: &[&Action],
    started: Instant,
) -> Result<Vec<u64>, Refused> {
    let statics: Vec<Option<Verdict>> = if actions.len() == 1 {
        vec![None]
    } else {
        actions
            .iter()
            .map(|a| static_verdict(pinned, ctx, head, a))
            .collect()
    };
    let mut allowed: Vec<Option<u64>> = vec![None; actions.len()];
    let mut refused: Vec<(usize, Refusal)> = Vec::new();
    for i in order(&statics) {
        if !refused.is_empty() && !matches!(statics[i], Some(Verdict::Deny)) {
            break;
        }
        let a = &actions[i];
        let question = ask(
            ctx,
            head,
            a.connector.as_deref(),
            &a.name,
            &a.params,
            started,
        );
        match ctx.env.decider.decide(pinned, question).await {
            Answer::Allow { audit_id } => allowed[i] = Some(audit_id),
            Answer::Refuse(refusal) => {
                let question = ask(
                    ctx,
                    head,
                    a.connector.as_deref(),
                    &a.name,
                    &a.params,
                    started,
                );
                // Boxed: only refusals record here, and inline its future
                // would size every request's `pipeline::handle` future.
                let recorded = Box::pin(answer::record(&ctx.env, &question, refusal)).await;
                refused.push((i, recorded));
            }
        }
    }
    if refused.is_empty() {
        // Every action was decided and allowed.
        return Ok(allowed.into_iter().flatten().collect());
    }
    let (ids, which): (Vec<u64>, Vec<&Action>) = allowed
        .iter()
        .zip(actions)
        .filter_map(|(id, a)| Some(((*id)?, *a)))
        .unzip();
    unforwarded(ctx, &which, &ids, NOT_RUN);
    Err(Refused(refused))
}

/// `failed` outcomes for allowed actions (`audit_ids[i]` is `actions[i]`'s
/// allow record) whose request was not forwarded after all.
pub fn unforwarded(ctx: &HttpCtx, actions: &[&Action], audit_ids: &[u64], why: &str) {
    for (action, id) in actions.iter().zip(audit_ids) {
        let connector = action.connector.as_deref();
        let outcome = Outcome {
            error: Some(why.to_string()),
            ..outcome::of(
                &ctx.actor,
                connector,
                &action.name,
                *id,
                OutcomeState::Failed,
            )
        };
        outcome::write(&ctx.env, outcome);
    }
}

/// What the pinned policy alone says (no grants, limits or approvals
/// consumed), only to choose the order; `None` when no policy is loaded.
fn static_verdict(pinned: &Pinned, ctx: &HttpCtx, head: &Head, action: &Action) -> Option<Verdict> {
    let set = pinned.policy.as_ref()?;
    let decision = set.decide(&ActionRequest {
        chain: &ctx.actor.agent.chain,
        action: &action.name,
        params: &action.params,
        request: Some(HttpInfo {
            method: head.method.as_str(),
            host: &head.host,
            path: &head.path,
        }),
        now: chrono::Utc::now(),
    });
    Some(decision.verdict)
}

/// The order actions are decided in: static denies first, then allows,
/// then approvals (and unknowns, which the decider settles), each group in
/// request order.
pub fn order(statics: &[Option<Verdict>]) -> Vec<usize> {
    let rank = |v: &Option<Verdict>| match v {
        Some(Verdict::Deny) => 0,
        Some(Verdict::Allow) => 1,
        Some(Verdict::Approve { .. }) | None => 2,
    };
    let mut idx: Vec<usize> = (0..statics.len()).collect();
    idx.sort_by_key(|&i| rank(&statics[i]));
    idx
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    const APPROVE: Verdict = Verdict::Approve {
        timeout: Duration::from_secs(60),
    };

    #[test]
    fn denials_are_decided_first_and_approvals_last_each_in_request_order() {
        let statics = [
            Some(APPROVE),
            Some(Verdict::Allow),
            Some(Verdict::Deny),
            None,
            Some(Verdict::Allow),
            Some(Verdict::Deny),
        ];
        assert_eq!(order(&statics), vec![2, 5, 1, 4, 0, 3]);
    }

    #[test]
    fn a_single_action_is_decided_alone() {
        assert_eq!(order(&[None]), vec![0]);
        assert_eq!(order(&[]), Vec::<usize>::new());
    }
}
