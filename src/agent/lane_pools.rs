//! The global lanes (agents.md §5.1, §5.3): `main` (`agents.defaults.maxConcurrent`, default 4),
//! `cron` (`cron.maxConcurrentRuns`, default 1), `subagent` (`agents.defaults.subagents.
//! maxConcurrent`, default 8) and `nested` (1), each its own worker pool so a run waiting on
//! another lane's run can never starve it. Only `main` starts with the gateway; the others start
//! their threads on first use, so an idle gateway pays for none of them.

use serde_json::Value;

use crate::agent::pool::{Job, Pool, SubmitError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    Main,
    Cron,
    Subagent,
    Nested,
}

impl Lane {
    /// The `lane` parameter of `agent`; anything unknown runs on `main`, as upstream's default.
    pub fn parse(raw: Option<&str>) -> Lane {
        match raw.map(str::trim) {
            Some("cron") => Lane::Cron,
            Some("subagent") => Lane::Subagent,
            Some("nested") => Lane::Nested,
            _ => Lane::Main,
        }
    }

    fn index(self) -> usize {
        match self {
            Lane::Main => 0,
            Lane::Cron => 1,
            Lane::Subagent => 2,
            Lane::Nested => 3,
        }
    }

    fn thread_name(self) -> &'static str {
        ["agent", "cron", "subagent", "nested"][self.index()]
    }
}

pub struct LanePools {
    pools: [Option<Pool>; 4],
    widths: [usize; 4],
}

impl LanePools {
    pub fn new(config: &Value) -> LanePools {
        let widths = widths(config);
        LanePools {
            pools: [Some(Pool::new("agent", widths[0])), None, None, None],
            widths,
        }
    }

    pub fn width(&self, lane: Lane) -> usize {
        self.widths[lane.index()]
    }

    /// New widths after a config reload; started pools grow or shrink at once.
    pub fn resize(&mut self, config: &Value) {
        self.widths = widths(config);
        for (pool, width) in self.pools.iter_mut().zip(self.widths) {
            if let Some(p) = pool {
                p.resize(width);
            }
        }
    }

    pub fn submit(
        &mut self,
        lane: Lane,
        job: Job,
        on_panic: Box<dyn FnOnce() + Send + 'static>,
    ) -> Result<(), SubmitError> {
        let i = lane.index();
        let width = self.widths[i];
        let pool = self.pools[i].get_or_insert_with(|| Pool::new(lane.thread_name(), width));
        pool.submit(job, on_panic)
    }
}

fn widths(config: &Value) -> [usize; 4] {
    let count = |ptr: &str, default: usize| {
        config
            .pointer(ptr)
            .and_then(Value::as_f64)
            .map(|f| f.floor().max(1.0) as usize)
            .unwrap_or(default)
    };
    [
        count("/agents/defaults/maxConcurrent", 4),
        count("/cron/maxConcurrentRuns", 1),
        count("/agents/defaults/subagents/maxConcurrent", 8),
        1,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn widths_come_from_config_and_pools_start_lazily() {
        let cfg = json!({"agents": {"defaults": {"maxConcurrent": 2, "subagents": {"maxConcurrent": 3}}},
                         "cron": {"maxConcurrentRuns": 2.7}});
        let mut pools = LanePools::new(&cfg);
        assert_eq!(pools.width(Lane::Main), 2);
        assert_eq!(pools.width(Lane::Cron), 2);
        assert_eq!(pools.width(Lane::Subagent), 3);
        assert_eq!(pools.width(Lane::Nested), 1);
        assert!(pools.pools[2].is_none());
        let (tx, rx) = crossbeam_channel::bounded(1);
        pools
            .submit(
                Lane::Subagent,
                Box::new(move || {
                    let name = std::thread::current().name().map(str::to_string);
                    let _ = tx.send(name);
                }),
                Box::new(|| {}),
            )
            .expect("submitted");
        let name = rx
            .recv_timeout(std::time::Duration::from_secs(5))
            .expect("ran");
        assert!(name.is_some_and(|n| n.starts_with("subagent-")));
        pools.resize(&json!({}));
        assert_eq!(pools.width(Lane::Main), 4);
        assert_eq!(pools.pools[0].as_ref().map(Pool::width), Some(4));
    }
}
