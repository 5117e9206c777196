//! Reading `[credentials]` out of a policy file: the plain
//! `connector = "entry"` form or a list of bindings, each checked and its
//! `when` compiled, with errors at the binding's `file:line:col`.

use crate::bindings::{Binding, Bindings};
use crate::cel_env::{TYPE_NAMES, collect_bound};
use crate::error::PolicyError;
use crate::source::SourceText;
use cel::Program;
use serde::Deserialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use std::collections::{BTreeMap, HashSet};
use std::ops::Range;
use std::sync::Arc;
use toml::Spanned;

/// The TOML shape of one `[credentials]` value. Read by hand rather than
/// as an untagged enum so each binding keeps its position.
#[derive(Debug)]
pub(crate) enum RawCredential {
    Entry(String),
    Bindings(Vec<Spanned<RawBinding>>),
}

impl<'de> Deserialize<'de> for RawCredential {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct OneOf;
        impl<'de> Visitor<'de> for OneOf {
            type Value = RawCredential;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(
                    "a vault entry name, or a list of bindings ([[credentials.<connector>]] with entry, when, repositories, permissions)",
                )
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawCredential, E> {
                Ok(RawCredential::Entry(v.to_string()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RawCredential, A::Error> {
                let mut list = Vec::new();
                while let Some(b) = seq.next_element::<Spanned<RawBinding>>()? {
                    list.push(b);
                }
                Ok(RawCredential::Bindings(list))
            }
        }
        d.deserialize_any(OneOf)
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBinding {
    entry: String,
    when: Option<Spanned<String>>,
    #[serde(default)]
    repositories: Vec<String>,
    #[serde(default)]
    permissions: BTreeMap<String, String>,
}

const BINDING_VARIABLES: [&str; 2] = ["action", "params"];

/// Compiles one file's `[credentials]`, with errors at the value's line.
pub(crate) fn compile(
    src: &SourceText<'_>,
    raw: &BTreeMap<String, Spanned<RawCredential>>,
) -> Result<BTreeMap<String, Arc<Bindings>>, PolicyError> {
    let mut out = BTreeMap::new();
    for (connector, value) in raw {
        let span = value.span();
        let list = match value.get_ref() {
            RawCredential::Entry(entry) => {
                check_entry(src, span.clone(), connector, entry)?;
                vec![Binding {
                    entry: entry.clone(),
                    repositories: Vec::new(),
                    permissions: BTreeMap::new(),
                    location: location(src, &span),
                    when_source: None,
                    when: None,
                }]
            }
            RawCredential::Bindings(raws) => {
                if raws.is_empty() {
                    return Err(src.invalid(
                        span,
                        format!("credentials.{connector}: an empty list binds nothing; remove it"),
                    ));
                }
                let mut list = Vec::with_capacity(raws.len());
                for b in raws {
                    list.push(compile_binding(src, connector, b)?);
                }
                list
            }
        };
        out.insert(connector.clone(), Arc::new(Bindings::new(list)));
    }
    Ok(out)
}

fn location(src: &SourceText<'_>, span: &Range<usize>) -> String {
    format!("{}:{}", src.name, src.line_col(span.start).0)
}

fn compile_binding(
    src: &SourceText<'_>,
    connector: &str,
    spanned: &Spanned<RawBinding>,
) -> Result<Binding, PolicyError> {
    let span = spanned.span();
    let raw = spanned.get_ref();
    check_entry(src, span.clone(), connector, &raw.entry)?;
    for repo in &raw.repositories {
        if repo.is_empty() || repo.split('/').count() > 2 || repo.split('/').any(str::is_empty) {
            return Err(src.invalid(
                span,
                format!(
                    "credentials.{connector}: repository `{repo}` is not `owner/repo` or `repo`"
                ),
            ));
        }
    }
    for (perm, level) in &raw.permissions {
        if !matches!(level.as_str(), "read" | "write" | "admin") {
            return Err(src.invalid(
                span,
                format!(
                    "credentials.{connector}: permission `{perm}` is `{level}`; use read, write or admin"
                ),
            ));
        }
    }
    let when = match &raw.when {
        None => None,
        Some(text) => Some(compile_when(text.get_ref()).map_err(|m| {
            src.invalid(
                text.span(),
                format!("credentials.{connector}: `when` does not compile: {m}"),
            )
        })?),
    };
    Ok(Binding {
        entry: raw.entry.clone(),
        repositories: raw.repositories.clone(),
        permissions: raw.permissions.clone(),
        location: location(src, &span),
        when_source: raw.when.as_ref().map(|w| w.get_ref().clone()),
        when,
    })
}

fn check_entry(
    src: &SourceText<'_>,
    span: Range<usize>,
    connector: &str,
    entry: &str,
) -> Result<(), PolicyError> {
    let valid = entry
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphanumeric())
        && entry.len() <= 128
        && entry
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if valid {
        Ok(())
    } else {
        Err(src.invalid(
            span,
            format!("credentials.{connector}: `{entry}` is not a vault entry name ([A-Za-z0-9][A-Za-z0-9._-]*)"),
        ))
    }
}

/// Compiles a binding's `when`; only `action` and `params` are in scope.
fn compile_when(source: &str) -> Result<Program, String> {
    let program = Program::compile(source).map_err(|e| e.to_string().replace('\n', "; "))?;
    let mut bound = HashSet::new();
    collect_bound(program.expression(), &mut bound);
    let references = program.references();
    let mut names = references.variables();
    names.sort_unstable();
    for name in names {
        if !BINDING_VARIABLES.contains(&name)
            && !bound.contains(name)
            && !TYPE_NAMES.contains(&name)
        {
            return Err(format!(
                "unknown variable `{name}` (a binding's `when` sees action and params)"
            ));
        }
    }
    Ok(program)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn load(text: &str) -> Result<BTreeMap<String, Arc<Bindings>>, PolicyError> {
        #[derive(Deserialize)]
        struct File {
            credentials: BTreeMap<String, Spanned<RawCredential>>,
        }
        let src = SourceText {
            name: "p.toml",
            text,
        };
        let file: File = toml::from_str(text)
            .map_err(|e| src.invalid(e.span().unwrap_or(0..0), e.message().to_string()))?;
        compile(&src, &file.credentials)
    }

    #[test]
    fn bad_bindings_are_load_errors_with_the_line() {
        let unknown_var = load(
            r#"
[[credentials.github]]
entry = "a"
when = 'agent == "x"'
"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            unknown_var.starts_with("p.toml:4:8:")
                && unknown_var.contains("unknown variable `agent`"),
            "{unknown_var}"
        );
        let bad_level = load(
            r#"
[[credentials.github]]
entry = "a"
permissions = { contents = "everything" }
"#,
        )
        .unwrap_err()
        .to_string();
        assert!(
            bad_level.contains("use read, write or admin"),
            "{bad_level}"
        );
        let bad_entry = load(r#"credentials = { github = "../etc" }"#)
            .unwrap_err()
            .to_string();
        assert!(bad_entry.contains("not a vault entry name"), "{bad_entry}");
        let bad_repo = load(
            r#"
[[credentials.github]]
entry = "a"
repositories = ["a/b/c"]
"#,
        )
        .unwrap_err()
        .to_string();
        assert!(bad_repo.contains("`a/b/c`"), "{bad_repo}");
    }

    #[test]
    fn a_misspelt_field_names_itself() {
        let err = load(
            r#"
[[credentials.github]]
entry = "a"
repos = ["x"]
"#,
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("repos"), "{err}");
    }
}
