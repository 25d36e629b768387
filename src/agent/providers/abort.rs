//! `AbortSignal`: a cheap, clonable cancel flag with hooks that run in the aborting thread, so a
//! blocked socket can be shut down the moment `abort()` is called (agents.md §3.11).

use parking_lot::Mutex;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

type Hook = Box<dyn FnOnce() + Send>;

#[derive(Default)]
struct Inner {
    aborted: AtomicBool,
    hooks: Mutex<Hooks>,
}

#[derive(Default)]
struct Hooks {
    next_id: u64,
    list: Vec<(u64, Hook)>,
}

/// Shared cancel flag. Clones observe and trigger the same abort.
#[derive(Clone, Default)]
pub struct AbortSignal {
    inner: Arc<Inner>,
}

impl AbortSignal {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the flag and runs every registered hook once. Later calls do nothing.
    pub fn abort(&self) {
        if self.inner.aborted.swap(true, Ordering::SeqCst) {
            return;
        }
        // Take the hooks out before running them: a hook may drop its own `AbortHook`.
        let hooks = std::mem::take(&mut self.inner.hooks.lock().list);
        for (_, hook) in hooks {
            hook();
        }
    }

    pub fn is_aborted(&self) -> bool {
        self.inner.aborted.load(Ordering::SeqCst)
    }

    /// Runs `f` on abort (at once if already aborted). Dropping the returned guard unregisters it.
    pub fn on_abort(&self, f: impl FnOnce() + Send + 'static) -> AbortHook {
        let mut hooks = self.inner.hooks.lock();
        // Checked under the lock: `abort` sets the flag before it drains the list, so a hook is
        // either drained by `abort` or sees the flag here — never lost.
        if self.is_aborted() {
            drop(hooks);
            f();
            return AbortHook {
                signal: None,
                id: 0,
            };
        }
        let id = hooks.next_id;
        hooks.next_id += 1;
        hooks.list.push((id, Box::new(f)));
        AbortHook {
            signal: Some(self.clone()),
            id,
        }
    }
}

impl fmt::Debug for AbortSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AbortSignal")
            .field("aborted", &self.is_aborted())
            .finish()
    }
}

/// Registration of an abort hook; unregisters on drop.
pub struct AbortHook {
    signal: Option<AbortSignal>,
    id: u64,
}

impl Drop for AbortHook {
    fn drop(&mut self) {
        if let Some(signal) = &self.signal {
            signal
                .inner
                .hooks
                .lock()
                .list
                .retain(|(id, _)| *id != self.id);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn hooks_run_once_and_unregister() {
        let s = AbortSignal::new();
        let n = Arc::new(AtomicUsize::new(0));
        let kept = {
            let n = n.clone();
            s.on_abort(move || {
                n.fetch_add(1, Ordering::SeqCst);
            })
        };
        {
            let n = n.clone();
            let _dropped = s.on_abort(move || {
                n.fetch_add(100, Ordering::SeqCst);
            });
        }
        let clone = s.clone();
        clone.abort();
        s.abort();
        assert!(s.is_aborted());
        assert_eq!(n.load(Ordering::SeqCst), 1);
        drop(kept);

        let late = n.clone();
        let _h = s.on_abort(move || {
            late.fetch_add(10, Ordering::SeqCst);
        });
        assert_eq!(n.load(Ordering::SeqCst), 11);
    }
}
