//! What the writer thread does next (`writer.rs`), decided from a snapshot of the shared state
//! and the writer's clocks: a pure function, so the schedule is tested without threads.

use std::time::{Duration, Instant};

use crate::index::MAX_RECORDS;

/// The least time between checkpoints, however urgent.
pub(crate) const CHECKPOINT_GAP: Duration = Duration::from_millis(10);

/// Appenders waiting for a sync from which a strict group counts as "under load" and is
/// paced: more than one request at a time. One connection's requests come one at a time, so
/// they are never held back.
pub(crate) const PACE_FROM: u64 = 2;

/// What the writer knows of the strict appenders when it is about to take a group: whether
/// more than one request is being recorded at a time.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Load {
    /// Appenders waiting now.
    pub waiting: u64,
    /// Of them, those that came while another strict append was still in flight.
    pub alongside: u64,
    /// Appenders the group before took.
    pub last_group: u64,
}

impl Load {
    /// More than one request at a time. Each signal alone misses a crowd the others see:
    /// - a writer quicker than the appenders finds one new waiter each time it looks, and
    ///   takes groups of one, though a crowd is behind it (a test with 32 appenders on one
    ///   thread, syncs faster than its appends, saw 433 of 438 syncs unpaced counting only
    ///   `waiting`); but each came while the one before was in flight (`alongside`), which a
    ///   lone connection's never do, since it sends again only once answered;
    /// - after a large group, the crowd all waits for its answer, and the first to come back
    ///   is alone for a moment: `last_group` says the rest are coming.
    ///
    /// A crowd that has thinned out to one connection is held back once more at most.
    fn is_crowd(self) -> bool {
        self.waiting >= PACE_FROM || self.alongside > 0 || self.last_group >= PACE_FROM
    }
}

/// How long the writer waits before it takes the next strict group: under load, until
/// `pace` has passed since the last sync ended, so the requests arriving meanwhile share that
/// sync; otherwise not at all. Why the threshold is so low: the group a sync takes is what
/// arrived during the sync before, so small groups make fast syncs make small groups;
/// waiting only for groups already large would rarely wait at all (a test with 32 appenders
/// saw groups of 2.6 records and no pacing with a threshold of 8 records).
pub(crate) fn pace_wait(
    load: Load,
    last_sync_end: Option<Instant>,
    pace: Duration,
    now: Instant,
) -> Duration {
    match last_sync_end {
        Some(end) if load.is_crowd() => (end + pace).saturating_duration_since(now),
        _ => Duration::ZERO,
    }
}

/// What the writer does next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Job {
    /// Sync the log for the strict appenders waiting.
    Sync,
    /// Take written records into redb (syncing the log first).
    Flush,
    Checkpoint,
    Prune,
    Finish,
}

/// What the writer sees when it looks.
pub(crate) struct Snapshot {
    pub closed: bool,
    /// Strict appenders wait for a sync.
    pub waiters: bool,
    /// Records written and not yet taken, and when the oldest was written.
    pub written: usize,
    pub written_since: Option<Instant>,
    /// The log's state: bytes in the active half, and whether the other waits for a checkpoint.
    pub log: Option<(u64, bool)>,
    pub checkpoint_asked: bool,
    /// Time left before a failed redb insert is retried, if records wait for one.
    pub unindexed_due: Option<Duration>,
}

/// The writer's settings and clocks.
pub(crate) struct Clocks {
    pub strict: bool,
    pub capacity: usize,
    pub flush_delay: Duration,
    pub checkpoint_every: Duration,
    pub last_checkpoint: Instant,
    pub prune_every: Option<Duration>,
    pub last_prune: Instant,
}

