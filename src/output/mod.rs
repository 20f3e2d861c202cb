//! Output: the log and its messages, the record of what a run did, the report and the metrics made
//! from it, the exit codes, and the generated man page and completions.

pub mod exit;
pub mod generate;
pub mod log;
pub mod merge;
pub mod messages;
pub mod record;
pub mod report;
pub mod stdout;
