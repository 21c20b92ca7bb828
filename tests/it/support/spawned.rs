//! A command running in the background (a docker CLI stream: events, logs -f, attach, stats; or `mtswarm join`),
//! its stdout read line by line as it comes.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::{exit_code, kill_tree, Output};

/// A docker CLI running in the background, its stdout read line by line.
pub struct Spawned {
    desc: String,
    child: Child,
    stdin: Option<std::process::ChildStdin>,
    lines: Receiver<String>,
    /// Every stdout line read so far.
    pub seen: Vec<String>,
    stderr: Arc<Mutex<Vec<u8>>>,
}

impl Spawned {
    pub(super) fn start(cmd: &mut Command, desc: String, with_stdin: bool) -> Spawned {
        cmd.stdin(if with_stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = cmd.spawn().unwrap_or_else(|e| panic!("cannot spawn `{desc}`: {e}"));
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().unwrap();
        let mut stderr_pipe = child.stderr.take().unwrap();
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            let mut reader = BufReader::new(stdout);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = String::from_utf8_lossy(&buf).trim_end_matches(['\n', '\r']).to_string();
                        if tx.send(line).is_err() {
                            break;
                        }
                    }
                }
            }
        });
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let sink = stderr.clone();
        thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while let Ok(n) = stderr_pipe.read(&mut buf) {
                if n == 0 {
                    break;
                }
                sink.lock().unwrap().extend_from_slice(&buf[..n]);
            }
        });
        Spawned { desc, child, stdin, lines, seen: Vec::new(), stderr }
    }

    /// Starts the real `mtswarm ARGS` in the background, for commands that run until stopped (`join`).
    pub fn mtswarm(args: &[&str]) -> Spawned {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_mtswarm"));
        cmd.args(args);
        Spawned::start(&mut cmd, format!("mtswarm {}", args.join(" ")), false)
    }

    /// Sends SIGTERM to the command itself, as a service manager stopping it would.
    pub fn terminate(&self) {
        let status = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status();
        assert!(status.as_ref().is_ok_and(|s| s.success()), "`{}`: kill -TERM: {status:?}", self.desc);
    }

    /// Writes to the command's stdin (see `Client::spawn_with_stdin`).
    pub fn write_stdin(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("spawned without a stdin pipe");
        stdin
            .write_all(bytes)
            .and_then(|_| stdin.flush())
            .unwrap_or_else(|e| panic!("`{}`: writing stdin: {e}", self.desc));
    }

    /// Closes the command's stdin: it sees EOF.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    fn stderr_text(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Waits for a stdout line matching `pred`; fails the test after `timeout` or when stdout ends first.
    pub fn expect_line(&mut self, what: &str, timeout: Duration, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    kill_tree(&mut self.child);
                    panic!(
                        "`{}`: no line {what} within {timeout:?}; lines: {:?}; stderr: {}",
                        self.desc,
                        self.seen,
                        self.stderr_text()
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().ok();
                    panic!(
                        "`{}` ended ({status:?}) before a line {what}; lines: {:?}; stderr: {}",
                        self.desc,
                        self.seen,
                        self.stderr_text()
                    )
                }
            }
        }
    }

    /// Waits for the command to end by itself (failing the test after `timeout`); returns its output.
    pub fn finish(mut self, timeout: Duration) -> Output {
        self.close_stdin();
        let deadline = Instant::now() + timeout;
        let status = loop {
            match self.child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(5)),
                _ => {
                    kill_tree(&mut self.child);
                    while let Ok(line) = self.lines.try_recv() {
                        self.seen.push(line);
                    }
                    panic!(
                        "`{}` did not end within {timeout:?}; lines: {:?}; stderr: {}",
                        self.desc,
                        self.seen,
                        self.stderr_text()
                    );
                }
            }
        };
        // The reader thread ends at EOF, which follows the exit.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(10)) {
            self.seen.push(line);
        }
        let stdout = self.seen.join("\n");
        Output {
            desc: self.desc.clone(),
            code: exit_code(status),
            signal: status.signal(),
            stdout_bytes: stdout.clone().into_bytes(),
            stdout,
            stderr: self.stderr_text(),
        }
    }

    /// Kills the command (as a user's Ctrl-C or a dropped connection would end it).
    pub fn kill(&mut self) {
        kill_tree(&mut self.child);
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        kill_tree(&mut self.child);
    }
}
