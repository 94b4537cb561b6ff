//! Command line: `flightctl serve | worker | migrate up|status | seed`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Service, Settings};
use crate::store;

#[derive(Debug, Parser)]
#[command(
    name = "flightctl",
    version,
    about = "Flight seat booking: HTTP API, Temporal worker and database tools",
    long_about = "Flight seat booking on PostgreSQL, Redis and Temporal.\n\n\
        Settings come from config/default.toml, config/$FLIGHTCTL_ENV.toml, --config FILE \
        and the environment (SERVER_PORT, DATABASE_URL, TEMPORAL_HOST, ...; see .env.example), \
        later sources winning.",
    after_help = "Example: a full local run\n  flightctl migrate up && flightctl seed\n  flightctl worker &\n  flightctl serve"
)]
pub struct Cli {
    /// Extra TOML settings file, layered over config/*.toml and under the environment.
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the HTTP API and the web UI.
    #[command(after_help = "Example:\n  SERVER_PORT=9090 flightctl serve")]
    Serve,
    /// Run a Temporal worker for booking workflows and their activities.
    #[command(
        after_help = "Run as many as you like; each polls TEMPORAL_TASK_QUEUE.\nExample:\n  TEMPORAL_HOST=localhost:7233 flightctl worker"
    )]
    Worker,
    /// Apply or inspect the embedded database migrations.
    #[command(subcommand)]
    Migrate(Migrate),
    /// Insert the demo flights and their seats (safe to re-run).
    #[command(after_help = "Example:\n  flightctl seed")]
    Seed,
    /// Worker Versioning: show or set the current version of the worker deployment.
    #[command(subcommand)]
    Deployment(Deployment),
    /// Operators of the console (`/ops`): add one, or remove one.
    #[command(subcommand)]
    Operator(Operator),
}

#[derive(Debug, Subcommand)]
pub enum Operator {
    /// Add an operator, or set a new password for one (ending their sessions).
    #[command(
        after_help = "The password is read from standard input (its first line) when that is not \
        a terminal, else prompted for twice without echo; never from an argument.\n\
        Examples:\n  flightctl operator add ada\n  \
        printf '%s\\n' \"$OPS_PASSWORD\" | flightctl operator add ada"
    )]
    Add {
        /// 1–64 letters, digits, `.`, `_`, `@`, `-`.
        name: String,
    },
    /// Remove an operator: their sessions end at once.
    #[command(after_help = "Example:\n  flightctl operator remove ada")]
    Remove { name: String },
}

#[derive(Debug, Subcommand)]
pub enum Deployment {
    /// Make a build current: new bookings run on it, running ones finish on theirs.
    #[command(
        after_help = "Start the new build's workers first; Temporal refuses a version nobody polls.\n\
        Example:\n  flightctl deployment set-current            # this binary's build id\n  \
        flightctl deployment set-current --build-id 2026-12-01.1"
    )]
    SetCurrent {
        /// The build id to make current (default: WORKER_BUILD_ID, or this binary's).
        #[arg(long)]
        build_id: Option<String>,
        /// How long to wait for the build's workers to poll.
        #[arg(long, default_value = "60s", value_parser = humantime::parse_duration)]
        wait: std::time::Duration,
    },
    /// Print the deployment's current build id and this binary's.
    #[command(after_help = "Example:\n  flightctl deployment show")]
    Show,
    /// Is a build drained (no open booking pinned to it)? Exit 0 only when
    /// Temporal reports it DRAINED; 2 when it is not (yet); 1 on an error.
    #[command(
        after_help = "Its workers can be stopped once it is drained. Temporal refreshes a \
        draining version's status periodically (every 3 min by default), so DRAINED comes \
        up to that long after its last booking ended.\n\
        Examples:\n  flightctl deployment drained --build-id 2026-12-01-1\n  \
        flightctl deployment drained --build-id 2026-12-01-1 --wait 30m && kill $OLD_WORKER"
    )]
    Drained {
        /// The build id to ask about (the old one).
        #[arg(long)]
        build_id: String,
        /// Keep asking this long for DRAINED (0s: ask once).
        #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
        wait: std::time::Duration,
    },
}

