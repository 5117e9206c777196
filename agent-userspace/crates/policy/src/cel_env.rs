//! The CEL side of `when`: compiling once at load, and binding a request's
//! facts into a scope of the root context that the set built once.
//!
//! Variables a `when` may use: `params`, `agent`, `chain`, `time`, `request`,
//! `schedule` and `now` (see docs/policy.md). Only the variables the set's
//! expressions use are built for a request.

use crate::decision::ActionRequest;
use crate::schedule::Window;
use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use cel::objects::{Key, Map as CelMap};
use cel::{Context, Program, Value};
use chrono::{Datelike, Timelike};
use serde_json::Value as Json;
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub(crate) const PARAMS: u8 = 1;
pub(crate) const AGENT: u8 = 1 << 1;
pub(crate) const CHAIN: u8 = 1 << 2;
pub(crate) const TIME: u8 = 1 << 3;
pub(crate) const REQUEST: u8 = 1 << 4;
pub(crate) const SCHEDULE: u8 = 1 << 5;
pub(crate) const NOW: u8 = 1 << 6;

const VARIABLES: [(&str, u8); 7] = [
    ("params", PARAMS),
    ("agent", AGENT),
    ("chain", CHAIN),
    ("time", TIME),
    ("request", REQUEST),
    ("schedule", SCHEDULE),
    ("now", NOW),
];

/// Identifiers CEL itself resolves (type names) that are not variables.
const TYPE_NAMES: [&str; 10] = [
    "int",
    "uint",
    "double",
    "string",
    "bool",
    "bytes",
    "list",
    "map",
    "null_type",
    "type",
];

/// A compiled `when`, with the variables it reads.
#[derive(Debug)]
pub(crate) struct Condition {
    pub(crate) program: Program,
    pub(crate) vars: u8,
}

impl Condition {
    /// Compiles `source`; the error text is CEL's own, or names the unknown
    /// variable.
    pub(crate) fn compile(source: &str) -> Result<Condition, String> {
        let program = Program::compile(source).map_err(|e| e.to_string().replace('\n', "; "))?;
        let mut bound = HashSet::new();
        collect_bound(program.expression(), &mut bound);
        let mut vars = 0u8;
        let references = program.references();
        let mut names = references.variables();
        names.sort_unstable();
        for name in names {
            if let Some((_, bit)) = VARIABLES.iter().find(|(n, _)| *n == name) {
                vars |= bit;
            } else if !bound.contains(name) && !TYPE_NAMES.contains(&name) {
                return Err(format!(
                    "unknown variable `{name}` (known: params, agent, chain, time, request, schedule, now)"
                ));
            }
        }
        Ok(Condition { program, vars })
    }

    /// True, false, or why it could not be decided.
    pub(crate) fn eval(&self, scope: &Context<'_, '_>) -> Result<bool, String> {
        match self.program.execute(scope) {
            Ok(Value::Bool(b)) => Ok(b),
            Ok(other) => Err(format!("`when` gave {other:?}, not a bool")),
            Err(e) => Err(e.to_string()),
        }
    }
}

/// Names bound by comprehensions (`exists(x, ...)`), which are not free
/// variables.
fn collect_bound<'a>(expr: &'a IdedExpr, out: &mut HashSet<&'a str>) {
    match &expr.expr {
        Expr::Call(call) => {
            if let Some(target) = &call.target {
                collect_bound(target, out);
            }
            call.args.iter().for_each(|a| collect_bound(a, out));
        }
        Expr::Comprehension(c) => {
            out.insert(&c.iter_var);
            if let Some(v) = &c.iter_var2 {
                out.insert(v);
            }
            out.insert(&c.accu_var);
            for e in [
                &c.iter_range,
                &c.accu_init,
                &c.loop_cond,
                &c.loop_step,
                &c.result,
            ] {
                collect_bound(e, out);
            }
        }
        Expr::List(list) => list.elements.iter().for_each(|e| collect_bound(e, out)),
        Expr::Map(map) => map.entries.iter().for_each(|e| entry_bound(&e.expr, out)),
        Expr::Struct(s) => s.entries.iter().for_each(|e| entry_bound(&e.expr, out)),
        Expr::Select(select) => collect_bound(&select.operand, out),
        Expr::Ident(_) | Expr::Literal(_) | Expr::Unspecified => {}
    }
}

fn entry_bound<'a>(entry: &'a EntryExpr, out: &mut HashSet<&'a str>) {
    match entry {
        EntryExpr::StructField(f) => collect_bound(&f.value, out),
        EntryExpr::MapEntry(m) => {
            collect_bound(&m.key, out);
            collect_bound(&m.value, out);
        }
    }
}

