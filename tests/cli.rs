//! The `dvsan` binary's command line: help, version, and one clear line for
//! a bad argument.

use std::process::Command;

fn dvsan(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_dvsan"))
        .args(args)
        .output()
        .expect("run dvsan")
}

#[test]
fn version_names_the_program_and_its_version() {
    let out = dvsan(&["--version"]);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("dvsan {}", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn help_describes_dvsan() {
    let out = dvsan(&["--help"]);
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("distributed virtual SAN"), "{text}");
    assert!(text.contains("Usage: dvsan"), "{text}");
}

#[test]
fn a_bad_argument_exits_non_zero_saying_what_is_wrong_in_one_line() {
    for (args, says) in [
        (&["--no-such-flag"][..], &["--no-such-flag"][..]),
        (&["volume", "create", "v1"], &["--size"]),
        (
            &["volume", "attach", "v1", "--tls-cert", "c.pem"],
            &["--tls-key", "--tls-ca"],
        ),
        (&["volume", "create", "v1", "--size", "12Q"], &["12Q"]),
    ] {
        let out = dvsan(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.starts_with("dvsan: "), "{err}");
        for word in says {
            assert!(err.contains(word), "{args:?}: {err}");
        }
    }
}
