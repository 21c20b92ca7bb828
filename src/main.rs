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
        /// Turn multi-tenancy off (false) or on (true) [env: SWARM_MULTI_TENANT, default true].
        #[arg(long)]
        multi_tenant: Option<String>,
        /// Keystone to use Keystone; None to trust X-Auth-TenantId; unset for the token file [env: SWARM_AUTH_BACKEND].
        #[arg(long)]
        auth_backend: Option<String>,
        /// The token file [env: SWARM_TOKENS_FILE, default tokens.json].
        #[arg(long)]
        tokens_file: Option<String>,
        /// Keystone's URL, e.g. http://keystone:5000/v3 [env: SWARM_KEYSTONE_URL].
        #[arg(long)]
        keystone_url: Option<String>,
        /// Seconds to wait for Keystone [env: SWARM_KEYSTONE_TIMEOUT, default 5].
        #[arg(long)]
        keystone_timeout: Option<String>,
        /// A Keystone service account to validate tokens with [env: SWARM_KEYSTONE_SERVICE_USER].
        #[arg(long)]
        keystone_service_user: Option<String>,
        /// Prefer the environment for this one [env: SWARM_KEYSTONE_SERVICE_PASSWORD].
        #[arg(long)]
        keystone_service_password: Option<String>,
        /// [env: SWARM_KEYSTONE_SERVICE_PROJECT, default service]
        #[arg(long)]
        keystone_service_project: Option<String>,
        /// [env: SWARM_KEYSTONE_SERVICE_DOMAIN, default default]
        #[arg(long)]
        keystone_service_domain: Option<String>,
        /// Seconds a validated token is trusted before Keystone is asked again [env: SWARM_AUTH_CACHE_TTL, default 300].
        #[arg(long)]
        auth_cache_ttl: Option<String>,
        /// The tenant that may do everything [env: SWARM_ADMIN_TENANT_ID].
        #[arg(long)]
        admin_tenant_id: Option<String>,
        /// Only members of this Keystone project may use the service [env: SWARM_MEMBERS_TENANT_ID].
        #[arg(long)]
        members_tenant_id: Option<String>,
        /// The engines: an engine URL (tcp://HOST:PORT, unix:///PATH) or nodes://HOST:PORT,HOST:PORT.
        /// Default: the local engine, unix:///var/run/docker.sock.
        discovery: Option<String>,
    },
    /// Manage the token file.
    Tokens {
        #[command(subcommand)]
        command: TokensCommand,
    },
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
        Command::Tokens { command: TokensCommand::Add { tenant, file } } => {
            let file = file.or_else(|| env.get("SWARM_TOKENS_FILE").map(str::to_string)).unwrap_or("tokens.json".into());
            let token = mtswarm::auth::tokenfile::add_token(std::path::Path::new(&file), &tenant)
                .map_err(anyhow::Error::msg)?;
            println!("{token}");
            eprintln!("mtswarm: added a token for tenant {tenant} to {file}; it is shown only this once");
            Ok(())
        }
        Command::Manage {
            hosts,
            engine_connect_timeout,
            discovery,
            multi_tenant,
            auth_backend,
            tokens_file,
            keystone_url,
            keystone_timeout,
            keystone_service_user,
            keystone_service_password,
            keystone_service_project,
            keystone_service_domain,
            auth_cache_ttl,
            admin_tenant_id,
            members_tenant_id,
        } => {
            let raw = RawManage {
                hosts,
                discovery,
                engine_connect_timeout_secs: Some(engine_connect_timeout),
                multi_tenant,
                auth_backend,
                tokens_file,
                keystone_url,
                keystone_timeout,
                keystone_service_user,
                keystone_service_password,
                keystone_service_project,
                keystone_service_domain,
                auth_cache_ttl,
                admin_tenant_id,
                members_tenant_id,
            };
            let config = Config::from_raw(&raw, &env).map_err(anyhow::Error::msg)?;
            let rt = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
            rt.block_on(async move {
                let manager = mtswarm::Manager::new(config.clone())?;
                let listeners = mtswarm::bind(&config).await?;
                let mut out = std::io::stdout().lock();
                for l in &listeners {
                    writeln!(out, "mtswarm: listening on {}", l.url())?;
                }
                out.flush()?;
                drop(out);
                manager.run(listeners, shutdown_signal()).await;
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
