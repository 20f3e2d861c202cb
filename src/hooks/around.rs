//! An instance's snapshots between its hooks: the pre hook (cut short by a signal), then the
//! snapshot call(s) of the plan its outcome gives, then the post hook, which always runs once the
//! pre hook started (after a refused call, a timeout, a signal) before the instance's work ends.

use crate::hooks::local::{self, Ran};
use crate::hooks::policy::{self, Consistency, Hooks, Outcome, Then};
use crate::model::{Instance, SnapshotKind};
use crate::output::log::Level;
use crate::output::messages as msg;
use crate::output::record::{Failure, HookEntry, Kind};
use crate::retention::decide::Done;
use crate::run::ctx::Ctx;
use crate::snapshot::make as snapshot;
use crate::snapshot::plan::{self, Plan};
use std::sync::Arc;
use std::time::Instant;
use tracing::{debug, info, warn};

/// Logs how a hook ran at DEBUG, its output included, one line.
fn logged(stage: &str, instance: &Instance, ran: &Ran, timeout: std::time::Duration) {
    let what = ran.outcome.describe(timeout);
    let took = ran.took.as_millis();
    debug!(
        "{}",
        msg::hook_ended(stage, &instance.id, &what, took, &ran.output)
    );
}

/// The pre hook, the snapshots of `plan_for(consistency)`, the post hook. `plan_for` gives the
/// plan with the consistency tag its snapshots get.
pub async fn snapshot(
    ctx: &Arc<Ctx>,
    hooks: &Hooks,
    kind: SnapshotKind,
    instance: &Instance,
    plan_for: &(dyn Fn(Consistency) -> Plan + Sync),
    done: &mut Done,
) {
    let dry = ctx.cfg.mode.is_dry();
    let disks = plan::disks_to_snapshot(instance, ctx.cfg.no_root_device);
    let env = |stage: &str, result: Option<&str>| {
        policy::environment(instance, &disks, dry, stage, result)
    };
    let pre = match &hooks.pre {
        Some(cmd) => {
            info!("{}", msg::hook_running("pre-snapshot", &instance.id));
            let ran = local::run(cmd, &env("pre", None), hooks.timeout, Some(&ctx.shutdown)).await;
            logged("pre-snapshot", instance, &ran, hooks.timeout);
            Some(ran)
        }
        None => None,
    };
    let held = Instant::now();
    let pre_outcome = pre.as_ref().map(|r| &r.outcome);
    let then = policy::after_pre(pre_outcome, hooks.on_failure);
    let what = |o: &Outcome| o.describe(hooks.timeout);
    match (then, pre_outcome) {
        (Then::Snapshot(c), outcome) => {
            if let (Consistency::Crash, Some(o)) = (c, outcome) {
                let why = what(o);
                let output = pre.as_ref().map(|r| r.output.as_str()).unwrap_or("");
                warn!("{}", msg::hook_crash_consistent(&instance.id, &why, output));
            }
            snapshot::make(ctx, kind, instance, &plan_for(c), None, done).await;
        }
        (Then::Skip, Some(Outcome::Interrupted)) => {
            // A signal: the run stops; nothing is made, the post hook still runs.
            mark_failed(&plan_for(Consistency::Crash), done);
        }
        (Then::Skip, outcome) => {
            let why = outcome.map(what).unwrap_or_default();
            let output = pre.as_ref().map(|r| r.output.as_str()).unwrap_or("");
            let line = msg::hook_skipped(&instance.id, &why, output);
            let failure = Failure::other(
                Level::Error,
                line,
                "PreSnapshotHook",
                &instance.id,
                Kind::Hook,
                why,
            );
            ctx.record.failed(Some(&instance.id), failure);
            mark_failed(&plan_for(Consistency::Crash), done);
        }
    }
    let held_for = held.elapsed();
    let made = matches!(then, Then::Snapshot(_)) && done.failed.is_empty() && !done.set_failed;
    let post = match &hooks.post {
        Some(cmd) => {
            info!("{}", msg::hook_running("post-snapshot", &instance.id));
            let result = if made { "ok" } else { "failed" };
            // Not cut short by a signal: it is what lets the application go.
            let ran = local::run(cmd, &env("post", Some(result)), hooks.timeout, None).await;
            logged("post-snapshot", instance, &ran, hooks.timeout);
            if !ran.outcome.is_ok() {
                let why = what(&ran.outcome);
                let line = msg::post_hook_failed(&instance.id, &why, &ran.output);
                let failure = Failure::other(
                    Level::Error,
                    line,
                    "PostSnapshotHook",
                    &instance.id,
                    Kind::Hook,
                    why,
                );
                ctx.record.failed(Some(&instance.id), failure);
            }
            Some(ran)
        }
        None => None,
    };
    let consistency = match then {
        Then::Snapshot(c) if !done.created.is_empty() => c.tag_value(),
        _ => "none",
    };
    info!(
        "{}",
        msg::hooks_done(&instance.id, consistency, held_for.as_millis())
    );
    ctx.record.hooks(
        &instance.id,
        HookEntry {
            consistency: consistency.to_string(),
            pre: pre.map(|r| what(&r.outcome)),
            post: post.map(|r| what(&r.outcome)),
            held_ms: u64::try_from(held_for.as_millis()).unwrap_or(u64::MAX),
        },
    );
}

/// No snapshot this time: every volume of the plan keeps its old snapshots (a set, its sets).
fn mark_failed(plan: &Plan, done: &mut Done) {
    match plan {
        Plan::Volumes(requests) => {
            done.failed
                .extend(requests.iter().map(|r| r.disk.volume_id.clone()));
        }
        Plan::Set(set) => {
            done.set_failed = true;
            done.failed
                .extend(set.members.iter().map(|d| d.volume_id.clone()));
        }
    }
}
