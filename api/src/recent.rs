//! What this process read from a read model a moment ago, trusted for a short while and
//! only to accept a request: the webhook's bot credentials (ADR 0017) and API tokens
//! (ADR 0020). A change made in this process forgets what it changed at once; one made by
//! another process reaches this one within [`Recent::TRUSTED_FOR`].

use std::hash::Hash;
use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use lru::LruCache;

pub struct Recent<K: Hash + Eq, V> {
    state: Mutex<State<K, V>>,
}

struct State<K: Hash + Eq, V> {
    entries: LruCache<K, (Instant, V)>,
    /// How many times something was forgotten: a read that started before a forget may
    /// have seen what was forgotten, and is not kept.
    forgets: u64,
}

/// Taken before reading the read model, handed to [`Recent::keep`] with what was read.
pub struct ReadStarted {
    at: Instant,
    forgets: u64,
}

impl<K: Hash + Eq, V: Clone> Default for Recent<K, V> {
    fn default() -> Self {
        Self::new(Self::CAPACITY)
    }
}

impl<K: Hash + Eq, V: Clone> Recent<K, V> {
    pub const TRUSTED_FOR: Duration = Duration::from_secs(1);
    /// Keys kept per process, the least recently used forgotten first.
    const CAPACITY: NonZeroUsize = NonZeroUsize::new(1024).unwrap();

    fn new(capacity: NonZeroUsize) -> Self {
        Self {
            state: Mutex::new(State {
                entries: LruCache::new(capacity),
                forgets: 0,
            }),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State<K, V>) -> T) -> T {
        // Every use is one step on the state: a poisoned lock leaves it consistent.
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut state)
    }

    /// What was read less than [`Recent::TRUSTED_FOR`] ago, if anything.
    pub fn get(&self, key: &K) -> Option<V> {
        self.with(|state| match state.entries.get(key) {
            Some((read_at, value)) if read_at.elapsed() < Self::TRUSTED_FOR => Some(value.clone()),
            _ => None,
        })
    }

    pub fn start_read(&self) -> ReadStarted {
        ReadStarted {
            at: Instant::now(),
            forgets: self.with(|state| state.forgets),
        }
    }

    /// Keeps what a read found, as of when the read started; nothing is kept when
    /// something was forgotten since (the read may have seen it before the change).
    pub fn keep(&self, read: ReadStarted, key: K, value: V) {
        self.with(|state| {
            if state.forgets == read.forgets {
                state.entries.put(key, (read.at, value));
            }
        });
    }

    /// After a change to `key` has reached the read model.
    pub fn forget(&self, key: &K) {
        self.with(|state| {
            state.forgets += 1;
            state.entries.pop(key);
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recent() -> Recent<u32, &'static str> {
        Recent::new(NonZeroUsize::new(2).unwrap())
    }

    #[test]
    fn what_was_read_is_trusted_until_forgotten() {
        let recent = recent();
        assert_eq!(recent.get(&1), None);
        recent.keep(recent.start_read(), 1, "a");
        assert_eq!(recent.get(&1), Some("a"));
        recent.forget(&1);
        assert_eq!(recent.get(&1), None);
    }

    #[test]
    fn a_read_older_than_a_second_is_not_trusted() {
        let recent = recent();
        let read = ReadStarted {
            at: Instant::now() - Recent::<u32, &str>::TRUSTED_FOR,
            forgets: 0,
        };
        recent.keep(read, 1, "a");
        assert_eq!(recent.get(&1), None);
    }

    #[test]
    fn a_read_that_started_before_a_forget_is_not_kept() {
        let recent = recent();
        let read = recent.start_read();
        recent.forget(&1);
        recent.keep(read, 1, "stale");
        assert_eq!(recent.get(&1), None);
    }
}
