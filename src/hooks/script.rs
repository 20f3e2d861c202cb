//! `--freeze ssm`'s shell scripts, run as root on the instance through SSM: the freeze (a watchdog
//! first, then `fsfreeze -f` of each mounted, writable, non-root filesystem on the snapshotted
//! volumes) and the thaw; and what ec2snap reads back from their output.
//!
//! The design, so that nothing stays frozen past `--freeze-timeout` whatever the order of events:
//! - each freeze owns a state directory named by its run (`<instance>.<run id>`): a thaw thaws only
//!   what its own freeze froze, and an overlapping freeze that gets EBUSY thaws nothing of another;
//! - the watchdog is the one thawer. Armed before the first freeze, in a session of its own, it
//!   waits for the freeze script to end: `--freeze-timeout` after its last freeze when it
//!   succeeded, at once when it failed, was killed or a thaw was asked for; in any case once the
//!   script overran `--hook-timeout` + `--freeze-timeout`. A freeze killed during its sync ends
//!   frozen (the kernel's ioctl goes on): the watchdog tries again until it can thaw it;
//! - the thaw only asks the watchdog and waits for its answer (it thaws by itself only when the
//!   watchdog is gone); it never kills a process;
//! - mount points are data: read from files, never put into a command line or expanded by a
//!   shell; `\040` and the like are unescaped; a filesystem mounted twice (a bind mount) is frozen
//!   once.

use crate::model::Disk;

/// `'text'` for sh, whatever `text` holds.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Where one freeze keeps its state (a directory): the instance and the run that froze it.
fn state_dir(instance_id: &str, run_id: &str) -> String {
    format!(
        "\"${{EC2SNAP_STATE_DIR:-/run}}\"/{}",
        quoted(&format!("ec2snap-freeze-{instance_id}.{run_id}"))
    )
}

/// `vol0abc=/dev/sdb,/dev/xvdb`: each volume's NVMe serial (its id without the dash) and the
/// names its device may have on the instance, EC2's (`/dev/sdb`) and Xen's (`/dev/xvdb`).
fn volumes_value(disks: &[&Disk]) -> String {
    let mut out = Vec::new();
    for d in disks {
        let mut names = vec![d.device.clone()];
        if let Some(rest) = d.device.strip_prefix("/dev/sd") {
            names.push(format!("/dev/xvd{rest}"));
        }
        out.push(format!(
            "{}={}",
            d.volume_id.replace('-', ""),
            names.join(",")
        ));
    }
    out.join(" ")
}

/// Shell functions the freeze, its watchdog and the thaw share (a constant: no value in it).
const COMMON: &str = r#"
set -u
set -f
# Centiseconds since boot: the instance's own clock, which no one sets.
cs() { read -r up _ < /proc/uptime; echo "${up%.*}${up#*.}"; }
# A mount point as /proc/mounts writes it (\040 for a space) -> the path.
path_of() { printf '%b' "$(printf '%s' "$1" | sed 's/\\\([0-7][0-7][0-7]\)/\\0\1/g')"; }
# Thaws each filesystem whose freeze this run started and that nobody thawed yet. 1 when one
# may still be freezing (its fsfreeze was killed during the sync: the kernel ends it frozen).
thaw_ours() {
  left=0
  while read -r m; do
    # Thawed already, or its freeze failed (EBUSY: another's freeze, not ours to thaw).
    grep -qxF -- "$m" "$S/thawed" "$S/failed" 2>/dev/null && continue
    p=$(path_of "$m")
    if fsfreeze -u "$p" 2>/dev/null; then
      echo "$m" >> "$S/thawed"
      echo "thawed $m"
    elif grep -qxF -- "$m" "$S/frozen" 2>/dev/null; then
      echo "$m" >> "$S/thawed"
    else
      left=1
    fi
  done < "$S/trying"
  return $left
}
"#;

