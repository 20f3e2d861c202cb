//! `--generate`: the man page and the shell completion scripts, made from the command line's own
//! definition (ripgrep's convention), so that they can never disagree with `--help`.

use crate::cli::{Cli, Generate};
use clap::CommandFactory;
use clap_complete::Shell;

/// The text `--generate KIND` prints.
pub fn render(kind: Generate) -> anyhow::Result<String> {
    let mut cmd = Cli::command().version(env!("CARGO_PKG_VERSION"));
    let mut out: Vec<u8> = Vec::new();
    match kind {
        Generate::Man => man(cmd, &mut out)?,
        Generate::CompleteBash => {
            clap_complete::generate(Shell::Bash, &mut cmd, "ec2snap", &mut out)
        }
        Generate::CompleteZsh => clap_complete::generate(Shell::Zsh, &mut cmd, "ec2snap", &mut out),
        Generate::CompleteFish => {
            clap_complete::generate(Shell::Fish, &mut cmd, "ec2snap", &mut out)
        }
    }
    String::from_utf8(out)
        .map_err(|e| anyhow::anyhow!("--generate made text that is not UTF-8: {e}"))
}

/// clap_mangen's name, synopsis, description and options, then the sections that matter at a
/// terminal: retention rules, cold snapshots, exit status, environment, files, examples.
fn man(cmd: clap::Command, out: &mut Vec<u8>) -> std::io::Result<()> {
    let page = clap_mangen::Man::new(cmd)
        .title("EC2SNAP")
        .section("1")
        .manual("User Commands");
    page.render_title(out)?;
    page.render_name_section(out)?;
    page.render_synopsis_section(out)?;
    out.extend_from_slice(DESCRIPTION.as_bytes());
    page.render_options_section(out)?;
    page.render_subcommands_section(out)?;
    out.extend_from_slice(SECTIONS.as_bytes());
    Ok(())
}

const DESCRIPTION: &str = r#".SH DESCRIPTION
Backs up EC2 instances with EBS snapshots: selects instances by id (\fB\-i\fR) or by tags with
wildcards (\fB\-t\fR), snapshots their volumes (hot, or cold with \fB\-H\fR, or as one
multi\-volume set with \fB\-\-consistent\fR), then prunes old snapshots by age (\fB\-g\fR), count
(\fB\-d\fR) or calendar rules (\fB\-\-keep\-daily\fR and co.).
A drop\-in replacement of the Python ec2snap: same flags, log lines, descriptions, tags and exit
codes.
.PP
\fBA dry run is the default\fR: nothing is created, stopped or deleted without \fB\-u\fR.
The dry run lists exactly what \fB\-u\fR would do, and checks each change's IAM permission with
DryRun=true.
"#;

