//! What every instance's work shares: the config, the AWS client, the signal, the volume tags
//! fetched up front, and the `--parallel` permits for snapshot and delete calls.

use crate::act::wait::Waiter;
use crate::aws::Ec2;
use crate::config::Config;
use crate::model::Tags;
use crate::output::messages as msg;
use crate::output::record::Record;
use crate::signals::Shutdown;
use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

pub struct Ctx {
    pub cfg: Config,
    pub ec2: Arc<Ec2>,
    pub shutdown: Shutdown,
    /// Tags of the volumes to snapshot, fetched in batches up front (see `run`).
    pub volume_tags: HashMap<String, Tags>,
    /// What the run did, for `--report` and `--metrics-file`.
    pub record: Arc<Record>,
    /// `--wait`: the snapshots being waited for.
    pub waiter: Arc<Waiter>,
    /// `--parallel` permits shared by every CreateSnapshot and DeleteSnapshot of the run, so that
    /// the last instances of a run can use the calls the finished ones no longer need.
    permits: Semaphore,
}

impl Ctx {
    pub fn new(
        cfg: Config,
        ec2: Ec2,
        shutdown: Shutdown,
        volume_tags: HashMap<String, Tags>,
        record: Arc<Record>,
    ) -> Ctx {
        let permits = Semaphore::new(cfg.parallel);
        Ctx {
            cfg,
            ec2: Arc::new(ec2),
            shutdown,
            volume_tags,
            record,
            waiter: Arc::new(Waiter::default()),
            permits,
        }
    }

    /// A log line whose original text names no instance, with the id when lines may interleave.
    pub fn line(&self, text: &str, instance_id: &str) -> String {
        msg::for_instance(text, instance_id, self.cfg.parallel)
    }

    /// Runs `call` on each item: one after the other with `--parallel 1` (the original's order),
    /// else concurrently within the run's `--parallel` permits. A signal stops it from starting
    /// more. Results come in the order the calls end.
    pub async fn calls<T, R, F, Fut>(self: &Arc<Self>, items: Vec<T>, call: F) -> Vec<R>
    where
        T: Send + 'static,
        R: Send + 'static,
        F: Fn(Arc<Ctx>, T) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = R> + Send + 'static,
    {
        let mut out = Vec::with_capacity(items.len());
        if self.cfg.parallel == 1 {
            for item in items {
                if self.shutdown.is_set() {
                    break;
                }
                out.push(call(Arc::clone(self), item).await);
            }
            return out;
        }
        let mut set = JoinSet::new();
        for item in items {
            let (ctx, call) = (Arc::clone(self), call.clone());
            let task = async move {
                // The semaphore is never closed, so acquiring cannot fail.
                let _permit = ctx.permits.acquire().await.ok();
                if ctx.shutdown.is_set() {
                    return None;
                }
                Some(call(Arc::clone(&ctx), item).await)
            };
            set.spawn(tracing::Instrument::in_current_span(task));
        }
        while let Some(joined) = set.join_next().await {
            match joined {
                Ok(r) => out.extend(r),
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(_) => {}
            }
        }
        out
    }
}