/// The root context every evaluation scopes from. Building one costs tens of
/// microseconds, so the set builds it once.
pub(crate) fn root_context() -> Context<'static, 'static> {
    Context::default()
}

/// Binds the request facts that `vars` asks for into a new scope of `root`.
pub(crate) fn request_scope<'r>(
    root: &'r Context<'static, 'static>,
    req: &ActionRequest<'_>,
    schedules: &[(Arc<str>, Window)],
    vars: u8,
) -> Context<'r, 'static> {
    let mut scope = root.new_inner_scope();
    if vars & PARAMS != 0 {
        let map: HashMap<Key, Value> = req
            .params
            .iter()
            .map(|(k, v)| (Key::from(k.as_str()), json_to_cel(v)))
            .collect();
        scope.add_variable_from_value("params", Value::Map(CelMap::from(map)));
    }
    if vars & CHAIN != 0 {
        let chain: Vec<Value> = req.chain.iter().map(|a| Value::from(a.as_str())).collect();
        scope.add_variable_from_value("chain", Value::List(Arc::new(chain)));
    }
    if vars & TIME != 0 {
        let now = req.now;
        let mut time = HashMap::new();
        time.insert(Key::from("hour"), Value::Int(now.hour() as i64));
        time.insert(Key::from("minute"), Value::Int(now.minute() as i64));
        time.insert(
            Key::from("weekday"),
            Value::Int(now.weekday().number_from_monday() as i64),
        );
        time.insert(Key::from("day"), Value::from(weekday_name(now.weekday())));
        time.insert(Key::from("unix"), Value::Int(now.timestamp()));
        scope.add_variable_from_value("time", Value::Map(CelMap::from(time)));
    }
    if vars & NOW != 0 {
        scope.add_variable_from_value("now", Value::Timestamp(now_fixed(req)));
    }
    if vars & REQUEST != 0 {
        let mut request = HashMap::new();
        let (method, host, path) = req
            .request
            .map_or(("", "", ""), |r| (r.method, r.host, r.path));
        request.insert(Key::from("method"), Value::from(method));
        request.insert(Key::from("host"), Value::from(host));
        request.insert(Key::from("path"), Value::from(path));
        scope.add_variable_from_value("request", Value::Map(CelMap::from(request)));
    }
    if vars & SCHEDULE != 0 {
        let map: HashMap<Key, Value> = schedules
            .iter()
            .map(|(name, w)| (Key::from(name.as_ref()), Value::Bool(w.contains(req.now))))
            .collect();
        scope.add_variable_from_value("schedule", Value::Map(CelMap::from(map)));
    }
    scope
}

fn now_fixed(req: &ActionRequest<'_>) -> chrono::DateTime<chrono::FixedOffset> {
    req.now.fixed_offset()
}

fn weekday_name(day: chrono::Weekday) -> &'static str {
    ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][day.num_days_from_monday() as usize]
}

/// JSON to CEL. Integral numbers become `int` so that `params.amount > 1000`
/// compares like with like; only those beyond i64 stay `uint`.
pub(crate) fn json_to_cel(value: &Json) -> Value {
    match value {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Bool(*b),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::Int(i)
            } else if let Some(u) = n.as_u64() {
                Value::UInt(u)
            } else {
                Value::Float(n.as_f64().unwrap_or(f64::NAN))
            }
        }
        Json::String(s) => Value::from(s.as_str()),
        Json::Array(items) => Value::List(Arc::new(items.iter().map(json_to_cel).collect())),
        Json::Object(map) => {
            let map: HashMap<Key, Value> = map
                .iter()
                .map(|(k, v)| (Key::from(k.as_str()), json_to_cel(v)))
                .collect();
            Value::Map(CelMap::from(map))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Condition;

    #[test]
    fn conditions_know_their_variables() {
        let c = Condition::compile(r#"params.base == "main" && agent != "x""#).unwrap();
        assert_eq!(c.vars, super::PARAMS | super::AGENT);
        let c = Condition::compile(r#"params.tags.exists(t, t == "prod")"#).unwrap();
        assert_eq!(c.vars, super::PARAMS);
    }

    #[test]
    fn unknown_variables_are_compile_errors() {
        let e = Condition::compile("param.base == 'main'").unwrap_err();
        assert!(e.contains("unknown variable `param`"), "{e}");
    }

    #[test]
    fn syntax_errors_are_compile_errors() {
        assert!(Condition::compile("params.base ==").is_err());
    }
}
