//! The agent runtime: model references and the catalog (`models`), credentials and cooldowns
//! (`auth`), failover (`failover`), provider wire calls (`providers`), and the on-disk session
//! store and transcripts (`sessions`, `transcript`). See ARCHITECTURE.md for how a turn flows.

pub mod auth;
pub mod bootstrap;
pub mod compaction;
pub mod dir_watch;
pub mod envelope;
pub mod failover;
pub mod lane_pools;
pub mod lanes;
pub mod models;
pub mod pool;
pub mod prompt;
pub mod prompt_cache;
pub mod providers;
pub mod reply;
pub mod sessions;
pub mod tools;
pub mod transcript;
pub mod turn;
pub mod turn_loop;
mod turn_request;
pub mod turn_session;
pub mod usage_cost;
pub mod write_behind;

/// Lets go of the between-turns copies of `sessions.json` and transcripts that no turn used
/// lately (the gateway's 30 s tick calls this); true if any memory was released.
pub fn expire_idle_caches() -> bool {
    let stores = sessions::expire_idle_copies();
    let transcripts = transcript::expire_idle_parked();
    stores || transcripts
}
