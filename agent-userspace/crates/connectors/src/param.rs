//! Route params: where a value comes from (`path:`, `query:`, `header:`, `json:`, `form:`)
//! and what type policy sees it as.

use crate::body::Body;
use crate::error::Problem;
use crate::json_prefix::Lookup;
use http::HeaderMap;
use http::header::HeaderName;
use serde::Deserialize;
use serde_json::Value;

/// The type a param is converted to. Without one, a value keeps the type it arrived in
/// (JSON keeps numbers, everything else is a string).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ParamType {
    String,
    Int,
    Number,
    Bool,
    Json,
}

#[derive(Debug, Clone)]
pub(crate) enum Source {
    Path(String),
    Query(String),
    Header(HeaderName),
    Json(Vec<String>),
    Form(String),
}

impl Source {
    pub(crate) fn parse(text: &str) -> Result<Source, Problem> {
        let bad = |reason| Problem::ParamSource {
            source_text: text.to_string(),
            reason,
        };
        let (kind, arg) = text.split_once(':').ok_or_else(|| {
            bad("expected <kind>:<name>, kind one of path, query, header, json, form")
        })?;
        if arg.is_empty() {
            return Err(bad("empty name after ':'"));
        }
        Ok(match kind {
            "path" => Source::Path(arg.to_string()),
            "query" => Source::Query(arg.to_string()),
            "form" => Source::Form(arg.to_string()),
            "header" => Source::Header(
                HeaderName::from_bytes(arg.as_bytes())
                    .map_err(|_| bad("not a valid header name"))?,
            ),
            "json" => {
                let parts: Vec<String> = arg.split('.').map(String::from).collect();
                if parts.iter().any(String::is_empty) {
                    return Err(bad("empty element in dotted JSON path"));
                }
                Source::Json(parts)
            }
            _ => return Err(bad("unknown kind; use path, query, header, json or form")),
        })
    }

    pub(crate) fn needs_body(&self) -> bool {
        matches!(self, Source::Json(_) | Source::Form(_))
    }
}

/// Everything a source may read from.
pub(crate) struct Inputs<'a> {
    pub captures: &'a [(String, String)],
    pub query: Option<&'a str>,
    pub headers: &'a HeaderMap,
    pub body: Option<&'a Body>,
}

impl Inputs<'_> {
    fn read(&self, source: &Source) -> Lookup {
        match source {
            Source::Path(name) => self
                .captures
                .iter()
                .find(|(k, _)| k == name)
                .map_or(Lookup::Absent, |(_, v)| {
                    Lookup::Found(Value::String(v.clone()))
                }),
            Source::Query(name) => single(
                form_urlencoded::parse(self.query.unwrap_or("").as_bytes())
                    .filter(|(k, _)| k == name)
                    .map(|(_, v)| Some(v.into_owned())),
            ),
            Source::Header(name) => single(
                self.headers
                    .get_all(name)
                    .iter()
                    .map(|v| v.to_str().ok().map(String::from)),
            ),
            Source::Form(name) => match self.body {
                Some(Body::Form(fields)) => single(
                    fields
                        .iter()
                        .filter(|(k, _)| k == name)
                        .map(|(_, v)| Some(v.clone())),
                ),
                _ => Lookup::Absent,
            },
            Source::Json(path) => match self.body {
                Some(Body::Json(node)) => node.lookup(path),
                _ => Lookup::Absent,
            },
        }
    }
}

/// One value from repeated occurrences; differing repeats are ambiguous because servers
/// disagree on whether the first or the last one counts.
fn single(values: impl Iterator<Item = Option<String>>) -> Lookup {
    let mut found: Option<String> = None;
    for v in values {
        let Some(v) = v else { return Lookup::Unusable };
        match &found {
            Some(prev) if *prev != v => return Lookup::Unusable,
            Some(_) => {}
            None => found = Some(v),
        }
    }
    found.map_or(Lookup::Absent, |v| Lookup::Found(Value::String(v)))
}

