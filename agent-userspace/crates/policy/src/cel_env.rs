//! The CEL side of `when`: compiling once at load, and binding a request's
//! facts into a scope of the root context that the set built once.
//!
//! Variables a `when` may use: `params`, `agent`, `chain`, `time`, `request`,
//! `schedule` and `now` (see docs/policy.md). Only the variables the set's
//! expressions use are built for a request.

use crate::decision::ActionRequest;
use crate::schedule::Window;
use cel::common::ast::{EntryExpr, Expr, IdedExpr};
use cel::common::types::{
    CelBool, CelDouble, CelInt, CelList, CelMap, CelMapKey, CelNull, CelString, CelUInt,
};
use cel::common::value::Val;
use cel::objects::{Key, Map as ValueMap};
use cel::{Context, Program, Value};
use chrono::{Datelike, Timelike};
use serde_json::Value as Json;
use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

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
pub(crate) const TYPE_NAMES: [&str; 10] = [
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
pub(crate) fn collect_bound<'a>(expr: &'a IdedExpr, out: &mut HashSet<&'a str>) {
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

/// The root context every evaluation scopes from: CEL's standard library and
/// nothing of a request's. Building one costs tens of microseconds (a request
/// to a connector with credentials built one per request for its binding,
/// which was a third of the daemon's CPU there), so the process builds it
/// once.
pub(crate) fn root() -> &'static Context<'static, 'static> {
    static ROOT: OnceLock<Context<'static, 'static>> = OnceLock::new();
    ROOT.get_or_init(Context::default)
}

/// Binds the request facts that `vars` asks for into a new scope of `root`.
/// `params` borrows the request's own strings: binding it costs one map,
/// not a copy of every value (this was most of a decision's time).
pub(crate) fn request_scope<'r, 'q>(
    root: &'r Context<'static, 'static>,
    req: &ActionRequest<'q>,
    schedules: &[(Arc<str>, Window)],
    vars: u8,
) -> Context<'r, 'q> {
    let mut scope: Context<'r, 'q> = root.new_inner_scope();
    if vars & PARAMS != 0 {
        scope.add_variable_as_val("params", Box::new(json_object_val(req.params)));
    }
    if vars & CHAIN != 0 {
        let chain: Vec<Box<dyn Val + 'q>> = req
            .chain
            .iter()
            .map(|a| Box::new(CelString::from(a.as_str())) as Box<dyn Val>)
            .collect();
        scope.add_variable_as_val("chain", Box::new(CelList::from(chain)));
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
        scope.add_variable_from_value("time", Value::Map(ValueMap::from(time)));
    }
    if vars & NOW != 0 {
        scope.add_variable_from_value("now", Value::Timestamp(now_fixed(req)));
    }
    if vars & REQUEST != 0 {
        let (method, host, path) = req
            .request
            .map_or(("", "", ""), |r| (r.method, r.host, r.path));
        let request: HashMap<CelMapKey<'q>, Box<dyn Val + 'q>> =
            [("method", method), ("host", host), ("path", path)]
                .into_iter()
                .map(|(k, v)| {
                    (
                        CelMapKey::from(k),
                        Box::new(CelString::from(v)) as Box<dyn Val>,
                    )
                })
                .collect();
        scope.add_variable_as_val("request", Box::new(CelMap::from(request)));
    }
    if vars & SCHEDULE != 0 {
        let map: HashMap<Key, Value> = schedules
            .iter()
            .map(|(name, w)| (Key::from(name.as_ref()), Value::Bool(w.contains(req.now))))
            .collect();
        scope.add_variable_from_value("schedule", Value::Map(ValueMap::from(map)));
    }
    scope
}

fn now_fixed(req: &ActionRequest<'_>) -> chrono::DateTime<chrono::FixedOffset> {
    req.now.fixed_offset()
}

fn weekday_name(day: chrono::Weekday) -> &'static str {
    ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"][day.num_days_from_monday() as usize]
}

/// JSON to a CEL value that borrows its strings. Integral numbers become
/// `int`, so that `params.amount > 1000` compares like with like; only
/// those beyond i64 stay `uint`.
fn json_val(value: &Json) -> Box<dyn Val + '_> {
    match value {
        Json::Null => Box::new(CelNull),
        Json::Bool(b) => Box::new(CelBool::from(*b)),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                Box::new(CelInt::from(i))
            } else if let Some(u) = n.as_u64() {
                Box::new(CelUInt::from(u))
            } else {
                Box::new(CelDouble::from(n.as_f64().unwrap_or(f64::NAN)))
            }
        }
        Json::String(s) => Box::new(CelString::from(s.as_str())),
        Json::Array(items) => Box::new(CelList::from(
            items.iter().map(json_val).collect::<Vec<_>>(),
        )),
        Json::Object(map) => Box::new(json_object_val(map)),
    }
}

pub(crate) fn json_object_val(map: &serde_json::Map<String, Json>) -> CelMap<'_> {
    let map: HashMap<CelMapKey<'_>, Box<dyn Val + '_>> = map
        .iter()
        .map(|(k, v)| (CelMapKey::from(k.as_str()), json_val(v)))
        .collect();
    CelMap::from(map)
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
