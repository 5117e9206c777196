//! The structured action policy decides on, and enrichment of it from upstream reads.

use crate::error::EnrichError;
use crate::json_prefix::{self, Lookup};
use crate::param::{ParamType, convert};
use serde_json::{Map, Value};

/// A request as policy sees it: `github.branch.delete {owner, repo, branch}`.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    /// The connector that recognised the request (or serves its host), if any.
    pub connector: Option<String>,
    pub name: String,
    pub params: Map<String, Value>,
    /// Params still to fetch upstream before policy is evaluated.
    pub enrich: Vec<EnrichSpec>,
}

/// A GET the proxy makes on the same host (with the same credential) to learn a param the
/// request itself does not carry, e.g. the base branch of the pull request being merged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnrichSpec {
    /// The param to set.
    pub param: String,
    /// Path to GET, already filled from the action's params and percent-encoded.
    pub path: String,
    /// Dotted path of the field in the JSON response (`base.ref`).
    pub json_path: String,
    /// Type the value is converted to, if declared.
    pub value_type: Option<ParamType>,
}

impl Action {
    /// Set `spec.param` from a fetched JSON response body. On error the param stays absent,
    /// so conditions on it cannot pass by accident.
    pub fn apply_enrichment(&mut self, spec: &EnrichSpec, body: &[u8]) -> Result<(), EnrichError> {
        serde_json::from_slice::<Value>(body).map_err(|source| EnrichError::NotJson {
            param: spec.param.clone(),
            source,
        })?;
        let path: Vec<String> = spec.json_path.split('.').map(String::from).collect();
        let missing = || EnrichError::Missing {
            param: spec.param.clone(),
            json_path: spec.json_path.clone(),
        };
        // The prefix parser also rejects conflicting duplicate keys, which serde_json does not.
        let node = json_prefix::parse(body).ok_or_else(missing)?;
        let value = match node.lookup(&path) {
            Lookup::Found(v) => v,
            Lookup::Absent | Lookup::Unusable => return Err(missing()),
        };
        let value = match spec.value_type {
            Some(ty) => convert(value, ty).ok_or_else(missing)?,
            None => value,
        };
        self.params.insert(spec.param.clone(), value);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn action() -> Action {
        Action {
            connector: Some("github".into()),
            name: "github.pr.merge".into(),
            params: Map::new(),
            enrich: Vec::new(),
        }
    }

    fn spec() -> EnrichSpec {
        EnrichSpec {
            param: "base".into(),
            path: "/repos/o/r/pulls/1".into(),
            json_path: "base.ref".into(),
            value_type: None,
        }
    }

    #[test]
    fn enrichment_sets_the_param_from_the_fetched_json() {
        let mut a = action();
        a.apply_enrichment(&spec(), br#"{"number":1,"base":{"ref":"main"}}"#)
            .unwrap();
        assert_eq!(a.params["base"], json!("main"));
    }

    #[test]
    fn enrichment_failures_leave_the_param_absent() {
        let mut a = action();
        assert!(a.apply_enrichment(&spec(), b"not json").is_err());
        assert!(a.apply_enrichment(&spec(), br#"{"base":{}}"#).is_err());
        assert!(
            a.apply_enrichment(&spec(), br#"{"base":{"ref":"a"},"base":{"ref":"b"}}"#)
                .is_err()
        );
        assert!(!a.params.contains_key("base"));
    }
}
