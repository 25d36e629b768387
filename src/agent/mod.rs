//! The agent runtime: model references and the catalog (`models`), credentials and cooldowns
//! (`auth`), failover (`failover`), provider wire calls (`providers`), and the on-disk session
//! store and transcripts (`sessions`, `transcript`). See ARCHITECTURE.md for how a turn flows.

pub mod auth;
pub mod bootstrap;
pub mod compaction;
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
pub mod turn_session;
pub mod usage_cost;
