//! What a run counted, and every exit code the program gives, mapped in this one place.

use crate::signals::Signal;

/// 1: configuration or set-up error, or a log file that could not be written.
pub const EXIT_CONFIG: u8 = 1;
/// 2: some snapshot, stop, start or deletion failed (argparse's usage errors are 2 as well).
pub const EXIT_ERRORS: u8 = 2;

/// What a run counted.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// Snapshot, stop and start failures, and instances asked for by id that do not exist.
    pub snapshot_errors: usize,
    pub deletion_errors: usize,
    pub interrupted: Option<Signal>,
}

impl Outcome {
    pub fn has_errors(&self) -> bool {
        self.snapshot_errors > 0 || self.deletion_errors > 0
    }

    /// Adds the counts of one instance's work.
    pub fn add(&mut self, other: &Outcome) {
        self.snapshot_errors += other.snapshot_errors;
        self.deletion_errors += other.deletion_errors;
    }

    /// 128 + N after signal N; else 2 when anything failed; else 1 when the log file lost a
    /// line; else 0.
    pub fn exit_code(&self, log_file_failed: bool) -> u8 {
        match (self.interrupted, self.has_errors(), log_file_failed) {
            (Some(sig), _, _) => 128 + sig.number(),
            (None, true, _) => EXIT_ERRORS,
            (None, false, true) => EXIT_CONFIG,
            (None, false, false) => 0,
        }
    }
}

/// Why the program stopped before or instead of a run, each with its exit code.
pub enum Failure {
    /// A usage error from the command line parser (its own code: 2, or 0 for `--help`).
    Usage(clap::Error),
    /// Nothing could be written to standard output (`-V`, the help).
    Output,
    /// The log could not be set up (`-f` cannot be opened).
    Log(anyhow::Error),
    /// A flag's value or a credentials file is wrong: nothing was sent to AWS.
    Config(anyhow::Error),
    /// The run could not start or go on (no region, instances cannot be listed).
    Setup(anyhow::Error),
}

impl Failure {
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Usage(e) => u8::try_from(e.exit_code()).unwrap_or(EXIT_ERRORS),
            Failure::Output | Failure::Log(_) | Failure::Config(_) | Failure::Setup(_) => {
                EXIT_CONFIG
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        let o = |s: usize, d: usize, sig: Option<Signal>| Outcome {
            snapshot_errors: s,
            deletion_errors: d,
            interrupted: sig,
        };
        // (outcome, log file failed, expected)
        let cases = [
            (o(0, 0, None), false, 0),
            (o(0, 0, None), true, 1),
            (o(1, 0, None), false, 2),
            (o(0, 3, None), true, 2),
            (o(2, 2, Some(Signal::Term)), true, 143),
            (o(0, 0, Some(Signal::Int)), false, 130),
            (o(0, 0, Some(Signal::Hup)), false, 129),
        ];
        for (outcome, lost, want) in cases {
            assert_eq!(outcome.exit_code(lost), want, "{outcome:?} {lost}");
        }
    }

    #[test]
    fn counts_add_up() {
        let mut total = Outcome::default();
        total.add(&Outcome {
            snapshot_errors: 1,
            deletion_errors: 2,
            interrupted: None,
        });
        total.add(&Outcome {
            snapshot_errors: 3,
            deletion_errors: 0,
            interrupted: None,
        });
        assert_eq!((total.snapshot_errors, total.deletion_errors), (4, 2));
    }
}
