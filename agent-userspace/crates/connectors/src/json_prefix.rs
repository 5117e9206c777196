//! Reading fields out of a JSON body of which we may only have a prefix.
//!
//! The proxy streams bodies and hands us at most the first N bytes. A standard parser rejects
//! a cut document outright, so this one keeps every value that was fully read before the cut
//! and drops the one the cut went through. A number at the very end counts as cut, since more
//! digits may follow. Syntax errors anywhere give `None`: the upstream would reject the body.

use serde_json::Value;

/// Deeper documents are refused rather than risking the stack.
const MAX_DEPTH: usize = 128;

/// A value read from the prefix; containers remember whether their closing bracket was seen.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Scalar(Value),
    Object {
        entries: Vec<(String, Node)>,
        closed: bool,
    },
    Array {
        items: Vec<Node>,
        closed: bool,
    },
}

/// What a dotted-path lookup found.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Lookup {
    Found(Value),
    Absent,
    /// The key occurs more than once with different values, or the value was cut.
    Unusable,
}

enum Outcome {
    Done(Node),
    /// Input ended inside this value; a partially read container is kept.
    Cut(Option<Node>),
}

struct SyntaxError;

/// Parse a possibly truncated JSON document. `None` on a syntax error.
pub(crate) fn parse(input: &[u8]) -> Option<Node> {
    let mut p = Parser { b: input, i: 0 };
    match p.value(0).ok()? {
        Outcome::Done(node) => {
            p.skip_ws();
            (p.i == p.b.len()).then_some(node)
        }
        Outcome::Cut(node) => node,
    }
}

impl Node {
    fn is_complete(&self) -> bool {
        match self {
            Node::Scalar(_) => true,
            Node::Object { closed, .. } | Node::Array { closed, .. } => *closed,
        }
    }

