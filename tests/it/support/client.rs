//! The docker CLI 28 as one tenant: its own config directory with the auth headers, run to its end, in a pty,
//! or in the background.

use std::path::{Path, PathBuf};
use std::process::Command;

use super::{image, run_command, Http, Output, RunOpts, Spawned, Target};

/// The docker CLI 28.x. `/usr/bin/docker` is Debian's 20.10 client, which is not the one under test.
const DOCKER: &str = "/usr/local/bin/docker";

/// The docker CLI 28 as one tenant: `-H <gateway> --config <its own dir with the auth headers>`.
#[derive(Clone)]
pub struct Client {
    pub(super) host: String,
    pub(super) config: PathBuf,
    pub tenant_id: String,
    pub(super) token: String,
    /// Global flags before every command: how this client speaks TLS (see `Client::tls_verify`), or none.
    pub(super) flags: Vec<String>,
}

impl Client {
    /// `FLAGS ARGS`: the client's global flags, then the command.
    fn with_flags<'a>(&'a self, args: &[&'a str]) -> Vec<&'a str> {
        self.flags.iter().map(String::as_str).chain(args.iter().copied()).collect()
    }

    /// The same tenant through another listener (e.g. the gateway's unix socket).
    pub fn via(&self, host: &str) -> Client {
        Client { host: host.to_string(), ..self.clone() }
    }

    pub fn host(&self) -> &str {
        &self.host
    }

    /// Runs `docker ARGS` with options; fails the test only when the command has to be killed.
    pub fn run(&self, args: &[&str], opts: RunOpts) -> Output {
        let (cmd, desc) = docker_command(&self.host, Some(&self.config), &self.with_flags(args));
        run_command(cmd, desc, opts).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Runs `ARGS` with another docker CLI binary (e.g. Debian's 20.10 client, `/usr/bin/docker`).
    pub fn run_cli(&self, cli: &str, args: &[&str], opts: RunOpts) -> Output {
        let (cmd, desc) = docker_command_of(cli, &self.host, Some(&self.config), &self.with_flags(args));
        run_command(cmd, desc, opts).unwrap_or_else(|e| panic!("{e}"))
    }

    /// This tenant's docker CLI configuration directory (its `config.json` holds the auth headers).
    pub fn config_dir(&self) -> &Path {
        &self.config
    }

    /// This tenant's token, as its `config.json` sends it.
    pub fn token(&self) -> &str {
        &self.token
    }

    /// Runs `docker ARGS`.
    pub fn docker(&self, args: &[&str]) -> Output {
        self.run(args, RunOpts::default())
    }

    /// Runs `docker ARGS` with `input` piped to stdin.
    pub fn docker_stdin(&self, args: &[&str], input: impl Into<Vec<u8>>) -> Output {
        self.run(args, RunOpts { stdin: Some(input.into()), ..RunOpts::default() })
    }

    /// Asserts that `docker ARGS` succeeds; returns its stdout trimmed.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(out.success(), "expected success: {out}");
        out.stdout.trim().to_string()
    }

    /// `docker run -d --name NAME IMAGE sh -c SCRIPT` (the test image), asserting success; returns the id.
    pub fn run_detached_sh(&self, name: &str, script: &str) -> String {
        self.ok(&["run", "-d", "--name", name, image(), "sh", "-c", script])
    }

    /// Asserts that `docker ARGS` fails; returns its stderr.
    pub fn fails(&self, args: &[&str]) -> String {
        let out = self.docker(args);
        assert!(!out.success(), "expected failure: {out}");
        out.stderr
    }

    /// Runs `docker ARGS` in a pty (`script`), writing `input` to the terminal. For `-it`.
    pub fn pty(&self, args: &[&str], input: &str) -> Output {
        let mut line = format!(
            "{} -H {} --config {}",
            DOCKER,
            shell_quote(&self.host),
            shell_quote(&self.config.display().to_string())
        );
        for arg in self.with_flags(args) {
            line.push(' ');
            line.push_str(&shell_quote(arg));
        }
        let mut cmd = Command::new("script");
        cmd.args(["-qec", &line, "/dev/null"])
            .env("SHELL", "/bin/sh")
            .env("TERM", "xterm")
            .env("DOCKER_CLI_HINTS", "false")
            .env_remove("DOCKER_HOST")
            .env_remove("DOCKER_CONTEXT")
            .env_remove("DOCKER_API_VERSION");
        let desc = format!("script -qec \"{line}\" /dev/null");
        run_command(cmd, desc, RunOpts { stdin: Some(input.as_bytes().to_vec()), ..RunOpts::default() })
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Starts `docker ARGS` in the background, for streams (events, logs -f, attach, stats).
    pub fn spawn(&self, args: &[&str]) -> Spawned {
        let (mut cmd, desc) = docker_command(&self.host, Some(&self.config), &self.with_flags(args));
        Spawned::start(&mut cmd, desc, false)
    }

    /// Like `spawn`, with a stdin pipe that stays open until `Spawned::close_stdin` (or the end).
    pub fn spawn_with_stdin(&self, args: &[&str]) -> Spawned {
        let (mut cmd, desc) = docker_command(&self.host, Some(&self.config), &self.with_flags(args));
        Spawned::start(&mut cmd, desc, true)
    }

    /// Raw HTTP to the same endpoint with this tenant's headers.
    pub fn http(&self) -> Http {
        Http {
            target: Target::parse(&self.host),
            headers: vec![
                ("X-Auth-Token".to_string(), self.token.clone()),
                ("X-Auth-TenantId".to_string(), self.tenant_id.clone()),
            ],
        }
    }
}

pub(super) fn docker_command(host: &str, config: Option<&Path>, args: &[&str]) -> (Command, String) {
    docker_command_of(DOCKER, host, config, args)
}

pub(super) fn docker_command_of(cli: &str, host: &str, config: Option<&Path>, args: &[&str]) -> (Command, String) {
    let mut cmd = Command::new(cli);
    for var in [
        "DOCKER_HOST",
        "DOCKER_CONTEXT",
        "DOCKER_API_VERSION",
        "DOCKER_CUSTOM_HEADERS",
        "DOCKER_TLS_VERIFY",
        "DOCKER_CERT_PATH",
        "DOCKER_CONFIG",
        "DOCKER_BUILDKIT",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("DOCKER_CLI_HINTS", "false").args(["-H", host]);
    if let Some(config) = config {
        cmd.arg("--config").arg(config);
    }
    cmd.args(args);
    (cmd, format!("{cli} -H {host} {}", args.join(" ")))
}

/// Quotes `s` for `sh -c`.
fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}
