//! One grant a human gave while answering an approval, and the pure rules
//! for it: what it covers, how a use is taken, when it is over.
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// What the operator answered, beyond "yes".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GrantAsk {
    /// Uses in all, the held request being the first (`--uses 3`: it and
    /// two more). `None` with `for_secs`: as many as fit in the time.
    pub uses: Option<u32>,
    /// How long the grant lasts (`--for 1h`).
    pub for_secs: Option<u64>,
    /// Only requests with exactly the held request's params.
    pub same_params: bool,
}

/// A standing grant: the same chain may do the same action again without
/// asking, until its uses or its time run out, or it is revoked.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Grant {
    pub id: String,
    pub chain: Vec<String>,
    pub action: String,
    /// Set when the grant is scoped to exactly these params.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub params: Option<Map<String, Value>>,
    /// Uses left; `None` when only time bounds the grant.
    pub uses_left: Option<u32>,
    /// Uses given in all, counting the approved request.
    pub uses: Option<u32>,
    pub until: Option<DateTime<Utc>>,
    pub granted_by: String,
    pub granted_at: DateTime<Utc>,
    /// The approval it answered, and the rule that asked.
    pub approval: String,
    pub rule: String,
}

/// What taking a use left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Taken {
    /// Only time bounds the grant.
    Unlimited,
    Left(u32),
    /// That was the last use.
    Exhausted,
}

/// Where the grant's fields come from.
pub struct Source<'a> {
    pub id: String,
    pub chain: &'a [String],
    pub action: &'a str,
    pub params: &'a Map<String, Value>,
    pub approval: &'a str,
    pub rule: &'a str,
    pub by: &'a str,
}

impl Grant {
    /// The grant an answer makes, or `None` when the answer covers the held
    /// request alone ("once", `--uses 1`).
    pub fn from_answer(src: Source<'_>, ask: GrantAsk, now: DateTime<Utc>) -> Option<Grant> {
        let uses_left = ask.uses.map(|n| n.saturating_sub(1));
        let until = ask
            .for_secs
            .map(|s| now + chrono::Duration::seconds(i64::try_from(s).unwrap_or(i64::MAX / 2)));
        if uses_left == Some(0) || (uses_left.is_none() && until.is_none()) {
            return None;
        }
        Some(Grant {
            id: src.id,
            chain: src.chain.to_vec(),
            action: src.action.to_string(),
            params: ask.same_params.then(|| src.params.clone()),
            uses_left,
            uses: ask.uses,
            until,
            granted_by: src.by.to_string(),
            granted_at: now,
            approval: src.approval.to_string(),
            rule: src.rule.to_string(),
        })
    }

    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        self.until.is_some_and(|u| now >= u)
    }

    /// Whether this grant lets `action` by exactly `chain` through at `now`.
    /// The action is compared as a name, never as a pattern.
    pub fn covers(
        &self,
        chain: &[String],
        action: &str,
        params: &Map<String, Value>,
        now: DateTime<Utc>,
    ) -> bool {
        !self.expired(now)
            && self.uses_left != Some(0)
            && self.chain == chain
            && self.action == action
            && self.params.as_ref().is_none_or(|p| p == params)
    }

    /// Takes one use. The caller persists the result before the action goes
    /// ahead, so a crash can lose a use but never give one back.
    pub fn take(&mut self) -> Taken {
        match self.uses_left {
            None => Taken::Unlimited,
            Some(n) => {
                let left = n.saturating_sub(1);
                self.uses_left = Some(left);
                if left == 0 {
                    Taken::Exhausted
                } else {
                    Taken::Left(left)
                }
            }
        }
    }

    pub fn rule_id(&self) -> String {
        format!("grant:{}", self.id)
    }

    pub fn chain_display(&self) -> String {
        self.chain.join("/")
    }

    /// "2 of 3 uses left, until 2026-12-05T08:00:00Z".
    pub fn describe(&self) -> String {
        let uses = match (self.uses_left, self.uses) {
            (Some(l), Some(n)) => Some(format!("{l} of {n} uses left")),
            _ => None,
        };
        let until = self.until.map(|u| {
            format!(
                "until {}",
                u.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )
        });
        match (uses, until) {
            (Some(u), Some(t)) => format!("{u}, {t}"),
            (Some(u), None) => u,
            (None, Some(t)) => t,
            (None, None) => "no bound".into(),
        }
    }
}

#[cfg(test)]
mod tests;