    fn to_value(&self) -> Value {
        match self {
            Node::Scalar(v) => v.clone(),
            Node::Object { entries, .. } => Value::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.clone(), v.to_value()))
                    .collect(),
            ),
            Node::Array { items, .. } => Value::Array(items.iter().map(Node::to_value).collect()),
        }
    }

    /// Follow a dotted path (`base.ref`, `messages.0.role`).
    pub(crate) fn lookup(&self, path: &[String]) -> Lookup {
        let Some((first, rest)) = path.split_first() else {
            return if self.is_complete() {
                Lookup::Found(self.to_value())
            } else {
                Lookup::Unusable
            };
        };
        match self {
            Node::Object { entries, .. } => {
                let mut found: Option<Lookup> = None;
                for (_, child) in entries.iter().filter(|(k, _)| k == first) {
                    let here = child.lookup(rest);
                    match &found {
                        None => found = Some(here),
                        // Servers differ on which duplicate wins; refuse to guess.
                        Some(prev) if *prev != here => return Lookup::Unusable,
                        Some(_) => {}
                    }
                }
                found.unwrap_or(Lookup::Absent)
            }
            Node::Array { items, .. } => match first.parse::<usize>() {
                Ok(idx) => items.get(idx).map_or(Lookup::Absent, |c| c.lookup(rest)),
                Err(_) => Lookup::Absent,
            },
            Node::Scalar(_) => Lookup::Absent,
        }
    }
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn value(&mut self, depth: usize) -> Result<Outcome, SyntaxError> {
        if depth > MAX_DEPTH {
            return Err(SyntaxError);
        }
        self.skip_ws();
        let Some(c) = self.peek() else {
            return Ok(Outcome::Cut(None));
        };
        match c {
            b'{' => self.object(depth),
            b'[' => self.array(depth),
            b'"' => Ok(match self.string()? {
                Some(s) => Outcome::Done(Node::Scalar(Value::String(s))),
                None => Outcome::Cut(None),
            }),
            b't' => self.literal(b"true", Value::Bool(true)),
            b'f' => self.literal(b"false", Value::Bool(false)),
            b'n' => self.literal(b"null", Value::Null),
            b'-' | b'0'..=b'9' => self.number(),
            _ => Err(SyntaxError),
        }
    }

    fn literal(&mut self, word: &[u8], v: Value) -> Result<Outcome, SyntaxError> {
        let avail = &self.b[self.i..];
        if avail.len() < word.len() {
            return if word.starts_with(avail) {
                self.i = self.b.len();
                Ok(Outcome::Cut(None))
            } else {
                Err(SyntaxError)
            };
        }
        if &avail[..word.len()] != word {
            return Err(SyntaxError);
        }
        self.i += word.len();
        Ok(Outcome::Done(Node::Scalar(v)))
    }

    fn number(&mut self) -> Result<Outcome, SyntaxError> {
        let start = self.i;
        while self.i < self.b.len()
            && matches!(
                self.b[self.i],
                b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9'
            )
        {
            self.i += 1;
        }
        if self.i == self.b.len() {
            return Ok(Outcome::Cut(None));
        }
        let n: serde_json::Number =
            serde_json::from_slice(&self.b[start..self.i]).map_err(|_| SyntaxError)?;
        Ok(Outcome::Done(Node::Scalar(Value::Number(n))))
    }

    /// `Ok(None)` when the closing quote is past the cut.
    fn string(&mut self) -> Result<Option<String>, SyntaxError> {
        let start = self.i;
        let mut j = self.i + 1;
        while j < self.b.len() {
            match self.b[j] {
                b'\\' => j += 2,
                b'"' => {
                    let s: String =
                        serde_json::from_slice(&self.b[start..=j]).map_err(|_| SyntaxError)?;
                    self.i = j + 1;
                    return Ok(Some(s));
                }
                _ => j += 1,
            }
        }
        self.i = self.b.len();
        Ok(None)
    }

    fn object(&mut self, depth: usize) -> Result<Outcome, SyntaxError> {
        self.i += 1;
        let mut entries = Vec::new();
        let cut = |entries| {
            Ok(Outcome::Cut(Some(Node::Object {
                entries,
                closed: false,
            })))
        };
        self.skip_ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(Outcome::Done(Node::Object {
                entries,
                closed: true,
            }));
        }
        loop {
            self.skip_ws();
            match self.peek() {
                None => return cut(entries),
                Some(b'"') => {}
                Some(_) => return Err(SyntaxError),
            }
            let Some(key) = self.string()? else {
                return cut(entries);
            };
            self.skip_ws();
            match self.peek() {
                None => return cut(entries),
                Some(b':') => self.i += 1,
                Some(_) => return Err(SyntaxError),
            }
            match self.value(depth + 1)? {
                Outcome::Done(v) => entries.push((key, v)),
                Outcome::Cut(partial) => {
                    if let Some(v) = partial {
                        entries.push((key, v));
                    }
                    return cut(entries);
                }
            }
            self.skip_ws();
            match self.peek() {
                None => return cut(entries),
                Some(b',') => self.i += 1,
                Some(b'}') => {
                    self.i += 1;
                    return Ok(Outcome::Done(Node::Object {
                        entries,
                        closed: true,
                    }));
                }
                Some(_) => return Err(SyntaxError),
            }
        }
    }

    fn array(&mut self, depth: usize) -> Result<Outcome, SyntaxError> {
        self.i += 1;
        let mut items = Vec::new();
        let cut = |items| {
            Ok(Outcome::Cut(Some(Node::Array {
                items,
                closed: false,
            })))
        };
        self.skip_ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(Outcome::Done(Node::Array {
                items,
                closed: true,
            }));
        }
        loop {
            match self.value(depth + 1)? {
                Outcome::Done(v) => items.push(v),
                Outcome::Cut(partial) => {
                    items.extend(partial);
                    return cut(items);
                }
            }
            self.skip_ws();
            match self.peek() {
                None => return cut(items),
                Some(b',') => self.i += 1,
                Some(b']') => {
                    self.i += 1;
                    return Ok(Outcome::Done(Node::Array {
                        items,
                        closed: true,
                    }));
                }
                Some(_) => return Err(SyntaxError),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn get(doc: &str, path: &str) -> Lookup {
        let path: Vec<String> = path.split('.').map(String::from).collect();
        parse(doc.as_bytes()).map_or(Lookup::Absent, |n| n.lookup(&path))
    }

    #[test]
    fn complete_document_reads_nested_fields() {
        let doc = r#"{"base": {"ref": "main"}, "list": [1, {"a": true}]}"#;
        assert_eq!(get(doc, "base.ref"), Lookup::Found(json!("main")));
        assert_eq!(get(doc, "list.1.a"), Lookup::Found(json!(true)));
        assert_eq!(get(doc, "list.7"), Lookup::Absent);
    }

    #[test]
    fn fields_before_the_cut_survive_and_the_cut_one_does_not() {
        let doc = r#"{"model": "gpt-4o", "max_tokens": 512, "messages": [{"role": "user", "content": "hel"#;
        assert_eq!(get(doc, "model"), Lookup::Found(json!("gpt-4o")));
        assert_eq!(get(doc, "max_tokens"), Lookup::Found(json!(512)));
        assert_eq!(get(doc, "messages.0.role"), Lookup::Found(json!("user")));
        assert_eq!(get(doc, "messages.0.content"), Lookup::Absent);
        assert_eq!(get(doc, "messages"), Lookup::Unusable);
    }

    #[test]
    fn number_at_the_cut_is_not_trusted() {
        assert_eq!(get(r#"{"amount": 12"#, "amount"), Lookup::Absent);
        assert_eq!(get(r#"{"amount": 12}"#, "amount"), Lookup::Found(json!(12)));
        assert_eq!(get(r#"{"ok": tr"#, "ok"), Lookup::Absent);
    }

    #[test]
    fn conflicting_duplicate_keys_are_unusable() {
        assert_eq!(get(r#"{"a": 1, "a": 2}"#, "a"), Lookup::Unusable);
        assert_eq!(get(r#"{"a": 1, "a": 1}"#, "a"), Lookup::Found(json!(1)));
    }

    #[test]
    fn syntax_errors_and_deep_nesting_yield_nothing() {
        assert!(parse(br#"{"a": 1,, }"#).is_none());
        assert!(parse(br#"{"a": 1} trailing"#).is_none());
        assert!(parse("[".repeat(10_000).as_bytes()).is_none());
        assert!(parse(b"").is_none());
    }

    #[test]
    fn escaped_quotes_inside_strings_do_not_end_them() {
        assert_eq!(
            get(r#"{"a": "x\"y", "b": 2}"#, "a"),
            Lookup::Found(json!("x\"y"))
        );
        assert_eq!(
            get(r#"{"a": "\ud83d\ude00"}"#, "a"),
            Lookup::Found(json!("😀"))
        );
    }
}
