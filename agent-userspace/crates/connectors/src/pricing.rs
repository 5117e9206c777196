//! LLM pricing: USD per million tokens per model, and reading the usage an API reports.

use crate::connector::ConnectorSet;
use crate::error::Problem;
use crate::spec::PricingFile;
use globset::{GlobBuilder, GlobMatcher};
use serde_json::Value;

/// Price of one model in USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ModelPrice {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

#[derive(Debug)]
pub(crate) struct Pricing {
    model_path: Vec<String>,
    input_paths: Vec<Vec<String>>,
    output_paths: Vec<Vec<String>>,
    models: Vec<ModelEntry>,
}

#[derive(Debug)]
struct ModelEntry {
    matcher: GlobMatcher,
    /// Exact names beat globs; among globs, more literal characters win.
    specificity: usize,
    price: ModelPrice,
}

fn dotted(p: &str) -> Option<Vec<String>> {
    let parts: Vec<String> = p.split('.').map(String::from).collect();
    (!p.is_empty() && parts.iter().all(|s| !s.is_empty())).then_some(parts)
}

impl Pricing {
    pub(crate) fn compile(f: &PricingFile) -> Result<Self, Problem> {
        let bad = |model: &str, reason: &str| Problem::Pricing {
            model: model.to_string(),
            reason: reason.to_string(),
        };
        let paths = |list: &[String], what: &str| -> Result<Vec<Vec<String>>, Problem> {
            if list.is_empty() {
                return Err(bad(what, "needs at least one dotted JSON path"));
            }
            list.iter()
                .map(|p| dotted(p).ok_or_else(|| bad(what, "not a dotted JSON path")))
                .collect()
        };
        let mut models = Vec::new();
        for (pattern, price) in &f.models {
            let p = price.get_ref();
            if !(p.input.is_finite() && p.output.is_finite() && p.input >= 0.0 && p.output >= 0.0) {
                return Err(bad(pattern, "prices must be finite and not negative"));
            }
            let matcher = GlobBuilder::new(pattern)
                .case_insensitive(true)
                .build()
                .map_err(|e| bad(pattern, &e.kind().to_string()))?
                .compile_matcher();
            let is_glob = pattern.contains(['*', '?', '[', '{']);
            let literal = pattern.chars().filter(|c| !"*?[]{}".contains(*c)).count();
            models.push(ModelEntry {
                matcher,
                specificity: if is_glob { literal } else { usize::MAX },
                price: ModelPrice {
                    input_per_mtok: p.input,
                    output_per_mtok: p.output,
                },
            });
        }
        Ok(Self {
            model_path: dotted(&f.model).ok_or_else(|| bad("model", "not a dotted JSON path"))?,
            input_paths: paths(&f.input_tokens, "input_tokens")?,
            output_paths: paths(&f.output_tokens, "output_tokens")?,
            models,
        })
    }

    pub(crate) fn price(&self, model: &str) -> Option<ModelPrice> {
        let mut best: Option<&ModelEntry> = None;
        for m in self.models.iter().filter(|m| m.matcher.is_match(model)) {
            if best.is_none_or(|b| m.specificity > b.specificity) {
                best = Some(m);
            }
        }
        best.map(|m| m.price)
    }

    /// Usage and cost of one response: a JSON document or a server-sent-event stream of
    /// them. `None` when the response reports no usage.
    pub(crate) fn usage(&self, response: &[u8]) -> Option<Usage> {
        let events: Vec<Value> = match serde_json::from_slice::<Value>(response) {
            Ok(v) => vec![v],
            Err(_) => sse_events(response),
        };
        // Streams report usage in several events, some cumulative and some nested under
        // `message` / `response`; the largest value seen per field is the total.
        let mut model: Option<String> = None;
        let mut input = vec![None::<f64>; self.input_paths.len()];
        let mut output = vec![None::<f64>; self.output_paths.len()];
        for event in &events {
            for root in roots(event) {
                if model.is_none() {
                    model = get(root, &self.model_path)
                        .and_then(Value::as_str)
                        .map(String::from);
                }
                fold_max(root, &self.input_paths, &mut input);
                fold_max(root, &self.output_paths, &mut output);
            }
        }
        if input.iter().chain(&output).all(Option::is_none) {
            return None;
        }
        let sum = |v: &[Option<f64>]| v.iter().flatten().sum::<f64>();
        let count = |v: &[Option<f64>]| v.iter().any(Option::is_some).then(|| sum(v) as u64);
        // Counted even when the model is unpriced (Bedrock Converse answers name none).
        let cost_usd = model.and_then(|m| self.price(&m)).map(|price| {
            (sum(&input) * price.input_per_mtok + sum(&output) * price.output_per_mtok) / 1e6
        });
        Some(Usage {
            tokens_in: count(&input),
            tokens_out: count(&output),
            cost_usd,
        })
    }
}

/// What one LLM response reported: tokens as the API counted them, and their price.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Usage {
    pub tokens_in: Option<u64>,
    pub tokens_out: Option<u64>,
    /// `None` when the answer names no model, or the model has no price.
    pub cost_usd: Option<f64>,
}

fn roots(event: &Value) -> impl Iterator<Item = &Value> {
    let children = event
        .as_object()
        .into_iter()
        .flat_map(|o| o.values().filter(|v| v.is_object()));
    std::iter::once(event).chain(children)
}

fn fold_max(root: &Value, paths: &[Vec<String>], acc: &mut [Option<f64>]) {
    for (slot, path) in acc.iter_mut().zip(paths) {
        if let Some(n) = get(root, path)
            .and_then(Value::as_f64)
            .filter(|n| *n >= 0.0)
        {
            *slot = Some(slot.map_or(n, |prev| prev.max(n)));
        }
    }
}

fn get<'a>(v: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(v, |cur, key| cur.get(key.as_str()))
}

fn sse_events(body: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(body)
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .filter_map(|data| serde_json::from_str(data.trim()).ok())
        .collect()
}

impl ConnectorSet {
    /// USD cost of one LLM response of `connector`, from the usage the API reports and the
    /// connector's price table. `None` if the connector has no pricing, the response shows no
    /// usage, or the model has no price.
    pub fn usage_cost(&self, connector: &str, response_json: &[u8]) -> Option<f64> {
        self.usage(connector, response_json)?.cost_usd
    }

    /// Tokens and cost of one LLM response of `connector`; `None` if the connector has no
    /// pricing or the response shows no usage.
    pub fn usage(&self, connector: &str, response_json: &[u8]) -> Option<Usage> {
        self.connector(connector)?
            .pricing
            .as_ref()?
            .usage(response_json)
    }

    /// The price of `model` in `connector`'s table, e.g. to estimate a request's worst case.
    pub fn model_price(&self, connector: &str, model: &str) -> Option<ModelPrice> {
        self.connector(connector)?.pricing.as_ref()?.price(model)
    }
}
