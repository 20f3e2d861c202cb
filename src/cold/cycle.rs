//! Cold snapshots: stop, snapshot, start, with the guarantee that an instance this run stopped is
//! started again whatever happens; and, at the start of every run, starting the instances that a
//! killed run left stopped.

use crate::act::ctx::Ctx;
use crate::act::gate::{self, Gate, Sent};
use crate::aws::{AwsError, Change, Ec2};
use crate::cold::mark::{self as recovery, Here, Mark, Verdict};
use crate::config::Config;
use crate::model::{Instance, InstanceState, SnapshotKind};
use crate::output::log::critical;
use crate::output::log::Level;
use crate::output::messages as msg;
use crate::output::record::{Failure, Kind, Record};
use crate::signals::{Shutdown, Signal};
use crate::snapshot::make as snapshot;
use crate::snapshot::plan::Plan;
use crate::snapshot::Done;
use crate::tags::STOP_TAG;
use chrono::Utc;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tracing::{debug, error, info, warn};

/// How often the instance state is asked for while waiting.
const POLL: Duration = Duration::from_secs(3);

/// How long the snapshot calls of a stopped instance may take before they are abandoned.
const SNAPSHOT_LIMIT: Duration = Duration::from_secs(30 * 60);

/// Whether this instance goes through the cycle: cold mode, running, and something to snapshot
/// (`-o` on a root-only instance has nothing: no reason to stop it).
pub fn needed(cfg: &Config, instance: &Instance, plan: &Plan) -> bool {
    cfg.cold() && instance.state == InstanceState::Running && !plan.is_empty()
}

/// The whole cycle for one running instance. `None` when retention must not run for it (the
/// stop failed, or a signal came).
pub async fn cycle(ctx: &Arc<Ctx>, instance: &Instance, plan: &Plan) -> Option<Done> {
    let id = &instance.id;
    let mut done = Done::default();
    info!("{}", ctx.line(msg::GOING_DOWN, id));
    let marked = ctx.cfg.stop_tag && mark(ctx, id, ctx.cfg.timeout).await;
    // Not raced with a signal: the run must know whether the stop went through.
    let stop = gate::send_through(ctx, &ctx.ec2, &Change::StopInstances(id), id).await;
    if let Sent::Dry = stop {
        snapshot::make(ctx, SnapshotKind::Cold, instance, plan, None, &mut done).await;
        info!("{}", ctx.line(msg::GOING_UP, id));
        gate::send_through(ctx, &ctx.ec2, &Change::StartInstances(id), id).await;
        if ctx.cfg.stop_tag {
            // The real run removes its stop mark once the instance runs: checked too.
            untag(&ctx.gate(), &ctx.ec2, id).await;
        }
        return Some(done);
    }
    if let Sent::Answered(Err(e)) = stop {
        let line = ctx.line(&msg::failed_to("stop", &e.to_string()), id);
        let failure = Failure::aws(Level::Critical, line, "StopInstances", id, &e);
        ctx.record.failed(Some(id), failure);
        after_failed_stop(ctx, instance, &e, marked).await;
        return None;
    }
    let stopped = wait_stopped(&ctx.ec2, id, ctx.cfg.timeout, &ctx.shutdown).await;
    match &stopped {
        Ok(Waited::Reached) => {
            info!("{}", msg::now_state(id, "stopped"));
            let limit = (tokio::time::Instant::now() + SNAPSHOT_LIMIT, SNAPSHOT_LIMIT);
            snapshot::make(
                ctx,
                SnapshotKind::Cold,
                instance,
                plan,
                Some(limit),
                &mut done,
            )
            .await;
        }
        Ok(Waited::TimedOut) => {
            let secs = ctx.cfg.timeout.as_secs();
            let failure = Failure::other(
                Level::Error,
                ctx.line(msg::TIMEOUT, id),
                "StopInstances",
                id,
                Kind::Timeout,
                format!("not stopped within {secs} s (-m)"),
            );
            ctx.record.failed(Some(id), failure);
            warn!("{}", msg::did_not_stop(id, secs));
        }
        Ok(Waited::Failed(e)) => {
            let line = msg::state_unreadable(id, "stop", &e.to_string());
            let failure = Failure::aws(Level::Critical, line, "DescribeInstances", id, e);
            ctx.record.failed(Some(id), failure);
        }
        Err(_signal) => {}
    }
    start_again(ctx, instance, marked).await;
    (matches!(stopped, Ok(Waited::Reached)) && !ctx.shutdown.is_set()).then_some(done)
}

