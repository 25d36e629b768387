//! The worker pool: a fixed number of `agent-<n>` threads (the `main` lane's width,
//! `agents.defaults.maxConcurrent`) pulling jobs from one bounded queue. A job is a closure that
//! owns everything it needs (a snapshot, never the gateway's state); a panicking job is caught,
//! reported through `on_panic`, and the worker carries on. Per-session ordering is not the
//! pool's business: the gateway loop submits at most one job per session at a time (lanes), so a
//! worker never parks waiting for another turn of its session.

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::thread::JoinHandle;

use crate::threads;

/// Jobs waiting for a free worker. Senders see `Full` beyond this (the loop then keeps the job in
/// its lane queue instead).
const QUEUE: usize = 256;
/// Worker stack: a turn parses provider JSON and builds requests, nothing deeper.
const WORKER_STACK: usize = 512 * 1024;

pub type Job = Box<dyn FnOnce() + Send + 'static>;

enum Msg {
    Run(Job, Box<dyn FnOnce() + Send + 'static>),
    Exit,
}

/// A fixed-width pool; dropping it lets running jobs finish and joins the workers.
pub struct Pool {
    name: &'static str,
    tx: Sender<Msg>,
    rx: Receiver<Msg>,
    workers: Vec<JoinHandle<()>>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum SubmitError {
    /// The queue is full; try again after a job finishes.
    Busy,
}

impl Pool {
    /// Starts `width` workers (at least one) named `<name>-<n>`.
    pub fn new(name: &'static str, width: usize) -> Pool {
        let (tx, rx) = bounded(QUEUE);
        let mut pool = Pool {
            name,
            tx,
            rx,
            workers: Vec::new(),
        };
        pool.resize(width);
        pool
    }

    pub fn width(&self) -> usize {
        self.workers.len()
    }

    /// Grows or shrinks the pool (config reload). Shrinking lets the extra workers finish their
    /// current job first.
    pub fn resize(&mut self, width: usize) {
        let width = width.max(1);
        while self.workers.len() < width {
            let rx = self.rx.clone();
            let idx = self.workers.len();
            match threads::spawn_named(&format!("{}-{idx}", self.name), WORKER_STACK, move || {
                worker(rx)
            }) {
                Ok(h) => self.workers.push(h),
                Err(e) => {
                    log::error!(target: "agent", "could not start worker {}-{idx}: {e}", self.name);
                    break;
                }
            }
        }
        while self.workers.len() > width {
            if self.tx.send(Msg::Exit).is_err() {
                break;
            }
            // The handle of whichever worker takes the Exit is not known; detach one handle.
            self.workers.pop();
        }
    }

    /// Queues a job; `on_panic` runs (on the worker) if the job panics.
    pub fn submit(
        &self,
        job: Job,
        on_panic: Box<dyn FnOnce() + Send + 'static>,
    ) -> Result<(), SubmitError> {
        match self.tx.try_send(Msg::Run(job, on_panic)) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                Err(SubmitError::Busy)
            }
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        for _ in 0..self.workers.len() {
            let _ = self.tx.send(Msg::Exit);
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

fn worker(rx: Receiver<Msg>) {
    for msg in rx.iter() {
        match msg {
            Msg::Exit => return,
            Msg::Run(job, on_panic) => {
                if catch_unwind(AssertUnwindSafe(job)).is_err() {
                    log::error!(target: "agent", "agent job panicked; the worker continues");
                    on_panic();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    #[test]
    fn never_more_than_width_at_once() {
        let pool = Pool::new("t", 2);
        let (running, peak) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (done_tx, done_rx) = bounded(16);
        for _ in 0..6 {
            let (running, peak, done) = (running.clone(), peak.clone(), done_tx.clone());
            let job: Job = Box::new(move || {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(30));
                running.fetch_sub(1, Ordering::SeqCst);
                let _ = done.send(());
            });
            pool.submit(job, Box::new(|| {})).unwrap();
        }
        for _ in 0..6 {
            done_rx.recv_timeout(Duration::from_secs(5)).unwrap();
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_panicking_job_is_reported_and_the_worker_survives() {
        let pool = Pool::new("p", 1);
        let (tx, rx) = bounded(4);
        let tx2 = tx.clone();
        pool.submit(
            Box::new(|| panic!("boom")),
            Box::new(move || tx2.send("panicked").unwrap()),
        )
        .unwrap();
        pool.submit(Box::new(move || tx.send("ran").unwrap()), Box::new(|| {}))
            .unwrap();
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), "panicked");
        assert_eq!(rx.recv_timeout(Duration::from_secs(5)).unwrap(), "ran");
    }

    #[test]
    fn resize_changes_width() {
        let mut pool = Pool::new("r", 1);
        pool.resize(4);
        assert_eq!(pool.width(), 4);
        pool.resize(2);
        assert_eq!(pool.width(), 2);
    }
}
