//! `dvsan`: the one binary of the distributed virtual SAN.
//!
//! Subcommands arrive with the parts they drive (agent, station, demo,
//! volume, unit); this entry point only parses arguments and wires.
#![forbid(unsafe_code)]

use clap::Parser;

/// dvsan: a distributed virtual SAN whose storage units are driven by SNMP.
#[derive(Debug, Parser)]
#[command(name = "dvsan", version, about, long_about = None)]
struct Cli {}

fn main() -> anyhow::Result<()> {
    let _cli = Cli::parse();
    Ok(())
}
