//! Everything one bench run measured: serialized as bench/results.json
//! and rendered into bench/REPORT.md.
use std::collections::BTreeMap;

use serde::Serialize;

use super::{
    baseline, connect, console_paint, contain, criterion, fairness, fsync, goals, http, idle,
    jit_run, kill, machine, outcomes,
};

#[derive(Serialize, Default)]
pub struct BigRss {
    pub before_mib: f64,
    pub peak_mib: f64,
    pub after_mib: f64,
}

#[derive(Serialize, Default)]
pub struct Memory {
    pub idle_fresh_mib: Option<f64>,
    pub idle_after_load_mib: Option<f64>,
    pub hwm_mib: Option<f64>,
    pub big: Option<BigRss>,
    pub idle_conns: idle::IdleResult,
}

#[derive(Serialize, Default)]
pub struct Results {
    pub mode: &'static str,
    pub rounds: u32,
    pub secs: u32,
    pub connect_n: u32,
    pub connect_secs: u32,
    pub setup_secs: f64,
    pub measure_secs: f64,
    pub machine: machine::Machine,
    pub peers: BTreeMap<String, String>,
    /// `--baseline-cordon`: the other build and this one against it.
    pub baseline: Option<baseline::Baseline>,
    /// `cordon` against `cordon-no-outcomes`: what outcome records cost.
    pub outcomes: outcomes::Outcomes,
    /// The JIT-token scenario: a minted token's cache hit against a static token.
    pub jit: jit_run::JitResult,
    pub goals: Vec<goals::Goal>,
    pub http: Vec<http::ScenarioResult>,
    pub connect: connect::ConnectResult,
    pub contain: contain::ContainResult,
    pub criterion: criterion::CriterionResult,
    pub kill: kill::KillResult,
    /// The web console's live audit view: first paint with 10,000 records.
    pub console: console_paint::ConsolePaint,
    /// One agent floods, another is measured (`fairness`).
    pub fairness: fairness::Fairness,
    pub memory: Memory,
    /// The disk's fdatasync under the audit logs, measured in this run.
    pub fsync: Option<fsync::Fsync>,
    pub notes: Vec<String>,
}
