//! What the steps that act share: their context (`ctx`: the config, the client, the signal, the
//! record, the permits), the one gate every change to AWS goes through (`gate`), and the
//! watch of new snapshots until they complete (`wait`, `--wait`).

pub mod ctx;
pub mod gate;
pub mod wait;
