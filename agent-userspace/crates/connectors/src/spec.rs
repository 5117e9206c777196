//! The on-disk shape of a connector file, exactly as deserialised (spans kept for errors).
//! Checking and compiling it into matchers happens in `load`.

use crate::param::ParamType;
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use std::collections::BTreeMap;
use std::fmt;
use toml::Spanned;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConnectorFile {
    pub name: Spanned<String>,
    #[serde(default)]
    pub description: Option<String>,
    pub hosts: Vec<Spanned<String>>,
    #[serde(default)]
    pub credential: Option<Spanned<CredentialFile>>,
    #[serde(default, rename = "route")]
    pub routes: Vec<Spanned<RouteFile>>,
    #[serde(default)]
    pub pricing: Option<Spanned<PricingFile>>,
    /// MCP server endpoints served by this connector.
    #[serde(default, rename = "mcp")]
    pub mcp: Vec<Spanned<McpFile>>,
}

/// `[[mcp]]`: one MCP server endpoint.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct McpFile {
    pub server: Spanned<String>,
    pub path: Spanned<String>,
    #[serde(default)]
    pub hosts: Option<Vec<Spanned<String>>>,
    #[serde(default)]
    pub sse_path: Option<Spanned<String>>,
    #[serde(default)]
    pub messages_path: Option<Spanned<String>>,
    /// Accepted so files can document endpoints; not used at run time.
    #[serde(default)]
    #[allow(dead_code)]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SchemeName {
    Bearer,
    Basic,
    Header,
    Query,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CredentialFile {
    pub scheme: SchemeName,
    #[serde(default)]
    pub header: Option<String>,
    #[serde(default)]
    pub param: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub placeholder_env: Vec<String>,
    /// Per-host scheme overrides, e.g. git over HTTPS on github.com uses basic auth.
    #[serde(default)]
    pub hosts: BTreeMap<String, Spanned<CredentialOverrideFile>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CredentialOverrideFile {
    pub scheme: SchemeName,
    #[serde(default)]
    pub header: Option<String>,
    #[serde(default)]
    pub param: Option<String>,
    #[serde(default)]
    pub username: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RouteFile {
    pub method: Spanned<String>,
    pub path: Spanned<String>,
    pub action: Spanned<String>,
    #[serde(default)]
    pub hosts: Option<Vec<Spanned<String>>>,
    /// Query params that must be present with exactly this value.
    #[serde(default)]
    pub query: BTreeMap<String, String>,
    #[serde(default)]
    pub params: BTreeMap<String, Spanned<ParamFile>>,
    #[serde(default)]
    pub enrich: BTreeMap<String, Spanned<EnrichFile>>,
    /// Accepted so files can document routes; not used at run time.
    #[serde(default)]
    #[allow(dead_code)]
    pub description: Option<String>,
}

/// `name = "json:amount"`, `name = ["form:amount", "json:amount"]` or `name = { from = ["form:amount", "json:amount"], type = "int" }`.
#[derive(Debug)]
pub(crate) struct ParamFile {
    pub from: Vec<String>,
    pub ty: Option<ParamType>,
    pub strip_prefix: Option<String>,
    pub trim_suffix: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamTable {
    from: OneOrMany,
    #[serde(default, rename = "type")]
    ty: Option<ParamType>,
    #[serde(default)]
    strip_prefix: Option<String>,
    #[serde(default)]
    trim_suffix: Option<String>,
}

struct OneOrMany(Vec<String>);

impl<'de> Deserialize<'de> for OneOrMany {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OneOrMany;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a source string or a list of source strings")
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<OneOrMany, E> {
                Ok(OneOrMany(vec![s.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<OneOrMany, A::Error> {
                Vec::<String>::deserialize(de::value::SeqAccessDeserializer::new(seq))
                    .map(OneOrMany)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for ParamFile {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ParamFile;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(
                    "a source string like \"json:amount\", a list of them, or a table with `from`",
                )
            }
            fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<ParamFile, A::Error> {
                let from = Vec::<String>::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
                Ok(ParamFile {
                    from,
                    ty: None,
                    strip_prefix: None,
                    trim_suffix: None,
                })
            }
            fn visit_str<E: de::Error>(self, s: &str) -> Result<ParamFile, E> {
                Ok(ParamFile {
                    from: vec![s.to_string()],
                    ty: None,
                    strip_prefix: None,
                    trim_suffix: None,
                })
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ParamFile, A::Error> {
                let t = ParamTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(ParamFile {
                    from: t.from.0,
                    ty: t.ty,
                    strip_prefix: t.strip_prefix,
                    trim_suffix: t.trim_suffix,
                })
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EnrichFile {
    pub get: String,
    pub json: String,
    #[serde(default, rename = "type")]
    pub ty: Option<ParamType>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PricingFile {
    #[serde(default = "default_model_path")]
    pub model: String,
    pub input_tokens: Vec<String>,
    pub output_tokens: Vec<String>,
    pub models: BTreeMap<String, Spanned<PriceFile>>,
}

fn default_model_path() -> String {
    "model".to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct PriceFile {
    pub input: f64,
    pub output: f64,
}
