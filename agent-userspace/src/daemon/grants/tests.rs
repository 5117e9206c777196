use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use serde_json::Map;

use super::*;
use crate::daemon::store::Store;

fn t0() -> DateTime<Utc> {
    DateTime::parse_from_rfc3339("2026-12-05T06:00:00Z")
        .unwrap()
        .with_timezone(&Utc)
}

fn store(dir: &tempfile::TempDir) -> Store {
    let db = redb::Database::create(dir.path().join("d.redb")).unwrap();
    Store::new(Arc::new(db))
}

fn chain() -> Vec<String> {
    vec!["bot".to_string()]
}

fn grant(id: &str, uses: Option<u32>, for_secs: Option<u64>) -> Grant {
    let c = chain();
    let p = Map::new();
    Grant::from_answer(
        grant::Source {
            id: id.into(),
            chain: &c,
            action: "github.pr.merge",
            params: &p,
            approval: "a1",
            rule: "merge-main",
            by: "root",
        },
        GrantAsk {
            uses,
            for_secs,
            same_params: false,
        },
        t0(),
    )
    .unwrap()
}

#[test]
fn racing_requests_never_take_more_uses_than_were_given() {
    let dir = tempfile::tempdir().unwrap();
    let grants = Arc::new(Grants::load(store(&dir)).unwrap());
    // 11 uses: the approved request and 10 more.
    grants.add(grant("g1", Some(11), None)).unwrap();
    let handles: Vec<_> = (0..8)
        .map(|_| {
            let g = grants.clone();
            std::thread::spawn(move || {
                (0..5)
                    .filter(|_| {
                        g.take_use(&chain(), "github.pr.merge", &Map::new(), t0())
                            .unwrap()
                            .is_some()
                    })
                    .count()
            })
        })
        .collect();
    let taken: usize = handles.into_iter().map(|h| h.join().unwrap()).sum();
    assert_eq!(taken, 10);
    assert!(grants.list(t0()).is_empty(), "an exhausted grant is listed");
}

#[test]
fn the_last_use_says_so_and_removes_the_grant_from_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let grants = Grants::load(s.clone()).unwrap();
    grants.add(grant("g1", Some(3), None)).unwrap();
    let take = || {
        grants
            .take_use(&chain(), "github.pr.merge", &Map::new(), t0())
            .unwrap()
            .map(|u| u.taken)
    };
    assert_eq!(take(), Some(Taken::Left(1)));
    assert_eq!(take(), Some(Taken::Exhausted));
    assert_eq!(take(), None);
    assert!(s.grants().unwrap().is_empty());
}

#[test]
fn grants_and_their_remaining_uses_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let grants = Grants::load(store(&dir)).unwrap();
        grants.add(grant("g1", Some(4), None)).unwrap();
        grants.add(grant("g2", None, Some(3600))).unwrap();
        grants
            .take_use(&chain(), "github.pr.merge", &Map::new(), t0())
            .unwrap()
            .unwrap();
    }
    let again = Grants::load(store(&dir)).unwrap();
    let listed = again.list(t0());
    assert_eq!(listed.len(), 2);
    assert_eq!(
        (listed[0].id.as_str(), listed[0].uses_left),
        ("g1", Some(2))
    );
    assert_eq!(listed[1].id, "g2");
}

#[test]
fn a_revoked_grant_matches_nothing_and_is_gone_after_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    {
        let grants = Grants::load(store(&dir)).unwrap();
        grants.add(grant("g1", None, Some(3600))).unwrap();
        assert_eq!(
            grants.revoke("g1").unwrap().map(|g| g.id),
            Some("g1".into())
        );
        assert!(grants.revoke("g1").unwrap().is_none());
        let none = grants.take_use(&chain(), "github.pr.merge", &Map::new(), t0());
        assert!(none.unwrap().is_none());
    }
    assert!(Grants::load(store(&dir)).unwrap().list(t0()).is_empty());
}

#[test]
fn an_expired_grant_stays_stored_until_forgotten_but_never_matches() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    let grants = Grants::load(s.clone()).unwrap();
    grants.add(grant("g1", None, Some(60))).unwrap();
    let later = t0() + Duration::seconds(60);
    let none = grants.take_use(&chain(), "github.pr.merge", &Map::new(), later);
    assert!(none.unwrap().is_none());
    assert_eq!(grants.expired(later).len(), 1);
    assert!(grants.list(later).is_empty());
    assert_eq!(s.grants().unwrap().len(), 1);
    grants.forget("g1").unwrap();
    assert!(grants.expired(later).is_empty());
    assert!(s.grants().unwrap().is_empty());
}

#[test]
fn an_unreadable_stored_grant_stops_the_load() {
    let dir = tempfile::tempdir().unwrap();
    let s = store(&dir);
    s.put_grant("g1", "{not json").unwrap();
    assert!(matches!(Grants::load(s), Err(GrantsError::Corrupt { .. })));
}
