//! CLI utilities for async-snmp.
//!
//! Provides command-line argument parsing, output formatting, and OID hint
//! resolution for the `asnmp-*` CLI tools.
//!
//! This module requires the `cli` Cargo feature.

pub mod args;
pub mod hints;
#[cfg(feature = "mib")]
pub mod mib_cli;
pub mod output;
