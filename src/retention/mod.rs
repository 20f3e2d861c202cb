//! Retention: the keep policy (restic's rules), the decisions and their floor for a volume's
//! snapshots and an instance's sets, the locks they make sure of, and applying them.

pub mod apply;
pub mod archive;
pub mod decide;
pub mod hold;
pub mod lock;
pub mod orphans;
pub mod policy;
