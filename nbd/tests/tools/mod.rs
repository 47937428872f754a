//! Running the real NBD tools (nbdcopy, nbdinfo, qemu-io, qemu-img) from
//! tests, each under coreutils' `timeout` so that a hang fails the test.

#![allow(dead_code)]

use std::process::{Command, Output};

/// Longest one tool may run.
pub const TOOL_TIMEOUT_SECS: &str = "120";

/// Runs `cmd` with `args`, bounded in time.
pub fn run(cmd: &str, args: &[&str]) -> Output {
    Command::new("timeout")
        .args(["-k", "5", TOOL_TIMEOUT_SECS, cmd])
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {cmd}: {e}"))
}

/// [`run`], which must succeed; its standard output.
pub fn run_ok(cmd: &str, args: &[&str]) -> String {
    let out = run(cmd, args);
    assert!(
        out.status.success(),
        "{cmd} {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
