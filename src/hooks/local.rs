//! One hook command: `sh -c CMD` in a process group of its own, with the instance's environment
//! and its output kept for the log, bounded by `--hook-timeout` and (for a pre hook) by the run's
//! signal; at either limit the whole process group is killed.

use crate::hooks::policy::Outcome;
use crate::signals::Shutdown;
use std::process::Stdio;
use std::time::{Duration, Instant};
use tokio::io::AsyncReadExt;

/// How a hook ran.
#[derive(Debug)]
pub struct Ran {
    pub outcome: Outcome,
    /// Its standard output and error, the last `KEPT` bytes.
    pub output: String,
    pub took: Duration,
}

/// The most output kept of a hook, its end.
const KEPT: usize = 2_000;

/// How long the output is still read once the hook's shell exited: a background process it left
/// (a session holding a lock until the post hook) may keep the pipe open.
const OUTPUT_GRACE: Duration = Duration::from_millis(200);

/// Kills a hook's process group.
fn kill_group(pid: Option<u32>) {
    if let Some(pid) = pid.and_then(|p| i32::try_from(p).ok()) {
        // SAFETY: killpg only sends a signal; the group is the one this hook was started in.
        unsafe {
            libc::killpg(pid, libc::SIGKILL);
        }
    }
}

/// Reads a pipe to its end, keeping its last `KEPT` bytes.
async fn read_all<R: tokio::io::AsyncRead + Unpin>(pipe: Option<R>) -> Vec<u8> {
    let mut kept = Vec::new();
    let Some(mut pipe) = pipe else {
        return kept;
    };
    let mut buf = [0u8; 4096];
    while let Ok(n) = pipe.read(&mut buf).await {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > 2 * KEPT {
            kept.drain(..kept.len() - KEPT);
        }
    }
    kept
}

/// Runs `command` through `sh -c` with `env` added to this process's environment. With
/// `interrupt`, a signal to the run kills it too.
pub async fn run(
    command: &str,
    env: &[(String, String)],
    timeout: Duration,
    interrupt: Option<&Shutdown>,
) -> Ran {
    let started = Instant::now();
    let mut cmd = tokio::process::Command::new("sh");
    cmd.arg("-c")
        .arg(command)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own group, so that the timeout kills what it started too, and a Ctrl-C at the
        // terminal reaches ec2snap, which then decides.
        .process_group(0)
        .kill_on_drop(true);
    let mut child = match cmd.spawn() {
        Ok(child) => child,
        Err(e) => {
            return Ran {
                outcome: Outcome::NotStarted(e.to_string()),
                output: String::new(),
                took: started.elapsed(),
            }
        }
    };
    let pid = child.id();
    let (out, err) = (child.stdout.take(), child.stderr.take());
    let reader = tokio::spawn(async move {
        let (mut out, err) = tokio::join!(read_all(out), read_all(err));
        out.extend(err);
        out
    });
    let signal = async {
        match interrupt {
            Some(shutdown) => shutdown.wait().await,
            None => std::future::pending().await,
        }
    };
    let outcome = tokio::select! {
        status = child.wait() => match status {
            Ok(s) if s.success() => Outcome::Ok,
            Ok(s) => Outcome::Failed(s.code()),
            Err(e) => Outcome::NotStarted(e.to_string()),
        },
        _ = tokio::time::sleep(timeout) => {
            kill_group(pid);
            let _ = child.wait().await;
            Outcome::TimedOut
        }
        _ = signal => {
            kill_group(pid);
            let _ = child.wait().await;
            Outcome::Interrupted
        }
    };
    let output = match tokio::time::timeout(OUTPUT_GRACE, reader).await {
        Ok(Ok(bytes)) => {
            let text = String::from_utf8_lossy(&bytes).into_owned();
            let start = text.len().saturating_sub(KEPT);
            let start = (start..text.len())
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(text.len());
            text[start..].trim_end().to_string()
        }
        _ => String::new(),
    };
    Ran {
        outcome,
        output,
        took: started.elapsed(),
    }
}
