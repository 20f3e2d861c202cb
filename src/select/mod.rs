//! Which instances a run works on: the pure choice (union, order, ids not found) and the Describe
//! calls that read them and their volumes' snapshots and tags.

pub mod fetch;
pub mod pick;
