//! Cold snapshots: the stop-snapshot-start cycle, and the stop mark that lets a later run start
//! what a killed run left stopped.

pub mod cycle;
pub mod mark;
