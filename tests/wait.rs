//! `--wait`: retention only once the new snapshot is completed; a snapshot that ends in `error`,
//! or is still pending at the timeout, keeps its volume's old snapshots and fails the run. The
//! proxy shows the new snapshots as pending (or in error) for a few polls.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, as it should

mod common;
use common::*;

const RUN: [&str; 11] = [
    "-t",
    "Name",
    "web1",
    "-o",
    "-u",
    "-g",
    "5",
    "d",
    "--wait",
    "--wait-interval",
    "1",
];

#[test]
fn retention_waits_for_completion() {
    let (lab, seeded) = web_lab_with_old_snapshot();
    let old = seeded_snapshot_ids(&seeded, "web1");
    after_listing(&lab, "pending", 2);
    lab.reset_stats();
    let r = lab.run(&RUN);
    assert_eq!(r.code, 0, "{r:?}");
    let lines = r.lines();
    let completed = lines
        .iter()
        .position(|l| l.starts_with("[INFO] Snapshot snap-") && l.ends_with(") completed"));
    let deleting = lines
        .iter()
        .position(|l| l.contains(&format!("Deleting snapshot {}", old[0])));
    assert!(
        completed.is_some() && deleting.is_some() && completed < deleting,
        "{r:?}"
    );
    // The listing, two polls that saw it pending, one that saw it completed.
    assert_eq!(
        lab.stats().get("DescribeSnapshots"),
        Some(&4),
        "{:?}",
        lab.stats()
    );
    assert_eq!(
        lab.snapshots().len(),
        1,
        "the old one went, the new one stays"
    );
}

#[test]
fn an_error_or_a_timeout_keeps_the_old_snapshots() {
    let (lab, seeded) = web_lab_with_old_snapshot();
    let old = seeded_snapshot_ids(&seeded, "web1");
    let vol = vol_of(&seeded, "web1", "/dev/sdb");
    after_listing(&lab, "error", -1);
    let r = lab.run(&RUN);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.lines()
            .iter()
            .any(|l| l.starts_with("[ERROR] Snapshot snap-")
                && l.ends_with(&format!(
                    "of {vol}(/dev/sdb) ended in state error: the volume's old snapshots are kept"
                ))),
        "{r:?}"
    );
    assert_eq!(r.deleting().len(), 0, "{r:?}");
    assert_eq!(r.stdout, error_summary(1, 0));
    assert!(snapshot_ids(&lab.snapshots()).contains(&old[0]));

    lab.clear_faults();
    after_listing(&lab, "pending", -1);
    let mut args = RUN.to_vec();
    args.extend_from_slice(&["--wait-timeout", "2"]);
    let r = lab.run(&args);
    assert_eq!(r.code, 2, "{r:?}");
    assert_eq!(r.count("[WARNING] Snapshot snap-"), 1, "{r:?}");
    assert!(r.stderr.contains("is still pending after 2 s"), "{r:?}");
    assert_eq!(r.deleting().len(), 0, "{r:?}");
    assert!(snapshot_ids(&lab.snapshots()).contains(&old[0]));
}

#[test]
fn a_terminal_shows_a_progress_bar_that_never_reaches_the_log_file() {
    let (lab, _) = web_lab_with_old_snapshot();
    after_listing(&lab, "pending", 3);
    let log = lab.dir.path().join("run.log");
    // script(1) runs it on a pseudo-terminal and copies what it draws to its standard output.
    let (ok, screen) = lab.on_terminal(&format!("{} -f {}", RUN.join(" "), log.display()), &[]);
    assert!(ok, "{screen}");
    assert!(
        screen.contains("snapshots completed"),
        "a bar on the terminal: {screen}"
    );
    // Its last frame shows the final count, and a line stays once it is cleared.
    assert!(screen.contains("1/1 snapshots completed"), "{screen}");
    assert!(
        screen.contains("1 snapshot completed in "),
        "the closing line: {screen}"
    );
    assert!(
        screen.contains("Deleting snapshot"),
        "log lines too: {screen}"
    );
    let file = std::fs::read_to_string(&log).unwrap();
    assert!(file.contains("Deleting snapshot"), "{file}");
    assert!(
        !file.contains("snapshots completed") && !file.contains("snapshot completed in"),
        "nothing of the bar in -f: {file}"
    );
}