/// Tags the instance before its stop, so that a run killed while it is down can be found by the
/// next one. True when the tag is set; a failure is a warning and the cycle goes on, as it did
/// before the tag existed.
async fn mark(ctx: &Ctx, id: &str, timeout: Duration) -> bool {
    let (here, now) = (Here::this_machine(), crate::clock::now());
    let mark = Mark {
        host: here.host,
        boot: here.boot,
        pid: std::process::id(),
        stopped: now,
        until: now
            .checked_add_signed(stop_window(timeout))
            .unwrap_or(chrono::DateTime::<Utc>::MAX_UTC),
    };
    let (ids, value) = ([id.to_string()], mark.value());
    let tag = Change::Tag {
        ids: &ids,
        key: STOP_TAG,
        value: &value,
    };
    match gate::send_through(ctx, &ctx.ec2, &tag, id).await {
        Sent::Answered(Ok(_)) => true,
        Sent::Answered(Err(e)) => {
            warn!("{}", msg::cannot_mark(id, STOP_TAG, &e.to_string()));
            false
        }
        Sent::Dry | Sent::Interrupted(_) => false,
    }
}

/// StopInstances failed. A definite refusal from EC2 left the instance as it was: when it is still
/// running there is nothing to start. Any other failure (a lost answer) may hide a stop that went
/// through: then it is started again.
async fn after_failed_stop(ctx: &Ctx, instance: &Instance, error: &AwsError, marked: bool) {
    if error.code.is_some() {
        if let Ok(InstanceState::Running) = ctx.ec2.instance_state(&instance.id).await {
            info!("{}", msg::still_running(&instance.id));
            if marked {
                untag(&ctx.gate(), &ctx.ec2, &instance.id).await;
            }
            return;
        }
    }
    start_again(ctx, instance, marked).await;
}

/// Starts again an instance this run stopped (or may have stopped), whatever happened before.
/// Not interruptible: this is what a signal waits for. Retries while the instance is still
/// stopping, bounded by `-m` seconds. Removes the stop mark once it runs.
async fn start_again(ctx: &Ctx, instance: &Instance, marked: bool) {
    let (id, timeout) = (&instance.id, ctx.cfg.timeout);
    info!("{}", ctx.line(msg::GOING_UP, id));
    let deadline = deadline_after(timeout);
    loop {
        let start = Change::StartInstances(id);
        let last_error = match gate::send_through(ctx, &ctx.ec2, &start, id).await {
            Sent::Answered(Err(e)) => e,
            Sent::Answered(Ok(_)) | Sent::Dry | Sent::Interrupted(_) => break,
        };
        debug!("{}", msg::start_retry(id, &last_error.to_string()));
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let line = ctx.line(&msg::failed_to("start", &last_error.to_string()), id);
            let failure = Failure::aws(Level::Critical, line, "StartInstances", id, &last_error);
            ctx.record.failed(Some(id), failure);
            critical!("{}", msg::may_still_be_stopped(id));
            return;
        }
        tokio::time::sleep(POLL.min(left)).await;
    }
    match wait_running(&ctx.ec2, id, timeout).await {
        Waited::Reached => {
            info!("{}", msg::now_state(id, "running"));
            if marked {
                untag(&ctx.gate(), &ctx.ec2, id).await;
            }
        }
        Waited::TimedOut => {
            error!("{}", ctx.line(msg::TIMEOUT, id));
            ctx.record.failed(
                Some(id),
                not_running(ctx.line(&not_running_line(timeout), id), id, timeout),
            );
        }
        Waited::Failed(e) => {
            let line = msg::state_unreadable(id, "start", &e.to_string());
            let failure = Failure::aws(Level::Critical, line, "DescribeInstances", id, &e);
            ctx.record.failed(Some(id), failure);
        }
    }
}

/// Starts the instances that an earlier cold run left stopped (killed with `kill -9`, or the
/// machine lost power), found by their mark; a dry run only says which it would start. Starting
/// is not interrupted by a signal, like any restart.
pub async fn recover(
    ec2: &Ec2,
    cfg: &Config,
    marked: Vec<Instance>,
    record: &Record,
    shutdown: &Shutdown,
) {
    let gate = Gate::new(cfg.mode, shutdown, record, ec2.region());
    let here = Here::this_machine();
    let now = crate::clock::now();
    for instance in marked {
        let (id, name) = (&instance.id, instance.name());
        let value = instance
            .tags
            .get(STOP_TAG)
            .map(String::as_str)
            .unwrap_or("");
        let mark = Mark::parse(value);
        let verdict = recovery::verdict(
            mark.as_ref(),
            &instance.state,
            now,
            &here,
            recovery::process_alive,
        );
        match verdict {
            Verdict::Leave(why) => {
                debug!("{}", msg::mark_left(id, STOP_TAG, value, why))
            }
            Verdict::DropMark => {
                debug!(
                    "{}",
                    msg::mark_dropped(id, &instance.state.to_string(), STOP_TAG)
                );
                untag(&gate, ec2, id).await;
            }
            Verdict::Start if gate.is_dry() => {
                warn!(
                    "{}",
                    msg::left_stopped(id, name, value, "run mode starts it again")
                );
                // The permission the real run needs for it.
                gate.send_through(ec2, &Change::StartInstances(id), id)
                    .await;
            }
            Verdict::Start => {
                warn!(
                    "{}",
                    msg::left_stopped(id, name, value, "starting it again")
                );
                let line = |text: String| msg::for_instance(&text, id, cfg.parallel);
                let start = Change::StartInstances(id);
                if let Sent::Answered(Err(e)) = gate.send_through(ec2, &start, id).await {
                    let text = line(msg::failed_to("start", &e.to_string()));
                    let failure = Failure::aws(Level::Critical, text, "StartInstances", id, &e);
                    record.failed(None, failure);
                    continue;
                }
                match wait_running(ec2, id, cfg.timeout).await {
                    Waited::Reached => {
                        info!("{}", msg::now_state(id, "running"));
                        untag(&gate, ec2, id).await;
                    }
                    Waited::TimedOut => {
                        let text = line(not_running_line(cfg.timeout));
                        record.failed(None, not_running(text, id, cfg.timeout));
                    }
                    Waited::Failed(e) => {
                        let text = msg::state_unreadable(id, "start", &e.to_string());
                        let failure =
                            Failure::aws(Level::Critical, text, "DescribeInstances", id, &e);
                        record.failed(None, failure);
                    }
                }
            }
        }
    }
}

