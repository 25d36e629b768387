//! The worker pool: a fixed number of `agent-<n>` threads (the `main` lane's width,
//! `agents.defaults.maxConcurrent`). A job is a closure that owns everything it needs (a
//! snapshot, never the gateway's state); a panicking job is caught, reported through
//! `on_panic`, and the worker carries on. Per-session ordering is not the pool's business: the
//! gateway loop submits at most one job per session at a time (lanes), so a worker never parks
//! waiting for another turn of its session.
//!
//! A job goes to the worker that became idle last, through that worker's own hand-off slot;
//! only when every worker is busy does it wait in the shared backlog, which a worker empties
//! before it goes idle. Handing work to the most recently idle worker keeps one-at-a-time
//! traffic (one person chatting) on one thread, whose kept-alive provider connection and
//! memos are then warm; a shared queue would wake the workers in turn.

use crossbeam_channel::{bounded, Sender};
use parking_lot::Mutex;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::threads;

/// Jobs waiting for a free worker. Submitters see `Busy` beyond this (the loop then keeps the
/// job in its lane queue instead).
const QUEUE: usize = 256;
/// Worker stack: a turn parses provider JSON and builds requests, nothing deeper.
const WORKER_STACK: usize = 512 * 1024;

pub type Job = Box<dyn FnOnce() + Send + 'static>;

enum Msg {
    Run(Job, Box<dyn FnOnce() + Send + 'static>),
    Exit,
}

/// Who is idle and what waits, under one lock so that a worker going idle and a job arriving
/// cannot miss each other.
#[derive(Default)]
struct Board {
    /// Hand-off slots of the idle workers, the most recently idle last.
    idle: Vec<Sender<Msg>>,
    backlog: VecDeque<Msg>,
}

/// A fixed-width pool; dropping it lets running jobs finish and joins the workers.
pub struct Pool {
    name: &'static str,
    board: Arc<Mutex<Board>>,
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
        let mut pool = Pool {
            name,
            board: Arc::default(),
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
            let board = self.board.clone();
            let idx = self.workers.len();
            match threads::spawn_named(&format!("{}-{idx}", self.name), WORKER_STACK, move || {
                worker(&board)
            }) {
                Ok(h) => self.workers.push(h),
                Err(e) => {
                    log::error!(target: "agent", "could not start worker {}-{idx}: {e}", self.name);
                    break;
                }
            }
        }
        while self.workers.len() > width {
            // Exits wait behind the jobs already queued, whatever the bound.
            self.post(Msg::Exit, usize::MAX);
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
        match self.post(Msg::Run(job, on_panic), QUEUE) {
            true => Ok(()),
            false => Err(SubmitError::Busy),
        }
    }

    /// To the most recently idle worker, else into the backlog if it has room.
    fn post(&self, msg: Msg, bound: usize) -> bool {
        let mut board = self.board.lock();
        let mut msg = msg;
        while let Some(slot) = board.idle.pop() {
            // An idle worker's slot is empty (it went idle with nothing in it); a worker that
            // is gone has dropped its receiver, and the next idle one is tried.
            match slot.try_send(msg) {
                Ok(()) => return true,
                Err(e) => msg = e.into_inner(),
            }
        }
        if board.backlog.len() >= bound {
            return false;
        }
        board.backlog.push_back(msg);
        true
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        for _ in 0..self.workers.len() {
            self.post(Msg::Exit, usize::MAX);
        }
        for w in self.workers.drain(..) {
            let _ = w.join();
        }
    }
}

fn worker(board: &Mutex<Board>) {
    let (slot, inbox) = bounded::<Msg>(1);
    loop {
        let next = {
            let mut b = board.lock();
            let queued = b.backlog.pop_front();
            if queued.is_none() {
                b.idle.push(slot.clone());
            }
            queued
        };
        let msg = match next {
            Some(msg) => msg,
            None => match inbox.recv() {
                Ok(msg) => msg,
                Err(_) => return,
            },
        };
        match msg {
            Msg::Exit => return,
            Msg::Run(job, on_panic) => run(job, on_panic),
        }
    }
}

fn run(job: Job, on_panic: Box<dyn FnOnce() + Send + 'static>) {
    if catch_unwind(AssertUnwindSafe(job)).is_err() {
        log::error!(target: "agent", "agent job panicked; the worker continues");
        on_panic();
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

    fn worker_name() -> String {
        std::thread::current().name().unwrap_or("").to_string()
    }

    #[test]
    fn one_job_at_a_time_stays_on_the_worker_that_ran_the_last() {
        let pool = Pool::new("l", 4);
        // Let every worker go idle first, in whatever order.
        std::thread::sleep(Duration::from_millis(50));
        let (tx, rx) = bounded(1);
        let mut names = Vec::new();
        for _ in 0..20 {
            let tx = tx.clone();
            pool.submit(
                Box::new(move || tx.send(worker_name()).unwrap()),
                Box::new(|| {}),
            )
            .unwrap();
            names.push(rx.recv_timeout(Duration::from_secs(5)).unwrap());
            // The worker is back on the idle list once it has taken the board's lock again.
            std::thread::sleep(Duration::from_millis(5));
        }
        names.dedup();
        assert_eq!(names.len(), 1, "ran on {names:?}");
    }

    #[test]
    fn jobs_beyond_the_free_workers_wait_and_all_run() {
        let pool = Arc::new(Pool::new("b", 2));
        let done = Arc::new(AtomicUsize::new(0));
        let submitters: Vec<_> = (0..4)
            .map(|_| {
                let (pool, done) = (pool.clone(), done.clone());
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        while pool.submit(counting(&done), Box::new(|| {})).is_err() {
                            std::thread::yield_now();
                        }
                    }
                })
            })
            .collect();
        for s in submitters {
            s.join().unwrap();
        }
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while done.load(Ordering::SeqCst) < 200 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
        assert_eq!(done.load(Ordering::SeqCst), 200, "no job lost or stuck");
    }

    fn counting(done: &Arc<AtomicUsize>) -> Job {
        let done = done.clone();
        Box::new(move || {
            done.fetch_add(1, Ordering::SeqCst);
        })
    }

    #[test]
    fn a_full_backlog_says_busy() {
        let pool = Pool::new("f", 1);
        let (hold_tx, hold_rx) = bounded::<()>(0);
        pool.submit(
            Box::new(move || {
                let _ = hold_rx.recv();
            }),
            Box::new(|| {}),
        )
        .unwrap();
        // Wait until the only worker holds the first job, so the rest queue.
        std::thread::sleep(Duration::from_millis(50));
        for _ in 0..QUEUE {
            pool.submit(Box::new(|| {}), Box::new(|| {})).unwrap();
        }
        assert_eq!(
            pool.submit(Box::new(|| {}), Box::new(|| {})),
            Err(SubmitError::Busy)
        );
        hold_tx.send(()).unwrap();
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
