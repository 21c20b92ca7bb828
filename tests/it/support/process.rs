//! Running a command to its end with a deadline, and what it printed.

use std::fmt;
use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long one docker CLI command may take before the test fails: a hang in the gateway must show as a
/// failure, never as a stuck CI.
pub const CLI_TIMEOUT: Duration = Duration::from_secs(60);

/// The result of one finished command.
pub struct Output {
    pub desc: String,
    /// The exit code; for a command killed by a signal, 128 + the signal, as a shell reports it.
    pub code: Option<i32>,
    /// The signal that killed the command, if one did.
    pub signal: Option<i32>,
    pub stdout: String,
    pub stdout_bytes: Vec<u8>,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }
}

impl fmt::Display for Output {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` exited with {:?}{}\n--- stdout ---\n{}\n--- stderr ---\n{}\n---",
            self.desc,
            self.code,
            self.signal.map(|s| format!(" (killed by signal {s})")).unwrap_or_default(),
            self.stdout,
            self.stderr
        )
    }
}

/// Options for one command.
#[derive(Default)]
pub struct RunOpts {
    /// Bytes piped to stdin, which is then closed; `None` gives `/dev/null`.
    pub stdin: Option<Vec<u8>>,
    /// More environment.
    pub env: Vec<(String, String)>,
    /// Defaults to `CLI_TIMEOUT`.
    pub timeout: Option<Duration>,
}

pub(super) fn exit_code(status: ExitStatus) -> Option<i32> {
    status.code().or_else(|| status.signal().map(|s| 128 + s))
}

/// Kills the process group that `child` leads (a pty's shell and the docker CLI in it too), then reaps it.
pub(super) fn kill_tree(child: &mut Child) {
    let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", child.id())]).stderr(Stdio::null()).status();
    let _ = child.kill();
    let _ = child.wait();
}

fn reader<R: Read + Send + 'static>(mut r: R) -> thread::JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = r.read_to_end(&mut buf);
        buf
    })
}

/// Runs `cmd` to its end with a deadline; `Err` (with what it printed) when it had to be killed.
pub(super) fn run_command(mut cmd: Command, desc: String, opts: RunOpts) -> Result<Output, String> {
    let timeout = opts.timeout.unwrap_or(CLI_TIMEOUT);
    cmd.envs(opts.env.iter().map(|(k, v)| (k, v)))
        .stdin(if opts.stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = cmd.spawn().map_err(|e| format!("cannot spawn `{desc}`: {e}"))?;
    if let Some(input) = opts.stdin {
        let mut stdin = child.stdin.take().unwrap();
        thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let out = reader(child.stdout.take().unwrap());
    let err = reader(child.stderr.take().unwrap());
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
            _ => {
                kill_tree(&mut child);
                break None;
            }
        }
    };
    let stdout_bytes = out.join().unwrap_or_default();
    let output = Output {
        desc,
        code: status.and_then(exit_code),
        signal: status.and_then(|s| s.signal()),
        stdout: String::from_utf8_lossy(&stdout_bytes).into_owned(),
        stdout_bytes,
        stderr: String::from_utf8_lossy(&err.join().unwrap_or_default()).into_owned(),
    };
    match status {
        Some(_) => Ok(output),
        None => Err(format!("timed out after {timeout:?} and killed: {output}")),
    }
}

/// Runs a prepared command (`mtswarm`, `docker-compose`) to its end, failing the test if it has to be killed
/// after `timeout`.
pub fn run_bounded(cmd: Command, desc: String, timeout: Duration) -> Output {
    run_command(cmd, desc, RunOpts { timeout: Some(timeout), ..RunOpts::default() }).unwrap_or_else(|e| panic!("{e}"))
}
