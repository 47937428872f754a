//! DVSAN-MIB against the tools admins load it with: `smilint -l 6` finds
//! nothing to say, and net-snmp's `snmptranslate` resolves every object to
//! the OID the Rust constants in `dvsan_mib.rs` give it, and no more.

mod support;

use std::process::Command;

use dvsan_snmp::dvsan_mib::{ALL, ENTERPRISE_ARC};
use support::{ietf_mibs, repo_path, require_tool, stderr, stdout};

fn snmptranslate(cache: &str, args: &[&str]) -> std::process::Output {
    require_tool("snmptranslate", "snmp");
    let state = tempfile::tempdir().unwrap();
    Command::new("snmptranslate")
        .env("SNMP_PERSISTENT_DIR", state.path())
        .env("SNMPCONFPATH", state.path())
        .env_remove("MIBS")
        .env_remove("MIBDIRS")
        .arg("-M")
        .arg(format!("+{cache}:{}", repo_path("mibs").display()))
        .args(["-m", "DVSAN-MIB"])
        .args(args)
        .output()
        .expect("run snmptranslate")
}

#[test]
fn smilint_level_6_reports_nothing() {
    require_tool("smilint", "smitools");
    let cache = ietf_mibs();
    let out = Command::new("smilint")
        .env(
            "SMIPATH",
            format!(
                "{cache}:/usr/share/snmp/mibs:{}",
                repo_path("mibs").display()
            ),
        )
        .args(["-l", "6", "-s"])
        .arg(repo_path("mibs/DVSAN-MIB.txt"))
        .output()
        .expect("run smilint");
    let text = format!("{}{}", stdout(&out), stderr(&out));
    assert!(
        out.status.success() && text.trim().is_empty(),
        "smilint -l 6:\n{text}"
    );
}

#[test]
fn every_rust_constant_matches_snmptranslate() {
    let cache = ietf_mibs();
    let mut args = vec!["-On".to_string()];
    args.extend(ALL.iter().map(|o| format!("DVSAN-MIB::{}", o.name)));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = snmptranslate(&cache, &args);
    assert!(out.status.success(), "{}", stderr(&out));
    let got: Vec<String> = stdout(&out)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    let want: Vec<String> = ALL.iter().map(|o| format!(".{}", o.oid())).collect();
    assert_eq!(got.len(), want.len(), "{}", stderr(&out));
    for ((object, got), want) in ALL.iter().zip(&got).zip(&want) {
        assert_eq!(got, want, "{}", object.name);
    }
    assert!(ALL.iter().all(|o| o.arcs().starts_with(ENTERPRISE_ARC)));
}

#[test]
fn every_object_of_the_mib_has_a_rust_constant() {
    let cache = ietf_mibs();
    let out = snmptranslate(&cache, &["-Tz"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let in_mib: Vec<String> = stdout(&out)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .map(|n| n.trim_matches('"').to_string())
        .filter(|n| n.starts_with("dvsan"))
        .collect();
    assert!(in_mib.len() > 60, "only {} dvsan objects", in_mib.len());
    for name in &in_mib {
        assert!(
            ALL.iter().any(|o| o.name == name),
            "{name} has no constant in dvsan_mib.rs"
        );
    }
    assert_eq!(in_mib.len(), ALL.len());
}
