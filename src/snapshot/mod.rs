//! Snapshots: the plan (volumes, descriptions, tags, sets), making them, and waiting for them.

pub mod make;
pub mod plan;
pub mod wait;
