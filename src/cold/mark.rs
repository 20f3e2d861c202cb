//! Instances that a killed cold run left stopped: the mark put on an instance before its stop, and
//! what a later run decides for each marked instance it finds.

use crate::model::InstanceState;
use chrono::{DateTime, SecondsFormat, Utc};

/// Who stopped an instance, and by when that run will have started it again at the latest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    pub host: String,
    /// The first 8 characters of the host's boot id: a reboot ends every run of the host.
    pub boot: String,
    pub pid: u32,
    pub stopped: DateTime<Utc>,
    pub until: DateTime<Utc>,
}

impl Mark {
    /// `host=admin1 boot=3f2a9c1e pid=4242 stopped=2026-11-26T02:30:00Z until=2026-11-26T03:35:00Z`
    pub fn value(&self) -> String {
        let time = |t: &DateTime<Utc>| t.to_rfc3339_opts(SecondsFormat::Secs, true);
        format!(
            "host={} boot={} pid={} stopped={} until={}",
            self.host,
            self.boot,
            self.pid,
            time(&self.stopped),
            time(&self.until)
        )
    }

    /// The mark read back from a tag value; `None` when it is not one of ours.
    pub fn parse(value: &str) -> Option<Mark> {
        let field = |name: &str| {
            value
                .split_whitespace()
                .find_map(|w| w.strip_prefix(name)?.strip_prefix('='))
        };
        let time = |name: &str| {
            DateTime::parse_from_rfc3339(field(name)?)
                .ok()
                .map(|t| t.with_timezone(&Utc))
        };
        Some(Mark {
            host: field("host")?.to_string(),
            boot: field("boot")?.to_string(),
            pid: field("pid")?.parse().ok()?,
            stopped: time("stopped")?,
            until: time("until")?,
        })
    }
}

/// This machine, as a mark names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Here {
    pub host: String,
    pub boot: String,
}

impl Here {
    /// Read from /proc (Linux); "unknown" where it cannot be read, which only makes a mark from
    /// this host wait for its deadline.
    pub fn this_machine() -> Here {
        let read = |p: &str| {
            std::fs::read_to_string(p)
                .ok()
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty() && !s.contains(char::is_whitespace))
        };
        Here {
            host: read("/proc/sys/kernel/hostname")
                .map(|h| h.chars().take(63).collect())
                .unwrap_or_else(|| "unknown".into()),
            boot: read("/proc/sys/kernel/random/boot_id")
                .map(|b| b.chars().take(8).collect())
                .unwrap_or_else(|| "unknown".into()),
        }
    }

    pub fn knows_itself(&self) -> bool {
        self.host != "unknown" && self.boot != "unknown"
    }
}

/// Whether process `pid` of this machine is alive. Without /proc it answers yes, so that a mark is
/// then only ever given up at its deadline.
pub fn process_alive(pid: u32) -> bool {
    let proc = std::path::Path::new("/proc");
    !proc.join("self").exists() || proc.join(pid.to_string()).exists()
}

/// What a run does about one marked instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Left stopped by a run that is gone: start it, then remove the mark.
    Start,
    /// Running again, but the mark stayed (its removal failed): remove it, so that a later stop by
    /// the admin is never undone.
    DropMark,
    /// Nothing to do now, and why.
    Leave(&'static str),
}

/// Is the run that wrote `mark` over? Past its deadline, or a process of this very machine that
/// no longer exists (or a boot that is over). An unreadable mark counts as over.
pub fn owner_gone(
    mark: Option<&Mark>,
    now: DateTime<Utc>,
    here: &Here,
    alive: impl Fn(u32) -> bool,
) -> bool {
    let Some(m) = mark else { return true };
    if now > m.until {
        return true;
    }
    if !here.knows_itself() || m.host != here.host {
        return false;
    }
    m.boot != here.boot || !alive(m.pid)
}

