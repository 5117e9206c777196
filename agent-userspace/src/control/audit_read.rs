//! Reading the audit log for `cordon audit tail`: the newest matching
//! records, records committed after a point, and their rendering. Used by
//! the daemon (over the control socket) and by the CLI on a stopped host,
//! so both show the same thing.
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use cordon_audit::{
    AuditError, AuditRecord, Decision, EventKind, Filter, expects_outcome,
    format_line_with_outcome, iter_from, to_json_line,
};
use redb::Database;

/// The first window scanned backwards for `tail`; doubled until enough
/// records match or the log's start is reached.
const FIRST_WINDOW: u64 = 256;
const MAX_WINDOW: u64 = 65_536;

/// `--agent` / `--decision` as a filter. An unknown decision is an error,
/// never "match everything".
pub fn filter(agent: Option<String>, decision: Option<&str>) -> Result<Filter, String> {
    let decision = match decision {
        None => None,
        Some(d) => Some(
            Decision::parse(d)
                .ok_or_else(|| format!("--decision {d:?}: expected one of allow, deny, pending"))?,
        ),
    };
    Ok(Filter {
        agent,
        decision,
        ..Filter::default()
    })
}

/// An RFC 3339 time (`2025-05-01T12:00:00Z`, any offset) as UTC.
pub fn parse_time(flag: &str, text: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| {
            format!("{flag} {text:?}: not an RFC 3339 time (e.g. 2025-05-01T12:00:00Z): {e}")
        })
}

/// The outcomes (by decision seq) of the decisions in `recs`, read up to
/// `upto`: an outcome always follows its decision, so the scan starts at the
/// first decision that expects one.
pub fn outcomes_for(
    db: &Database,
    recs: &[AuditRecord],
    upto: u64,
) -> Result<HashMap<u64, AuditRecord>, AuditError> {
    let mut found = HashMap::new();
    let waiting: HashSet<u64> = recs
        .iter()
        .filter(|r| expects_outcome(r))
        .map(|r| r.seq)
        .collect();
    let Some(&first) = waiting.iter().min() else {
        return Ok(found);
    };
    for r in iter_from(db, first + 1)? {
        let r = r?;
        if r.seq > upto {
            break;
        }
        if r.kind == EventKind::Outcome
            && let Some(of) = r.decision_seq.filter(|of| waiting.contains(of))
        {
            found.insert(of, r);
        }
    }
    Ok(found)
}

/// What `tail` prints for `recs`. Human lines carry a decision's outcome
/// inline (`… → 201 in 84 ms`) and leave out the outcome record that says
/// so; an outcome whose decision is not among `recs` (it came earlier, or
/// arrives later while following) gets its own line. `--json` prints every
/// record as stored.
pub fn lines(
    recs: &[AuditRecord],
    outcomes: &HashMap<u64, AuditRecord>,
    json: bool,
) -> Result<Vec<String>, AuditError> {
    if json {
        return recs.iter().map(to_json_line).collect();
    }
    let shown: HashSet<u64> = recs.iter().map(|r| r.seq).collect();
    // Left out: an outcome whose decision is shown, with this outcome on its line.
    let folded = |r: &AuditRecord| {
        r.kind == EventKind::Outcome
            && r.decision_seq.is_some_and(|of| {
                shown.contains(&of) && outcomes.get(&of).is_some_and(|o| o.seq == r.seq)
            })
    };
    Ok(recs
        .iter()
        .filter(|r| !folded(r))
        .map(|r| format_line_with_outcome(r, outcomes.get(&r.seq)))
        .collect())
}

fn has_record_at_or_after(db: &Database, seq: u64) -> Result<bool, AuditError> {
    Ok(iter_from(db, seq)?.next().is_some())
}

