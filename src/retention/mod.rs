//! Retention: the keep policy (restic's rules), the decisions and their floor for a volume's
//! snapshots and an instance's sets, and applying them.

pub mod apply;
pub mod decide;
pub mod orphans;
pub mod policy;