/// The decision for one instance carrying the mark, in state `state`.
pub fn verdict(
    mark: Option<&Mark>,
    state: &InstanceState,
    now: DateTime<Utc>,
    here: &Here,
    alive: impl Fn(u32) -> bool,
) -> Verdict {
    if !owner_gone(mark, now, here, alive) {
        return Verdict::Leave("the ec2snap run that stopped it is still going");
    }
    match state {
        InstanceState::Stopped => Verdict::Start,
        InstanceState::Running | InstanceState::Pending => Verdict::DropMark,
        InstanceState::Stopping => {
            Verdict::Leave("it is still stopping; a later run will start it")
        }
        _ => Verdict::Leave("it is gone"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 26, h, m, 0).unwrap()
    }

    fn mark(host: &str, boot: &str, pid: u32) -> Mark {
        Mark {
            host: host.into(),
            boot: boot.into(),
            pid,
            stopped: t(2, 30),
            until: t(3, 35),
        }
    }

    #[test]
    fn value_round_trips_and_fits_a_tag() {
        let m = mark(&"h".repeat(63), "3f2a9c1e", u32::MAX);
        let v = m.value();
        assert!(v.chars().count() <= 256, "{v}");
        assert_eq!(Mark::parse(&v), Some(m));
        assert_eq!(
            mark("admin1", "3f2a9c1e", 4242).value(),
            "host=admin1 boot=3f2a9c1e pid=4242 stopped=2026-11-26T02:30:00Z until=2026-11-26T03:35:00Z"
        );
        for bad in [
            "",
            "by hand",
            "host=a boot=b pid=x stopped=2026-11-26T02:30:00Z until=2026-11-26T03:35:00Z",
            "host=a boot=b pid=1 stopped=yesterday until=2026-11-26T03:35:00Z",
            "host=a pid=1 stopped=2026-11-26T02:30:00Z until=2026-11-26T03:35:00Z",
        ] {
            assert_eq!(Mark::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn verdicts() {
        let here = Here {
            host: "admin1".into(),
            boot: "3f2a9c1e".into(),
        };
        let lost = Here {
            host: "unknown".into(),
            boot: "unknown".into(),
        };
        let ours_alive = mark("admin1", "3f2a9c1e", 10);
        let ours_dead = mark("admin1", "3f2a9c1e", 11);
        let ours_rebooted = mark("admin1", "00000000", 10);
        let other_host = mark("admin2", "3f2a9c1e", 11);
        let alive = |pid: u32| pid == 10;
        let still = Verdict::Leave("the ec2snap run that stopped it is still going");
        // (name, mark, state, now, this machine, expected)
        type Case<'a> = (
            &'a str,
            Option<&'a Mark>,
            &'a str,
            DateTime<Utc>,
            &'a Here,
            Verdict,
        );
        let cases: Vec<Case> = vec![
            (
                "live run here",
                Some(&ours_alive),
                "stopped",
                t(2, 40),
                &here,
                still.clone(),
            ),
            (
                "dead run here",
                Some(&ours_dead),
                "stopped",
                t(2, 40),
                &here,
                Verdict::Start,
            ),
            (
                "rebooted",
                Some(&ours_rebooted),
                "stopped",
                t(2, 40),
                &here,
                Verdict::Start,
            ),
            (
                "other host, before deadline",
                Some(&other_host),
                "stopped",
                t(2, 40),
                &here,
                still.clone(),
            ),
            (
                "other host, after deadline",
                Some(&other_host),
                "stopped",
                t(3, 36),
                &here,
                Verdict::Start,
            ),
            (
                "deadline itself still waits",
                Some(&other_host),
                "stopped",
                t(3, 35),
                &here,
                still.clone(),
            ),
            (
                "live run past its deadline",
                Some(&ours_alive),
                "stopped",
                t(4, 0),
                &here,
                Verdict::Start,
            ),
            (
                "unknown machine waits for the deadline",
                Some(&ours_dead),
                "stopped",
                t(2, 40),
                &lost,
                still.clone(),
            ),
            (
                "unreadable mark",
                None,
                "stopped",
                t(2, 40),
                &here,
                Verdict::Start,
            ),
            (
                "running with a stale mark",
                Some(&ours_dead),
                "running",
                t(2, 40),
                &here,
                Verdict::DropMark,
            ),
            (
                "pending with a stale mark",
                None,
                "pending",
                t(2, 40),
                &here,
                Verdict::DropMark,
            ),
            (
                "still stopping",
                Some(&ours_dead),
                "stopping",
                t(2, 40),
                &here,
                Verdict::Leave("it is still stopping; a later run will start it"),
            ),
            (
                "terminated",
                Some(&ours_dead),
                "terminated",
                t(2, 40),
                &here,
                Verdict::Leave("it is gone"),
            ),
            (
                "live run, running instance",
                Some(&ours_alive),
                "running",
                t(2, 40),
                &here,
                still.clone(),
            ),
        ];
        for (name, m, state, now, machine, want) in cases {
            let state = InstanceState::from_name(state);
            assert_eq!(verdict(m, &state, now, machine, alive), want, "{name}");
        }
    }
}
