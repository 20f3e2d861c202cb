//! `ec2snap list`, the output: a table with aligned columns (colours only on a terminal, never
//! with `NO_COLOR`), the same layout when piped, or a JSON document.

use crate::list::view::{Listing, SnapshotView, Verdict};
use crate::output::messages::age;
use crate::output::messages::one_line;
use crate::retention::archive::Storage;

/// ANSI colours, or none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Colour {
    On,
    Off,
}

impl Colour {
    fn paint(self, code: &str, text: &str) -> String {
        match self {
            Colour::On => format!("\u{1b}[{code}m{text}\u{1b}[0m"),
            Colour::Off => text.to_string(),
        }
    }
}

/// A value from AWS (or made of one) for a cell: its control characters escaped, so that no tag
/// value, device name or state can forge a row.
fn cell(text: &str) -> String {
    one_line(text).into_owned()
}

fn verdict_text(verdict: Verdict, reasons: &[String], colour: Colour) -> String {
    match verdict {
        Verdict::Keep if reasons.is_empty() => colour.paint("32", "KEEP"),
        Verdict::Keep => format!(
            "{} {}",
            colour.paint("32", "KEEP"),
            cell(&reasons.join(", "))
        ),
        Verdict::Delete => colour.paint("31", "DELETE"),
        Verdict::None => "-".into(),
    }
}

/// `completed`, `pending 40%`, `completed archive`.
fn state_text(s: &SnapshotView) -> String {
    cell(&state_raw(s))
}

fn state_raw(s: &SnapshotView) -> String {
    let mut text = s.state.clone();
    if let Some(p) = &s.progress {
        text.push(' ');
        text.push_str(p);
    }
    if s.tier != "standard" {
        text.push(' ');
        text.push_str(&s.tier);
    }
    // Made with hooks: `application` or `crash` (ec2snap:consistency).
    if let Some(c) = &s.consistency {
        text.push_str(&format!(" ({c})"));
    }
    text
}

