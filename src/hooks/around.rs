//! An instance's snapshots between its hooks: the pre hook (cut short by a signal), then the
//! snapshot call(s) of the plan its outcome gives, then the post hook, which always runs once the
//! pre hook started (after a refused call, a timeout, a signal) before the instance's work ends.

use crate::act::ctx::Ctx;
use crate::act::gate;
use crate::aws::Change;
use crate::hooks::local::{self, Ran};
use crate::hooks::policy::{self, Consistency, Freeze, Hooks, Outcome, Then};
use crate::hooks::{script, ssm};
use crate::model::{Instance, SnapshotKind};
use crate::output::log::Level;
use crate::output::messages as msg;
use crate::output::record::{Failure, HookEntry, Kind};
use crate::snapshot::make as snapshot;
use crate::snapshot::plan::{self, Plan};
use crate::snapshot::Done;
use crate::tags::CONSISTENCY_TAG;
use std::sync::Arc;
use std::time::{Duration, Instant};
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

/// The pre and post hooks of an instance: the commands given, or `--freeze`'s scripts (in a dry
/// run, a freeze that only says what it would freeze, and no thaw: nothing on the instance
/// changes).
fn runners<'a>(
    hooks: &'a Hooks,
    instance: &Instance,
    disks: &[&crate::model::Disk],
    dry: bool,
) -> (Option<Runner<'a>>, Option<Runner<'a>>) {
    match hooks.freeze {
        Some(Freeze::Ssm { thaw_after }) => {
            let run_id = crate::clock::run_id();
            let (limit, thaw_after) = (hooks.timeout.as_secs(), thaw_after.as_secs());
            let freeze = script::freeze(&instance.id, run_id, disks, thaw_after, limit, dry);
            // The thaw waits for the watchdog within its own bound, with room to answer.
            let thaw = script::thaw(&instance.id, run_id, limit.saturating_sub(2).max(1));
            (
                Some(Runner::Ssm {
                    stage: "freeze",
                    script: freeze,
                }),
                (!dry).then_some(Runner::Ssm {
                    stage: "thaw",
                    script: thaw,
                }),
            )
        }
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

/// A windows instance cannot run `--freeze ssm`'s shell scripts: why, without sending anything.
fn cannot_freeze(hooks: &Hooks, instance: &Instance) -> Option<String> {
    let windows = instance
        .machine
        .platform
        .as_deref()
        .is_some_and(|p| p.eq_ignore_ascii_case("windows"));
    (hooks.freeze.is_some() && windows).then(|| {
        "a Windows instance has no fsfreeze (AWS-RunShellScript is for Linux): use --pre-snapshot/--post-snapshot with VSS".to_string()
    })
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
    // What the hooks are told (EC2SNAP_DRY_RUN); the gate decides what is sent.
    let dry = gate::is_dry(ctx);
    let disks = plan::disks_to_snapshot(instance, ctx.cfg.no_root_device);
    // A run over many accounts and regions: which target the instance is in.
    let account = ctx.cfg.fleet.accounts.first().map(|a| a.name.as_str());
    let target = account
        .filter(|_| ctx.cfg.in_fleet)
        .map(|a| (a, ctx.ec2.region()));
    let env = |stage: &str, result: Option<&str>| {
        policy::environment(instance, &disks, dry, stage, result, target)
    };
    let (pre_hook, mut post_hook) = runners(hooks, instance, &disks, dry);
    let pre_stage = pre_hook
        .as_ref()
        .map(Runner::stage)
        .unwrap_or("pre-snapshot");
    let pre_started = Instant::now();
    let pre = match (&pre_hook, cannot_freeze(hooks, instance)) {
        (Some(_), Some(why)) => Some(Ran {
            outcome: Outcome::Unreachable(why),
            output: String::new(),
            took: Duration::ZERO,
        }),
        (Some(hook), None) => {
            let env = env("pre", None);
            Some(
                hook.run(ctx, instance, &env, hooks.timeout, Some(&ctx.shutdown))
                    .await,
            )
        }
        (None, _) => None,
    };
    let held = Instant::now();
    let pre_outcome = pre.as_ref().map(|r| &r.outcome);
    if matches!(pre_outcome, Some(Outcome::Unreachable(_))) {
        // Nothing reached the instance: nothing to thaw.
        post_hook = None;
    }
    let then = policy::after_pre(pre_outcome, hooks.on_failure);
    let what = |o: &Outcome| o.describe(hooks.timeout);
    // `--freeze`: what the freeze froze (nothing, when the snapshots are crash-consistent) and
    // whether every call was answered before the watchdog could thaw.
    let mut pending_claim: Option<(script::Froze, bool)> = None;
    match (then, pre_outcome) {
        (Then::Snapshot(c), outcome) => {
            let output = pre.as_ref().map(|r| r.output.as_str()).unwrap_or("");
            match (c, outcome) {
                (Consistency::Crash, Some(o @ Outcome::Unreachable(_))) => {
                    let line = msg::hook_unreachable(pre_stage, &instance.id, &what(o));
                    warn!("{line}");
                }
                (Consistency::Crash, Some(o)) => {
                    let line =
                        msg::hook_crash_consistent(pre_stage, &instance.id, &what(o), output);
                    warn!("{line}");
                }
                _ => {}
            }
            match hooks.freeze {
                // A freeze's claim is checked once the calls returned: every snapshot is made
                // `crash`, then those of the volumes it froze for the whole call are raised.
                Some(Freeze::Ssm { thaw_after }) => {
                    let plan = plan_for(Consistency::Crash);
                    snapshot::make(ctx, kind, instance, &plan, None, done).await;
                    // Whether every call was answered before the watchdog could thaw; the tag
                    // is raised after the thaw, which must not wait for it.
                    let froze = match c {
                        Consistency::Application => script::froze(output, &disks),
                        Consistency::Crash => script::Froze::default(),
                    };
                    let in_time =
                        Instant::now() < watchdog_deadline(pre_started, &froze, thaw_after);
                    pending_claim = Some((froze, in_time));
                }
                None => snapshot::make(ctx, kind, instance, &plan_for(c), None, done).await,
            }
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
    let claimed = match pending_claim {
        Some((froze, in_time)) => Some(claim(ctx, instance, &froze, in_time, done).await),
        None => None,
    };
    let made: Vec<&String> = done.created.keys().collect();
    let mut application: Vec<String> = match (&claimed, then) {
        (Some(volumes), _) => volumes.clone(),
        (None, Then::Snapshot(Consistency::Application)) => {
            made.iter().map(|v| v.to_string()).collect()
        }
        (None, _) => Vec::new(),
    };
    let consistency = if made.is_empty() {
        "none"
    } else if application.len() >= made.len() {
        "application"
    } else if application.is_empty() {
        "crash"
    } else {
        "mixed"
    };
    let frozen_ms = post.as_ref().and_then(|r| script::held_ms(&r.output));
    application.sort();
    info!(
        "{}",
        msg::hooks_done(
            &instance.id,
            consistency,
            &application,
            held_for.as_millis(),
            frozen_ms
        )
    );
    ctx.record.hooks(
        &instance.id,
        HookEntry {
            consistency: consistency.to_string(),
            application,
            pre: pre.map(|r| what(&r.outcome)),
            post: post.map(|r| what(&r.outcome)),
            held_ms: u64::try_from(held_for.as_millis()).unwrap_or(u64::MAX),
            frozen_ms,
        },
    );
}

/// How long before the watchdog may thaw, seen from here: it thaws `thaw_after` after the freeze
/// script's last freeze, which was at least `took` (the instance's own measure) after the
/// command was sent. Less a second, for the two clocks' grain.
fn watchdog_deadline(sent: Instant, froze: &script::Froze, thaw_after: Duration) -> Instant {
    let took = Duration::from_millis(froze.took_ms.unwrap_or(0));
    (sent + took + thaw_after)
        .checked_sub(Duration::from_secs(1))
        .unwrap_or(sent)
}

/// The volumes whose new snapshot is application-consistent: their filesystems were frozen
/// (the freeze said so) and every snapshot call of the instance was answered before the watchdog
/// could thaw. Those snapshots' tag is raised to `application`; the others stay `crash`.
async fn claim(
    ctx: &Ctx,
    instance: &Instance,
    froze: &script::Froze,
    in_time: bool,
    done: &Done,
) -> Vec<String> {
    // A dry run's planned snapshots have nothing to claim.
    let planned = done
        .created
        .values()
        .any(|s| crate::snapshot::plan::is_planned(&s.id));
    if planned || froze.volumes.is_empty() {
        return Vec::new();
    }
    if !in_time {
        warn!("{}", msg::freeze_too_short(&instance.id));
        return Vec::new();
    }
    let (mut volumes, mut ids) = (Vec::new(), Vec::new());
    for v in &froze.volumes {
        if let Some(s) = done.created.get(v) {
            volumes.push(v.clone());
            ids.push(s.id.clone());
        }
    }
    if ids.is_empty() {
        return Vec::new();
    }
    let tag = Change::Tag {
        ids: &ids,
        key: CONSISTENCY_TAG,
        value: "application",
    };
    match gate::send_through(ctx, &ctx.ec2, &tag, &instance.id)
        .await
        .answer()
    {
        Ok(_) => volumes,
        Err(e) => {
            warn!(
                "{}",
                msg::consistency_not_tagged(&instance.id, &ids, &e.to_string())
            );
            Vec::new()
        }
    }
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
