//! Per-session lanes and queue modes (agents.md §5): at most one run per session at a time, in
//! FIFO order, and what happens to a message that arrives while its session is busy (`collect`,
//! `followup`, `steer`, `steer-backlog`, `interrupt`, with the cap and drop policy). Pure data
//! owned by the gateway loop; it decides, the loop submits jobs to the pool.

use std::collections::{HashMap, VecDeque};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueMode {
    Steer,
    Followup,
    Collect,
    SteerBacklog,
    Interrupt,
}

impl QueueMode {
    /// Upstream's spellings, including the aliases `queue` (= steer) and `steer+backlog`.
    pub fn parse(s: &str) -> Option<QueueMode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "steer" | "queue" => Some(QueueMode::Steer),
            "followup" => Some(QueueMode::Followup),
            "collect" => Some(QueueMode::Collect),
            "steer-backlog" | "steer+backlog" => Some(QueueMode::SteerBacklog),
            "interrupt" => Some(QueueMode::Interrupt),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropPolicy {
    Old,
    New,
    Summarize,
}

#[derive(Debug, Clone, Copy)]
pub struct QueuePolicy {
    pub mode: QueueMode,
    pub cap: usize,
    pub drop: DropPolicy,
}

impl QueuePolicy {
    /// One message after another, never merged, steered or dropped (upstream's command lanes,
    /// used by `agentCommand` callers such as the OpenAI endpoint). The queue is bounded by the
    /// callers, not here.
    pub fn fifo() -> QueuePolicy {
        QueuePolicy {
            mode: QueueMode::Followup,
            cap: usize::MAX,
            drop: DropPolicy::New,
        }
    }
}

impl Default for QueuePolicy {
    /// `collect`, cap 20, drop `summarize` (upstream defaults).
    fn default() -> Self {
        QueuePolicy {
            mode: QueueMode::Collect,
            cap: 20,
            drop: DropPolicy::Summarize,
        }
    }
}

/// What the lanes need from a queued message.
pub trait Queued: Sized {
    fn prompt(&self) -> &str;
    /// The same message with another prompt (a collect batch keeps the first item's routing).
    fn with_prompt(self, prompt: String) -> Self;
    /// `other` was merged into this one (a collect batch): keep what its sender waits for.
    fn absorb(&mut self, _other: Self) {}
    /// Whether `collect` may merge this message with others (false: it runs on its own).
    fn merges(&self) -> bool {
        true
    }
}

/// The decision for an incoming message.
#[derive(Debug, PartialEq)]
pub enum Admission<T> {
    /// The session is idle: run it now (the session is now busy).
    Start(T),
    /// Kept in the session's queue until the active run finishes.
    Queued,
    /// Dropped (`drop: "new"` with a full queue).
    Rejected(T),
    /// Inject into the active run (`steer` while streaming); for `steer-backlog` it is also queued.
    Steer(T),
    /// Abort this run; the message runs after it (queued items were cleared and are returned).
    Interrupt { abort_run: String, cleared: Vec<T> },
}

struct Lane<T> {
    active: Option<String>,
    queue: VecDeque<T>,
    /// One-line summaries of messages dropped by the cap (`summarize`).
    dropped: Vec<String>,
}

impl<T> Default for Lane<T> {
    fn default() -> Self {
        Lane {
            active: None,
            queue: VecDeque::new(),
            dropped: Vec::new(),
        }
    }
}

pub struct SessionLanes<T> {
    lanes: HashMap<String, Lane<T>>,
}

impl<T> Default for SessionLanes<T> {
    fn default() -> Self {
        SessionLanes {
            lanes: HashMap::new(),
        }
    }
}

const SUMMARY_CHARS: usize = 160;

impl<T: Queued> SessionLanes<T> {
    pub fn active_run(&self, key: &str) -> Option<&str> {
        self.lanes.get(key).and_then(|l| l.active.as_deref())
    }

    /// Marks `run_id` as the session's active run (after `Start`).
    pub fn set_active(&mut self, key: &str, run_id: &str) {
        self.lanes.entry(key.to_string()).or_default().active = Some(run_id.to_string());
    }