/// The watchdog: `sh STATE/watchdog.sh STATE THAW_AFTER CAP SCRIPT_PID`.
const WATCHDOG: &str = r#"
S=$1; X=$2; CAP=$3; P=$4
. "$S/common.sh"
echo $$ > "$S/watchdog"
start=$(cs)
why="the freeze ended early"
while :; do
  now=$(cs)
  if [ -f "$S/done" ]; then
    read -r d < "$S/done"
    if [ -f "$S/thaw" ]; then why="asked to"; break; fi
    if [ "$now" -ge $((d + X * 100)) ]; then why="after $X s"; break; fi
  elif [ -f "$S/abort" ]; then
    break
  elif ! kill -0 "$P" 2>/dev/null; then
    [ -f "$S/done" ] && continue
    break
  fi
  if [ "$now" -ge $((start + (CAP + X) * 100)) ]; then why="the freeze overran its bound"; break; fi
  sleep 0.2
done
: > "$S/stop"
tries=0
until thaw_ours; do
  tries=$((tries + 1))
  [ "$tries" -ge $(((CAP + X + 60) * 2)) ] && break
  sleep 0.5
done
echo "watchdog: thawed ($why)"
t=$(cs)
echo "$t" > "$S/over.tmp" && mv "$S/over.tmp" "$S/over"
"#;