/// The job due now, or else when the next one is (`None`: nothing until woken).
pub(crate) fn due(s: &Snapshot, c: &Clocks, now: Instant) -> Result<Job, Option<Instant>> {
    if s.closed {
        return Ok(Job::Finish);
    }
    let mut next: Option<Instant> = None;
    let mut at = |when: Instant, job: Job| -> Result<Job, ()> {
        if when <= now {
            return Ok(job);
        }
        next = Some(next.map_or(when, |n| n.min(when)));
        Err(())
    };
    // A flush syncs too, so it answers strict waiters as well as a sync would.
    if let Some(since) = s.written_since {
        if s.written >= MAX_RECORDS || s.written * 2 >= c.capacity {
            return Ok(Job::Flush);
        }
        if let Ok(job) = at(since + c.flush_delay, Job::Flush) {
            return Ok(job);
        }
    }
    // Strict waiters: with a log, a sync is all they need; without one, the flush.
    if s.waiters && c.strict {
        return Ok(if s.log.is_some() {
            Job::Sync
        } else {
            Job::Flush
        });
    }
    if let Some(left) = s.unindexed_due
        && let Ok(job) = at(now + left, Job::Flush)
    {
        return Ok(job);
    }
    if let Some((used, other_busy)) = s.log {
        // Asked for, or a half waits to be freed: soon, but never in a tight loop.
        if (s.checkpoint_asked || other_busy)
            && let Ok(job) = at(c.last_checkpoint + CHECKPOINT_GAP, Job::Checkpoint)
        {
            return Ok(job);
        }
        if (used > 0 || other_busy)
            && let Ok(job) = at(c.last_checkpoint + c.checkpoint_every, Job::Checkpoint)
        {
            return Ok(job);
        }
    }
    if let Some(every) = c.prune_every
        && let Ok(job) = at(c.last_prune + every, Job::Prune)
    {
        return Ok(job);
    }
    Err(next)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn quiet() -> Snapshot {
        Snapshot {
            closed: false,
            waiters: false,
            written: 0,
            written_since: None,
            log: Some((0, false)),
            checkpoint_asked: false,
            unindexed_due: None,
        }
    }

    fn clocks(now: Instant) -> Clocks {
        Clocks {
            strict: true,
            capacity: 8192,
            flush_delay: Duration::from_millis(20),
            checkpoint_every: Duration::from_secs(1),
            last_checkpoint: now,
            prune_every: None,
            last_prune: now,
        }
    }

    #[test]
    fn strict_groups_are_paced_only_under_load_and_only_until_the_pace_has_passed() {
        let now = Instant::now();
        let pace = Duration::from_micros(150);
        let just_synced = Some(now - Duration::from_micros(50));
        let lone = Load {
            waiting: 1,
            alongside: 0,
            last_group: 1,
        };
        // One request at a time is synced at once.
        assert_eq!(pace_wait(lone, just_synced, pace, now), Duration::ZERO);
        // Under load, the rest of the pace since the last sync ended: several wait now, one
        // came while another was in flight, or several waited for the group before.
        let crowds = [
            Load {
                waiting: PACE_FROM,
                ..lone
            },
            Load {
                last_group: PACE_FROM,
                ..lone
            },
            Load {
                alongside: 1,
                ..lone
            },
        ];
        for crowd in crowds {
            assert_eq!(
                pace_wait(crowd, just_synced, pace, now),
                Duration::from_micros(100),
                "{crowd:?}"
            );
        }
        // A sync long ago, or none yet: at once.
        let long_ago = Some(now - Duration::from_millis(5));
        assert_eq!(pace_wait(crowds[0], long_ago, pace, now), Duration::ZERO);
        assert_eq!(pace_wait(crowds[0], None, pace, now), Duration::ZERO);
        // Pacing off.
        assert_eq!(
            pace_wait(crowds[0], just_synced, Duration::ZERO, now),
            Duration::ZERO
        );
    }

    #[test]
    fn an_idle_writer_sleeps_until_woken() {
        let now = Instant::now();
        assert_eq!(due(&quiet(), &clocks(now), now), Err(None));
    }

    #[test]
    fn strict_waiters_get_a_sync_at_once_and_without_a_log_a_flush() {
        let now = Instant::now();
        let s = Snapshot {
            waiters: true,
            ..quiet()
        };
        assert_eq!(due(&s, &clocks(now), now), Ok(Job::Sync));
        let no_log = Snapshot { log: None, ..s };
        assert_eq!(due(&no_log, &clocks(now), now), Ok(Job::Flush));
    }

    #[test]
    fn written_records_are_flushed_after_the_delay_or_at_once_when_many_wait() {
        let now = Instant::now();
        let s = Snapshot {
            written: 3,
            written_since: Some(now),
            log: Some((600, false)),
            ..quiet()
        };
        let c = clocks(now);
        assert_eq!(due(&s, &c, now), Err(Some(now + c.flush_delay)));
        assert_eq!(due(&s, &c, now + c.flush_delay), Ok(Job::Flush));
        let many = Snapshot { written: 4096, ..s };
        assert_eq!(due(&many, &c, now), Ok(Job::Flush));
    }

    #[test]
    fn a_flush_due_goes_before_a_sync_so_waiters_never_starve_the_index() {
        let now = Instant::now();
        let c = clocks(now);
        let s = Snapshot {
            waiters: true,
            written: 10,
            written_since: Some(now),
            ..quiet()
        };
        assert_eq!(due(&s, &c, now + c.flush_delay), Ok(Job::Flush));
    }

    #[test]
    fn a_checkpoint_comes_on_its_interval_and_sooner_when_a_half_fills_but_never_back_to_back() {
        let now = Instant::now();
        let c = clocks(now);
        let used = Snapshot {
            log: Some((4096, false)),
            ..quiet()
        };
        assert_eq!(due(&used, &c, now), Err(Some(now + c.checkpoint_every)));
        assert_eq!(
            due(&used, &c, now + c.checkpoint_every),
            Ok(Job::Checkpoint)
        );
        let asked = Snapshot {
            checkpoint_asked: true,
            ..used
        };
        assert_eq!(due(&asked, &c, now), Err(Some(now + CHECKPOINT_GAP)));
        assert_eq!(due(&asked, &c, now + CHECKPOINT_GAP), Ok(Job::Checkpoint));
    }

    #[test]
    fn closing_finishes_before_anything_else() {
        let now = Instant::now();
        let s = Snapshot {
            closed: true,
            waiters: true,
            ..quiet()
        };
        assert_eq!(due(&s, &clocks(now), now), Ok(Job::Finish));
    }
}
