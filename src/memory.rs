//! Process memory policy: keep glibc's allocator from holding on to memory that connection
//! threads freed. Every WebSocket client runs two short-lived threads; by default glibc gives
//! threads their own arenas (up to 8 per core) and keeps freed pages mapped, so RSS after a burst
//! of clients never returns to idle. One arena plus an explicit trim when clients leave fixes that.

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
