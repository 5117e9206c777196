//! Turning parsed files into rules, limits and schedules, each checked and
//! compiled once, with errors that point at `file:line:col`.

use crate::cel_env::Condition;
use crate::contain::ContainPolicy;
use crate::decision::Verdict;
use crate::duration::parse_duration;
use crate::error::PolicyError;
use crate::glob::Glob;
use crate::learn::Mode;
use crate::load::LoadedFile;
use crate::network::{Cidr, NetMatch, parse_port_range};
use crate::schedule::Window;
use crate::source::{RawOnExceed, RawPort, RawVerdict, SourceText};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub(crate) const DEFAULT_APPROVAL_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug)]
pub(crate) struct Rule {
    pub(crate) id: Arc<str>,
    /// `file:line`, for explanations.
    pub(crate) location: Arc<str>,
    pub(crate) action: Glob,
    pub(crate) verdict: Verdict,
    /// An `approved` rule: its verdict is allow, and it outranks the
    /// agent's `approve` rules and default (never a deny).
    pub(crate) approved: bool,
    pub(crate) reason: Arc<str>,
    pub(crate) when: Option<Condition>,
    pub(crate) net: NetMatch,
    /// For a freeze schedule: the schedule whose window must be active.
    pub(crate) window: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnExceed {
    Deny,
    Approve,
    Kill,
}

/// A `[[limit]]`: at most `max` matching actions per agent in any `per`.
#[derive(Debug)]
pub struct Limit {
    pub id: Arc<str>,
    pub(crate) action: Glob,
    pub max: u32,
    pub per: Duration,
    pub on_exceed: OnExceed,
    pub approval_timeout: Duration,
}

impl Limit {
    pub fn action(&self) -> &str {
        self.action.as_str()
    }
}

/// Bounds on one run of an agent; `None` is unbounded.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Envelope {
    pub max_runtime: Option<Duration>,
    pub max_actions: Option<u64>,
    pub max_cost_usd: Option<f64>,
}

impl Envelope {
    /// The tighter of each bound.
    pub(crate) fn tighten(&mut self, other: &Envelope) {
        fn min<T: PartialOrd + Copy>(a: Option<T>, b: Option<T>) -> Option<T> {
            match (a, b) {
                (Some(x), Some(y)) => Some(if y < x { y } else { x }),
                (x, None) => x,
                (None, y) => y,
            }
        }
        self.max_runtime = min(self.max_runtime, other.max_runtime);
        self.max_actions = min(self.max_actions, other.max_actions);
        self.max_cost_usd = min(self.max_cost_usd, other.max_cost_usd);
    }
}

/// One compiled file.
#[derive(Debug)]
pub(crate) struct Unit {
    pub(crate) name: Arc<str>,
    /// Globs over agent names; only top-level files have them.
    pub(crate) agents: Vec<Glob>,
    pub(crate) top_level: bool,
    pub(crate) default: Option<Verdict>,
    /// Only top-level files have one; `None` when the file does not say.
    pub(crate) mode: Option<Mode>,
    pub(crate) rules: Vec<usize>,
    pub(crate) limits: Vec<Arc<Limit>>,
    pub(crate) envelope: Envelope,
    pub(crate) credentials: BTreeMap<String, Arc<crate::bindings::Bindings>>,
    pub(crate) contain: Option<ContainPolicy>,
    pub(crate) caps: crate::caps::CapOverrides,
    pub(crate) extends: Vec<usize>,
}

pub(crate) struct Compiled {
    pub(crate) rules: Vec<Rule>,
    pub(crate) units: Vec<Unit>,
    pub(crate) schedules: Vec<(Arc<str>, Window)>,
}

pub(crate) fn compile(files: &[LoadedFile]) -> Result<Compiled, PolicyError> {
    let mut out = Compiled {
        rules: Vec::new(),
        units: Vec::new(),
        schedules: Vec::new(),
    };
    // Schedules first: rules of any file may name any schedule.
    let mut schedule_defs: Vec<(String, String)> = Vec::new();
    for file in files {
        let src = source(file);
        for sched in &file.raw.schedules {
            let s = sched.get_ref();
            let window = Window::parse(s.window.get_ref())
                .map_err(|m| src.invalid(s.window.span(), format!("schedule window {m}")))?;
            let name = s.name.get_ref();
            match schedule_defs.iter().position(|(n, _)| n == name) {
                Some(i) if schedule_defs[i].1 != *s.window.get_ref() => {
                    return Err(src.invalid(
                        s.name.span(),
                        format!("schedule `{name}` is defined elsewhere with another window"),
                    ));
                }
                Some(_) => {}
                None => {
                    schedule_defs.push((name.clone(), s.window.get_ref().clone()));
                    out.schedules.push((Arc::from(name.as_str()), window));
                }
            }
        }
    }
    for file in files {
        let unit = compile_file(file, &mut out)?;
        out.units.push(unit);
    }
    Ok(out)
}

