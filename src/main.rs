//! The `mtswarm` command line.

use std::io::Write;

use anyhow::Context;
use clap::{Parser, Subcommand};

use mtswarm::config::{Config, Env, RawManage};

#[derive(Parser)]
#[command(name = "mtswarm", version, about = "A multi-tenant Docker Engine API endpoint and cluster manager")]
struct Cli {
    /// Log at debug level (same as --log-level debug).
    #[arg(long, global = true)]
    debug: bool,
    /// Log level or filter: error, warn, info, debug, trace, or a tracing filter such as `mtswarm=debug`.
    #[arg(short = 'l', long, global = true, env = "MTSWARM_LOG", default_value = "info")]
    log_level: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the Docker Engine API in front of the engines named by DISCOVERY.
    Manage {
        /// Address to listen on: tcp://ADDR:PORT or unix:///PATH; may be repeated. Default tcp://127.0.0.1:2376.
        #[arg(short = 'H', long = "host")]
        hosts: Vec<String>,
        /// Seconds to wait for a connection to an engine before calling it unavailable.
        #[arg(long, default_value_t = 3.0)]
        engine_connect_timeout: f64,
        /// The engines: an engine URL (tcp://HOST:PORT, unix:///PATH) or nodes://HOST:PORT,HOST:PORT.
        /// Default: the local engine, unix:///var/run/docker.sock.
        discovery: Option<String>,
    },
}

fn main() {
    let cli = Cli::parse();
    if let Err(e) = real_main(cli) {
        eprintln!("mtswarm: {e:#}");
        std::process::exit(1);
    }
}

fn real_main(cli: Cli) -> anyhow::Result<()> {
    let filter = if cli.debug { "debug".to_string() } else { cli.log_level.clone() };
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&filter).context("bad --log-level")?)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let env = Env::from_process();
    match cli.command {
        Command::Manage { hosts, engine_connect_timeout, discovery } => {
            let raw = RawManage { hosts, discovery, engine_connect_timeout_secs: Some(engine_connect_timeout) };
            let config = Config::from_raw(&raw, &env).map_err(anyhow::Error::msg)?;
            let rt = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
            rt.block_on(async move {
                let listeners = mtswarm::bind(&config).await?;
                let mut out = std::io::stdout().lock();
                for l in &listeners {
                    writeln!(out, "mtswarm: listening on {}", l.url())?;
                }
                out.flush()?;
                drop(out);
                mtswarm::run(config, listeners, shutdown_signal()).await
            })
        }
    }
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
