//! The hooks' settings, their environment, and what a pre hook's outcome means for the snapshot
//! (application-consistent, crash-consistent with a warning, or skipped): plain data in and out.

use crate::model::{Disk, Instance};
use std::time::Duration;

/// `--on-hook-failure`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// Skip the instance: no snapshot, counted as an error, its old backups kept.
    Skip,
    /// Snapshot anyway, crash-consistent, with a WARNING (as DLM does).
    CrashConsistent,
}

/// `--pre-snapshot`, `--post-snapshot` and their options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hooks {
    pub pre: Option<String>,
    pub post: Option<String>,
    /// `--hook-timeout`: each hook's bound; its process group is killed at the limit.
    pub timeout: Duration,
    /// `--hook-dry-run`: a dry run runs them too, with `EC2SNAP_DRY_RUN=1`.
    pub in_dry_run: bool,
    pub on_failure: OnFailure,
    /// `--freeze`: the built-in hooks, instead of `pre` and `post`.
    pub freeze: Option<Freeze>,
}

/// `--freeze`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Freeze {
    /// Through SSM Run Command; the on-instance watchdog thaws after `thaw_after`.
    Ssm { thaw_after: Duration },
}

impl Hooks {
    /// Whether a run in this mode runs the hooks.
    pub fn run_in(&self, mode: crate::model::Mode) -> bool {
        !mode.is_dry() || self.in_dry_run
    }
}

/// How a hook ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Exit status 0.
    Ok,
    /// A non-zero exit status, or killed by a signal (`None`).
    Failed(Option<i32>),
    /// Still running at `--hook-timeout`: its process group was killed.
    TimedOut,
    /// It could not be started (no `sh`).
    NotStarted(String),
    /// The run got a signal while it ran: it was killed (a local hook) or left to the watchdog.
    Interrupted,
    /// `--freeze ssm`: SSM says the script ended badly (`Failed`, `TimedOut`, `Cancelled`).
    Remote { status: String, code: Option<i32> },
    /// `--freeze ssm`: its end could not be learnt (an SSM error, no end within the timeout).
    Lost(String),
    /// `--freeze ssm`: the instance cannot run it (no SSM agent, a Windows instance): nothing was
    /// sent, so there is nothing to thaw; its snapshots are crash-consistent, whatever
    /// `--on-hook-failure` says, since no later run would do better.
    Unreachable(String),
}

impl Outcome {
    pub fn is_ok(&self) -> bool {
        *self == Outcome::Ok
    }

    /// What happened, for a log line and the record.
    pub fn describe(&self, timeout: Duration) -> String {
        match self {
            Outcome::Ok => "succeeded".into(),
            Outcome::Failed(Some(code)) => format!("exited with status {code}"),
            Outcome::Failed(None) => "was killed by a signal".into(),
            Outcome::TimedOut => format!(
                "was still running after {} s (--hook-timeout): its process group was killed",
                timeout.as_secs()
            ),
            Outcome::NotStarted(why) => format!("could not be started: {why}"),
            Outcome::Interrupted => "was cut short by a signal".into(),
            Outcome::Remote { status, code } => match code {
                Some(code) => format!("ended with SSM status {status} (exit status {code})"),
                None => format!("ended with SSM status {status}"),
            },
            Outcome::Lost(why) => format!("could not be followed: {why}"),
            Outcome::Unreachable(why) => format!("cannot run on this instance: {why}"),
        }
    }
}

/// What to do once the pre hook ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Then {
    /// Snapshot; the snapshots are tagged with this consistency.
    Snapshot(Consistency),
    /// No snapshot of this instance this time.
    Skip,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Consistency {
    Application,
    Crash,
}

impl Consistency {
    pub fn tag_value(self) -> &'static str {
        match self {
            Consistency::Application => "application",
            Consistency::Crash => "crash",
        }
    }
}

/// The pre hook's outcome under `--on-hook-failure`. Without a pre hook nothing was quiesced:
/// crash-consistent, and no warning.
pub fn after_pre(pre: Option<&Outcome>, on_failure: OnFailure) -> Then {
    match pre {
        None | Some(Outcome::Unreachable(_)) => Then::Snapshot(Consistency::Crash),
        Some(Outcome::Ok) => Then::Snapshot(Consistency::Application),
        // A signal stops the run: nothing new is started.
        Some(Outcome::Interrupted) => Then::Skip,
        Some(_) => match on_failure {
            OnFailure::Skip => Then::Skip,
            OnFailure::CrashConsistent => Then::Snapshot(Consistency::Crash),
        },
    }
}

/// `vol-1=/dev/sda1,vol-2=/dev/sdb`.
pub fn volumes_value(disks: &[&Disk]) -> String {
    disks
        .iter()
        .map(|d| format!("{}={}", d.volume_id, d.device))
        .collect::<Vec<_>>()
        .join(",")
}

