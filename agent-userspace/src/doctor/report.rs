//! What `cordon doctor` found, as data: each check passes, warns or fails,
//! and a failure carries the fix. Rendering (human or JSON) and the exit
//! code are pure functions of the list, so they are tested without a host.
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pass,
    /// Works, but not as an operator would want it (e.g. an unsynchronised
    /// clock): reported, never a failing exit.
    Warn,
    Fail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// `host`, `daemon`, `config` or `attack`.
    pub section: &'static str,
    pub name: String,
    pub status: Status,
    pub detail: String,
    /// What to do about a warning or failure.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Check {
    pub fn pass(section: &'static str, name: &str, detail: impl Into<String>) -> Check {
        Check {
            section,
            name: name.into(),
            status: Status::Pass,
            detail: detail.into(),
            fix: None,
        }
    }

    pub fn fail(
        section: &'static str,
        name: &str,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            section,
            name: name.into(),
            status: Status::Fail,
            detail: detail.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn warn(
        section: &'static str,
        name: &str,
        detail: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            status: Status::Warn,
            ..Check::fail(section, name, detail, fix)
        }
    }
}

/// True when any check failed: the command then exits non-zero.
pub fn failed(checks: &[Check]) -> bool {
    checks.iter().any(|c| c.status == Status::Fail)
}

/// One line per check, the fix indented under it, then a verdict line.
pub fn human(checks: &[Check]) -> String {
    let mut out = String::new();
    for c in checks {
        let tag = match c.status {
            Status::Pass => "ok  ",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        };
        out.push_str(&format!("{tag} {}/{}: {}\n", c.section, c.name, c.detail));
        if let Some(fix) = &c.fix {
            out.push_str(&format!("       fix: {fix}\n"));
        }
    }
    let count = |s| checks.iter().filter(|c| c.status == s).count();
    out.push_str(&format!(
        "{}: {} passed, {} warnings, {} failed\n",
        if failed(checks) { "FAILED" } else { "healthy" },
        count(Status::Pass),
        count(Status::Warn),
        count(Status::Fail)
    ));
    out
}

pub fn json(checks: &[Check]) -> serde_json::Value {
    serde_json::json!({
        "ok": !failed(checks),
        "checks": checks,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<Check> {
        vec![
            Check::pass("host", "cgroup2", "mounted at /sys/fs/cgroup"),
            Check::warn("daemon", "clock", "not synchronised", "enable chrony"),
        ]
    }

    #[test]
    fn warnings_alone_do_not_fail_but_one_failure_does() {
        let mut checks = sample();
        assert!(!failed(&checks));
        checks.push(Check::fail("host", "lsm", "bpf missing", "add lsm=bpf"));
        assert!(failed(&checks));
    }

    #[test]
    fn the_human_report_names_each_failure_with_its_fix() {
        let mut checks = sample();
        checks.push(Check::fail("host", "lsm", "bpf missing", "add lsm=bpf"));
        let text = human(&checks);
        assert!(text.contains("FAIL host/lsm: bpf missing\n       fix: add lsm=bpf\n"));
        assert!(text.contains("ok   host/cgroup2: mounted at /sys/fs/cgroup\n"));
        assert!(text.ends_with("FAILED: 1 passed, 1 warnings, 1 failed\n"));
    }

    #[test]
    fn the_json_report_carries_status_and_fix_per_check() {
        let v = json(&sample());
        assert_eq!(v["ok"], true);
        assert_eq!(v["checks"][0]["status"], "pass");
        assert!(v["checks"][0].get("fix").is_none());
        assert_eq!(v["checks"][1]["status"], "warn");
        assert_eq!(v["checks"][1]["fix"], "enable chrony");
    }
}
