//! A small expiring cache in which concurrent lookups of one key share a single fetch.

use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tokio::sync::OnceCell;

/// Past this many entries, expired ones are swept on insert: rejected garbage tokens cannot pile up.
const SWEEP_AT: usize = 10_000;

/// A value and when it stops being good; empty while its fetch is under way.
type Slot<V> = Arc<OnceCell<(V, Instant)>>;

pub struct Cache<K, V, E> {
    slots: Mutex<HashMap<K, Slot<V>>>,
    _error: std::marker::PhantomData<fn() -> E>,
}

impl<K: Hash + Eq + Clone, V: Clone, E> Default for Cache<K, V, E> {
    fn default() -> Self {
        Cache { slots: Mutex::new(HashMap::new()), _error: std::marker::PhantomData }
    }
}

impl<K: Hash + Eq + Clone, V: Clone, E> Cache<K, V, E> {
    pub fn new() -> Self {
        Self::default()
    }

    /// The value for `key`, fetching it if absent or expired. `fetch` returns the value and when it
    /// expires. A failed fetch is not cached: the next lookup tries again.
    pub async fn get_or_fetch<F, Fut>(&self, key: K, fetch: F) -> Result<V, E>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(V, Instant), E>>,
    {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
            let now = Instant::now();
            match slots.get(&key) {
                Some(s) if s.get().is_none_or(|(_, until)| *until > now) => s.clone(),
                _ => {
                    if slots.len() >= SWEEP_AT {
                        slots.retain(|_, s| s.get().is_none_or(|(_, until)| *until > now));
                    }
                    let s = Arc::new(OnceCell::new());
                    slots.insert(key.clone(), s.clone());
                    s
                }
            }
        };
        match slot.get_or_try_init(fetch).await {
            Ok((v, _)) => Ok(v.clone()),
            Err(e) => {
                let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
                if slots.get(&key).is_some_and(|s| Arc::ptr_eq(s, &slot) && s.get().is_none()) {
                    slots.remove(&key);
                }
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    #[tokio::test]
    async fn concurrent_lookups_share_one_fetch() {
        let cache: Arc<Cache<&str, u32, ()>> = Arc::new(Cache::new());
        let calls = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..20 {
            let (cache, calls) = (cache.clone(), calls.clone());
            tasks.push(tokio::spawn(async move {
                cache
                    .get_or_fetch("k", || async {
                        calls.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        Ok((7, Instant::now() + Duration::from_secs(60)))
                    })
                    .await
            }));
        }
        for t in tasks {
            assert_eq!(t.await.unwrap(), Ok(7));
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn expired_and_failed_entries_are_fetched_again() {
        let cache: Cache<&str, u32, &str> = Cache::new();
        let r = cache.get_or_fetch("k", || async { Err("down") }).await;
        assert_eq!(r, Err("down"));
        let r = cache.get_or_fetch("k", || async { Ok((1, Instant::now())) }).await;
        assert_eq!(r, Ok(1), "a failure is not cached");
        let r = cache.get_or_fetch("k", || async { Ok((2, Instant::now() + Duration::from_secs(60))) }).await;
        assert_eq!(r, Ok(2), "an expired value is fetched again");
        let r = cache.get_or_fetch("k", || async { Ok((3, Instant::now())) }).await;
        assert_eq!(r, Ok(2), "a live value is reused");
    }
}
