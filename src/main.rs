//! The `fedgate` command: parse the command line, load configuration, run.
#![forbid(unsafe_code)]
use clap::{Parser, Subcommand};
use fedgate::app::{self, AppState};
use fedgate::clock::{Clock, Rng, SystemClock, SystemRng};
use fedgate::config::{Config, LogFormat};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

#[derive(Parser)]
#[command(name = "fedgate", version, about = "Federation broker and SCIM provisioning gateway")]
struct Cli {
    /// Configuration file (default: ./fedgate.toml when present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server.
    Serve {
        /// Turn on dev mode and create a demo tenant, dev connection and demo app (in
        /// ./fedgate-demo-data unless a data directory is configured).
        #[arg(long)]
        demo: bool,
    },
    /// Apply database migrations and exit.
    Migrate,
    /// Write a consistent copy of the SQLite database to a new file while the server runs
    /// (PostgreSQL: use pg_dump). The master key is not in it: keep it apart (docs/operations.md).
    Backup {
        /// The file to create.
        #[arg(long)]
        to: PathBuf,
    },
    /// Admin API keys.
    AdminKey {
        #[command(subcommand)]
        command: AdminKeyCommand,
    },
    /// Signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// The operator console (`/console`).
    Console {
        #[command(subcommand)]
        command: ConsoleCommand,
    },
}

#[derive(Subcommand)]
enum ConsoleCommand {
    /// Create the operators' tenant (if missing, with the email's domain), the console's client
    /// and the operator; in dev mode also a dev connection for the operators' tenant. Re-run it
    /// to add operators or change a role.
    Bootstrap {
        /// The operator's email (their address at the operators' tenant's identity provider).
        #[arg(long)]
        email: String,
        /// `full` (reads and writes) or `read_only`.
        #[arg(long, default_value = "full")]
        role: String,
    },
}

#[derive(Subcommand)]
enum AdminKeyCommand {
    /// Create an admin API key and print it (once) on stdout.
    Create {
        #[arg(long, default_value = "admin")]
        name: String,
        /// GET and HEAD only.
        #[arg(long)]
        read_only: bool,
        /// Confine the key to one tenant (id or slug).
        #[arg(long)]
        tenant: Option<String>,
    },
    /// List admin keys (never their values): id, name, scope, tenant, created, last used, revoked.
    List,
    /// Revoke an admin key: it stops working at once on every instance.
    Revoke {
        /// The key's id (from `admin-key list`).
        id: String,
    },
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Activate the already-published next key of every algorithm now, and publish new next keys.
    Rotate,
    /// List signing keys and their states.
    List,
}

/// The operator `serve --demo` bootstraps (docs/operations.md#operator-console).
const DEMO_OPERATOR: &str = "operator@console.demo.test";

