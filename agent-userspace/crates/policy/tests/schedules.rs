//! Schedules in `when` and as freeze windows, across a time-zone boundary
//! and a DST switch.

mod common;

use common::*;
use serde_json::json;

const POLICY: &str = r#"
agents = ["deployer"]
default = "deny"

[[schedule]]
name = "business-hours"
window = "Mon-Fri 09:00-18:00 Europe/Berlin"

[[schedule]]
name = "release-freeze"
window = "Fri 16:00-02:00 America/New_York"
freeze = true
actions = ["github.pr.merge", "github.release.*"]

[[rule]]
id = "merge-in-hours"
action = "github.pr.merge"
when = 'schedule["business-hours"]'
decision = "allow"

[[rule]]
id = "release"
action = "github.release.create"
decision = "allow"

[[rule]]
id = "utc-morning"
action = "slack.message.post"
when = "time.hour < 12 && time.weekday <= 5"
decision = "allow"

[[rule]]
id = "tokyo-evening"
action = "slack.file.upload"
when = 'now.getHours("Asia/Tokyo") >= 18'
decision = "allow"
"#;

#[test]
fn schedule_table() {
    let set = set_with(&[("deployer.toml", POLICY)]);
    let cases = [
        // Monday 08:30 UTC is 09:30 in Berlin (winter, UTC+1).
        (
            "github.pr.merge",
            "2025-01-06T08:30:00Z",
            "allow",
            "merge-in-hours",
        ),
        (
            "github.pr.merge",
            "2025-01-06T07:30:00Z",
            "deny",
            "default:deployer.toml",
        ),
        // Summer (UTC+2): 07:30 UTC is already 09:30 in Berlin.
        (
            "github.pr.merge",
            "2025-07-07T07:30:00Z",
            "allow",
            "merge-in-hours",
        ),
        (
            "github.pr.merge",
            "2025-07-07T16:30:00Z",
            "deny",
            "default:deployer.toml",
        ),
        // Across the DST switch (2025-03-30, 01:00 UTC; a Sunday, so use
        // Friday and Monday around it).
        (
            "github.pr.merge",
            "2025-03-28T08:30:00Z",
            "allow",
            "merge-in-hours",
        ),
        (
            "github.pr.merge",
            "2025-03-31T07:30:00Z",
            "allow",
            "merge-in-hours",
        ),
        (
            "github.pr.merge",
            "2025-03-28T07:30:00Z",
            "deny",
            "default:deployer.toml",
        ),
        // Friday 17:00 UTC is 12:00 in New York: merges in Berlin hours are fine.
        (
            "github.pr.merge",
            "2025-01-10T13:00:00Z",
            "allow",
            "merge-in-hours",
        ),
        // Friday 21:30 UTC is 16:30 in New York: the freeze denies.
        (
            "github.release.create",
            "2025-01-10T21:30:00Z",
            "deny",
            "schedule:release-freeze",
        ),
        (
            "github.release.create",
            "2025-01-10T20:59:00Z",
            "allow",
            "release",
        ),
        // Saturday 06:59 UTC is 01:59 in New York: still frozen (crosses midnight).
        (
            "github.release.create",
            "2025-01-11T06:59:00Z",
            "deny",
            "schedule:release-freeze",
        ),
        (
            "github.release.create",
            "2025-01-11T07:00:00Z",
            "allow",
            "release",
        ),
        // `time` is UTC.
        (
            "slack.message.post",
            "2025-01-06T11:59:00Z",
            "allow",
            "utc-morning",
        ),
        (
            "slack.message.post",
            "2025-01-06T12:00:00Z",
            "deny",
            "default:deployer.toml",
        ),
        (
            "slack.message.post",
            "2025-01-11T09:00:00Z",
            "deny",
            "default:deployer.toml",
        ),
        // CEL's own zone-aware timestamp functions work on `now`.
        (
            "slack.file.upload",
            "2025-01-06T09:00:00Z",
            "allow",
            "tokyo-evening",
        ),
        (
            "slack.file.upload",
            "2025-01-06T08:59:00Z",
            "deny",
            "default:deployer.toml",
        ),
    ];
    for (action, now, want, rule) in cases {
        let d = decide_at(&set, &["deployer"], action, json!({}), now);
        assert_eq!(
            (short(&d.verdict), d.rule_id.as_ref()),
            (want, rule),
            "{action} at {now}"
        );
    }
}

#[test]
fn unknown_schedule_in_when_fails_closed() {
    let policy = "agents = [\"a\"]\n[[rule]]\naction = \"x\"\nwhen = 'schedule[\"nope\"]'\ndecision = \"allow\"\n";
    let set = set_with(&[("a.toml", policy)]);
    let d = decide(&set, &["a"], "x", json!({}));
    assert_eq!(d.rule_id.as_ref(), "default:a.toml");
}
