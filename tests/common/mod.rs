//! Test harness: a real EC2 emulator (moto server, with a movable clock) behind the fault-injecting
//! proxy, both on 127.0.0.1 and private to one test, and the real ec2snap binary pointed at them.
#![allow(dead_code)] // each test file uses its own part of the harness
#![allow(clippy::unwrap_used, clippy::expect_used)] // a test fails loudly, as it should

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

pub const REGION: &str = "eu-west-1";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The emulator's Python: `EC2SNAP_PYTHON`, else the project's `.venv` made by
/// `scripts/setup-emulator.sh`. Missing means failing loudly: a skipped test is not a pass.
pub fn python() -> PathBuf {
    if let Some(p) = std::env::var_os("EC2SNAP_PYTHON") {
        return PathBuf::from(p);
    }
    let venv = repo().join(".venv/bin/python");
    assert!(
        venv.exists(),
        "the EC2 emulator is not installed: run scripts/setup-emulator.sh (or set EC2SNAP_PYTHON to a Python with moto[ec2], flask and flask-cors)"
    );
    venv
}

/// A port nothing listens on, never the same twice in this process: tests start their labs in
/// parallel, and a port freed by one probe could otherwise be handed to two emulators at once
/// (the second fails to bind, and its lab would talk to the first one's emulator).
fn free_port() -> u16 {
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut given = GIVEN.lock().unwrap();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// A plain HTTP request to a local port; the body of the answer.
fn http(port: u16, method: &str, path: &str, body: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(("127.0.0.1", port))?;
    s.set_read_timeout(Some(Duration::from_secs(30)))?;
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    let mut answer = String::new();
    s.read_to_string(&mut answer)?;
    Ok(answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default())
}

pub struct Lab {
    moto: Child,
    proxy: Child,
    pub moto_port: u16,
    pub proxy_port: u16,
    pub dir: tempfile::TempDir,
    /// Seconds the binary's clock is moved by (`pin_clock`), like the emulator's.
    clock_offset: std::cell::Cell<i64>,
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = self.moto.kill();
        let _ = self.proxy.kill();
        let _ = self.moto.wait();
        let _ = self.proxy.wait();
    }
}

/// What one run of the binary gave.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Log lines without their timestamp: `[INFO] Working on instance ...`.
    pub fn lines(&self) -> Vec<String> {
        self.stderr.lines().map(strip_time).collect()
    }

    pub fn has(&self, line: &str) -> bool {
        self.lines().iter().any(|l| l == line)
    }

    pub fn count(&self, prefix: &str) -> usize {
        self.starting_with(prefix).len()
    }

    /// The log lines that start with `prefix`, in order.
    pub fn starting_with(&self, prefix: &str) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|l| l.starts_with(prefix))
            .collect()
    }

    /// `[INFO] Deleting snapshot ...` lines, in order.
    pub fn deleting(&self) -> Vec<String> {
        self.starting_with(DELETING)
    }

    /// `[INFO] Working on instance ...` lines, in order.
    pub fn working_on(&self) -> Vec<String> {
        self.starting_with(WORKING_ON)
    }
}

pub const DELETING: &str = "[INFO] Deleting snapshot";
pub const WORKING_ON: &str = "[INFO] Working on instance";

