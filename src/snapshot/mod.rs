//! Snapshots: the plan (volumes, descriptions, tags, sets) and making them; `Done`, what one
//! instance's snapshot step left for its retention.

pub mod make;
pub mod plan;

use crate::model::Snapshot;
use std::collections::{HashMap, HashSet};

/// What one instance's snapshot step left for its retention step.
#[derive(Debug, Default)]
pub struct Done {
    /// Snapshots made by this run (or planned, in a dry run), per volume: never deleted, and
    /// counted among the newest.
    pub created: HashMap<String, Snapshot>,
    /// Volumes whose snapshot failed: their old snapshots are kept.
    pub failed: HashSet<String>,
    /// `--consistent`: the set made (or planned) by this run, never deleted by it.
    pub set: Option<String>,
    /// `--consistent`: the set call failed, so the instance's old sets are kept.
    pub set_failed: bool,
}
