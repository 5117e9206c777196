//! The narrowest conditions that still allow every action of a group:
//! destinations as `hosts`, `cidrs` and `ports`, other params as a `when`.
//! A param is generalised only as far as the evidence goes: one value is
//! pinned, a few become a set, an amount gets a ceiling at the largest seen;
//! params that vary freely or are structured are left out, and a note says
//! so, so the reviewer sees what the rule does not constrain.

use std::collections::BTreeSet;

use serde_json::Value;

use super::observe::{Dest, Group, dest_name};

/// At most this many distinct values become a set; more vary freely.
const MAX_SET: usize = 8;

/// Param names that are quantities: bounded by a ceiling, not pinned.
const QUANTITIES: [&str; 7] = [
    "amount",
    "quantity",
    "count",
    "limit",
    "max_tokens",
    "size",
    "per_page",
];

/// What a proposed rule matches, besides its action.
#[derive(Debug, Default, PartialEq)]
pub struct Scope {
    /// CEL clauses, joined with `&&`.
    pub when: Vec<String>,
    pub hosts: Vec<String>,
    pub cidrs: Vec<String>,
    pub ports: Vec<u64>,
    /// What the rule leaves unconstrained or had to generalise, for review.
    pub notes: Vec<String>,
}

pub fn scope(group: &Group<'_>) -> Scope {
    let mut s = Scope::default();
    network(group, &mut s);
    let mut keys = BTreeSet::new();
    for rec in &group.records {
        keys.extend(rec.params.keys().map(String::as_str));
    }
    for key in keys {
        if is_network_key(group.action, key) {
            continue;
        }
        let values: Vec<&Value> = group
            .records
            .iter()
            .filter_map(|r| r.params.get(key))
            .collect();
        if values.len() < group.records.len() {
            s.notes
                .push(format!("`{key}` is not always present: not constrained"));
            continue;
        }
        match condition(key, &values) {
            Ok((clause, note)) => {
                s.when.push(clause);
                s.notes.extend(note);
            }
            Err(note) => s.notes.push(note),
        }
    }
    s
}

/// Params the rule's network fields cover (see docs/policy.md).
fn is_network_key(action: &str, key: &str) -> bool {
    matches!(key, "host" | "ip" | "port") || (action == "dns.query" && key == "name")
}

fn network(group: &Group<'_>, s: &mut Scope) {
    match group.dest {
        Dest::Named => {
            let mut names = BTreeSet::new();
            for rec in &group.records {
                if let Some(name) = dest_name(group.action, rec) {
                    names.insert(super::observe::normal_name(name));
                }
            }
            // `*` and `?` are globs in `hosts`: such a name would allow more
            // than was seen, so it is left for the reviewer.
            for name in names {
                if name.contains(['*', '?']) {
                    s.notes
                        .push(format!("name {name:?} is not a plain DNS name: left out"));
                } else {
                    s.hosts.push(name);
                }
            }
        }
        Dest::Addressed => {
            let mut nets = BTreeSet::new();
            for rec in &group.records {
                let ip = rec.params.get("ip").and_then(Value::as_str);
                match ip.and_then(|t| t.parse::<std::net::IpAddr>().ok()) {
                    Some(std::net::IpAddr::V4(a)) => nets.insert(format!("{a}/32")),
                    Some(std::net::IpAddr::V6(a)) => nets.insert(format!("{a}/128")),
                    None => {
                        s.notes
                            .push(format!("address {ip:?} does not parse: left out"));
                        false
                    }
                };
            }
            s.cidrs.extend(nets);
        }
        Dest::None => {}
    }
    let ports: BTreeSet<u64> = group
        .records
        .iter()
        .filter_map(|r| r.params.get("port").and_then(Value::as_u64))
        .filter(|p| (1..=65535).contains(p))
        .collect();
    if !ports.is_empty() && ports.len() <= MAX_SET {
        s.ports.extend(ports);
    } else if ports.len() > MAX_SET {
        s.notes
            .push(format!("{} ports seen: not constrained", ports.len()));
    }
}

