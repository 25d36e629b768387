//! Process memory policy: keep glibc's allocator from holding on to memory that connection
//! threads freed. Every WebSocket client runs two short-lived threads; by default glibc gives
//! threads their own arenas (up to 8 per core) and keeps freed pages mapped, so RSS after a burst
//! of clients never returns to idle. One arena plus an explicit trim when clients leave fixes that.

/// glibc keeps the stacks of exited threads for reuse (up to 40 MiB), each holding a few resident
/// pages; with two short-lived threads per client that is megabytes that never come back. The
/// cache size is a tunable read only at process start, so `main` re-executes itself once with it
/// set. Returns only if no re-exec happened (already set, not glibc, or exec failed).
pub fn reexec_with_tunables() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        use std::os::unix::process::CommandExt;
        const TUNABLE: &str = "glibc.pthread.stack_cache_size=0";
        let current = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
        if current.contains("glibc.pthread.stack_cache_size") {
            return;
        }
        let value = if current.is_empty() {
            TUNABLE.to_string()
        } else {
            format!("{current}:{TUNABLE}")
        };
        let Ok(exe) = std::env::current_exe() else {
            return;
        };
        let mut args = std::env::args_os();
        let argv0 = args.next().unwrap_or_default();
        // exec only returns on failure; then we simply carry on with glibc's default.
        let _ = std::process::Command::new(exe)
            .arg0(argv0)
            .args(args)
            .env("GLIBC_TUNABLES", value)
            .exec();
    }
}

/// Call once at start-up, before any thread is spawned.
pub fn configure_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only adjusts allocator parameters; called before other threads exist.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 1);
    }
}

/// Returns freed heap pages to the kernel (cheap when there is nothing to return).
pub fn trim() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and has no preconditions.
    unsafe {
        libc::malloc_trim(0);
    }
}