    /// Decides what to do with `item` for session `key`. `streaming` says whether the active run
    /// is inside its model loop (steering is only possible then).
    pub fn admit(
        &mut self,
        key: &str,
        item: T,
        policy: &QueuePolicy,
        streaming: bool,
    ) -> Admission<T> {
        let lane = self.lanes.entry(key.to_string()).or_default();
        let Some(active) = lane.active.clone() else {
            return Admission::Start(item);
        };
        match policy.mode {
            QueueMode::Steer if streaming => Admission::Steer(item),
            QueueMode::Interrupt => {
                let cleared = lane.queue.drain(..).collect();
                lane.queue.push_back(item);
                Admission::Interrupt {
                    abort_run: active,
                    cleared,
                }
            }
            QueueMode::SteerBacklog if streaming => {
                // Steered now and kept for a follow-up turn: the caller clones what it steers.
                Admission::Steer(item)
            }
            _ => enqueue(lane, item, policy),
        }
    }

    /// Queues an item behind the active run without any policy (steer-backlog's second half).
    pub fn push_backlog(&mut self, key: &str, item: T, policy: &QueuePolicy) -> Admission<T> {
        let lane = self.lanes.entry(key.to_string()).or_default();
        enqueue(lane, item, policy)
    }

    /// The active run of `key` ended. Returns the next message to start (then the session stays
    /// busy until `finished` is called again), or `None` and the session is idle.
    pub fn finished(&mut self, key: &str, policy: &QueuePolicy) -> Option<T> {
        let lane = self.lanes.get_mut(key)?;
        lane.active = None;
        let next = if policy.mode == QueueMode::Collect {
            take_collected(lane)
        } else {
            take_one(lane)
        };
        if next.is_none() && lane.queue.is_empty() {
            self.lanes.remove(key);
        }
        next
    }

