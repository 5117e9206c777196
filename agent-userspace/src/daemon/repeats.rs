//! The same containment refusal from the same process within one second is
//! recorded once: a program retrying a denied open in a loop must not flood
//! the trail, and the first record already says what happened. Both
//! recorders (the kernel ring buffer and Landlock's audit stream) use this.
use std::{
    collections::HashMap,
    time::{Duration, Instant},
};

const WINDOW: Duration = Duration::from_secs(1);

#[derive(Default)]
pub struct Repeats {
    seen: HashMap<String, Instant>,
}

impl Repeats {
    /// Whether `key` is new within the window (and remembers it if so).
    pub fn first(&mut self, key: String) -> bool {
        match self.seen.get(&key) {
            Some(t) if t.elapsed() < WINDOW => false,
            _ => {
                self.seen.insert(key, Instant::now());
                true
            }
        }
    }

    /// Forgets keys whose window has passed, so the map stays small.
    pub fn prune(&mut self) {
        self.seen.retain(|_, t| t.elapsed() < WINDOW);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_repeat_within_the_window_is_dropped_and_another_key_is_not() {
        let mut r = super::Repeats::default();
        assert!(r.first("a".into()));
        assert!(!r.first("a".into()));
        assert!(r.first("b".into()));
    }
}
