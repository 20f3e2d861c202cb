//! Every exit code the program gives, mapped in this one place, and a run's outcome as the exit
//! code sees it (derived from the record).

use crate::output::record::Counts;
use crate::signals::Signal;

/// What the program ends with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitCode {
    /// 0: all went well (a check: OK).
    Success,
    /// 1: a configuration or set-up error (nothing was changed), or a log file that lost a line.
    Config,
    /// 2: some snapshot, stop, start, copy or deletion failed; a check: CRITICAL. argparse's
    /// usage errors are 2 as well (clap gives its own code).
    Errors,
    /// 3: a check that cannot tell (UNKNOWN).
    Unknown,
    /// 128 + N after signal N.
    Signal(Signal),
    /// The command line parser's own code (2, or 0 for `--help`).
    Usage(u8),
    /// `report merge`: the worst exit code of the reports (2 at least when one is missing).
    Worst(u8),
}

impl ExitCode {
    pub fn code(self) -> u8 {
        match self {
            ExitCode::Success => 0,
            ExitCode::Config => 1,
            ExitCode::Errors => 2,
            ExitCode::Unknown => 3,
            ExitCode::Signal(sig) => 128 + sig.number(),
            ExitCode::Usage(code) | ExitCode::Worst(code) => code,
        }
    }
}

/// What a run ended with: the failures the record counted, and the signal that cut it short.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub counts: Counts,
    pub interrupted: Option<Signal>,
}

impl Outcome {
    pub fn has_errors(&self) -> bool {
        self.counts.snapshot_errors > 0 || self.counts.deletion_errors > 0
    }

    /// 128 + N after signal N; else 2 when anything failed; else 1 when the log file lost a
    /// line; else 0.
    pub fn exit_code(&self, log_file_failed: bool) -> ExitCode {
        match (self.interrupted, self.has_errors(), log_file_failed) {
            (Some(sig), _, _) => ExitCode::Signal(sig),
            (None, true, _) => ExitCode::Errors,
            (None, false, true) => ExitCode::Config,
            (None, false, false) => ExitCode::Success,
        }
    }
}

/// Why the program stopped before or instead of a run, each with its exit code.
pub enum Abort {
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

impl Abort {
    pub fn exit_code(&self) -> ExitCode {
        match self {
            Abort::Usage(e) => ExitCode::Usage(u8::try_from(e.exit_code()).unwrap_or(2)),
            Abort::Output | Abort::Log(_) | Abort::Config(_) | Abort::Setup(_) => ExitCode::Config,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes() {
        let o = |s: usize, d: usize, sig: Option<Signal>| Outcome {
            counts: Counts {
                snapshot_errors: s,
                deletion_errors: d,
            },
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
            assert_eq!(outcome.exit_code(lost).code(), want, "{outcome:?} {lost}");
        }
        assert_eq!(ExitCode::Unknown.code(), 3);
        assert_eq!(ExitCode::Usage(0).code(), 0);
    }
}