/// The two lines a run with errors prints on standard output.
pub fn error_summary(snapshot_errors: usize, deletion_errors: usize) -> String {
    format!("Number of snapshots errors: {snapshot_errors}\nNumber of snapshots deletion errors: {deletion_errors}\n")
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Drops the `YYYY-mm-dd HH:MM:SS,mmm ` prefix after checking its shape.
pub fn strip_time(line: &str) -> String {
    let b = line.as_bytes();
    let shaped = b.len() > 24
        && b[4] == b'-'
        && b[7] == b'-'
        && b[10] == b' '
        && b[13] == b':'
        && b[16] == b':'
        && b[19] == b','
        && b[23] == b' '
        && b[..23]
            .iter()
            .enumerate()
            .all(|(i, c)| [4, 7, 10, 13, 16, 19].contains(&i) || c.is_ascii_digit());
    if shaped {
        line[24..].to_string()
    } else {
        line.to_string()
    }
}

/// moto_server.py on a free port, once it holds it and answers; `None` when it exited (its port
/// was taken) or did not answer within 60 s.
fn start_moto(py: &Path, dir: &Path) -> Option<(Child, u16)> {
    let port = free_port();
    let mut moto = Command::new(py)
        .arg(repo().join("tests/emulator/moto_server.py"))
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .env("MOTO_CLOCK_FILE", dir.join("clock"))
        .env("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.join("moto.log")).unwrap())
        .spawn()
        .expect("start moto_server.py");
    // Bound: werkzeug says "Running on" once it holds the port; "in use" when it cannot.
    let log = dir.join("moto.log");
    let deadline = Instant::now() + Duration::from_secs(60);
    while Instant::now() < deadline {
        if moto.try_wait().ok().flatten().is_some() {
            let _ = moto.wait();
            return None;
        }
        let said = std::fs::read_to_string(&log).unwrap_or_default();
        if said.contains("Running on") && http(port, "GET", "/moto-api/", "").is_ok() {
            return Some((moto, port));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let _ = moto.kill();
    let _ = moto.wait();
    None
}

impl Lab {
    pub fn start() -> Lab {
        let py = python();
        let dir = tempfile::tempdir().unwrap();
        // moto on a port picked free: another process may take it before moto binds it (moto
        // then exits, "Address already in use", and the port answers for someone else). So moto
        // must be up on it, and still running, before the proxy points at it; else a new port.
        let (moto, moto_port) = (0..10)
            .find_map(|_| start_moto(&py, dir.path()))
            .unwrap_or_else(|| {
                panic!(
                    "moto did not start: {}",
                    std::fs::read_to_string(dir.path().join("moto.log")).unwrap_or_default()
                )
            });
        let mut proxy = Command::new(&py)
            .arg(repo().join("tests/emulator/fault_proxy.py"))
            .args([
                "--port",
                "0",
                "--upstream",
                &format!("http://127.0.0.1:{moto_port}"),
                "--clock",
                dir.path().join("clock").to_str().unwrap(),
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start fault_proxy.py");
        let mut first = String::new();
        BufReader::new(proxy.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        let proxy_port: u16 = first
            .trim()
            .strip_prefix("PORT ")
            .unwrap_or_else(|| panic!("fault proxy said {first:?}"))
            .parse()
            .unwrap();
        Lab {
            moto,
            proxy,
            moto_port,
            proxy_port,
            dir,
            clock_offset: std::cell::Cell::new(0),
        }
    }

    pub fn moto_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("moto.log")).unwrap_or_default()
    }

    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.proxy_port)
    }

    /// Moves the emulator's clock by `secs` (negative: into the past) until called again.
    pub fn set_clock(&self, secs: i64) {
        std::fs::write(self.dir.path().join("clock"), secs.to_string()).unwrap();
    }

    /// Runs the emulator and the binary "at" `at` (RFC 3339) from now on, so that a test does not
    /// depend on the day it runs: both clocks move by the same offset (the binary's through
    /// `EC2SNAP_CLOCK_OFFSET`, which debug builds read). Seeding resets the emulator's clock:
    /// pin after seeding. Returns the pinned time.
    pub fn pin_clock(&self, at: &str) -> chrono::DateTime<chrono::Utc> {
        let at = chrono::DateTime::parse_from_rfc3339(at)
            .unwrap()
            .with_timezone(&chrono::Utc);
        let offset = (at - chrono::Utc::now()).num_seconds();
        self.set_clock(offset);
        self.clock_offset.set(offset);
        at
    }

    fn ec2lab(&self, args: &[&str], stdin: Option<&str>) -> Value {
        self.ec2lab_at(self.moto_port, REGION, args, stdin)
    }

    /// ec2lab against a port (moto's, or the proxy's to see what ec2snap sees) and a region.
    fn ec2lab_at(&self, port: u16, region: &str, args: &[&str], stdin: Option<&str>) -> Value {
        self.ec2lab_as(port, region, None, args, stdin)
    }

    /// ec2lab in the account of `role` (moto keeps one per account, behind STS AssumeRole).
    fn ec2lab_as(
        &self,
        port: u16,
        region: &str,
        role: Option<&str>,
        args: &[&str],
        stdin: Option<&str>,
    ) -> Value {
        let mut cmd = Command::new(python());
        if let Some(role) = role {
            cmd.args([
                repo().join("scripts/ec2lab.py").to_str().unwrap(),
                "--role",
                role,
            ]);
        } else {
            cmd.arg(repo().join("scripts/ec2lab.py"));
        }
        cmd.args([
            "--endpoint",
            &format!("http://127.0.0.1:{port}"),
            "--region",
            region,
        ])
        .args(["--clock", self.dir.path().join("clock").to_str().unwrap()])
        .args(args)
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().unwrap();
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.unwrap_or("").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(
            out.status.success(),
            "ec2lab {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Seeds instances (see scripts/ec2lab.py for the spec); returns what was made.
    pub fn seed(&self, spec: Value) -> Value {
        self.ec2lab(&["seed"], Some(&spec.to_string()))
    }

    /// Seeds instances in the account of `role` (`None`: the base account) and `region`.
    pub fn seed_as(&self, role: Option<&str>, region: &str, spec: Value) -> Value {
        self.ec2lab_as(
            self.moto_port,
            region,
            role,
            &["seed"],
            Some(&spec.to_string()),
        )
    }

    /// As the account of `role`, copies `snapshot_id` of the lab's region (straight to moto):
    /// `{"id": ...}`, or `{"error": CODE}`.
    pub fn copy_as(&self, role: &str, snapshot_id: &str) -> Value {
        self.ec2lab_as(
            self.moto_port,
            REGION,
            Some(role),
            &["copy", snapshot_id],
            None,
        )
    }

    /// The snapshots of the account of `role` in `region`.
    pub fn snapshots_as(&self, role: Option<&str>, region: &str) -> Vec<Value> {
        let all = self.ec2lab_as(self.moto_port, region, role, &["snapshots"], None);
        all.as_array().unwrap().clone()
    }

    /// The instances of the account of `role` in `region`.
    pub fn instances_as(&self, role: Option<&str>, region: &str) -> Vec<Value> {
        let all = self.ec2lab_as(self.moto_port, region, role, &["instances"], None);
        all.as_array().unwrap().clone()
    }

    /// The snapshot locks, as the proxy keeps them (moto has none).
    pub fn locks(&self) -> Vec<Value> {
        let all = self.ec2lab_at(self.proxy_port, REGION, &["locks"], None);
        all.as_array().unwrap().clone()
    }

    /// Moves a snapshot to the archive tier, as the proxy keeps it (moto has no tiers).
    pub fn archive(&self, snapshot_id: &str) {
        self.ec2lab_at(self.proxy_port, REGION, &["archive", snapshot_id], None);
    }

    /// Locks a snapshot for `days` in governance mode, as someone else than ec2snap would.
    pub fn lock_outside(&self, snapshot_id: &str, days: u32) {
        self.ec2lab_at(
            self.proxy_port,
            REGION,
            &["lock", &format!("{snapshot_id}:{days}")],
            None,
        );
    }

    /// Registers an AMI whose root is this snapshot; its id.
    pub fn register_image(&self, snapshot_id: &str) -> String {
        // Through the proxy: moto keeps snapshots of its own under an image, AWS the ones named.
        let v = self.ec2lab_at(self.proxy_port, REGION, &["register", snapshot_id], None);
        v["image"].as_str().unwrap().to_string()
    }

    /// Unlocks a snapshot, as someone else than ec2snap would.
    pub fn unlock(&self, snapshot_id: &str) {
        self.ec2lab_at(self.proxy_port, REGION, &["unlock", snapshot_id], None);
    }

    pub fn snapshots(&self) -> Vec<Value> {
        self.ec2lab(&["snapshots"], None)
            .as_array()
            .unwrap()
            .clone()
    }

    /// This account's snapshots in another region, as ec2snap sees them through the proxy.
    pub fn snapshots_in(&self, region: &str) -> Vec<Value> {
        let all = self.ec2lab_at(self.proxy_port, region, &["snapshots"], None);
        all.as_array().unwrap().clone()
    }

    pub fn instances(&self) -> Vec<Value> {
        self.ec2lab(&["instances"], None)
            .as_array()
            .unwrap()
            .clone()
    }

    pub fn instance_state(&self, id: &str) -> String {
        self.instances()
            .iter()
            .find(|i| i["id"] == id)
            .map(|i| i["state"].as_str().unwrap().to_string())
            .unwrap_or_default()
    }

    /// An AMI made from the instance with CreateImage: its snapshots are then "in use".
    pub fn image(&self, instance_id: &str) -> Value {
        self.ec2lab(&["image", instance_id], None)
    }

    /// Detaches a volume from its instance (forced).
    pub fn detach(&self, volume_id: &str) {
        self.ec2lab(&["detach", volume_id], None);
    }

    /// Deletes a snapshot behind ec2snap's back (as an admin would by hand).
    pub fn delete_snapshot(&self, snapshot_id: &str) {
        self.ec2lab(&["delete", snapshot_id], None);
    }

    /// Detaches and deletes a volume: its snapshots become orphans.
    pub fn delete_volume(&self, volume_id: &str) {
        self.ec2lab(&["delete-volume", volume_id], None);
    }

    /// Every volume of the region: id, zone, type, size, iops, throughput, state, snapshot,
    /// encrypted, tags, attachments.
    pub fn volumes(&self) -> Vec<Value> {
        self.ec2lab(&["volumes"], None).as_array().unwrap().clone()
    }

    /// Sets one tag on a resource of the lab's region (straight to moto).
    pub fn tag_snapshot(&self, id: &str, key: &str, value: &str) {
        self.ec2lab(&["tag", &format!("{id}:{key}={value}")], None);
    }

    /// An SNS topic with an SQS queue subscribed to it (in moto): `{"topic": ARN, "queue": URL}`.
    pub fn sns_topic(&self, name: &str) -> Value {
        self.ec2lab(&["sns-topic", name], None)
    }

    /// An AWS Organization in moto (see ec2lab.py's `organization`).
    pub fn organization(&self, spec: Value) -> Value {
        self.ec2lab(&["organization"], Some(&spec.to_string()))
    }

    /// The messages waiting in an SQS queue (each an SNS envelope), taken off it.
    pub fn sqs_messages(&self, queue: &str) -> Vec<Value> {
        self.ec2lab(&["sqs-messages", queue], None)
            .as_array()
            .unwrap()
            .clone()
    }

    /// Every volume of the account of `role` in the lab's region.
    pub fn ec2lab_volumes_as(&self, role: &str) -> Vec<Value> {
        let all = self.ec2lab_as(self.moto_port, REGION, Some(role), &["volumes"], None);
        all.as_array().unwrap().clone()
    }

    /// Every volume of another region.
    pub fn volumes_in(&self, region: &str) -> Vec<Value> {
        let all = self.ec2lab_at(self.moto_port, region, &["volumes"], None);
        all.as_array().unwrap().clone()
    }

    /// Plays the SSM agent of `instance_id` on a fake Linux root (tests/campaign/fakeroot.py):
    /// `disks` as make_root takes them (`[{"volume_id", "device", "root", "mounts"}]`), `slow`
    /// `{mount point: seconds its freeze syncs}`. The root's path.
    pub fn machine(&self, instance_id: &str, disks: Value, slow: Value) -> PathBuf {
        let root = self.dir.path().join("roots").join(instance_id);
        let code = "import json, sys; sys.path.insert(0, sys.argv[1]); import fakeroot; \
                    fakeroot.make_root(sys.argv[2], sys.argv[3], json.loads(sys.argv[4]), slow=json.loads(sys.argv[5]))";
        let status = Command::new(python())
            .args(["-c", code])
            .arg(repo().join("tests/campaign"))
            .arg(&root)
            .args([instance_id, &disks.to_string(), &slow.to_string()])
            .status()
            .unwrap();
        assert!(status.success());
        let body = json!({ instance_id: {"root": root.to_str().unwrap()} });
        http(self.proxy_port, "POST", "/__machines", &body.to_string()).unwrap();
        root
    }

    /// POST /__states: the states DescribeSnapshots answers show for these snapshots, whatever
    /// moto says (`{"snap-1": "error"}`).
    pub fn states(&self, body: Value) {
        http(self.proxy_port, "POST", "/__states", &body.to_string()).unwrap();
    }

    /// POST /__machines: the instances whose SSM agent the proxy plays (see fault_proxy.py).
    pub fn machines(&self, body: Value) {
        http(self.proxy_port, "POST", "/__machines", &body.to_string()).unwrap();
    }

    /// A fake root's `intervals` (each freeze: mnt, start, end) or `frozen_now`, from fakeroot.py.
    pub fn fake_root(&self, root: &Path, what: &str) -> Value {
        let code = format!(
            "import json, sys; sys.path.insert(0, sys.argv[1]); import fakeroot; print(json.dumps(fakeroot.{what}(sys.argv[2])))"
        );
        let campaign = repo().join("tests/campaign");
        python_json(&code, &[campaign.as_os_str(), root.as_os_str()])
    }

    /// The parameters of every request the binary sent that changes something, in order.
    pub fn requests(&self, action: &str) -> Vec<Value> {
        let all: Value =
            serde_json::from_str(&http(self.proxy_port, "GET", "/__requests", "").unwrap())
                .unwrap();
        all.as_array()
            .unwrap()
            .iter()
            .filter(|r| r["Action"] == action)
            .cloned()
            .collect()
    }

    pub fn faults(&self, rules: Value) {
        http(self.proxy_port, "POST", "/__faults", &rules.to_string()).unwrap();
    }

    pub fn clear_faults(&self) {
        http(self.proxy_port, "DELETE", "/__faults", "").unwrap();
    }

    fn proxy_stats(&self, key: &str) -> Value {
        let v: Value =
            serde_json::from_str(&http(self.proxy_port, "GET", "/__stats", "").unwrap()).unwrap();
        v[key].clone()
    }

    fn counted(&self, key: &str) -> BTreeMap<String, u64> {
        let v = self.proxy_stats(key);
        let map = v.as_object().unwrap().iter();
        map.map(|(k, n)| (k.clone(), n.as_u64().unwrap())).collect()
    }

    /// Requests the binary sent, by EC2 Action.
    pub fn stats(&self) -> BTreeMap<String, u64> {
        self.counted("counts")
    }

    /// The actions sent that change something: not Describe*, not a permission check (DryRun).
    pub fn writes(&self) -> Vec<String> {
        self.stats()
            .into_keys()
            // GetCallerIdentity (`--vault-role`) and GetCommandInvocation read too; AssumeRole
            // opens a session and changes no resource.
            .filter(|a| {
                !a.starts_with("Describe")
                    && !a.starts_with("DryRun:")
                    && !a.starts_with("Get")
                    && *a != "AssumeRole"
            })
            .collect()
    }

    /// `KEYID/region` of each signed request the binary sent, counted.
    pub fn signers(&self) -> BTreeMap<String, u64> {
        self.counted("signers")
    }

    /// The distinct `KEYID/region` signers, sorted.
    pub fn signer_keys(&self) -> Vec<String> {
        self.signers().into_keys().collect()
    }

    /// The most requests the proxy was answering at once: all, and writes (not Describe*).
    pub fn max_in_flight(&self) -> (u64, u64) {
        let all = self.proxy_stats("max_in_flight").as_u64().unwrap();
        (
            all,
            self.proxy_stats("max_writes_in_flight").as_u64().unwrap(),
        )
    }

    pub fn reset_stats(&self) {
        http(self.proxy_port, "DELETE", "/__stats", "").unwrap();
    }

    /// The binary with a clean environment: no inherited AWS_* variables, an empty HOME, dummy
    /// credentials, the proxy as endpoint and the test region.
    pub fn cmd(&self) -> Command {
        let mut cmd = bare_cmd(self.dir.path());
        cmd.env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .args(["--endpoint-url", &self.endpoint(), "-r", REGION]);
        if self.clock_offset.get() != 0 {
            cmd.env("EC2SNAP_CLOCK_OFFSET", self.clock_offset.get().to_string());
        }
        cmd
    }

    /// `script(1)` running the binary (with the lab's endpoint and region, then `args`) on a
    /// pseudo-terminal: what it drew there. `env` goes to the binary too.
    pub fn on_terminal(&self, args: &str, env: &[(&str, &str)]) -> (bool, String) {
        let cmd = format!(
            "{} --endpoint-url {} -r {REGION} {args}",
            env!("CARGO_BIN_EXE_ec2snap"),
            self.endpoint()
        );
        let mut script = Command::new("script");
        script
            .args(["-qec", &cmd, "/dev/null"])
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", self.dir.path())
            .env("TERM", "xterm")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .envs(env.iter().copied())
            .stdin(Stdio::null());
        let out = script.output().unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    pub fn run(&self, args: &[&str]) -> Run {
        run_cmd(self.cmd().args(args))
    }

    /// Starts the binary and lets the test read its log lines as they come.
    pub fn spawn(&self, args: &[&str]) -> Live {
        spawn_cmd(self.cmd().args(args))
    }
}

/// Starts a command of the binary and lets the test read its log lines as they come.
pub fn spawn_cmd(cmd: &mut Command) -> Live {
    let mut child = cmd
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut all = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(strip_time(&line));
            all.push(strip_time(&line));
        }
        all
    });
    Live { child, rx, reader }
}

/// A running ec2snap whose log lines (without timestamps) arrive as they are written.
pub struct Live {
    child: Child,
    rx: std::sync::mpsc::Receiver<String>,
    reader: std::thread::JoinHandle<Vec<String>>,
}

impl Live {
    /// Waits (at most a minute) for `count` lines that end with `suffix`.
    pub fn wait_for(&self, suffix: &str, count: usize) {
        let mut seen = 0;
        while seen < count {
            let line = self
                .rx
                .recv_timeout(Duration::from_secs(60))
                .unwrap_or_else(|_| panic!("no line ending with {suffix:?}"));
            if line.ends_with(suffix) {
                seen += 1;
            }
        }
    }

    /// Sends a real signal (`TERM`, `INT`, `HUP`) to the process.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the exit; its code and all its log lines.
    pub fn finish(mut self) -> (Option<i32>, Vec<String>) {
        let code = self.child.wait().unwrap().code();
        (code, self.reader.join().unwrap())
    }
}

/// The binary with no AWS settings at all and HOME set to `home`.
pub fn bare_cmd(home: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ec2snap"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        // Never wait on an instance metadata service that is not there.
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(Stdio::null());
    cmd
}

pub fn run_cmd(cmd: &mut Command) -> Run {
    let out: Output = cmd.output().expect("run ec2snap");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// `{"instances": [...]}` with `n` alike instances named `prefix1..n`, one data volume each.
pub fn fleet(prefix: &str, n: usize) -> Value {
    let list: Vec<Value> = (1..=n)
        .map(|i| json!({"name": format!("{prefix}{i}"), "volumes": [{"device": "/dev/sdb"}]}))
        .collect();
    json!({ "instances": list })
}

/// A lab with web1: its root, and /dev/sdb whose only snapshot is 10 days old.
pub fn web_lab_with_old_snapshot() -> (Lab, Value) {
    let lab = Lab::start();
    let seeded = lab.seed(
        json!({"instances": [{"name": "web1", "volumes": [{"device": "/dev/sdb"}],
        "snapshots": [{"device": "/dev/sdb", "age": 10 * 86_400}]}]}),
    );
    (lab, seeded)
}

/// DescribeSnapshots answers after the first (retention's listing) show `state` instead of
/// completed, `times` times (-1: always).
pub fn after_listing(lab: &Lab, state: &str, times: i64) {
    lab.faults(
        json!([{"action": "DescribeSnapshots", "skip": 1, "times": times,
        "rewrite": [["<status>completed</status>", format!("<status>{state}</status>")],
                    ["<progress>100%</progress>", "<progress>40%</progress>"]]}]),
    );
}

/// The lab's snapshots that are not among `old`.
pub fn new_snapshots(lab: &Lab, old: &[String]) -> Vec<Value> {
    lab.snapshots()
        .into_iter()
        .filter(|s| !old.iter().any(|o| s["id"] == o.as_str()))
        .collect()
}

/// The seeded instance with this Name.
pub fn seeded_instance<'a>(seeded: &'a Value, name: &str) -> &'a Value {
    let all = seeded["instances"].as_array().unwrap();
    let found = all.iter().find(|i| i["name"] == name);
    found.unwrap_or_else(|| panic!("no seeded instance {name}"))
}

/// The ids of the snapshots seeded for the instance with this Name, in seed order.
pub fn seeded_snapshot_ids(seeded: &Value, name: &str) -> Vec<String> {
    let snaps = seeded_instance(seeded, name)["snapshots"]
        .as_array()
        .unwrap();
    snaps
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

/// A Prometheus text file read by the Prometheus client library's own parser: one entry per
/// sample, `{"name": ..., "labels": {...}, "value": ...}`.
pub fn parse_metrics(path: &Path) -> Vec<Value> {
    let script = "import json, sys\n\
from prometheus_client.parser import text_string_to_metric_families\n\
out = [{'name': s.name, 'labels': s.labels, 'value': s.value}\n\
       for f in text_string_to_metric_families(open(sys.argv[1]).read()) for s in f.samples]\n\
print(json.dumps(out))\n";
    python_json(script, &[path.as_os_str()])
        .as_array()
        .unwrap()
        .clone()
}

/// What a Python snippet run with the emulator's Python prints, as JSON.
fn python_json(code: &str, args: &[&std::ffi::OsStr]) -> Value {
    let out = Command::new(python())
        .args(["-c", code])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// The value of one metric in parsed samples.
pub fn metric(samples: &[Value], name: &str) -> f64 {
    let found = samples.iter().find(|s| s["name"] == name);
    found.unwrap_or_else(|| panic!("no {name} in {samples:?}"))["value"]
        .as_f64()
        .unwrap()
}

/// The ids of snapshots as ec2lab lists them.
pub fn snapshot_ids(snaps: &[Value]) -> std::collections::BTreeSet<String> {
    snaps
        .iter()
        .map(|s| s["id"].as_str().unwrap().to_string())
        .collect()
}

/// The id of the seeded instance with this Name.
pub fn id_of(seeded: &Value, name: &str) -> String {
    seeded_instance(seeded, name)["id"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The volume id of a seeded instance's device.
pub fn vol_of(seeded: &Value, name: &str, device: &str) -> String {
    let vol = &seeded_instance(seeded, name)["volumes"][device];
    vol.as_str().unwrap().to_string()
}