/// The exit code of `deployment drained` for a build not drained (yet):
/// distinct from 1, an error, so a script tells "wait" from "broken".
pub const NOT_DRAINED: u8 = 2;

#[derive(Debug, Subcommand)]
pub enum Migrate {
    /// Apply every pending migration (safe to re-run).
    #[command(
        after_help = "Example:\n  DATABASE_URL=postgres://flightapp:flightapp@localhost:5433/flight_booking flightctl migrate up"
    )]
    Up,
    /// List applied and pending migrations.
    #[command(after_help = "Example:\n  flightctl migrate status")]
    Status,
}

impl Cli {
    /// The mode's name, for logs and the trace exporter's service name.
    pub fn mode(&self) -> &'static str {
        match self.command {
            Command::Serve => "serve",
            Command::Worker => "worker",
            Command::Migrate(_) => "migrate",
            Command::Seed => "seed",
            Command::Deployment(_) => "deployment",
            Command::Operator(_) => "operator",
        }
    }

    /// Whether this command talks to Temporal (and so needs its TLS files).
    fn uses_temporal(&self) -> bool {
        matches!(
            self.command,
            Command::Serve | Command::Worker | Command::Deployment(_)
        )
    }

    /// The long-running process this command starts, if any.
    fn service(&self) -> Option<Service> {
        match self.command {
            Command::Serve => Some(Service::Serve),
            Command::Worker => Some(Service::Worker),
            Command::Migrate(_) | Command::Seed | Command::Deployment(_) | Command::Operator(_) => {
                None
            }
        }
    }
}

/// Run the command; its exit code (every command but `deployment drained`
/// succeeds with 0).
pub async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let service = cli.service();
    let uses_temporal = cli.uses_temporal();
    let settings = Settings::load(cli.config)?;
    if let Some(service) = service {
        settings.check_secrets(service)?;
        log_payload_encryption(&settings);
    }
    if uses_temporal {
        // The TLS files are read now, so a bad one stops the command at
        // start, not at its first call to Temporal (serve connects lazily).
        let tls = settings.temporal.tls()?;
        if service.is_some() {
            log_temporal_transport(&settings, tls.as_ref());
        }
    }
    match cli.command {
        Command::Serve => crate::api::serve(settings).await,
        Command::Worker => crate::worker::run(settings).await,
        Command::Migrate(Migrate::Up) => migrate_up(&settings).await,
        Command::Migrate(Migrate::Status) => migrate_status(&settings).await,
        Command::Seed => seed(&settings).await,
        Command::Deployment(cmd) => return deployment(&settings, cmd).await,
        Command::Operator(cmd) => operator(&settings, cmd).await,
    }?;
    Ok(ExitCode::SUCCESS)
}

async fn operator(settings: &Settings, cmd: Operator) -> anyhow::Result<()> {
    let pool = store::connect_postgres(&settings.database).await?;
    match cmd {
        Operator::Add { name } => {
            anyhow::ensure!(
                crate::ops::valid_name(&name),
                "an operator name is 1 to 64 letters, digits, '.', '_', '@' or '-'"
            );
            let password = read_password()?;
            let hash =
                tokio::task::spawn_blocking(move || crate::ops::hash_password(&password)).await??;
            let new = store::ops::put_operator(&pool, &name, &hash).await?;
            match new {
                true => println!("operator {name} added"),
                false => println!("operator {name}: password changed, their sessions ended"),
            }
        }
        Operator::Remove { name } => match store::ops::remove_operator(&pool, &name).await? {
            true => println!("operator {name} removed, their sessions ended"),
            false => anyhow::bail!("no operator named {name}"),
        },
    }
    Ok(())
}

/// The new password: stdin's first line, or typed twice at a terminal.
fn read_password() -> anyhow::Result<crate::ops::Password> {
    use std::io::IsTerminal;
    let text = if std::io::stdin().is_terminal() {
        let first = rpassword::prompt_password("password: ")?;
        let again = rpassword::prompt_password("again: ")?;
        anyhow::ensure!(first == again, "the two passwords differ");
        first
    } else {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line)?;
        line.trim_end_matches(['\r', '\n']).to_string()
    };
    anyhow::ensure!(
        text.chars().count() >= crate::ops::MIN_PASSWORD_CHARS
            && text.len() <= crate::ops::MAX_PASSWORD_BYTES,
        "a password is at least {} characters (and at most {} bytes)",
        crate::ops::MIN_PASSWORD_CHARS,
        crate::ops::MAX_PASSWORD_BYTES
    );
    Ok(crate::ops::Password::new(text))
}

