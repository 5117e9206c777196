//! The `contain` setting of a policy file: how an agent is held on the host
//! (files, unix sockets), beside what its actions may do on the network.
//!
//! ```toml
//! contain = "off"            # opt out (recorded and shown by `cordon ps`)
//! # or
//! [contain]
//! read = ["/"]               # readable (and executable unless `exec` is set)
//! write = ["~/.cache/pip"]   # writable, beside the working and private temp dirs
//! exec = ["/usr", "/bin"]    # executable; default: the `read` list
//! deny = ["~/secrets"]       # never readable, beside the built-in credential list
//! unix_sockets = ["/run/user/*/bus"]   # pathname sockets the agent may connect to
//! ```
//!
//! Patterns are absolute or start at the agent user's home (`~/`), and may
//! hold `*`, `?` and `[...]` globs; `..` is refused so a pattern cannot
//! climb out of what it names. Nothing here touches the filesystem: the
//! daemon resolves patterns against the launch (user, working directory).

use crate::error::PolicyError;
use crate::source::SourceText;
use std::ops::Range;
use std::sync::Arc;

/// Whether containment applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ContainMode {
    #[default]
    On,
    Off,
}

/// A validated path pattern, as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PathPattern(String);

impl PathPattern {
    pub fn parse(text: &str) -> Result<PathPattern, String> {
        if text.is_empty() {
            return Err("an empty path".into());
        }
        if text.contains('\0') {
            return Err("a path with a NUL byte".into());
        }
        if !(text.starts_with('/') || text == "~" || text.starts_with("~/")) {
            return Err(format!(
                "`{text}` is relative: write an absolute path or one under `~/`"
            ));
        }
        if text.split('/').any(|c| c == "..") {
            return Err(format!("`{text}` has a `..` component"));
        }
        // Checked here so a bad glob fails the load, not the launch (where
        // it would silently match nothing).
        glob::Pattern::new(text).map_err(|e| format!("`{text}` is not a valid glob: {e}"))?;
        Ok(PathPattern(text.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the pattern has glob characters.
    pub fn is_glob(&self) -> bool {
        self.0.contains(['*', '?', '['])
    }
}

/// One agent's containment, merged over the files in force for it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ContainPolicy {
    pub mode: ContainMode,
    /// The file that turned containment off, for the record.
    pub off_by: Option<Arc<str>>,
    /// `None`: the default (the whole system readable).
    pub read: Option<Vec<PathPattern>>,
    pub write: Vec<PathPattern>,
    /// `None`: what `read` allows.
    pub exec: Option<Vec<PathPattern>>,
    pub deny: Vec<PathPattern>,
    pub unix_sockets: Vec<PathPattern>,
}

impl ContainPolicy {
    /// Merges another file's setting in: lists add up; `off` anywhere in
    /// force turns containment off, naming that file.
    pub(crate) fn merge(&mut self, other: &ContainPolicy) {
        if other.mode == ContainMode::Off && self.mode == ContainMode::On {
            self.mode = ContainMode::Off;
            self.off_by = other.off_by.clone();
        }
        merge_opt(&mut self.read, &other.read);
        merge_opt(&mut self.exec, &other.exec);
        merge_list(&mut self.write, &other.write);
        merge_list(&mut self.deny, &other.deny);
        merge_list(&mut self.unix_sockets, &other.unix_sockets);
    }
}

fn merge_list(into: &mut Vec<PathPattern>, from: &[PathPattern]) {
    for p in from {
        if !into.contains(p) {
            into.push(p.clone());
        }
    }
}

fn merge_opt(into: &mut Option<Vec<PathPattern>>, from: &Option<Vec<PathPattern>>) {
    if let Some(from) = from {
        merge_list(into.get_or_insert_with(Vec::new), from);
    }
}

const FIELDS: [&str; 6] = ["mode", "read", "write", "exec", "deny", "unix_sockets"];

/// Compiles the raw `contain` value of one file. Errors name the file, the
/// line of `contain` and the field.
pub(crate) fn compile(
    src: &SourceText<'_>,
    value: &toml::Spanned<toml::Value>,
) -> Result<ContainPolicy, PolicyError> {
    let span = value.span();
    let bad = |message: String| src.invalid(span.clone(), message);
    match value.get_ref() {
        toml::Value::String(mode) => Ok(with_mode(src, mode, span.clone())?),
        toml::Value::Table(table) => {
            if let Some(unknown) = table.keys().find(|k| !FIELDS.contains(&k.as_str())) {
                return Err(bad(format!(
                    "unknown field `contain.{unknown}`, expected one of {}",
                    FIELDS.join(", ")
                )));
            }
            let mut policy = match table.get("mode") {
                Some(toml::Value::String(m)) => with_mode(src, m, span.clone())?,
                Some(_) => return Err(bad("`contain.mode` must be \"on\" or \"off\"".into())),
                None => ContainPolicy::default(),
            };
            policy.read = table
                .get("read")
                .map(|v| patterns(v, "read"))
                .transpose()
                .map_err(bad)?;
            policy.exec = table
                .get("exec")
                .map(|v| patterns(v, "exec"))
                .transpose()
                .map_err(bad)?;
            for (field, into) in [
                ("write", &mut policy.write),
                ("deny", &mut policy.deny),
                ("unix_sockets", &mut policy.unix_sockets),
            ] {
                if let Some(v) = table.get(field) {
                    *into = patterns(v, field).map_err(bad)?;
                }
            }
            Ok(policy)
        }
        _ => Err(bad(
            "`contain` must be \"on\", \"off\" or a table ([contain])".into(),
        )),
    }
}

fn with_mode(
    src: &SourceText<'_>,
    mode: &str,
    span: Range<usize>,
) -> Result<ContainPolicy, PolicyError> {
    let mode = match mode {
        "on" => ContainMode::On,
        "off" => ContainMode::Off,
        other => {
            return Err(src.invalid(
                span,
                format!("`contain` mode `{other}`: expected \"on\" or \"off\""),
            ));
        }
    };
    Ok(ContainPolicy {
        mode,
        off_by: (mode == ContainMode::Off).then(|| Arc::from(src.name)),
        ..ContainPolicy::default()
    })
}

fn patterns(value: &toml::Value, field: &str) -> Result<Vec<PathPattern>, String> {
    let toml::Value::Array(items) = value else {
        return Err(format!("`contain.{field}` must be a list of paths"));
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| match item {
            toml::Value::String(s) => {
                PathPattern::parse(s).map_err(|m| format!("`contain.{field}[{i}]`: {m}"))
            }
            _ => Err(format!("`contain.{field}[{i}]` must be a string")),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile_text(text: &str) -> Result<ContainPolicy, PolicyError> {
        let src = SourceText {
            name: "a.toml",
            text,
        };
        #[derive(serde::Deserialize)]
        struct Wrap {
            contain: toml::Spanned<toml::Value>,
        }
        let w: Wrap = toml::from_str(text).expect("test TOML parses");
        compile(&src, &w.contain)
    }

    #[test]
    fn off_names_the_file_that_turned_it_off() {
        let p = compile_text("contain = \"off\"\n").unwrap();
        assert_eq!(p.mode, ContainMode::Off);
        assert_eq!(p.off_by.as_deref(), Some("a.toml"));
    }

    #[test]
    fn a_table_keeps_every_list() {
        let p = compile_text(
            "[contain]\nread = [\"/usr\"]\nwrite = [\"~/.cache\"]\ndeny = [\"/srv/keys\"]\nunix_sockets = [\"/run/user/*/bus\"]\n",
        )
        .unwrap();
        assert_eq!(p.mode, ContainMode::On);
        assert_eq!(p.read.unwrap()[0].as_str(), "/usr");
        assert_eq!(p.write[0].as_str(), "~/.cache");
        assert!(p.exec.is_none());
        assert!(p.unix_sockets[0].is_glob());
    }

    #[test]
    fn relative_and_climbing_paths_are_refused_naming_the_field() {
        let e = compile_text("[contain]\nwrite = [\"/tmp\", \"data\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("a.toml:1:1:"), "{e}");
        assert!(e.contains("contain.write[1]"), "{e}");
        let e = compile_text("[contain]\nread = [\"/home/../etc\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("`..`"), "{e}");
    }

    #[test]
    fn a_broken_glob_is_a_load_error() {
        let e = compile_text("[contain]\ndeny = [\"/srv/[keys\"]\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("contain.deny[0]") && e.contains("glob"), "{e}");
    }

    #[test]
    fn unknown_fields_and_modes_are_errors() {
        let e = compile_text("[contain]\nreed = []\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("contain.reed"), "{e}");
        let e = compile_text("contain = \"maybe\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("maybe"), "{e}");
    }

    #[test]
    fn merging_adds_lists_and_off_wins() {
        let mut a = compile_text("[contain]\nwrite = [\"/a\"]\n").unwrap();
        let b = compile_text("[contain]\nmode = \"off\"\nwrite = [\"/a\", \"/b\"]\n").unwrap();
        a.merge(&b);
        assert_eq!(a.mode, ContainMode::Off);
        assert_eq!(a.write.len(), 2);
    }
}
