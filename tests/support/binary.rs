//! The `dvsan` binary under test, with no SNMP or database settings
//! inherited from the environment.
#![allow(dead_code)]

use std::process::Command;

/// A command running the `dvsan` binary built for these tests.
pub fn dvsan() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dvsan"));
    cmd.env_remove("DVSAN_SNMP_USER")
        .env_remove("DVSAN_SNMP_AUTH_PASS")
        .env_remove("DVSAN_SNMP_PRIV_PASS")
        .env_remove("DVSAN_DB");
    cmd
}
