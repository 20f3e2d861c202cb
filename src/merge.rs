//! `ec2snap report merge FILE...`: reads the shards' reports (a directory: its `*.json`), merges
//! them (`output::merge`), writes the fleet report (standard output or `--report FILE`) and, with
//! `--metrics-file`, its metrics; the exit code is the worst of theirs.

use crate::cli::MergeArgs;
use crate::output::exit::{Abort, ExitCode};
use crate::output::{merge, report, stdout};
use anyhow::Context;
use std::path::PathBuf;

pub fn main(a: MergeArgs) -> Result<ExitCode, Abort> {
    let mut files: Vec<PathBuf> = Vec::new();
    for path in &a.files {
        if path.is_dir() {
            let mut found: Vec<PathBuf> = std::fs::read_dir(path)
                .with_context(|| format!("Cannot read the directory {}", path.display()))
                .map_err(Abort::Config)?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "json"))
                .collect();
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    let mut reports = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f)
            .with_context(|| format!("Cannot read the report {}", f.display()))
            .map_err(Abort::Config)?;
        reports.push((f.display().to_string(), text));
    }
    let merged = merge::merge(&reports);
    for p in merged.report["problems"].as_array().into_iter().flatten() {
        let line = crate::output::messages::one_line(p.as_str().unwrap_or("")).into_owned();
        let _ = std::io::Write::write_all(
            &mut std::io::stderr(),
            format!("ec2snap: {line}\n").as_bytes(),
        );
    }
    let text = serde_json::to_string_pretty(&merged.report).unwrap_or_default() + "\n";
    match &a.report {
        Some(path) => report::write_atomic(path, &text)
            .with_context(|| format!("Cannot write the report {}", path.display()))
            .map_err(Abort::Setup)?,
        None => stdout::print(&text)?,
    }
    if let Some(path) = &a.metrics_file {
        let t = &merged.report["totals"];
        let n = |k: &str| usize::try_from(t[k].as_u64().unwrap_or(0)).unwrap_or(usize::MAX);
        let now = crate::clock::now().timestamp_millis() as f64 / 1000.0;
        let dry = merged.report["dry_run"].as_bool().unwrap_or(true);
        let sample = report::Sample {
            finished: now,
            last_success: (merged.exit_code == 0 && !dry).then_some(now),
            duration: 0.0,
            exit_code: merged.exit_code,
            totals: (
                n("snapshots_made"),
                n("snapshot_errors"),
                n("deleted"),
                n("deletion_errors"),
            ),
            copies: Vec::new(),
            drills: Vec::new(),
            targets: Vec::new(),
            storage: None,
        };
        let job = a.metrics_job.as_deref().unwrap_or("fleet");
        report::write_atomic(path, &report::metrics(job, &sample))
            .with_context(|| format!("Cannot write the metrics file {}", path.display()))
            .map_err(Abort::Setup)?;
    }
    Ok(ExitCode::Worst(merged.exit_code))
}
