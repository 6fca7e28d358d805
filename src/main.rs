//! The `fedgate` command: parse the command line, load configuration, run.
#![forbid(unsafe_code)]
use clap::{Parser, Subcommand};
use fedgate::app::{self, AppState};
use fedgate::clock::{Clock, Rng, SystemClock, SystemRng};
use fedgate::config::{Config, LogFormat};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

/// mimalloc instead of glibc's malloc: a profile of the token endpoint put 12 % of the server's
/// CPU in glibc's allocator (rows allocated on sqlx's SQLite thread, freed on the request's;
/// `malloc_consolidate`). Transparent huge pages are turned off for the process at start
/// ([`no_huge_pages`]). docs/performance.md, "The allocator".
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "fedgate",
    version,
    about = "Federation broker and SCIM provisioning gateway",
    long_about = "Federation broker and SCIM provisioning gateway: an OpenID Connect issuer for one SaaS \
application, upstream SAML 2.0 and OpenID Connect connections per tenant, SCIM 2.0 provisioning, \
events and webhooks, a setup portal and an operator console.\n\n\
Every command reads the same configuration: defaults, then the file (--config, else \
./fedgate.toml when present), then FEDGATE_* environment variables (docs/configuration.md).",
    after_help = "Run `fedgate COMMAND --help` for a command's options; `man fedgate` covers them all."
)]
struct Cli {
    /// Configuration file (default: ./fedgate.toml when present). The Debian package's is
    /// /etc/fedgate/fedgate.toml.
    #[arg(long, global = true, env = "FEDGATE_CONFIG", value_name = "FILE")]
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
    /// Apply database migrations and exit: the deploy step of an upgrade (additive migrations,
    /// under a lock; instances of the previous release keep working).
    Migrate,
    /// Write a consistent copy of the SQLite database to a new file while the server runs
    /// (PostgreSQL: use pg_dump). The master key is not in it: keep it apart (docs/operations.md).
    Backup {
        /// The file to create.
        #[arg(long, value_name = "FILE")]
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
        #[arg(long, value_name = "EMAIL")]
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
        /// A name for the key (shown by `admin-key list` and in the audit log).
        #[arg(long, default_value = "admin")]
        name: String,
        /// GET and HEAD only.
        #[arg(long)]
        read_only: bool,
        /// Confine the key to one tenant (id or slug).
        #[arg(long, value_name = "TENANT")]
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

/// Turns transparent huge pages off for this process, before the runtime's threads start.
/// mimalloc asks for huge pages on its arenas (`madvise`), and where the kernel grants them
/// (`transparent_hugepage=madvise`, Debian's default) a barely used arena holds whole 2 MB
/// pages: 63 MB idle RSS instead of 41 MB, for no measured throughput (docs/performance.md, "The
/// allocator"). A kernel without the flag (before 3.15) keeps its pages as they are.
fn no_huge_pages() {
    let _ = nix::sys::prctl::set_thp_disable(true);
}

fn main() -> ExitCode {
    no_huge_pages();
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

/// `fedgate --help` and every command's help, and the man page built from the same clap
/// definitions (packaging/fedgate.1, installed by the Debian package).
#[cfg(test)]
mod tests {
    use super::Cli;
    use clap::CommandFactory;
    use std::fmt::Write;

    /// Every command below the top, with its full name (`fedgate admin-key create`).
    fn commands(cmd: &clap::Command, prefix: &str, out: &mut Vec<(String, clap::Command)>) {
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let name = format!("{prefix} {}", sub.get_name());
            out.push((name.clone(), sub.clone()));
            commands(sub, &name, out);
        }
    }

    fn built() -> clap::Command {
        let mut cmd = Cli::command();
        cmd.build();
        cmd
    }

    #[test]
    fn clap_definitions_are_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn every_command_and_argument_has_help() {
        let cmd = built();
        let mut all = vec![("fedgate".to_string(), cmd.clone())];
        commands(&cmd, "fedgate", &mut all);
        let mut missing = Vec::new();
        for (name, c) in &all {
            if c.get_about().is_none() {
                missing.push(format!("command `{name}`"));
            }
            for a in c.get_arguments() {
                if a.get_help().is_none() {
                    missing.push(format!("argument `{}` of `{name}`", a.get_id()));
                }
            }
        }
        assert!(missing.is_empty(), "no help text: {missing:?}");
        // `--help` of the top names every command.
        let help = cmd.clone().render_long_help().to_string();
        for sub in cmd.get_subcommands() {
            assert!(help.contains(sub.get_name()), "`fedgate --help` does not list {}", sub.get_name());
        }
    }

    fn roff(text: &str) -> String {
        let escaped = text.replace('\\', "\\e").replace('-', "\\-");
        escaped
            .lines()
            .map(|l| if l.starts_with(['.', '\'']) { format!("\\&{l}") } else { l.to_string() })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn about(c: &clap::Command) -> String {
        c.get_long_about().or(c.get_about()).map(|s| s.to_string()).unwrap_or_default()
    }

    fn argument(a: &clap::Arg) -> String {
        let value = a.get_value_names().and_then(|v| v.first()).map(|v| v.to_string());
        let takes_value = a.get_num_args().is_some_and(|n| n.takes_values());
        let value = value.unwrap_or_else(|| a.get_id().as_str().to_ascii_uppercase());
        match a.get_long() {
            Some(long) if takes_value => format!("\\fB\\-\\-{long}\\fR \\fI{value}\\fR"),
            Some(long) => format!("\\fB\\-\\-{long}\\fR"),
            None => format!("\\fI{value}\\fR"),
        }
    }

    /// A help text as a sentence, with the default value (of an option that takes one) and the
    /// environment variable.
    fn help_of(a: &clap::Arg) -> String {
        let mut help = a.get_long_help().or(a.get_help()).map(|s| s.to_string()).unwrap_or_default();
        let mut add = |more: String| {
            if !help.ends_with('.') {
                help.push('.');
            }
            help.push(' ');
            help.push_str(&more);
        };
        let takes_value = a.get_num_args().is_some_and(|n| n.takes_values());
        let defaults: Vec<String> = a.get_default_values().iter().map(|v| v.to_string_lossy().to_string()).collect();
        if takes_value && !defaults.is_empty() {
            add(format!("Default: {}.", defaults.join(", ")));
        }
        if let Some(env) = a.get_env() {
            add(format!("Environment: {}.", env.to_string_lossy()));
        }
        if !help.ends_with('.') {
            help.push('.');
        }
        help
    }

    fn arguments(out: &mut String, c: &clap::Command) {
        for a in c.get_arguments().filter(|a| !a.is_global_set() && !matches!(a.get_id().as_str(), "help" | "version"))
        {
            let _ = writeln!(out, ".TP\n{}\n{}", argument(a), roff(&help_of(a)));
        }
    }

    /// The man page: every command and argument, from the clap definitions.
    fn man_page() -> String {
        let cmd = built();
        let mut out = String::new();
        let _ = writeln!(out, ".\\\" Generated by `cargo test --bin fedgate man_page` from src/main.rs: do not edit.");
        let _ = writeln!(out, ".TH FEDGATE 1 \"\" \"fedgate {}\" \"User Commands\"", env!("CARGO_PKG_VERSION"));
        let _ = writeln!(
            out,
            ".SH NAME\nfedgate \\- {}",
            roff(&cmd.get_about().map(|s| s.to_string()).unwrap_or_default())
        );
        let _ = writeln!(
            out,
            ".SH SYNOPSIS\n\\fBfedgate\\fR [\\fB\\-\\-config\\fR \\fIFILE\\fR] \\fICOMMAND\\fR [\\fIOPTIONS\\fR]"
        );
        let _ = writeln!(out, ".SH DESCRIPTION\n{}", roff(&about(&cmd)).replace("\n\n", "\n.PP\n"));
        let _ = writeln!(out, ".SH OPTIONS");
        for a in cmd.get_arguments().filter(|a| a.is_global_set()) {
            let _ = writeln!(out, ".TP\n{}\n{}", argument(a), roff(&help_of(a)));
        }
        let _ = writeln!(out, ".TP\n\\fB\\-h\\fR, \\fB\\-\\-help\\fR\nPrint help (of the command it follows).");
        let _ = writeln!(out, ".TP\n\\fB\\-V\\fR, \\fB\\-\\-version\\fR\nPrint the version.");
        let _ = writeln!(out, ".SH COMMANDS");
        let mut all = Vec::new();
        commands(&cmd, "fedgate", &mut all);
        for (name, c) in &all {
            let _ = writeln!(out, ".SS \"{}\"", roff(name));
            let mut text = about(c);
            if !text.ends_with('.') {
                text.push('.');
            }
            let _ = writeln!(out, "{}", roff(&text).replace("\n\n", "\n.PP\n"));
            arguments(&mut out, c);
        }
        let _ = writeln!(
            out,
            r#".SH FILES
.TP
\fI./fedgate.toml\fR
The configuration file read when \fB\-\-config\fR is not given.
.TP
\fI/etc/fedgate/fedgate.toml\fR
The Debian package's configuration file (the service runs \fBfedgate \-\-config /etc/fedgate/fedgate.toml serve\fR).
.TP
\fI/var/lib/fedgate\fR
The Debian package's state directory (data_dir): the SQLite database and, when master_key is not set, the generated master key.
.SH ENVIRONMENT
.TP
\fBFEDGATE_*\fR, \fBFEDGATE__SECTION__KEY\fR
Configuration settings; they override the file (the list: configuration.md).
.TP
\fBFEDGATE_LOG\fR
The log filter (default \fBinfo\fR).
.SH EXAMPLES
Commands of the Debian package's installation run as its user with its configuration:
.PP
.nf
runuser \-u fedgate \-\- fedgate \-\-config /etc/fedgate/fedgate.toml admin\-key create \-\-name ops
.fi
.SH SEE ALSO
\fI/usr/share/doc/fedgate/configuration.md\fR, \fI/usr/share/doc/fedgate/operations.md\fR"#
        );
        out
    }

    /// packaging/fedgate.1 is the man page of these definitions. After changing the CLI (or the
    /// version), regenerate it: `FEDGATE_UPDATE_MAN=1 cargo test --bin fedgate man_page`.
    #[test]
    fn man_page_is_current() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("packaging/fedgate.1");
        let page = man_page();
        if std::env::var_os("FEDGATE_UPDATE_MAN").is_some() {
            std::fs::write(&path, &page).unwrap();
        }
        let all = {
            let mut v = Vec::new();
            commands(&built(), "fedgate", &mut v);
            v
        };
        for (name, _) in &all {
            assert!(page.contains(&roff(name)), "the man page misses {name}");
        }
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == page,
            "packaging/fedgate.1 is out of date: run `FEDGATE_UPDATE_MAN=1 cargo test --bin fedgate man_page`"
        );
    }
}
