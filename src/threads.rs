//! Thread spawning with a name and an explicit stack size: every thread of the process starts here,
//! so its memory cost is a decision made at the call site and visible in one place.

use std::io;
use std::thread::{Builder, JoinHandle};

/// Stack for threads that parse JSON frames (serde_json recursion is capped at 128 levels).
pub const STACK_PARSER: usize = 256 * 1024;
/// Stack for threads that only move bytes or wait on channels.
pub const STACK_SMALL: usize = 64 * 1024;

/// Spawns a named thread with the given stack size.
pub fn spawn_named<F, T>(name: &str, stack: usize, f: F) -> io::Result<JoinHandle<T>>
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    Builder::new()
        .name(name.to_string())
        .stack_size(stack)
        .spawn(f)
}

/// How much lower background threads run: work no client waits for (the usage saves after a
/// turn) yields the CPU to the threads that answer, on a machine with one or two cores.
const BACKGROUND_NICE_STEP: libc::c_int = 10;

/// Lowers the calling thread's priority by [`BACKGROUND_NICE_STEP`] nice levels, at most to
/// 19 (Linux keeps a nice value per thread). Lowering needs no privilege; a failure leaves
/// the thread as it was.
pub fn lower_priority() {
    // SAFETY: `gettid` has no preconditions; `getpriority` and `setpriority` only read their
    // arguments. For the calling thread `getpriority` cannot fail, so -1 is a nice value.
    let rc = unsafe {
        let tid = libc::gettid() as libc::id_t;
        let nice = libc::getpriority(libc::PRIO_PROCESS, tid);
        libc::setpriority(
            libc::PRIO_PROCESS,
            tid,
            (nice + BACKGROUND_NICE_STEP).min(19),
        )
    };
    if rc != 0 {
        log::debug!(
            "could not lower this thread's priority: {}",
            io::Error::last_os_error()
        );
    }
}