/// The log output (its own filter, `FEDGATE_LOG`) and, when `[telemetry] otlp_endpoint` is
/// set, the OTLP trace exporter (its own filter, `FEDGATE_TRACE_FILTER`).
fn init_logs(
    config: &Config,
    rt: tokio::runtime::Handle,
) -> Result<Option<fedgate::telemetry::Telemetry>, fedgate::telemetry::TelemetryError> {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let filter = tracing_subscriber::EnvFilter::try_from_env("FEDGATE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    let fmt = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    let fmt = match config.log_format {
        LogFormat::Json => fmt.json().flatten_event(true).with_current_span(true).with_filter(filter).boxed(),
        LogFormat::Text => fmt.with_filter(filter).boxed(),
    };
    let (otel, telemetry) = match fedgate::telemetry::layer(&config.telemetry, rt)? {
        Some((layer, telemetry)) => (Some(layer), Some(telemetry)),
        None => (None, None),
    };
    tracing_subscriber::registry().with(fmt).with(otel).init();
    Ok(telemetry)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let env: Vec<(String, String)> = std::env::vars().collect();
    let mut config = match Config::load(cli.config.as_deref(), &env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("fedgate: {e}");
            return ExitCode::from(2);
        }
    };
    if let Command::Serve { demo: true } = cli.command {
        config.dev_mode = true;
        // The demo never shares the default data directory with `serve`: its demo sign-ins
        // must not end up in a database that later runs without dev mode.
        if config.data_dir == Config::default().data_dir {
            config.data_dir = PathBuf::from(fedgate::demo::DEMO_DATA_DIR);
        }
    }
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("fedgate: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let telemetry = match init_logs(&config, rt.handle().clone()) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("fedgate: {e}");
            return ExitCode::from(2);
        }
    };
    if telemetry.is_some() {
        tracing::info!(sample_ratio = config.telemetry.sample_ratio, "exporting traces over OTLP/HTTP");
    }
    let r = rt.block_on(run(cli.command, config));
    // The spans still queued go out before the runtime (which runs the export calls) stops.
    if let Some(t) = telemetry {
        let _ = rt.block_on(tokio::task::spawn_blocking(move || t.shutdown()));
    }
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fedgate: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cmd: Command, config: Config) -> Result<(), Box<dyn std::error::Error>> {
    let clock: Arc<dyn Clock> = Arc::new(SystemClock);
    let rng: Arc<dyn Rng> = Arc::new(SystemRng);
    match cmd {
        Command::Migrate => {
            app::open(&config, &*rng).await?;
            eprintln!("migrations applied");
        }
        Command::Backup { to } => {
            if to.exists() {
                return Err(format!("{} exists already; give a new file", to.display()).into());
            }
            let (db, _) = app::open(&config, &*rng).await?;
            fedgate::store::backup::sqlite_to(&db, &to.to_string_lossy()).await?;
            eprintln!("backup written to {}", to.display());
        }
        Command::AdminKey { command } => {
            let (db, _) = app::open(&config, &*rng).await?;
            use fedgate::admin::admin_keys::cli;
            match command {
                AdminKeyCommand::Create { name, read_only, tenant } => {
                    let (_, key) = cli::create(&db, &name, read_only, tenant.as_deref(), clock.now_ms(), &*rng).await?;
                    println!("{key}");
                }
                AdminKeyCommand::List => {
                    for line in cli::list(&db).await? {
                        println!("{line}");
                    }
                }
                AdminKeyCommand::Revoke { id } => {
                    cli::revoke(&db, &id, clock.now(), &*rng).await?;
                    eprintln!("admin key {id} revoked");
                }
            }
        }
        Command::Keys { command } => {
            let state = AppState::new(config, clock, rng).await?;
            if let KeysCommand::Rotate = command {
                let report = state.keys.rotate(true).await?;
                println!("{}", serde_json::to_string_pretty(&report)?);
            }
            for k in state.keys.list().await? {
                println!("{}\t{}\t{}\tcreated {}", k.kid, k.alg, k.state, fedgate::util::rfc3339(k.created_at));
            }
        }
        Command::Console { command: ConsoleCommand::Bootstrap { email, role } } => {
            let role = fedgate::store::entities::operator::OperatorRole::parse(&role)
                .ok_or_else(|| format!("--role must be full or read_only, not {role:?}"))?;
            let state = AppState::new(config, clock, rng).await?;
            let b = fedgate::console::bootstrap(&state, &email, role).await?;
            if b.tenant_created {
                eprintln!("created the operators' tenant `{}`", fedgate::console::OPERATORS_SLUG);
            }
            if let Some(d) = &b.domain_added {
                eprintln!("added the domain {d} to the operators' tenant");
            }
            if b.connection_created {
                eprintln!("dev mode: created a dev connection for the operators' tenant (no password is checked)");
            }
            eprintln!(
                "operator {} ({}); the console is at {}",
                b.operator.email,
                b.operator.role.as_str(),
                b.console_url
            );
        }
        Command::Serve { demo } => {
            let _one_instance = app::ServeLock::take(&config)?;
            let state = AppState::new(config, clock, rng).await?;
            fedgate::demo::refuse_without_dev_mode(&state).await?;
            if state.config.dev_mode {
                tracing::warn!(
                    "DEV MODE IS ON: the dev connector signs in anyone without a password. Never use it in production."
                );
            }
            if demo {
                let info = fedgate::demo::setup(&state).await?;
                eprintln!("{info}");
                // The console, reachable locally: an operator signed in by the operators'
                // tenant's dev connection.
                let b = fedgate::console::bootstrap(
                    &state,
                    DEMO_OPERATOR,
                    fedgate::store::entities::operator::OperatorRole::Full,
                )
                .await?;
                eprintln!("  Operator console:       {} (dev sign-in as {DEMO_OPERATOR})\n", b.console_url);
            }
            let running = app::start(state).await?;
            tracing::info!(port = running.port, issuer = %running.state.config.issuer, "fedgate listening");
            let handle = running.handle.clone();
            tokio::spawn(async move {
                if tokio::signal::ctrl_c().await.is_ok() {
                    handle.stop(true).await;
                }
            });
            running.task.await??;
        }
    }
    Ok(())
}