async fn deployment(settings: &Settings, cmd: Deployment) -> anyhow::Result<ExitCode> {
    let client = crate::temporal::connect(
        &settings.temporal,
        "flightctl-deployment",
        std::time::Duration::from_secs(10),
    )
    .await?;
    let name = &settings.worker.deployment_name;
    match cmd {
        Deployment::SetCurrent { build_id, wait } => {
            let build_id = build_id.unwrap_or_else(|| settings.worker.build_id());
            crate::deployment::set_current(&client, name, &build_id, wait).await?;
            println!("deployment {name}: build {build_id} is current");
        }
        Deployment::Show => {
            let current = crate::deployment::current(&client, name).await?;
            println!("deployment {name}");
            println!("current build: {}", current.as_deref().unwrap_or("(none)"));
            println!("this binary:   {}", settings.worker.build_id());
        }
        Deployment::Drained { build_id, wait } => {
            let seen = crate::deployment::wait_drained(&client, name, &build_id, wait).await?;
            let checked = seen.last_checked.map_or_else(
                || "not checked yet".to_string(),
                |t| format!("last checked {}", humantime::format_rfc3339_seconds(t)),
            );
            println!(
                "deployment {name}: build {build_id} is {} ({checked})",
                seen.drainage.as_str()
            );
            if seen.drainage != crate::deployment::Drainage::Drained {
                return Ok(ExitCode::from(NOT_DRAINED));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Say at every start whether Temporal stores payloads encrypted: switched
/// off, payment codes and orders are readable there (see README, "Payload
/// encryption").
fn log_payload_encryption(settings: &Settings) {
    let keys = settings.temporal.payload_keys().unwrap_or_default();
    match keys.encrypt {
        Some(key) => tracing::info!(
            key_id = %key.id,
            "Temporal payloads are encrypted (AES-256-GCM)"
        ),
        None => tracing::warn!(
            "payload encryption is OFF (PAYLOAD_ENCRYPTION=false): payment codes and orders \
             are stored readable in Temporal's history"
        ),
    }
}

/// Say at every start how Temporal is reached: what is used, never a value.
fn log_temporal_transport(settings: &Settings, tls: Option<&crate::config::TemporalTls>) {
    let t = &settings.temporal;
    match tls {
        Some(tls) => tracing::info!(
            host = %t.host,
            own_ca = tls.ca.is_some(),
            client_certificate = tls.cert.is_some(),
            server_name = tls.server_name.as_deref().unwrap_or(""),
            api_key = t.api_key().is_some(),
            "Temporal is reached over TLS"
        ),
        None => tracing::info!(host = %t.host, "Temporal is reached over plain gRPC (no TLS)"),
    }
}

async fn migrate_up(settings: &Settings) -> anyhow::Result<()> {
    let applied = store::migrate::up(&store::connect_postgres(&settings.database).await?).await?;
    if applied.is_empty() {
        println!("migrations: up to date");
    } else {
        let list: Vec<String> = applied.iter().map(|v| format!("V{v}")).collect();
        println!("migrations: applied {}", list.join(", "));
    }
    Ok(())
}

async fn migrate_status(settings: &Settings) -> anyhow::Result<()> {
    for m in store::migrate::status(&store::connect_postgres(&settings.database).await?).await? {
        let state = if m.applied { "applied" } else { "pending" };
        println!("V{:<4} {:<24} {state}", m.version, m.name);
    }
    Ok(())
}

async fn seed(settings: &Settings) -> anyhow::Result<()> {
    let report = store::seed::run(&store::connect_postgres(&settings.database).await?).await?;
    println!(
        "seed: inserted {} flights and {} seats",
        report.flights, report.seats
    );
    Ok(())
}
