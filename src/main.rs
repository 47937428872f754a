//! `dvsan`: the one binary of the distributed virtual SAN.
//!
//! Each subcommand parses its flags and configuration, then hands over to
//! the crate that does the work; this file only wires.
#![forbid(unsafe_code)]

mod agent_cmd;
mod attach_cmd;
mod byte_size;
mod demo;
mod snmp_args;
mod station_client;
mod station_cmd;
mod user_cmd;
mod volume_attach;
mod volume_cmd;

use clap::{Parser, Subcommand};

/// dvsan: a distributed virtual SAN whose storage units are driven by SNMP.
#[derive(Debug, Parser)]
#[command(name = "dvsan", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a SAN unit: serve its disks as RAID groups and volumes over NBD, manage it over SNMP.
    Agent(Box<agent_cmd::AgentArgs>),
    /// Run the station: learn units from their notifications and keep the inventory.
    Station(Box<station_cmd::StationArgs>),
    /// Units as the station knows them (REST API client).
    Unit(volume_cmd::UnitArgs),
    /// Volumes: allocate, list, show, grant, revoke, delete, attach (REST API client).
    Volume(volume_cmd::VolumeArgs),
    /// A station and three units with file-backed disks in one process, on loopback; prints the console's URL and login.
    Demo(demo::DemoArgs),
}

/// Resolves on SIGINT or SIGTERM.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// A command line clap refused, said in one line: clap's message with the
/// lines that continue it (e.g. the missing arguments) joined, without its
/// usage block.
fn one_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let mut parts = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with("Usage:") {
            break;
        }
        parts.push(line.strip_prefix("error: ").unwrap_or(line));
    }
    format!("{} (see --help)", parts.join(" "))
}

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) if !e.use_stderr() => e.exit(), // --help, --version
        Err(e) => {
            eprintln!("dvsan: {}", one_line(&e));
            std::process::exit(e.exit_code());
        }
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // rustls warns on every client that sends an IP address as
                // its TLS server name (libnbd does); harmless, and not ours.
                .unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new("info,async_snmp=error,rustls=error")
                }),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("dvsan: starting the runtime: {e}");
            std::process::exit(1);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Agent(args) => agent_cmd::run(*args).await,
            Command::Station(args) => station_cmd::run(*args).await,
            Command::Unit(args) => volume_cmd::run_unit(args).await,
            Command::Volume(args) => volume_cmd::run_volume(args).await,
            Command::Demo(args) => demo::run(args, shutdown_signal()).await,
        }
    });
    if let Err(e) = result {
        // One line that says what is wrong.
        eprintln!("dvsan: {e:#}");
        std::process::exit(1);
    }
}
