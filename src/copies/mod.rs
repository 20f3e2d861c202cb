//! Copies in other regions: what to copy and which copies go, and applying it.

pub mod apply;
pub mod policy;