/// A declared param of a route.
#[derive(Debug, Clone)]
pub(crate) struct ParamSpec {
    pub name: String,
    pub sources: Vec<Source>,
    pub ty: Option<ParamType>,
    /// Required prefix, removed; a value without it leaves the param absent.
    pub strip_prefix: Option<String>,
    /// Optional suffix, removed when present.
    pub trim_suffix: Option<String>,
}

impl ParamSpec {
    pub(crate) fn needs_body(&self) -> bool {
        self.sources.iter().any(Source::needs_body)
    }

    /// The first source that has a value decides; an ambiguous source ends the search so a
    /// later, harmless-looking source cannot stand in for it.
    pub(crate) fn resolve(&self, inputs: &Inputs<'_>) -> Option<Value> {
        let raw = self.sources.iter().find_map(|s| match inputs.read(s) {
            Lookup::Found(v) => Some(Some(v)),
            Lookup::Unusable => Some(None),
            Lookup::Absent => None,
        })??;
        let raw = match raw {
            Value::String(s) => Value::String(self.affixes(s)?),
            other => other,
        };
        match self.ty {
            Some(ty) => convert(raw, ty),
            None => Some(raw),
        }
    }

    fn affixes(&self, s: String) -> Option<String> {
        let s = match &self.strip_prefix {
            Some(p) => s.strip_prefix(p.as_str())?.to_string(),
            None => s,
        };
        Some(match &self.trim_suffix {
            Some(suf) => s.strip_suffix(suf.as_str()).map_or(s.clone(), String::from),
            None => s,
        })
    }
}

/// Convert to the declared type; `None` when the value cannot be that type.
pub(crate) fn convert(v: Value, ty: ParamType) -> Option<Value> {
    match ty {
        ParamType::Json => Some(v),
        ParamType::String => match v {
            Value::String(_) => Some(v),
            Value::Number(n) => Some(Value::String(n.to_string())),
            Value::Bool(b) => Some(Value::String(b.to_string())),
            _ => None,
        },
        ParamType::Int => match v {
            Value::Number(n) => n
                .as_i64()
                .or_else(|| {
                    n.as_f64()
                        .filter(|f| f.fract() == 0.0 && f.abs() < 9.0e15)
                        .map(|f| f as i64)
                })
                .map(Value::from),
            Value::String(s) => s.parse::<i64>().ok().map(Value::from),
            _ => None,
        },
        ParamType::Number => match v {
            Value::Number(_) => Some(v),
            Value::String(s) => s
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number),
            _ => None,
        },
        ParamType::Bool => match v {
            Value::Bool(_) => Some(v),
            Value::String(s) => match s.as_str() {
                "true" => Some(Value::Bool(true)),
                "false" => Some(Value::Bool(false)),
                _ => None,
            },
            _ => None,
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn int_accepts_json_numbers_and_decimal_strings_only() {
        assert_eq!(convert(json!(5000), ParamType::Int), Some(json!(5000)));
        assert_eq!(convert(json!("5000"), ParamType::Int), Some(json!(5000)));
        assert_eq!(convert(json!(5000.0), ParamType::Int), Some(json!(5000)));
        assert_eq!(convert(json!(50.5), ParamType::Int), None);
        assert_eq!(convert(json!("12abc"), ParamType::Int), None);
        assert_eq!(convert(json!("inf"), ParamType::Number), None);
    }

    #[test]
    fn repeated_query_values_that_differ_are_ambiguous() {
        let headers = HeaderMap::new();
        let spec = ParamSpec {
            name: "a".into(),
            sources: vec![
                Source::parse("query:a").unwrap(),
                Source::parse("header:x-a").unwrap(),
            ],
            ty: None,
            strip_prefix: None,
            trim_suffix: None,
        };
        let inputs = |q| Inputs {
            captures: &[],
            query: Some(q),
            headers: &headers,
            body: None,
        };
        assert_eq!(spec.resolve(&inputs("a=1&a=1")), Some(json!("1")));
        assert_eq!(spec.resolve(&inputs("a=1&a=2")), None);
    }

    #[test]
    fn source_syntax_is_checked() {
        assert!(Source::parse("body:x").is_err());
        assert!(Source::parse("json:a..b").is_err());
        assert!(Source::parse("header:bad header").is_err());
        assert!(Source::parse("amount").is_err());
    }
}