/// Rows of cells, each column as wide as its widest cell (the last one is not padded).
fn aligned(rows: &[Vec<String>], indent: &str) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.get(c))
                .map(|cell| cell.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let mut line = indent.to_string();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                line.push_str(cell);
            } else {
                line.push_str(&format!("{cell:<w$}  ", w = widths[c]));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

/// The table: problems first, then per instance and volume its snapshots newest first, each
/// with its copies. Values from AWS are written with their control characters escaped.
pub fn table(listing: &Listing, colour: Colour) -> String {
    let mut out = String::new();
    if listing.problems.is_empty() {
        out.push_str("PROBLEMS: none\n");
    } else {
        out.push_str(&format!("PROBLEMS: {}\n", listing.problems.len()));
        let rows: Vec<Vec<String>> = listing
            .problems
            .iter()
            .map(|p| {
                vec![
                    colour.paint("33", p.kind.label()),
                    one_line(&p.detail).into_owned(),
                ]
            })
            .collect();
        out.push_str(&aligned(&rows, "  "));
    }
    for instance in &listing.instances {
        out.push('\n');
        out.push_str(&format!(
            "{} ({}) {}\n",
            cell(&instance.id),
            cell(&instance.name),
            cell(&instance.state)
        ));
        for volume in &instance.volumes {
            let size = volume
                .size_gib
                .map(|s| format!(" {s} GiB"))
                .unwrap_or_default();
            let count = match volume.snapshots.iter().filter(|s| s.id.is_some()).count() {
                1 => "1 snapshot".to_string(),
                n => format!("{n} snapshots"),
            };
            let detached = if volume.attached { "" } else { " (detached)" };
            out.push_str(&format!(
                "  {} {}{detached}{size}: {count}{}\n",
                cell(&volume.id),
                cell(&volume.device),
                storage_text(&volume.storage)
            ));
            let mut rows = Vec::new();
            for s in &volume.snapshots {
                // The snapshot the next run makes: no id, time or age yet.
                let (id, time, age) = match &s.id {
                    Some(id) => (
                        id.clone(),
                        s.start_time
                            .get(..16)
                            .unwrap_or(&s.start_time)
                            .replace('T', " "),
                        age(s.age_secs),
                    ),
                    None => ("(next run)".into(), "-".into(), "-".into()),
                };
                rows.push(vec![
                    cell(&id),
                    cell(&time),
                    age,
                    state_text(s),
                    cell(s.set.as_deref().unwrap_or("-")),
                    verdict_text(s.verdict, &s.reasons, colour),
                ]);
                for c in &s.copies {
                    rows.push(vec![
                        format!("  copy {}", cell(&c.id)),
                        cell(&c.region),
                        String::new(),
                        cell(&c.state),
                        String::new(),
                        verdict_text(c.verdict, &[], colour),
                    ]);
                }
            }
            out.push_str(&aligned(&rows, "    "));
        }
    }
    if !listing.storage.is_empty() {
        let total = storage_text(&listing.storage);
        out.push_str(&format!(
            "\nSTORAGE: {} snapshots{total}\n",
            listing.storage.sized
        ));
    }
    out
}

/// `, kept 24.0 GB at most $1.20/month (archive saves $0.30)`: what the kept snapshots of known
/// size cost, when there are any.
fn storage_text(s: &Storage) -> String {
    if s.is_empty() {
        return String::new();
    }
    let usd = |micros: i64| format!("${:.2}", micros as f64 / 1_000_000.0);
    let saving = if s.saving_micros > 0 {
        format!(" (archive saves {})", usd(s.saving_micros))
    } else {
        String::new()
    };
    format!(
        ", kept {:.1} GB at most {}/month{saving}",
        s.kept_bytes as f64 / 1e9,
        usd(s.monthly_micros)
    )
}

/// The JSON document: `{"problems": [...], "instances": [{"volumes": [{"snapshots": [{"copies":
/// [...]}]}]}]}`.
pub fn json(listing: &Listing) -> String {
    match serde_json::to_string_pretty(listing) {
        Ok(text) => text + "\n",
        Err(e) => format!("{{\"error\": {:?}}}\n", e.to_string()),
    }
}

/// A list over many accounts and regions, as a table: each target's own under a
/// `== prod/eu-west-1 ==` line (`error: ...` for a target that could not be read).
pub fn fleet_table(targets: &[(String, Result<&Listing, String>)], colour: Colour) -> String {
    let mut out = String::new();
    for (n, (label, listing)) in targets.iter().enumerate() {
        if n > 0 {
            out.push('\n');
        }
        out.push_str(&format!("== {} ==\n", one_line(label)));
        match listing {
            Ok(listing) => out.push_str(&table(listing, colour)),
            Err(e) => out.push_str(&format!("error: {}\n", one_line(e))),
        }
    }
    out
}

/// A list over many accounts and regions, as JSON: `{"targets": [{"account", "region",
/// "problems", "instances"}]}`, `"error"` in place of the lists for a target that could not be
/// read.
pub fn fleet_json(targets: &[(String, String, Result<&Listing, String>)]) -> String {
    let list: Vec<serde_json::Value> = targets
        .iter()
        .map(|(account, region, listing)| {
            let mut v = match listing {
                Ok(l) => serde_json::to_value(l)
                    .unwrap_or_else(|e| serde_json::json!({"error": e.to_string()})),
                Err(e) => serde_json::json!({ "error": e }),
            };
            if let Some(map) = v.as_object_mut() {
                map.insert("account".into(), account.clone().into());
                map.insert("region".into(), region.clone().into());
            }
            v
        })
        .collect();
    match serde_json::to_string_pretty(&serde_json::json!({ "targets": list })) {
        Ok(text) => text + "\n",
        Err(e) => format!("{{\"error\": {:?}}}\n", e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::list::view::{InstanceView, Problem, ProblemKind, VolumeView};

    #[test]
    fn a_table_with_aligned_columns_and_no_colour_when_off() {
        let listing = Listing {
            problems: vec![Problem {
                kind: ProblemKind::NoBackup,
                resource: "vol-c".into(),
                detail: "vol-c (i-1 /dev/sdc): no completed snapshot".into(),
            }],
            instances: vec![InstanceView {
                id: "i-1".into(),
                name: "web\n1".into(),
                state: "running".into(),
                volumes: vec![VolumeView {
                    id: "vol-b".into(),
                    device: "/dev/sdb".into(),
                    attached: true,
                    size_gib: Some(8),
                    storage: Storage::default(),
                    snapshots: vec![
                        SnapshotView {
                            id: Some("snap-new".into()),
                            start_time: "2026-11-25T03:00:00+00:00".into(),
                            age_secs: 86_400 + 9 * 3_600,
                            state: "pending".into(),
                            progress: Some("40%".into()),
                            tier: "standard".into(),
                            size_bytes: None,
                            set: None,
                            consistency: None,
                            locked_until: None,
                            in_use_by: None,
                            verdict: Verdict::Keep,
                            reasons: vec!["last 1".into()],
                            copies: vec![],
                        },
                        SnapshotView {
                            id: Some("snap-1".into()),
                            start_time: "2026-11-01T03:00:00+00:00".into(),
                            age_secs: 25 * 86_400,
                            state: "completed".into(),
                            progress: None,
                            tier: "archive".into(),
                            size_bytes: None,
                            set: None,
                            consistency: None,
                            locked_until: None,
                            in_use_by: None,
                            verdict: Verdict::Delete,
                            reasons: vec![],
                            copies: vec![],
                        },
                    ],
                }],
            }],
            storage: Storage::default(),
        };
        let text = table(&listing, Colour::Off);
        let want = "PROBLEMS: 1\n  no backup  vol-c (i-1 /dev/sdc): no completed snapshot\n\n\
                    i-1 (web\\n1) running\n  vol-b /dev/sdb 8 GiB: 2 snapshots\n    \
                    snap-new  2026-11-25 03:00  1d 9h   pending 40%        -  KEEP last 1\n    \
                    snap-1    2026-11-01 03:00  25d 0h  completed archive  -  DELETE\n";
        assert_eq!(text, want);
        assert!(!text.contains('\u{1b}'));
        assert!(table(&listing, Colour::On).contains("\u{1b}[31mDELETE\u{1b}[0m"));
        let doc: serde_json::Value = serde_json::from_str(&json(&listing)).unwrap();
        assert_eq!(
            doc["instances"][0]["volumes"][0]["snapshots"][1]["verdict"],
            "delete"
        );
        assert_eq!(doc["problems"][0]["kind"], "no-backup");
    }
}
