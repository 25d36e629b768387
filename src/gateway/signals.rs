//! The signal thread. SIGINT, SIGTERM and SIGUSR1 are blocked in every thread (the mask is set
//! before any thread starts and inherited) and taken synchronously here with `sigwait`, so the
//! loop learns which signal arrived as an ordinary `Event`. A second SIGINT/SIGTERM exits at
//! once; a watchdog ends a shutdown that takes longer than `WATCHDOG`.

use crossbeam_channel::Sender;
use nix::sys::signal::{SigSet, Signal as NixSignal};
use std::time::Duration;

use super::event::{Event, Signal};
use crate::threads;

/// A shutdown still running after this long is cut short (upstream: 5 s).
const WATCHDOG: Duration = Duration::from_secs(5);

fn handled() -> SigSet {
    let mut set = SigSet::empty();
    set.add(NixSignal::SIGINT);
    set.add(NixSignal::SIGTERM);
    set.add(NixSignal::SIGUSR1);
    set
}

/// Blocks the handled signals in the calling thread; call first thing in `main`.
pub fn block_in_this_thread() {
    if let Err(e) = handled().thread_block() {
        eprintln!("[gateway] could not block signals: {e}");
    }
}

/// Starts the signal thread; events go to the gateway loop (which may be restarted, so the
/// sender is swapped through `route`).
pub fn start(route: std::sync::Arc<parking_lot::Mutex<Sender<Event>>>) {
    let spawned = threads::spawn_named("signals", threads::STACK_SMALL, move || {
        let set = handled();
        let mut stopping = false;
        loop {
            let Ok(sig) = set.wait() else { continue };
            let signal = match sig {
                NixSignal::SIGINT => Signal::Int,
                NixSignal::SIGTERM => Signal::Term,
                _ => Signal::Usr1,
            };
            if signal != Signal::Usr1 {
                if stopping {
                    log::warn!(target: "gateway", "received {} again; exiting now", signal.name());
                    crate::logging::flush_file();
                    std::process::exit(1);
                }
                stopping = true;
                log::info!(target: "gateway", "signal {} received", signal.name());
                start_watchdog();
            }
            let _ = route.lock().send(Event::Signal(signal));
        }
    });
    if spawned.is_err() {
        log::warn!(target: "gateway", "could not start the signal thread; signals will not stop the gateway cleanly");
    }
}

fn start_watchdog() {
    let _ = threads::spawn_named("watchdog", threads::STACK_SMALL, || {
        std::thread::sleep(WATCHDOG);
        log::error!(target: "gateway", "shutdown timed out; exiting without full cleanup");
        crate::logging::flush_file();
        std::process::exit(1);
    });
}