const SECTIONS: &str = r#".SH LISTING
\fBec2snap list\fR with the selection flags shows each instance's volumes and their snapshots,
newest first, with their sets and copies (\fB\-\-copy\-to\fR), problems first: volumes with no
completed backup or one older than \fB\-\-check\-max\-age\fR, incomplete sets, snapshots in
state error, and orphans (snapshots this tool made of volumes that no longer exist). With
retention flags each snapshot is marked KEEP (with its reasons) or DELETE, as a run with the same
flags would decide: the snapshots that run makes first are counted among the newest and shown as
\fI(next run)\fR rows, unless \fB\-n\fR. \fB\-\-json\fR prints a JSON document. It only reads.
.SH RESTORE
\fBec2snap restore\fR makes a new volume of each snapshot of a backup: the newest completed one of
each instance selected with \fB\-i\fR/\fB\-t\fR (at or before \fB\-\-at\fR \fITIME\fR), or
\fB\-\-snapshot\fR, or \fB\-\-set\fR. The volumes have the source volume's zone (or
\fB\-\-az\fR), type, size, IOPS and throughput, and the tags ec2snap:restored\-from,
ec2snap:source\-volume, ec2snap:source\-device. \fB\-\-attach\-to\fR attaches them at their
devices (refused when one is taken); \fB\-\-ami\fR \fINAME\fR registers an AMI of a set instead;
\fB\-\-from\-region\fR restores from the copies there. Dry run without \fB\-u\fR.
.SH DRILLS
\fBec2snap drill \-u\fR deletes the volumes a killed drill left, then restores each selected
instance's newest completed backup as volumes tagged ec2snap:drill, waits until they are
available, runs \fB\-\-drill\-check\fR \fICMD\fR (with EC2SNAP_DRILL_VOLUMES in its environment), and
always deletes them, also on SIGTERM. A pass tags the instance ec2snap:drill\-ok, which
\fB\-\-drill\-max\-age\fR \fIN UNIT\fR checks.
.SH HOOKS
\fB\-\-pre\-snapshot\fR \fICMD\fR and \fB\-\-post\-snapshot\fR \fICMD\fR run through \fBsh \-c\fR for
each instance, right before its snapshot call(s) and right after they return, with
EC2SNAP_INSTANCE_ID, EC2SNAP_INSTANCE_NAME, EC2SNAP_PRIVATE_IP, EC2SNAP_VOLUMES and
EC2SNAP_DRY_RUN in their environment, each bounded by \fB\-\-hook\-timeout\fR (its process group
killed then). The post hook always runs once the pre hook started, signals included. A failed pre
hook means a crash\-consistent snapshot with a warning, or with \fB\-\-on\-hook\-failure skip\fR
none. Snapshots are tagged ec2snap:consistency (application or crash). A dry run runs hooks only
with \fB\-\-hook\-dry\-run\fR. \fB\-\-freeze ssm\fR freezes the snapshotted filesystems of
Linux instances through SSM Run Command instead, after arming an on\-instance watchdog that thaws
them after \fB\-\-freeze\-timeout\fR seconds (default 10) whatever happens.
.SH MANY ACCOUNTS AND REGIONS
\fB\-r\fR is repeatable, and \fB\-r all\fR means every region enabled for the account.
\fB\-\-assume\-role\fR \fIARN\fR (repeatable) and \fB\-\-accounts\fR \fIFILE\fR (c7n\-org's
accounts.yml; \fB\-\-account\-tag\fR \fIKEY=VALUE\fR selects entries) add accounts, whose
credentials come from STS with the base credentials. Each (account, region) target runs the
whole job, at most \fB\-\-parallel\-targets\fR \fIN\fR at once (default 4); its log lines start
with \fI[account/region]\fR; a target that fails is an error (exit 2) and the others go on. The
report has a section per target, the metrics \fIaccount\fR and \fIregion\fR labels.
.SH LOCKS AND ARCHIVE
\fB\-\-lock governance\fR|\fBcompliance\fR locks snapshots against deletion for as long as the
rules are sure to keep them (the \fB\-g\fR window; a calendar rule's horizon once the period
they are the newest of is over), at most \fB\-\-lock\-max\fR days; the end goes in the tag
ec2snap:locked\-until, which every run's retention respects. \fB\-\-no\-delete\fR applies the
rules without deleting (a role that may not delete). \fB\-\-archive\-after\fR \fIN UNIT\fR moves
kept snapshots older than N, not their volume's newest, that the rules keep 90 days more, to
the archive tier.
.SH RETENTION RULES
Retention runs for each instance right after its snapshots, per volume, over the snapshots this
account owns, narrowed by \fB\-\-snap\-filter\fR.
.TP
\fB\-g\fR \fIN UNIT\fR alone
deletes snapshots older than N (s, m, h, d, w, M = 30 days, y = 365 days).
.TP
\fB\-d\fR \fIN\fR
keeps the N newest (restic's \-\-keep\-last).
.TP
\fB\-\-keep\-hourly\fR, \fB\-\-keep\-daily\fR, \fB\-\-keep\-weekly\fR, \fB\-\-keep\-monthly\fR, \fB\-\-keep\-yearly\fR \fIN\fR
keep the newest snapshot of each of the last N hours, days, ISO weeks, months or years that have
one, as \fBrestic forget\fR does (when fewer periods have one, the oldest snapshot stays too).
Periods are in local time, or UTC with \fB\-\-utc\fR.
.PP
A snapshot stays when any rule keeps it. With keep rules, \fB\-g\fR is a window that is never
pruned; without \fB\-g\fR, every snapshot no rule keeps goes.
\fBThe floor\fR: whatever the mode, with \fB\-d\fR \fIN\fR or a keep rule, every volume of a
processed instance keeps at least its N newest usable snapshots (at least 1 with keep rules), set
members included; a set that lacks a member or has one in state error is incomplete and never
counts among the kept sets.
A snapshot made by the run is never deleted by it and counts for the rules; snapshots in state
error fill no rule; a volume whose new snapshot failed keeps its old ones.
With \fB\-v DEBUG\fR each kept snapshot is logged with its reasons, e.g.
\fIKeeping snap\-.. (vol\-..|/dev/sdb): daily 2026\-11\-25, weekly 2026\-W48\fR.
.SH COLD SNAPSHOTS
With \fB\-H\fR a running instance is stopped, snapshotted and started again.
\fBAn instance this tool stopped is always started again\fR: after a stop that timed out (\fB\-m\fR),
a failed snapshot, or SIGINT/SIGTERM/SIGHUP (the run then exits 128+N).
Before the stop the instance is tagged \fBec2snap:stopped\-by\fR; if the run is killed with
SIGKILL, the next run (any selection) starts it again (\fB\-\-no\-stop\-tag\fR to opt out).
.SH EXIT STATUS
.TP
\fB0\fR
success (a dry run too).
.TP
\fB1\fR
a configuration error, found before any AWS call (a bad value, neither \fB\-i\fR nor \fB\-t\fR,
credentials); or the log file (\fB\-f\fR) or an output file could not be written.
.TP
\fB2\fR
a snapshot, stop, start or deletion failed (the others went on); or the command line could not be
parsed (argparse's code).
.TP
\fB128+N\fR
stopped by signal N (130 for SIGINT, 143 for SIGTERM), after starting again what it stopped.
.PP
\fB\-\-check\-max\-age\fR exits 0 (OK), 2 (CRITICAL) or 3 (UNKNOWN), as a monitoring plugin.
.SH ENVIRONMENT
.TP
\fBAWS_ACCESS_KEY_ID\fR, \fBAWS_SECRET_ACCESS_KEY\fR, \fBAWS_SESSION_TOKEN\fR, \fBAWS_PROFILE\fR, \fBAWS_REGION\fR
the AWS SDK's usual chain (environment, ~/.aws/config and credentials, SSO, instance profile),
used when no legacy credentials file is found.
.TP
\fBAWS_ENDPOINT_URL\fR
as \fB\-\-endpoint\-url\fR.
.TP
\fBTZ\fR
the local time zone of the log and of the \fB\-\-keep\-*\fR periods.
.SH FILES
.TP
\fI~/.aws_cred\fR
the original's credentials file (\fB\-c\fR), an INI file with \fBaws_access_key_id\fR and
\fBaws_secret_access_key\fR per profile (\fB\-p\fR).
.TP
\fI/etc/ec2snap/NAME.conf\fR
the flags of the systemd timer \fBec2snap@NAME.timer\fR (Debian package):
\fBEC2SNAP_ARGS="\-t Name 'front*' \-d 3 \-\-keep\-daily 7 \-u"\fR, quoted as on a shell line.
.TP
\fI/var/lib/ec2snap/\fR
the units' state directory, for \fB\-\-report\fR and \fB\-\-metrics\-file\fR.
.SH EXAMPLES
.TP
\fBec2snap \-t Name 'front*' \-g 5 d\fR
dry run: what would be snapshotted and deleted.
.TP
\fBec2snap \-t Name 'front*' \-g 5 d \-u\fR
snapshot the instances named front*, delete their snapshots older than 5 days.
.TP
\fBec2snap \-i i\-ad0fcc4b \-i i\-56489db2 \-u \-H\fR
cold snapshots of two instances.
.TP
\fBec2snap \-t Name 'instance\-name*' \-n \-d 4 \-u\fR
no snapshot; keep the 4 newest of each volume.
.TP
\fBec2snap \-t Name 'db*' \-d 3 \-\-keep\-daily 7 \-\-keep\-weekly 4 \-\-keep\-monthly 12 \-u\fR
7 daily, 4 weekly and 12 monthly snapshots, and never fewer than the last 3.
.TP
\fBec2snap \-t Backup yes \-g 14 d \-u \-\-accounts accounts.yml \-r all\fR
every account of the file, every enabled region.
.TP
\fBec2snap \-t Name 'db*' \-\-check\-max\-age 26 h\fR
monitoring: is there a completed snapshot younger than 26 hours of every volume?
.SH SEE ALSO
\fBrestic\-forget\fR(1), \fBsystemd.timer\fR(5), \fBcrontab\fR(5).
The README: /usr/share/doc/ec2snap/README.md
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_renders_and_names_the_flags() {
        // (kind, what it must hold)
        let cases = [
            (
                Generate::Man,
                vec![
                    ".TH EC2SNAP 1",
                    "\\-\\-keep\\-daily",
                    "EXIT STATUS",
                    "128+N",
                ],
            ),
            (
                Generate::CompleteBash,
                vec!["_ec2snap()", "--keep-daily", "--max_age"],
            ),
            (
                Generate::CompleteZsh,
                vec!["#compdef ec2snap", "--keep-weekly"],
            ),
            (
                Generate::CompleteFish,
                vec!["complete -c ec2snap", "keep-monthly"],
            ),
        ];
        for (kind, wants) in cases {
            let text = render(kind).unwrap();
            for want in wants {
                assert!(text.contains(want), "{kind:?} lacks {want}");
            }
        }
    }
}