/// The environment of an instance's hooks. `stage` is `pre` or `post`; `result` (post only) is
/// `ok` or `failed`: whether every snapshot call gave a snapshot; `target`, in a run over many
/// accounts and regions, the instance's account (name) and region.
pub fn environment(
    instance: &Instance,
    disks: &[&Disk],
    dry_run: bool,
    stage: &str,
    result: Option<&str>,
    target: Option<(&str, &str)>,
) -> Vec<(String, String)> {
    let mut env = vec![
        ("EC2SNAP_HOOK".to_string(), stage.to_string()),
        ("EC2SNAP_INSTANCE_ID".to_string(), instance.id.clone()),
        (
            "EC2SNAP_INSTANCE_NAME".to_string(),
            instance.name().to_string(),
        ),
        (
            "EC2SNAP_PRIVATE_IP".to_string(),
            instance.machine.private_ip.clone().unwrap_or_default(),
        ),
        ("EC2SNAP_VOLUMES".to_string(), volumes_value(disks)),
        (
            "EC2SNAP_DRY_RUN".to_string(),
            if dry_run { "1" } else { "0" }.to_string(),
        ),
    ];
    if let Some(result) = result {
        env.push(("EC2SNAP_SNAPSHOT_RESULT".to_string(), result.to_string()));
    }
    if let Some((account, region)) = target {
        env.push(("EC2SNAP_ACCOUNT".to_string(), account.to_string()));
        env.push(("EC2SNAP_REGION".to_string(), region.to_string()));
    }
    env
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{InstanceState, Machine};

    #[test]
    fn a_failed_pre_hook_follows_the_policy() {
        use Consistency::*;
        use OnFailure::*;
        let cases = [
            (None, CrashConsistent, Then::Snapshot(Crash)),
            (None, Skip, Then::Snapshot(Crash)),
            (Some(Outcome::Ok), Skip, Then::Snapshot(Application)),
            (
                Some(Outcome::Failed(Some(1))),
                CrashConsistent,
                Then::Snapshot(Crash),
            ),
            (Some(Outcome::Failed(Some(1))), Skip, Then::Skip),
            (
                Some(Outcome::TimedOut),
                CrashConsistent,
                Then::Snapshot(Crash),
            ),
            (Some(Outcome::TimedOut), Skip, Then::Skip),
            (
                Some(Outcome::NotStarted("x".into())),
                CrashConsistent,
                Then::Snapshot(Crash),
            ),
            (Some(Outcome::Failed(None)), Skip, Then::Skip),
            (Some(Outcome::Interrupted), CrashConsistent, Then::Skip),
            (
                Some(Outcome::Remote {
                    status: "Failed".into(),
                    code: Some(1),
                }),
                CrashConsistent,
                Then::Snapshot(Crash),
            ),
            (
                Some(Outcome::Remote {
                    status: "TimedOut".into(),
                    code: None,
                }),
                Skip,
                Then::Skip,
            ),
            (Some(Outcome::Lost("x".into())), Skip, Then::Skip),
            (
                Some(Outcome::Unreachable("x".into())),
                Skip,
                Then::Snapshot(Crash),
            ),
        ];
        for (pre, policy, want) in cases {
            assert_eq!(after_pre(pre.as_ref(), policy), want, "{pre:?} {policy:?}");
        }
    }

    #[test]
    fn the_hooks_environment() {
        let disks = [
            Disk {
                volume_id: "vol-1".into(),
                device: "/dev/sda1".into(),
            },
            Disk {
                volume_id: "vol-2".into(),
                device: "/dev/sdb".into(),
            },
        ];
        let instance = Instance {
            id: "i-1".into(),
            state: InstanceState::Running,
            tags: [("Name".to_string(), "db 1".to_string())]
                .into_iter()
                .collect(),
            root_device: Some("/dev/sda1".into()),
            disks: disks.to_vec(),
            machine: Machine {
                private_ip: Some("10.0.0.7".into()),
                ..Machine::default()
            },
        };
        let refs: Vec<&Disk> = disks.iter().collect();
        let env = environment(&instance, &refs, false, "post", Some("failed"), None);
        let get = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(get("EC2SNAP_HOOK"), Some("post"));
        assert_eq!(get("EC2SNAP_INSTANCE_ID"), Some("i-1"));
        assert_eq!(get("EC2SNAP_INSTANCE_NAME"), Some("db 1"));
        assert_eq!(get("EC2SNAP_PRIVATE_IP"), Some("10.0.0.7"));
        assert_eq!(
            get("EC2SNAP_VOLUMES"),
            Some("vol-1=/dev/sda1,vol-2=/dev/sdb")
        );
        assert_eq!(get("EC2SNAP_DRY_RUN"), Some("0"));
        assert_eq!(get("EC2SNAP_SNAPSHOT_RESULT"), Some("failed"));
        assert!(!env.iter().any(|(k, _)| k == "EC2SNAP_ACCOUNT"));
        let pre = environment(
            &instance,
            &refs,
            true,
            "pre",
            None,
            Some(("prod", "eu-west-1")),
        );
        assert!(pre.contains(&("EC2SNAP_DRY_RUN".into(), "1".into())));
        assert!(!pre.iter().any(|(k, _)| k == "EC2SNAP_SNAPSHOT_RESULT"));
        assert!(pre.contains(&("EC2SNAP_ACCOUNT".into(), "prod".into())));
        assert!(pre.contains(&("EC2SNAP_REGION".into(), "eu-west-1".into())));
    }
}
