//! Writes owed after a turn has ended (its `sessions.json` usage update) a short moment later,
//! one after another on one `sessions-write` thread. The save (lock file, temp file, rename)
//! then runs while the clients read the run's end and send their next message instead of
//! competing with them for the CPU, and no worker waits on it.

use crossbeam_channel::{bounded, Receiver, RecvTimeoutError, Sender};
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// How long after the turn's end its write runs. Upstream persists usage a few milliseconds
/// after its final event too, once the run has unwound; `flush` runs what is owed at once.
pub const DELAY: Duration = Duration::from_millis(10);
/// Writes waiting at most, in the channel and again in the writer's own queue; once both are
/// full the submitter writes itself (slower, never lost).
const QUEUE: usize = 256;
const STACK: usize = 256 * 1024;

pub type Job = Box<dyn FnOnce() + Send>;

enum Msg {
    Write { due: Instant, job: Job },
    Flush(Sender<()>),
}

/// A writer thread and its queue; the process has one (`submit`, `flush`).
pub struct WriteBehind {
    tx: Sender<Msg>,
    delay: Duration,
}

impl WriteBehind {
    /// `None` if the thread cannot start; jobs then run where they are submitted.
    pub fn start(delay: Duration, capacity: usize) -> Option<WriteBehind> {
        let (tx, rx) = bounded(capacity);
        match crate::threads::spawn_named("sessions-write", STACK, move || run(rx, capacity)) {
            Ok(_) => Some(WriteBehind { tx, delay }),
            Err(e) => {
                log::warn!(target: "agent", "could not start the sessions writer: {e}");
                None
            }
        }
    }

    /// Queues `job` to run `delay` from now, after every job queued before it.
    pub fn submit(&self, job: Job) {
        let due = Instant::now() + self.delay;
        if let Err(refused) = self.tx.try_send(Msg::Write { due, job }) {
            if let Msg::Write { job, .. } = refused.into_inner() {
                run_job(job);
            }
        }
    }

    /// Runs every queued job now; `true` once they have all run, `false` if `limit` passed first.
    pub fn flush(&self, limit: Duration) -> bool {
        let (done, ran) = bounded(1);
        if self.tx.send_timeout(Msg::Flush(done), limit).is_err() {
            return false;
        }
        // The writer drops its end after the last job: an empty message or a disconnect.
        !matches!(ran.recv_timeout(limit), Err(RecvTimeoutError::Timeout))
    }
}

/// The process's writer, started by the first job.
static WRITER: OnceLock<Option<WriteBehind>> = OnceLock::new();

fn process_writer() -> Option<&'static WriteBehind> {
    WRITER
        .get_or_init(|| WriteBehind::start(DELAY, QUEUE))
        .as_ref()
}

/// `job` a moment from now on the process's writer (at once, here, if it has none).
pub fn submit(job: Job) {
    match process_writer() {
        Some(w) => w.submit(job),
        None => run_job(job),
    }
}

/// Runs what the process's writer still owes (before exit); `false` if `limit` passed first.
pub fn flush(limit: Duration) -> bool {
    match WRITER.get() {
        Some(Some(w)) => w.flush(limit),
        // Never started (no turn finished) or never able to: nothing is owed.
        _ => true,
    }
}

fn run(rx: Receiver<Msg>, capacity: usize) {
    crate::threads::lower_priority();
    let mut queued: VecDeque<(Instant, Job)> = VecDeque::new();
    loop {
        // Saves slower than turns end (a slow or contended disk): the oldest one runs now, so
        // this queue stays bounded and the channel fills up instead.
        while queued.len() >= capacity.max(1) {
            if let Some((_, job)) = queued.pop_front() {
                run_job(job);
            }
        }
        let next = match queued.front() {
            Some((due, _)) => rx.recv_deadline(*due),
            None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
        };
        match next {
            Ok(Msg::Write { due, job }) => queued.push_back((due, job)),
            Ok(Msg::Flush(done)) => {
                queued.drain(..).for_each(|(_, job)| run_job(job));
                drop(done);
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => {
                queued.drain(..).for_each(|(_, job)| run_job(job));
                return;
            }
        }
        let now = Instant::now();
        while queued.front().is_some_and(|(due, _)| *due <= now) {
            if let Some((_, job)) = queued.pop_front() {
                run_job(job);
            }
        }
    }
}

/// A panicking write is logged and the writer goes on with the next.
fn run_job(job: Job) {
    if catch_unwind(AssertUnwindSafe(job)).is_err() {
        log::error!(target: "agent", "a sessions.json write panicked; it was skipped");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    fn recorder() -> (Arc<Mutex<Vec<u32>>>, impl Fn(u32) -> Job) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        let job = move |n: u32| -> Job {
            let l = l.clone();
            Box::new(move || l.lock().unwrap().push(n))
        };
        (log, job)
    }

    #[test]
    fn jobs_run_in_order_and_not_before_their_delay() {
        let delay = Duration::from_millis(30);
        let w = WriteBehind::start(delay, 8).unwrap();
        let (log, job) = recorder();
        let (tx, ran_at) = bounded(1);
        let start = Instant::now();
        w.submit(job(1));
        w.submit(job(2));
        w.submit(Box::new(move || {
            let _ = tx.send(Instant::now());
        }));
        assert!(log.lock().unwrap().is_empty(), "nothing runs at once");
        let at = ran_at.recv_timeout(Duration::from_secs(10)).unwrap();
        assert!(at - start >= delay, "ran after {:?}", at - start);
        assert_eq!(*log.lock().unwrap(), vec![1, 2]);
    }

    #[test]
    fn a_backlog_beyond_the_bound_runs_before_its_delay() {
        let w = WriteBehind::start(Duration::from_secs(3600), 2).unwrap();
        let (log, job) = recorder();
        for n in 1..=5 {
            w.submit(job(n));
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while log.lock().unwrap().len() < 3 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert!(
            log.lock().unwrap().len() >= 3,
            "at most 2 wait: {:?}",
            log.lock().unwrap()
        );
        assert!(w.flush(Duration::from_secs(10)));
        let mut ran = log.lock().unwrap().clone();
        ran.sort();
        assert_eq!(ran, vec![1, 2, 3, 4, 5], "each once");
    }

    #[test]
    fn flush_runs_what_is_owed_before_it_returns() {
        let w = WriteBehind::start(Duration::from_secs(3600), 8).unwrap();
        let (log, job) = recorder();
        w.submit(job(1));
        w.submit(job(2));
        assert!(w.flush(Duration::from_secs(10)));
        assert_eq!(*log.lock().unwrap(), vec![1, 2]);
    }

    #[test]
    fn a_full_queue_makes_the_submitter_write_and_a_panic_does_not_stop_the_writer() {
        let w = WriteBehind::start(Duration::ZERO, 1).unwrap();
        let (log, job) = recorder();
        let (release, hold) = bounded::<()>(0);
        let (started, running) = bounded::<()>(1);
        w.submit(Box::new(move || {
            let _ = started.send(());
            let _ = hold.recv();
        }));
        running.recv_timeout(Duration::from_secs(10)).unwrap();
        w.submit(Box::new(|| panic!("a failing write")));
        // The writer is busy and its one slot taken: this one runs here, now.
        w.submit(job(3));
        assert_eq!(*log.lock().unwrap(), vec![3]);
        drop(release);
        w.submit(job(4));
        assert!(w.flush(Duration::from_secs(10)));
        assert_eq!(*log.lock().unwrap(), vec![3, 4]);
    }
}