/// The freeze. `EC2SNAP_MOUNTS`, `EC2SNAP_SYS` and `EC2SNAP_STATE_DIR` (unset on an instance) let
/// a test point it at files of its own. `cap_secs`: `--hook-timeout`, the script's own bound.
/// With `dry` (`--hook-dry-run`) it only says what it would freeze.
///
/// Its output, for [`froze`]: a line `frozen VOL MOUNT` for each filesystem frozen (VOL the
/// volume's serial, MOUNT as /proc/mounts writes it) and, once all are, `froze in MS ms`.
pub fn freeze(
    instance_id: &str,
    run_id: &str,
    disks: &[&Disk],
    thaw_after_secs: u64,
    cap_secs: u64,
    dry: bool,
) -> String {
    format!(
        r#"#!/bin/sh
# ec2snap --freeze ssm: freeze the filesystems of the volumes being snapshotted, behind a watchdog
# that thaws them {thaw} s after the last freeze (at once if this script fails or is stopped).
VOLUMES={volumes}
THAW_AFTER={thaw}
CAP={cap}
DRY={dry}
MOUNTS=${{EC2SNAP_MOUNTS:-/proc/mounts}}
SYS=${{EC2SNAP_SYS:-/sys}}
DIR=${{EC2SNAP_STATE_DIR:-/run}}
S={state}
# The volume (its serial) whose block device $1 is, or nothing.
volume_of() {{
  real=$(readlink -f "$1")
  base=${{real##*/}}
  if [ -e "$SYS/class/block/$base/partition" ]; then
    parent=$(readlink -f "$SYS/class/block/$base/..")
    base=${{parent##*/}}
  fi
  serial=$(tr -d ' ' < "$SYS/class/block/$base/device/serial" 2>/dev/null)
  for pair in $VOLUMES; do
    v=${{pair%%=*}}
    if [ "$serial" = "$v" ]; then echo "$v"; return; fi
    for d in $(echo "${{pair#*=}}" | tr ',' ' '); do
      [ -e "$d" ] || continue
      dev=$(readlink -f "$d")
      if [ "$dev" = "$real" ] || [ "$dev" = "/dev/$base" ]; then echo "$v"; return; fi
    done
  done
}}
LIST=
SEEN=
while read -r src mnt fstype opts rest; do
  [ "$mnt" = / ] && continue
  case "$src" in /dev/*) ;; *) continue ;; esac
  case ",$opts," in *,ro,*) continue ;; esac
  # A filesystem mounted twice (a bind mount) is frozen once.
  case " $SEEN " in *" $src "*) continue ;; esac
  v=$(volume_of "$src")
  [ -n "$v" ] || continue
  SEEN="$SEEN $src"
  LIST="$LIST $v:$mnt"
done < "$MOUNTS"
if [ -z "$LIST" ]; then
  echo "nothing to freeze"
  exit 0
fi
if [ "$DRY" = 1 ]; then
  for i in $LIST; do echo "would freeze ${{i#*:}}"; done
  exit 0
fi
umask 077
find "$DIR" -maxdepth 1 -name 'ec2snap-freeze-*' -mmin +1440 -exec rm -rf {{}} + 2>/dev/null
mkdir -p "$S" || {{ echo "cannot make the state directory $S" >&2; exit 1; }}
: > "$S/trying"; : > "$S/frozen"; : > "$S/failed"
cat > "$S/common.sh" <<'EC2SNAP_END'
{common}
EC2SNAP_END
cat > "$S/watchdog.sh" <<'EC2SNAP_END'
{watchdog}
EC2SNAP_END
. "$S/common.sh"
started=$(cs)
# The watchdog first, in a session of its own: SSM's cancel and timeout do not reach it.
if command -v setsid >/dev/null 2>&1; then DETACH=setsid; else DETACH=nohup; fi
$DETACH sh "$S/watchdog.sh" "$S" "$THAW_AFTER" "$CAP" "$$" </dev/null >>"$S/log" 2>&1 &
echo "watchdog armed: thaws $THAW_AFTER s after the last freeze"
# A failure: the watchdog thaws at once what this run froze (and nothing else); wait for it.
fail() {{
  : > "$S/abort"
  i=0
  while [ ! -f "$S/over" ] && [ $i -lt 50 ]; do sleep 0.2; i=$((i + 1)); done
  cat "$S/log" 2>/dev/null
  exit 1
}}
for i in $LIST; do
  v=${{i%%:*}}
  m=${{i#*:}}
  if [ -f "$S/thaw" ] || [ -f "$S/stop" ]; then
    echo "asked to thaw before the freeze ended" >&2
    fail
  fi
  echo "$m" >> "$S/trying"
  if fsfreeze -f "$(path_of "$m")"; then
    echo "$m" >> "$S/frozen"
    echo "frozen $v $m"
  else
    echo "$m" >> "$S/failed"
    echo "cannot freeze $m: what this run froze is thawed" >&2
    fail
  fi
done
t=$(cs)
echo "$t" > "$S/done.tmp" && mv "$S/done.tmp" "$S/done"
echo "froze in $(((t - started) * 10)) ms"
"#,
        volumes = quoted(&volumes_value(disks)),
        thaw = thaw_after_secs,
        cap = cap_secs,
        dry = u8::from(dry),
        state = state_dir(instance_id, run_id),
        common = COMMON,
        watchdog = WATCHDOG,
    )
}

/// The thaw of the freeze of run `run_id`: asks its watchdog to thaw now and waits for it, at
/// most `wait_secs` (when the freeze still runs, the watchdog thaws once it ended). Prints
/// `held MS ms`: how long the filesystems were frozen, on the instance's clock.
pub fn thaw(instance_id: &str, run_id: &str, wait_secs: u64) -> String {
    format!(
        r#"#!/bin/sh
# ec2snap --freeze ssm: ask the watchdog of this run's freeze to thaw what it froze, and wait.
S={state}
WAIT={wait}
if [ ! -f "$S/common.sh" ]; then
  echo "nothing frozen by this run"
  exit 0
fi
. "$S/common.sh"
started=$(cs)
: > "$S/thaw"
while [ ! -f "$S/over" ]; do
  if [ $(($(cs) - started)) -ge $((WAIT * 100)) ]; then
    echo "the freeze still runs: its watchdog thaws once it ends"
    exit 0
  fi
  read -r w < "$S/watchdog" 2>/dev/null || w=
  if [ -n "$w" ] && ! kill -0 "$w" 2>/dev/null && [ ! -f "$S/over" ]; then
    # The watchdog is gone (the instance ran out of memory, someone killed it): thaw here.
    echo "the watchdog is gone: thawing here"
    thaw_ours
    cs > "$S/over"
    break
  fi
  sleep 0.2
done
cat "$S/log" 2>/dev/null
read -r over < "$S/over"
first=
[ -f "$S/done" ] && read -r first < "$S/done"
[ -n "$first" ] && echo "held $(((over - first) * 10)) ms"
rm -rf "$S"
"#,
        state = state_dir(instance_id, run_id),
        wait = wait_secs,
    )
}

/// What a freeze that succeeded said: the volumes (ids) whose filesystems it froze, and how long
/// it took on the instance.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Froze {
    pub volumes: Vec<String>,
    pub took_ms: Option<u64>,
}

/// Reads a freeze's output: `frozen VOL MOUNT` lines (VOL a serial of `disks`) and `froze in MS
/// ms`. A line it does not know is ignored; a serial of no volume of `disks` too.
pub fn froze(output: &str, disks: &[&Disk]) -> Froze {
    let mut out = Froze::default();
    for line in output.lines() {
        let mut words = line.split(' ');
        match (words.next(), words.next(), words.next()) {
            (Some("frozen"), Some(serial), Some(_)) => {
                let volume = disks
                    .iter()
                    .find(|d| d.volume_id.replace('-', "") == serial)
                    .map(|d| d.volume_id.clone());
                if let Some(v) = volume.filter(|v| !out.volumes.contains(v)) {
                    out.volumes.push(v);
                }
            }
            (Some("froze"), Some("in"), Some(ms)) if line.ends_with(" ms") => {
                out.took_ms = ms.parse().ok();
            }
            _ => {}
        }
    }
    out
}

/// How long the thaw said the filesystems were frozen, on the instance's clock (`held MS ms`).
pub fn held_ms(output: &str) -> Option<u64> {
    output.lines().find_map(|l| {
        l.strip_prefix("held ")
            .and_then(|rest| rest.strip_suffix(" ms"))
            .and_then(|ms| ms.parse().ok())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn disks() -> Vec<Disk> {
        vec![
            Disk {
                volume_id: "vol-0abc".into(),
                device: "/dev/sdb".into(),
            },
            Disk {
                volume_id: "vol-0def".into(),
                device: "/dev/xvdc".into(),
            },
        ]
    }

    #[test]
    fn the_scripts_name_the_volumes_and_quote_what_they_are_given() {
        let disks = disks();
        let refs: Vec<&Disk> = disks.iter().collect();
        let s = freeze("i-1", "r'1", &refs, 10, 30, false);
        assert!(
            s.contains("VOLUMES='vol0abc=/dev/sdb,/dev/xvdb vol0def=/dev/xvdc'"),
            "{s}"
        );
        assert!(
            s.contains("THAW_AFTER=10\n") && s.contains("CAP=30\n"),
            "{s}"
        );
        assert!(
            s.contains(r#"S="${EC2SNAP_STATE_DIR:-/run}"/'ec2snap-freeze-i-1.r'\''1'"#),
            "{s}"
        );
        // The watchdog is armed before anything is frozen.
        let armed = s
            .find(r#"$DETACH sh "$S/watchdog.sh""#)
            .unwrap_or(usize::MAX);
        let frozen = s.find("if fsfreeze -f").unwrap_or(0);
        assert!(armed < frozen);
        assert_eq!(quoted("it's"), r#"'it'\''s'"#);
        assert!(thaw("i-1", "r1", 5).contains("'ec2snap-freeze-i-1.r1'"));
        assert!(freeze("i-1", "r1", &refs, 10, 30, true).contains("DRY=1\n"));
        // The shared code goes through a quoted here-document: nothing in it is expanded.
        assert!(!COMMON.contains("EC2SNAP_END") && !WATCHDOG.contains("EC2SNAP_END"));
        assert!(s.contains("<<'EC2SNAP_END'\n"), "{s}");
    }

    #[test]
    fn what_a_freeze_and_a_thaw_say_is_read_back() {
        let disks = disks();
        let refs: Vec<&Disk> = disks.iter().collect();
        let out = "watchdog armed: thaws 10 s after the last freeze\n\
                   frozen vol0def /srv/my\\040data\n\
                   frozen vol0def /logs\n\
                   frozen vol0fff /other\n\
                   frozen vol0abc\n\
                   froze in 2340 ms";
        assert_eq!(
            froze(out, &refs),
            Froze {
                volumes: vec!["vol-0def".into()],
                took_ms: Some(2340)
            }
        );
        assert_eq!(froze("nothing to freeze", &refs), Froze::default());
        assert_eq!(held_ms("thawed /data\nheld 4520 ms"), Some(4520));
        assert_eq!(held_ms("nothing frozen by this run"), None);
    }
}