fn source(file: &LoadedFile) -> SourceText<'_> {
    SourceText {
        name: &file.name,
        text: &file.text,
    }
}

impl Rule {
    /// Which matching rule decides: deny, then approved, then approve,
    /// then allow.
    pub(crate) fn rank(&self) -> u8 {
        match self.verdict {
            Verdict::Deny => 3,
            Verdict::Approve { .. } => 1,
            Verdict::Allow if self.approved => 2,
            Verdict::Allow => 0,
        }
    }

    /// The rule's `decision` as written.
    pub(crate) fn decision_name(&self) -> &'static str {
        if self.approved {
            "approved"
        } else {
            self.verdict.name()
        }
    }
}

fn verdict(raw: RawVerdict, timeout: Duration) -> Verdict {
    match raw {
        RawVerdict::Allow | RawVerdict::Approved => Verdict::Allow,
        RawVerdict::Deny => Verdict::Deny,
        RawVerdict::Approve => Verdict::Approve { timeout },
    }
}

fn compile_file(file: &LoadedFile, out: &mut Compiled) -> Result<Unit, PolicyError> {
    let src = source(file);
    let raw = &file.raw;
    let agents = match (&raw.agents, file.top_level) {
        (Some(list), true) => list
            .get_ref()
            .iter()
            .map(|a| Glob::new(a.get_ref()))
            .collect(),
        (Some(list), false) => {
            return Err(src.invalid(
                list.span(),
                "`agents` has no effect in a file loaded through `extends`; name agents in the top-level file",
            ));
        }
        (None, true) => {
            return Err(src.invalid(
                0..0,
                "missing `agents`: a top-level policy file must say which agents it applies to",
            ));
        }
        (None, false) => Vec::new(),
    };
    // A top-level file without `default` denies; an extended file only
    // weighs in when it says so. A file of standing approvals only (what
    // `cordon approve --always` writes) lifts approvals and changes
    // nothing else, so it has no default either.
    let only_approved = !raw.rules.is_empty()
        && raw
            .rules
            .iter()
            .all(|r| r.get_ref().decision == RawVerdict::Approved);
    let default = match (&raw.default, file.top_level) {
        (Some(d), _) if *d.get_ref() == RawVerdict::Approved => {
            return Err(src.invalid(
                d.span(),
                "`approved` is a rule's decision, not a default (allow | deny | approve)",
            ));
        }
        (Some(d), _) => Some(verdict(*d.get_ref(), DEFAULT_APPROVAL_TIMEOUT)),
        (None, true) if only_approved => None,
        (None, true) => Some(Verdict::Deny),
        (None, false) => None,
    };

    let mode = match &raw.mode {
        Some(m) if !file.top_level => {
            return Err(src.invalid(
                m.span(),
                "`mode` has no effect in a file loaded through `extends`; set it in the top-level file",
            ));
        }
        Some(m) => Some(Mode::parse(m.get_ref()).map_err(|msg| src.invalid(m.span(), msg))?),
        None => None,
    };

    let mut rules = Vec::new();
    for (n, spanned) in raw.rules.iter().enumerate() {
        let rule = compile_rule(&src, n + 1, spanned.get_ref(), spanned.span().start)?;
        rules.push(out.rules.len());
        out.rules.push(rule);
    }
    for sched in &raw.schedules {
        let s = sched.get_ref();
        if !s.freeze {
            continue;
        }
        let name = s.name.get_ref();
        let window = out
            .schedules
            .iter()
            .position(|(n, _)| n.as_ref() == name.as_str());
        let reason = s
            .reason
            .clone()
            .unwrap_or_else(|| format!("frozen during schedule `{name}` ({})", s.window.get_ref()));
        let (line, _) = src.line_col(sched.span().start);
        for pattern in s.actions.clone().unwrap_or_else(|| vec!["*".to_string()]) {
            rules.push(out.rules.len());
            out.rules.push(Rule {
                id: Arc::from(format!("schedule:{name}")),
                location: Arc::from(format!("{}:{line}", file.name)),
                action: Glob::new(&pattern),
                verdict: Verdict::Deny,
                approved: false,
                reason: Arc::from(reason.as_str()),
                when: None,
                net: NetMatch::default(),
                window,
            });
        }
    }

    let mut limits = Vec::new();
    for (n, spanned) in raw.limits.iter().enumerate() {
        let l = spanned.get_ref();
        let per = parse_duration(l.per.get_ref())
            .map_err(|m| src.invalid(l.per.span(), format!("limit `per`: {m}")))?;
        let approval_timeout = match &l.approval_timeout {
            Some(t) => parse_duration(t.get_ref())
                .map_err(|m| src.invalid(t.span(), format!("limit `approval_timeout`: {m}")))?,
            None => DEFAULT_APPROVAL_TIMEOUT,
        };
        let id =
            l.id.clone()
                .unwrap_or_else(|| format!("{}:limit{}", file.name, n + 1));
        limits.push(Arc::new(Limit {
            id: Arc::from(id),
            action: Glob::new(&l.action),
            max: l.max,
            per,
            on_exceed: match l.on_exceed.unwrap_or(RawOnExceed::Deny) {
                RawOnExceed::Deny => OnExceed::Deny,
                RawOnExceed::Approve => OnExceed::Approve,
                RawOnExceed::Kill => OnExceed::Kill,
            },
            approval_timeout,
        }));
    }

    let mut envelope = Envelope::default();
    if let Some(e) = &raw.envelope {
        if let Some(rt) = &e.max_runtime {
            envelope.max_runtime = Some(
                parse_duration(rt.get_ref())
                    .map_err(|m| src.invalid(rt.span(), format!("envelope `max_runtime`: {m}")))?,
            );
        }
        envelope.max_actions = e.max_actions;
        if let Some(cost) = &e.max_cost_usd {
            let usd = *cost.get_ref();
            if !(usd.is_finite() && usd >= 0.0) {
                return Err(
                    src.invalid(cost.span(), "envelope `max_cost_usd` must be a number >= 0")
                );
            }
            envelope.max_cost_usd = Some(usd);
        }
    }

    Ok(Unit {
        name: Arc::from(file.name.as_str()),
        agents,
        top_level: file.top_level,
        default,
        mode,
        rules,
        limits,
        envelope,
        credentials: crate::bindings_load::compile(&src, &raw.credentials)?,
        contain: raw
            .contain
            .as_ref()
            .map(|c| crate::contain::compile(&src, c))
            .transpose()?,
        caps: raw
            .caps
            .as_ref()
            .map(|c| crate::caps::compile(&src, c))
            .transpose()?
            .unwrap_or_default(),
        extends: file.extends.clone(),
    })
}

