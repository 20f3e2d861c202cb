//! An instance's snapshots between its hooks: the pre hook (cut short by a signal), then the
//! snapshot call(s) of the plan its outcome gives, then the post hook, which always runs once the
//! pre hook started (after a refused call, a timeout, a signal) before the instance's work ends.

use crate::hooks::local::{self, Ran};
use crate::hooks::policy::{self, Consistency, Freeze, Hooks, Outcome, Then};
use crate::hooks::{script, ssm};
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

/// How one hook runs: a local command, or a script sent to the instance through SSM.
enum Runner<'a> {
    Local {
        stage: &'static str,
        command: &'a str,
    },
    Ssm {
        stage: &'static str,
        script: String,
    },
}

impl Runner<'_> {
    fn stage(&self) -> &'static str {
        match self {
            Runner::Local { stage, .. } | Runner::Ssm { stage, .. } => stage,
        }
    }

    async fn run(
        &self,
        ctx: &Ctx,
        instance: &Instance,
        env: &[(String, String)],
        timeout: std::time::Duration,
        interrupt: Option<&crate::signals::Shutdown>,
    ) -> Ran {
        info!("{}", msg::hook_running(self.stage(), &instance.id));
        let ran = match self {
            Runner::Local { command, .. } => local::run(command, env, timeout, interrupt).await,
            Runner::Ssm { stage, script } => {
                let comment = format!("ec2snap {stage}");
                ssm::run(&ctx.ec2, &instance.id, script, &comment, timeout, interrupt).await
            }
        };
        logged(self.stage(), instance, &ran, timeout);
        ran
    }
}

/// The pre and post hooks of an instance: the commands given, or `--freeze`'s scripts.
fn runners<'a>(
    hooks: &'a Hooks,
    instance: &Instance,
    disks: &[&crate::model::Disk],
    dry: bool,
) -> (Option<Runner<'a>>, Option<Runner<'a>>) {
    match hooks.freeze {
        Some(Freeze::Ssm { thaw_after }) => (
            Some(Runner::Ssm {
                stage: "freeze",
                script: script::freeze(&instance.id, disks, thaw_after.as_secs(), dry),
            }),
            Some(Runner::Ssm {
                stage: "thaw",
                script: script::thaw(&instance.id),
            }),
        ),
        None => (
            hooks.pre.as_deref().map(|command| Runner::Local {
                stage: "pre-snapshot",
                command,
            }),
            hooks.post.as_deref().map(|command| Runner::Local {
                stage: "post-snapshot",
                command,
            }),
        ),
    }
}

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
    let (pre_hook, post_hook) = runners(hooks, instance, &disks, dry);
    let pre_stage = pre_hook
        .as_ref()
        .map(Runner::stage)
        .unwrap_or("pre-snapshot");
    let pre = match &pre_hook {
        Some(hook) => {
            let env = env("pre", None);
            Some(
                hook.run(ctx, instance, &env, hooks.timeout, Some(&ctx.shutdown))
                    .await,
            )
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
                let line = msg::hook_crash_consistent(pre_stage, &instance.id, &why, output);
                warn!("{line}");
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
            let line = msg::hook_skipped(pre_stage, &instance.id, &why, output);
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
    let post = match &post_hook {
        Some(hook) => {
            let result = if made { "ok" } else { "failed" };
            // Not cut short by a signal: it is what lets the application go.
            let ran = hook
                .run(
                    ctx,
                    instance,
                    &env("post", Some(result)),
                    hooks.timeout,
                    None,
                )
                .await;
            if !ran.outcome.is_ok() {
                let why = what(&ran.outcome);
                let line = msg::post_hook_failed(hook.stage(), &instance.id, &why, &ran.output);
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