    /// Removes everything queued for `key` (e.g. `/stop`, session delete).
    pub fn clear(&mut self, key: &str) -> Vec<T> {
        self.lanes
            .get_mut(key)
            .map(|l| l.queue.drain(..).collect())
            .unwrap_or_default()
    }
}

fn enqueue<T: Queued>(lane: &mut Lane<T>, item: T, policy: &QueuePolicy) -> Admission<T> {
    if lane.queue.len() >= policy.cap.max(1) {
        match policy.drop {
            DropPolicy::New => return Admission::Rejected(item),
            DropPolicy::Old => {
                lane.queue.pop_front();
            }
            DropPolicy::Summarize => {
                if let Some(old) = lane.queue.pop_front() {
                    lane.dropped.push(summary_line(old.prompt()));
                    let excess = lane.dropped.len().saturating_sub(policy.cap.max(1));
                    lane.dropped.drain(..excess);
                }
            }
        }
    }
    lane.queue.push_back(item);
    Admission::Queued
}

fn summary_line(prompt: &str) -> String {
    let one_line = prompt.split_whitespace().collect::<Vec<_>>().join(" ");
    one_line.chars().take(SUMMARY_CHARS).collect()
}

fn overflow_block(dropped: &[String]) -> String {
    let lines: Vec<String> = dropped.iter().map(|d| format!("- {d}")).collect();
    format!(
        "[Queue overflow] Dropped {} message(s) due to cap.\nSummary:\n{}",
        dropped.len(),
        lines.join("\n")
    )
}

fn take_one<T: Queued>(lane: &mut Lane<T>) -> Option<T> {
    if !lane.dropped.is_empty() {
        let block = overflow_block(&std::mem::take(&mut lane.dropped));
        let first = lane.queue.pop_front()?;
        let prompt = format!("{block}\n\n{}", first.prompt());
        return Some(first.with_prompt(prompt));
    }
    lane.queue.pop_front()
}

/// `collect`: every queued message becomes one prompt, as upstream words it.
/// Only the leading run of mergeable messages is collected; one that does not merge runs alone.
fn take_collected<T: Queued>(lane: &mut Lane<T>) -> Option<T> {
    let mergeable = lane.queue.iter().take_while(|i| i.merges()).count();
    if mergeable == 0 {
        return take_one(lane);
    }
    let mut items: Vec<T> = lane.queue.drain(..mergeable).collect();
    let mut parts = Vec::new();
    if !lane.dropped.is_empty() {
        parts.push(overflow_block(&std::mem::take(&mut lane.dropped)));
    }
    parts.push("[Queued messages while agent was busy]".to_string());
    for (i, item) in items.iter().enumerate() {
        parts.push(format!("---\nQueued #{}\n{}", i + 1, item.prompt()));
    }
    let mut first = items.remove(0).with_prompt(parts.join("\n\n"));
    for other in items {
        first.absorb(other);
    }
    Some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, Clone)]
    struct Msg(String);
    impl Queued for Msg {
        fn prompt(&self) -> &str {
            &self.0
        }
        fn with_prompt(self, prompt: String) -> Self {
            Msg(prompt)
        }
    }

    fn m(s: &str) -> Msg {
        Msg(s.to_string())
    }

    #[test]
    fn idle_starts_busy_queues_and_collect_merges() {
        let mut lanes = SessionLanes::default();
        let p = QueuePolicy::default();
        assert_eq!(
            lanes.admit("s", m("one"), &p, false),
            Admission::Start(m("one"))
        );
        lanes.set_active("s", "r1");
        assert_eq!(lanes.admit("s", m("two"), &p, true), Admission::Queued);
        assert_eq!(lanes.admit("s", m("three"), &p, true), Admission::Queued);
        let next = lanes.finished("s", &p).unwrap();
        assert_eq!(next.0, "[Queued messages while agent was busy]\n\n---\nQueued #1\ntwo\n\n---\nQueued #2\nthree");
        lanes.set_active("s", "r2");
        assert_eq!(lanes.finished("s", &p), None);
        assert_eq!(lanes.active_run("s"), None);
    }

    /// A message that may refuse merging (`.1 == false`).
    #[derive(Debug, PartialEq)]
    struct Solo(String, bool);
    impl Queued for Solo {
        fn prompt(&self) -> &str {
            &self.0
        }
        fn with_prompt(self, prompt: String) -> Self {
            Solo(prompt, self.1)
        }
        fn merges(&self) -> bool {
            self.1
        }
    }

    #[test]
    fn collect_never_merges_a_message_that_refuses() {
        let mut lanes = SessionLanes::default();
        let p = QueuePolicy::default();
        lanes.set_active("s", "r1");
        lanes.admit("s", Solo("http".into(), false), &QueuePolicy::fifo(), true);
        lanes.admit("s", Solo("a".into(), true), &p, true);
        lanes.admit("s", Solo("b".into(), true), &p, true);
        assert_eq!(lanes.finished("s", &p), Some(Solo("http".into(), false)));
        lanes.set_active("s", "r2");
        let merged = lanes.finished("s", &p).unwrap();
        assert!(merged.0.contains("Queued #2\nb"), "{merged:?}");
    }

    #[test]
    fn followup_runs_one_by_one_and_other_sessions_are_independent() {
        let mut lanes = SessionLanes::default();
        let p = QueuePolicy {
            mode: QueueMode::Followup,
            ..Default::default()
        };
        lanes.set_active("a", "r1");
        assert_eq!(
            lanes.admit("b", m("x"), &p, false),
            Admission::Start(m("x"))
        );
        lanes.admit("a", m("2"), &p, false);
        lanes.admit("a", m("3"), &p, false);
        assert_eq!(lanes.finished("a", &p), Some(m("2")));
        lanes.set_active("a", "r2");
        assert_eq!(lanes.finished("a", &p), Some(m("3")));
    }

    #[test]
    fn steer_interrupt_and_cap() {
        let mut lanes = SessionLanes::default();
        lanes.set_active("s", "r1");
        let steer = QueuePolicy {
            mode: QueueMode::Steer,
            ..Default::default()
        };
        assert_eq!(
            lanes.admit("s", m("now"), &steer, true),
            Admission::Steer(m("now"))
        );
        assert_eq!(
            lanes.admit("s", m("later"), &steer, false),
            Admission::Queued
        );
        let int = QueuePolicy {
            mode: QueueMode::Interrupt,
            ..Default::default()
        };
        assert_eq!(
            lanes.admit("s", m("stop that"), &int, true),
            Admission::Interrupt {
                abort_run: "r1".into(),
                cleared: vec![m("later")]
            }
        );
        let cap = QueuePolicy {
            mode: QueueMode::Followup,
            cap: 1,
            drop: DropPolicy::New,
        };
        assert_eq!(
            lanes.admit("s", m("over"), &cap, false),
            Admission::Rejected(m("over"))
        );
        let sum = QueuePolicy {
            mode: QueueMode::Followup,
            cap: 1,
            drop: DropPolicy::Summarize,
        };
        assert_eq!(
            lanes.admit("s", m("newest"), &sum, false),
            Admission::Queued
        );
        let next = lanes.finished("s", &sum).unwrap();
        assert_eq!(
            next.0,
            "[Queue overflow] Dropped 1 message(s) due to cap.\nSummary:\n- stop that\n\nnewest"
        );
        assert_eq!(
            QueueMode::parse("steer+backlog"),
            Some(QueueMode::SteerBacklog)
        );
        assert_eq!(QueueMode::parse("queue"), Some(QueueMode::Steer));
    }
}