fn is_quantity(key: &str) -> bool {
    QUANTITIES.contains(&key) || key.ends_with("_amount") || key.ends_with("_count")
}

/// `params.key`, or `params["key"]` when the key is not an identifier.
fn field(key: &str) -> String {
    let ident = key
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if ident {
        format!("params.{key}")
    } else {
        format!("params[{}]", cel_string(key))
    }
}

/// A CEL string literal (JSON's escapes are a subset of CEL's).
pub fn cel_string(s: &str) -> String {
    Value::String(s.to_string()).to_string()
}

type Clause = (String, Option<String>);

/// One param's clause and a note, or why it is left out.
fn condition(key: &str, values: &[&Value]) -> Result<Clause, String> {
    let f = field(key);
    if let Some(strings) = values
        .iter()
        .map(|v| v.as_str())
        .collect::<Option<Vec<_>>>()
    {
        let distinct: BTreeSet<&str> = strings.into_iter().collect();
        let shown: Vec<String> = distinct.iter().map(|s| cel_string(s)).collect();
        return match distinct.len() {
            1 => Ok((format!("{f} == {}", shown[0]), None)),
            n if n <= MAX_SET => Ok((format!("{f} in [{}]", shown.join(", ")), None)),
            n => match shared_prefix(&distinct) {
                Some(p) => Ok((
                    format!("{f}.startsWith({})", cel_string(p)),
                    Some(format!(
                        "`{key}`: {n} values, generalised to their common prefix"
                    )),
                )),
                None => Err(format!("`{key}` took {n} values: not constrained")),
            },
        };
    }
    if let Some(ints) = values
        .iter()
        .map(|v| v.as_i64())
        .collect::<Option<Vec<_>>>()
    {
        let distinct: BTreeSet<i64> = ints.into_iter().collect();
        let max = distinct.last().copied().unwrap_or_default();
        if is_quantity(key) {
            return Ok((
                format!("{f} <= {max}"),
                Some(format!("`{key}`: ceiling at the largest seen ({max})")),
            ));
        }
        let shown: Vec<String> = distinct.iter().map(i64::to_string).collect();
        return match distinct.len() {
            1 => Ok((format!("{f} == {}", shown[0]), None)),
            n if n <= MAX_SET => Ok((format!("{f} in [{}]", shown.join(", ")), None)),
            n => Err(format!("`{key}` took {n} values: not constrained")),
        };
    }
    if let Some(nums) = values
        .iter()
        .map(|v| v.as_f64())
        .collect::<Option<Vec<_>>>()
    {
        let max = nums.into_iter().fold(f64::MIN, f64::max);
        if is_quantity(key) && max.is_finite() {
            // `double()` so integral and fractional amounts compare alike.
            return Ok((
                format!("double({f}) <= {max:?}"),
                Some(format!("`{key}`: ceiling at the largest seen ({max})")),
            ));
        }
        return Err(format!("`{key}` is a number that varies: not constrained"));
    }
    if let Some(bools) = values
        .iter()
        .map(|v| v.as_bool())
        .collect::<Option<Vec<_>>>()
    {
        let distinct: BTreeSet<bool> = bools.into_iter().collect();
        return match distinct.iter().next() {
            Some(b) if distinct.len() == 1 => Ok((format!("{f} == {b}"), None)),
            _ => Err(format!("`{key}` was both true and false: not constrained")),
        };
    }
    Err(format!("`{key}` is structured or mixed: not constrained"))
}

/// The longest prefix every value shares, cut after its last `/` (a path
/// or repo owner, not half a word); `None` when that leaves nothing useful.
fn shared_prefix<'a>(values: &BTreeSet<&'a str>) -> Option<&'a str> {
    let first = *values.first()?;
    let last = *values.last()?;
    // In sorted order the first and last differ the most.
    let common = first
        .char_indices()
        .zip(last.chars())
        .take_while(|((_, a), b)| a == b)
        .last()
        .map_or(0, |((i, c), _)| i + c.len_utf8());
    let cut = first[..common].rfind('/')? + 1;
    (cut > 1).then(|| &first[..cut])
}
