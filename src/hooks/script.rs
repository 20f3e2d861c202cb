//! `--freeze ssm`'s shell scripts, run as root on the instance through SSM: the freeze (a
//! watchdog armed first that thaws after `--freeze-timeout` whatever happens, then `fsfreeze -f`
//! of each mounted, writable, non-root filesystem on the snapshotted volumes) and the thaw.

use crate::model::Disk;

/// `'text'` for sh, whatever `text` holds.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Where the freeze keeps the watchdog's pid and the frozen mount points for the thaw.
fn state_file(instance_id: &str) -> String {
    format!(
        "\"${{EC2SNAP_STATE_DIR:-/run}}\"/{}",
        quoted(&format!("ec2snap-freeze-{instance_id}"))
    )
}

/// The names a volume's device may have on the instance: EC2's (`/dev/sdb`) and Xen's
/// (`/dev/xvdb`); NVMe devices are found by their serial number, the volume id without its dash.
fn device_names(disks: &[&Disk]) -> Vec<String> {
    let mut out = Vec::new();
    for d in disks {
        out.push(d.device.clone());
        if let Some(rest) = d.device.strip_prefix("/dev/sd") {
            out.push(format!("/dev/xvd{rest}"));
        }
    }
    out
}

/// The freeze. `EC2SNAP_MOUNTS`, `EC2SNAP_SYS` and `EC2SNAP_STATE_DIR` (unset on an instance)
/// let a test point it at files of its own.
/// With `dry` (`--hook-dry-run`) it only says what it would freeze.
pub fn freeze(instance_id: &str, disks: &[&Disk], thaw_after_secs: u64, dry: bool) -> String {
    let serials: Vec<String> = disks.iter().map(|d| d.volume_id.replace('-', "")).collect();
    format!(
        r#"#!/bin/sh
# ec2snap --freeze ssm: freeze the filesystems of the volumes being snapshotted, after arming a
# watchdog that thaws them after {thaw} s whatever happens to ec2snap or the network.
set -u
VOLUMES={serials}
DEVICES={devices}
THAW_AFTER={thaw}
DRY={dry}
MOUNTS=${{EC2SNAP_MOUNTS:-/proc/mounts}}
SYS=${{EC2SNAP_SYS:-/sys}}
STATE={state}
ours() {{
  real=$(readlink -f "$1")
  base=${{real##*/}}
  if [ -e "$SYS/class/block/$base/partition" ]; then
    parent=$(readlink -f "$SYS/class/block/$base/..")
    base=${{parent##*/}}
  fi
  serial=$(tr -d ' ' < "$SYS/class/block/$base/device/serial" 2>/dev/null)
  for v in $VOLUMES; do
    [ "$serial" = "$v" ] && return 0
  done
  for d in $DEVICES; do
    [ -e "$d" ] || continue
    dev=$(readlink -f "$d")
    [ "$dev" = "$real" ] && return 0
    [ "$dev" = "/dev/$base" ] && return 0
  done
  return 1
}}
LIST=
while read -r src mnt fstype opts rest; do
  [ "$mnt" = / ] && continue
  case "$src" in /dev/*) ;; *) continue ;; esac
  case ",$opts," in *,ro,*) continue ;; esac
  if ours "$src"; then LIST="$LIST $mnt"; fi
done < "$MOUNTS"
if [ -z "$LIST" ]; then
  echo "nothing to freeze"
  exit 0
fi
if [ "$DRY" = 1 ]; then
  for m in $LIST; do echo "would freeze $m"; done
  exit 0
fi
# The watchdog first, in a session of its own: it thaws after THAW_AFTER seconds.
if command -v setsid >/dev/null 2>&1; then DETACH=setsid; else DETACH=nohup; fi
$DETACH sh -c "sleep $THAW_AFTER; for m in $LIST; do fsfreeze -u \"\$m\" 2>/dev/null && echo \"watchdog thawed \$m\"; done" </dev/null >>"$STATE.log" 2>&1 &
echo "$! $LIST" > "$STATE"
echo "watchdog armed: thaws after $THAW_AFTER s"
for m in $LIST; do
  if ! fsfreeze -f "$m"; then
    for t in $LIST; do fsfreeze -u "$t" 2>/dev/null; done
    echo "cannot freeze $m: all thawed" >&2
    exit 1
  fi
  echo "frozen $m"
done
"#,
        thaw = thaw_after_secs,
        dry = u8::from(dry),
        serials = quoted(&serials.join(" ")),
        devices = quoted(&device_names(disks).join(" ")),
        state = state_file(instance_id),
    )
}

/// The thaw: every mount point the freeze froze, then the watchdog stopped.
pub fn thaw(instance_id: &str) -> String {
    format!(
        r#"#!/bin/sh
# ec2snap --freeze ssm: thaw what the freeze froze, and stop its watchdog.
set -u
STATE={state}
if [ ! -f "$STATE" ]; then
  echo "nothing frozen"
  exit 0
fi
read -r pid list < "$STATE"
for m in $list; do
  if fsfreeze -u "$m" 2>/dev/null; then echo "thawed $m"; fi
done
kill "$pid" 2>/dev/null
rm -f "$STATE"
"#,
        state = state_file(instance_id),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_scripts_name_the_volumes_and_quote_what_they_are_given() {
        let disks = [
            Disk {
                volume_id: "vol-0abc".into(),
                device: "/dev/sdb".into(),
            },
            Disk {
                volume_id: "vol-0def".into(),
                device: "/dev/xvdc".into(),
            },
        ];
        let refs: Vec<&Disk> = disks.iter().collect();
        let s = freeze("i-1", &refs, 10, false);
        assert!(s.contains("VOLUMES='vol0abc vol0def'"), "{s}");
        assert!(s.contains("DEVICES='/dev/sdb /dev/xvdb /dev/xvdc'"), "{s}");
        assert!(s.contains("THAW_AFTER=10\n"), "{s}");
        assert!(
            s.contains(r#"STATE="${EC2SNAP_STATE_DIR:-/run}"/'ec2snap-freeze-i-1'"#),
            "{s}"
        );
        // The watchdog is armed before anything is frozen.
        let armed = s.find("$DETACH sh -c").unwrap();
        let frozen = s.find("fsfreeze -f").unwrap();
        assert!(armed < frozen);
        assert_eq!(quoted("it's"), r#"'it'\''s'"#);
        assert!(thaw("i-1").contains("'ec2snap-freeze-i-1'"));
        assert!(freeze("i-1", &refs, 10, true).contains("DRY=1\n"));
    }
}