/// The highest stored seq (0 for an empty log), found in O(log n) reads:
/// "a record at or after s exists" holds exactly for s <= that seq.
pub fn head_seq(db: &Database) -> Result<u64, AuditError> {
    if !has_record_at_or_after(db, 1)? {
        return Ok(0);
    }
    let mut hi = 2u64;
    while has_record_at_or_after(db, hi)? {
        hi = hi.saturating_mul(2);
    }
    // Invariant: a record at or after `lo` exists, none at or after `hi`.
    let mut lo = hi / 2;
    while hi - lo > 1 {
        let mid = lo + (hi - lo) / 2;
        if has_record_at_or_after(db, mid)? {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    // `lo` may sit in a gap (a deleted record): the newest record is the
    // last one at or after it.
    let mut last = lo;
    for r in iter_from(db, lo)? {
        last = r?.seq;
    }
    Ok(last)
}

/// Matching records with `from <= seq < to`, oldest first.
fn window(
    db: &Database,
    from: u64,
    to: u64,
    filter: &Filter,
) -> Result<Vec<AuditRecord>, AuditError> {
    let mut out = Vec::new();
    for r in iter_from(db, from)? {
        let r = r?;
        if r.seq >= to {
            break;
        }
        if filter.matches(&r) {
            out.push(r);
        }
    }
    Ok(out)
}

/// The newest `n` records matching `filter`, oldest first, and the head seq
/// they were read at (a follower continues after it).
pub fn tail(
    db: &Database,
    filter: &Filter,
    n: usize,
) -> Result<(Vec<AuditRecord>, u64), AuditError> {
    let head = head_seq(db)?;
    let first = FIRST_WINDOW.max(n as u64 * 2);
    let (found, _) = newest_matching(db, head, 1, filter, |_| true, n, first)?;
    Ok((found, head))
}

/// The newest `n` records with `low <= seq <= head` that match `filter` and
/// `keep`, oldest first, read backwards from `head` in windows of `first`
/// records, doubled up to `MAX_WINDOW` until `n` match or `low` is reached.
/// Also returns the lowest seq read (`low` when the whole range was read).
pub fn newest_matching(
    db: &Database,
    head: u64,
    low: u64,
    filter: &Filter,
    keep: impl Fn(&AuditRecord) -> bool,
    n: usize,
    first: u64,
) -> Result<(Vec<AuditRecord>, u64), AuditError> {
    let mut found: Vec<AuditRecord> = Vec::new();
    // Invariant: every record from `hi` up to `head` has been read.
    let mut hi = head + 1;
    let mut size = first;
    while n > 0 && found.len() < n && hi > low {
        let lo = hi.saturating_sub(size).max(low);
        let mut chunk = window(db, lo, hi, filter)?;
        chunk.retain(&keep);
        chunk.append(&mut found);
        found = chunk;
        hi = lo;
        size = (size * 2).min(MAX_WINDOW);
    }
    let skip = found.len().saturating_sub(n);
    found.drain(..skip);
    Ok((found, hi))
}

/// Matching records with `after < seq <= upto`, oldest first (for `-f`).
pub fn committed_between(
    db: &Database,
    after: u64,
    upto: u64,
    filter: &Filter,
) -> Result<Vec<AuditRecord>, AuditError> {
    window(db, after + 1, upto.saturating_add(1), filter)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use cordon_audit::{AuditConfig, AuditLog, EventKind, NewRecord};

    use super::*;

    /// A log of `n` request records; agents alternate a/b, decisions
    /// allow, deny, deny, allow, deny, deny, ...
    fn log_of(n: u64) -> (tempfile::TempDir, Arc<Database>) {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Database::create(dir.path().join("a.redb")).unwrap());
        let log = AuditLog::open(db.clone(), AuditConfig::default()).unwrap();
        for i in 0..n {
            let rec = NewRecord {
                agent: Some(if i % 2 == 0 { "a" } else { "b" }.into()),
                action: Some(format!("t.op{i}")),
                decision: Some(if i % 3 == 0 {
                    Decision::Allow
                } else {
                    Decision::Deny
                }),
                ..NewRecord::new(EventKind::Request)
            };
            log.append_blocking(rec).unwrap();
        }
        log.shutdown().unwrap();
        (dir, db)
    }

    fn seqs(v: &[AuditRecord]) -> Vec<u64> {
        v.iter().map(|r| r.seq).collect()
    }

    #[test]
    fn head_seq_finds_the_newest_record() {
        for n in [0, 1, 2, 3, 17, 64, 300] {
            let (_d, db) = log_of(n);
            assert_eq!(head_seq(&db).unwrap(), n, "log of {n}");
        }
    }

    #[test]
    fn tail_returns_the_newest_n_oldest_first() {
        let (_d, db) = log_of(30);
        let (recs, head) = tail(&db, &Filter::default(), 5).unwrap();
        assert_eq!(seqs(&recs), [26, 27, 28, 29, 30]);
        assert_eq!(head, 30);
    }

    #[test]
    fn tail_filters_by_agent_and_decision_across_windows() {
        let (_d, db) = log_of(700);
        let f = filter(Some("a".into()), Some("allow")).unwrap();
        let (recs, _) = tail(&db, &f, 3).unwrap();
        // agent a: even i; allow: i % 3 == 0; so i % 6 == 0, seq = i + 1.
        assert_eq!(seqs(&recs), [685, 691, 697]);
        let (all, _) = tail(&db, &f, 10_000).unwrap();
        assert_eq!(all.len(), 117, "every match, even past the first windows");
    }

    #[test]
    fn unknown_decision_is_refused() {
        assert!(filter(None, Some("maybe")).is_err());
    }

    #[test]
    fn follow_reads_only_what_committed_after_the_point() {
        let (_d, db) = log_of(10);
        let recs = committed_between(&db, 7, 9, &Filter::default()).unwrap();
        assert_eq!(seqs(&recs), [8, 9]);
    }

    #[test]
    fn rendering_gives_the_human_line_or_the_stored_json() {
        let (_d, db) = log_of(1);
        let (recs, _) = tail(&db, &Filter::default(), 1).unwrap();
        let none = HashMap::new();
        assert!(lines(&recs, &none, false).unwrap()[0].starts_with("#1 "));
        let json: serde_json::Value =
            serde_json::from_str(&lines(&recs, &none, true).unwrap()[0]).unwrap();
        assert_eq!(json["seq"], 1);
        assert_eq!(json["hash"].as_str().map(str::len), Some(64));
    }

    #[test]
    fn a_decision_shows_its_outcome_inline_and_the_outcome_line_is_folded() {
        let dir = tempfile::tempdir().unwrap();
        let db = Arc::new(Database::create(dir.path().join("a.redb")).unwrap());
        let log = AuditLog::open(db.clone(), AuditConfig::default()).unwrap();
        let forwarded = |n: u64| NewRecord {
            agent: Some("bot".into()),
            action: Some(format!("github.pr.op{n}")),
            decision: Some(Decision::Allow),
            http_method: Some("POST".into()),
            ..NewRecord::new(EventKind::Request)
        };
        let early = log.append_blocking(forwarded(1)).unwrap();
        let late = log.append_blocking(forwarded(2)).unwrap();
        for (of, status) in [(early, 201), (late, 502)] {
            let o = cordon_audit::Outcome {
                status: Some(status),
                duration: Some(std::time::Duration::from_millis(84)),
                ..cordon_audit::Outcome::of(
                    of,
                    &forwarded(of),
                    cordon_audit::OutcomeState::Completed,
                )
            };
            log.append_blocking(o.into_record()).unwrap();
        }
        log.shutdown().unwrap();
        // The window shows the second decision and both outcomes: the first
        // decision is outside it.
        let (recs, head) = tail(&db, &Filter::default(), 3).unwrap();
        assert_eq!(seqs(&recs), [2, 3, 4]);
        let outcomes = outcomes_for(&db, &recs, head).unwrap();
        let shown = lines(&recs, &outcomes, false).unwrap();
        assert_eq!(shown.len(), 2, "{shown:#?}");
        assert!(
            shown[0].starts_with("#2 ") && shown[0].ends_with("→ 502 in 84 ms"),
            "{}",
            shown[0]
        );
        assert!(
            shown[1].starts_with("#3 ")
                && shown[1].contains("OUTCOME")
                && shown[1].contains("of=#1 → 201"),
            "{}",
            shown[1]
        );
        assert_eq!(
            lines(&recs, &outcomes, true).unwrap().len(),
            3,
            "json keeps every record"
        );
    }

    #[test]
    fn times_must_be_rfc3339() {
        assert!(parse_time("--since", "2025-05-01T12:00:00+02:00").is_ok());
        assert!(parse_time("--since", "yesterday").is_err());
    }
}