/// `Instance failed to start: not running after N s`.
fn not_running_line(timeout: Duration) -> String {
    msg::failed_to(
        "start",
        &format!("not running after {} s", timeout.as_secs()),
    )
}

/// An instance started again that was not `running` within `-m`.
fn not_running(line: String, id: &str, timeout: Duration) -> Failure {
    let message = format!("not running within {} s (-m)", timeout.as_secs());
    Failure::other(
        Level::Critical,
        line,
        "StartInstances",
        id,
        Kind::Timeout,
        message,
    )
}

/// Removes the stop mark of an instance; a failure is a warning (a later run removes it).
async fn untag(gate: &Gate<'_>, ec2: &Ec2, id: &str) {
    let untag = Change::Untag { id, key: STOP_TAG };
    if let Sent::Answered(Err(e)) = gate.send_through(ec2, &untag, id).await {
        warn!("{}", msg::cannot_unmark(id, STOP_TAG, &e.to_string()));
    }
}

/// How a wait for a state ended.
enum Waited {
    Reached,
    TimedOut,
    /// The state poll itself failed: the state is unknown.
    Failed(AwsError),
}

/// Waits for `stopped`; a signal ends the wait at once, during a poll as during a pause.
async fn wait_stopped(
    ec2: &Ec2,
    id: &str,
    timeout: Duration,
    shutdown: &Shutdown,
) -> Result<Waited, Signal> {
    shutdown
        .race(poll_until(ec2, id, InstanceState::Stopped, timeout))
        .await
}

/// Waits for `running`; not interruptible, like the start it follows.
async fn wait_running(ec2: &Ec2, id: &str, timeout: Duration) -> Waited {
    poll_until(ec2, id, InstanceState::Running, timeout).await
}

async fn poll_until(ec2: &Ec2, id: &str, want: InstanceState, timeout: Duration) -> Waited {
    let deadline = deadline_after(timeout);
    loop {
        match ec2.instance_state(id).await {
            Ok(state) if state == want => return Waited::Reached,
            Ok(state) => debug!(
                "{}",
                msg::waiting_for_state(id, &want.to_string(), &state.to_string())
            ),
            Err(e) => return Waited::Failed(e),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Waited::TimedOut;
        }
        tokio::time::sleep(POLL.min(left)).await;
    }
}

/// The longest a cycle keeps an instance from running: the stop wait, the snapshot calls, the
/// start retries and the start wait, with a margin. A run that finds a mark older than this knows
/// that the run that wrote it is over.
pub fn stop_window(timeout: Duration) -> chrono::Duration {
    let secs = timeout
        .as_secs()
        .saturating_mul(3)
        .saturating_add(SNAPSHOT_LIMIT.as_secs() + 300);
    chrono::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 1000))
}

/// `now + timeout`, or far ahead when that cannot be represented (the flags are bounded, so this
/// is only a second line of defence against an overflow panic).
fn deadline_after(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(Duration::from_secs(86_400 * 365)))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_window_covers_the_whole_cycle() {
        // (-m seconds, window seconds): 3 × -m + 30 min of snapshot calls + 5 min.
        let cases = [(0, 2_100), (600, 3_900), (604_800, 1_816_500)];
        for (m, want) in cases {
            assert_eq!(
                stop_window(Duration::from_secs(m)).num_seconds(),
                want,
                "-m {m}"
            );
        }
        assert!(stop_window(Duration::from_secs(u64::MAX)).num_seconds() > 0);
        let _ = deadline_after(Duration::from_secs(u64::MAX));
    }
}