fn compile_rule(
    src: &SourceText<'_>,
    n: usize,
    r: &crate::source::RawRule,
    start: usize,
) -> Result<Rule, PolicyError> {
    let id = r.id.clone().unwrap_or_else(|| format!("{}:{n}", src.name));
    let timeout = match &r.approval_timeout {
        Some(t) if r.decision != RawVerdict::Approve => {
            return Err(src.invalid(
                t.span(),
                "`approval_timeout` only applies to rules with decision = \"approve\"",
            ));
        }
        Some(t) => parse_duration(t.get_ref())
            .map_err(|m| src.invalid(t.span(), format!("`approval_timeout`: {m}")))?,
        None => DEFAULT_APPROVAL_TIMEOUT,
    };
    let when = match &r.when {
        Some(expr) => Some(Condition::compile(expr.get_ref()).map_err(|message| {
            let (line, col) = src.line_col(expr.span().start);
            PolicyError::Cel {
                file: src.name.to_string(),
                line,
                col,
                rule: id.clone(),
                message,
            }
        })?),
        None => None,
    };
    let mut net = NetMatch::default();
    for host in &r.hosts {
        if host.get_ref().trim().is_empty() {
            return Err(src.invalid(host.span(), "`hosts` entries must not be empty"));
        }
        net.hosts
            .push(Glob::new_fold_case(host.get_ref().trim_end_matches('.')));
    }
    for cidr in &r.cidrs {
        net.cidrs
            .push(Cidr::parse(cidr.get_ref()).map_err(|m| src.invalid(cidr.span(), m))?);
    }
    for port in &r.ports {
        let range = match port.get_ref() {
            RawPort::Number(p) => u16::try_from(*p)
                .ok()
                .filter(|p| *p != 0)
                .map(|p| (p, p))
                .ok_or_else(|| format!("`{p}`: ports are 1-65535")),
            RawPort::Range(text) => parse_port_range(text),
        };
        net.ports
            .push(range.map_err(|m| src.invalid(port.span(), m))?);
    }
    let reason = r.reason.clone().unwrap_or_else(|| {
        format!(
            "rule `{id}` ({} {})",
            r.action.get_ref(),
            verdict_name(r.decision)
        )
    });
    let (line, _) = src.line_col(start);
    Ok(Rule {
        location: Arc::from(format!("{}:{line}", src.name)),
        id: Arc::from(id),
        action: Glob::new(r.action.get_ref()),
        verdict: verdict(r.decision, timeout),
        approved: r.decision == RawVerdict::Approved,
        reason: Arc::from(reason),
        when,
        net,
        window: None,
    })
}

fn verdict_name(v: RawVerdict) -> &'static str {
    match v {
        RawVerdict::Allow => "allow",
        RawVerdict::Deny => "deny",
        RawVerdict::Approve => "approve",
        RawVerdict::Approved => "approved",
    }
}
