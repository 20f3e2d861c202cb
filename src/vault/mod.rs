//! The vault account: `policy` (pure: what to copy, the copies' tags, which shares to close, what
//! the vault's retention keeps), `apply` (a run's vault step, with the vault role: share, copy,
//! lock, close the shares; never a deletion in the vault), `prune` (`ec2snap vault-prune`, with
//! the vault account's own credentials).

pub mod apply;
pub mod policy;
pub mod prune;
