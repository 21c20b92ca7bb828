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
    Manage(Box<RawManage>),
    /// The API filter's command names.
    Apifilter {
        #[command(subcommand)]
        command: ApifilterCommand,
    },
    /// Print what tenants hold against their quota (GET /mtswarm/v1/usage): one's own as a tenant, every
    /// tenant's as the admin. Credentials come from the docker CLI's config.json (HttpHeaders).
    Usage {
        /// mtswarm's address [env: DOCKER_HOST, default: tcp://127.0.0.1:2376].
        #[arg(short = 'H', long = "host")]
        host: Option<String>,
        /// The docker CLI configuration directory [env: DOCKER_CONFIG, default: ~/.docker].
        #[arg(long)]
        config: Option<String>,
        /// Print the JSON answer instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Manage the token file.
    Tokens {
        #[command(subcommand)]
        command: TokensCommand,
    },
    /// Register an engine in etcd discovery and keep it registered until stopped.
    Join(mtswarm::cluster::join::RawJoin),
}

#[derive(Subcommand)]
enum ApifilterCommand {
    /// Print every command name that `disableapi` takes, with the method and path it names.
    Names,
}

#[derive(Subcommand)]
enum TokensCommand {
    /// Make a random token for a tenant, print it once, and store only its sha256.
    Add {
        #[arg(long)]
        tenant: String,
        /// The token file [env: SWARM_TOKENS_FILE, default tokens.json].
        #[arg(long)]
        file: Option<String>,
    },
}

/// mimalloc rather than glibc's malloc: a forwarded request allocates and frees a few dozen small buffers (header
/// maps, strings, futures), and glibc's arena locks and chunk consolidation were a tenth of a request's user time.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let cli = Cli::parse();
    if let Err(e) = real_main(cli) {
        // `mtswarm apifilter names | head` is not an error.
        if e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) {
            return;
        }
        eprintln!("mtswarm: {e:#}");
        std::process::exit(1);
    }
}

fn real_main(cli: Cli) -> anyhow::Result<()> {
    let filter = if cli.debug { "debug".to_string() } else { cli.log_level.clone() };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(&filter).context("bad --log-level")?)
        .with_writer(std::io::stderr)
        .with_ansi(ansi);
    if ansi {
        subscriber.init();
    } else {
        // Plain text to stderr: the same lines, with each request's fields kept by the request rather than in
        // a tracing span, and its own line written in the formatter's bytes without it.
        subscriber.event_format(mtswarm::ops::log::PlainFormat::default()).init();
        mtswarm::ops::log::set_plain_stderr(true);
    }
    let env = Env::from_process();
    match cli.command {
        Command::Apifilter { command: ApifilterCommand::Names } => {
            let mut out = std::io::stdout().lock();
            for (name, method, path) in mtswarm::api::endpoint::COMMANDS {
                writeln!(out, "{name:<20} {method:<7} {path}")?;
            }
            for name in mtswarm::api::endpoint::OBSOLETE_COMMANDS {
                writeln!(out, "{name:<20} -       (2016 name of a removed endpoint; accepted, names nothing)")?;
            }
            Ok(())
        }
        Command::Tokens { command: TokensCommand::Add { tenant, file } } => {
            let file =
                file.or_else(|| env.get("SWARM_TOKENS_FILE").map(str::to_string)).unwrap_or("tokens.json".into());
            let token = mtswarm::auth::tokenfile::add_token(std::path::Path::new(&file), &tenant)
                .map_err(anyhow::Error::msg)?;
            println!("{token}");
            eprintln!("mtswarm: added a token for tenant {tenant} to {file}; it is shown only this once");
            Ok(())
        }
        Command::Usage { host, config, json } => {
            let host = host
                .or_else(|| env.get("DOCKER_HOST").map(str::to_string))
                .unwrap_or_else(|| mtswarm::config::ListenAddr::DEFAULT.to_string());
            let dir = config
                .or_else(|| env.get("DOCKER_CONFIG").map(str::to_string))
                .unwrap_or_else(|| format!("{}/.docker", env.get("HOME").unwrap_or("/root")));
            let rt = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
            let answer = rt.block_on(mtswarm::usage_cli::fetch(&host, std::path::Path::new(&dir)))?;
            let mut out = std::io::stdout().lock();
            if json {
                writeln!(out, "{}", serde_json::to_string_pretty(&answer)?)?;
            } else {
                out.write_all(mtswarm::usage_cli::table(&answer).as_bytes())?;
            }
            Ok(())
        }
        Command::Join(raw) => {
            let config = mtswarm::cluster::join::JoinConfig::from_raw(&raw)?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the runtime")?;
            rt.block_on(mtswarm::cluster::join::run(config, shutdown_signal()))?;
            Ok(())
        }
        Command::Manage(raw) => {
            let config = Config::from_raw(&raw, &env).map_err(anyhow::Error::msg)?;
            let rt = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
            rt.block_on(async move {
                let manager = mtswarm::Manager::new(config.clone())?;
                let listeners = mtswarm::bind(&config).await?;
                let ops = mtswarm::server::ops::bind(config.metrics_addr.as_deref()).await?;
                let mut out = std::io::stdout().lock();
                for l in &listeners {
                    writeln!(out, "mtswarm: listening on {}", l.url())?;
                }
                if let Some(l) = &ops {
                    writeln!(out, "mtswarm: metrics and health on http://{}", l.local_addr()?)?;
                }
                out.flush()?;
                drop(out);
                manager.with_ops(ops).run(listeners, shutdown_signal()).await;
                Ok(())
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
