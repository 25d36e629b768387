//! (in progress) see src/agent/mod.rs.
