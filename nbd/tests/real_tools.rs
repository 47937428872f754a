//! The server against real NBD clients: qemu-img, qemu-io, nbdinfo and
//! nbdcopy, each checked on what it reports and on the bytes it moves.

mod common;
mod tools;

use common::{TestServer, pseudo_random};
use tools::{run, run_ok};

#[test]
fn qemu_img_info_reports_the_size() {
    let s = TestServer::start(16 << 20);
    let out = run_ok("qemu-img", &["info", &s.uri()]);
    assert!(
        out.contains("virtual size: 16 MiB (16777216 bytes)"),
        "{out}"
    );
}

#[test]
fn qemu_img_convert_in_and_out() {
    let s = TestServer::start(8 << 20);
    let src = s.dir().join("src.img");
    let back = s.dir().join("back.img");
    let data = pseudo_random(8 << 20, 1);
    std::fs::write(&src, &data).expect("write src");
    let src = src.to_str().expect("utf-8 path");
    let back = back.to_str().expect("utf-8 path");
    // -n: the target exists (the export); do not try to create it.
    run_ok(
        "qemu-img",
        &["convert", "-n", "-f", "raw", "-O", "raw", src, &s.uri()],
    );
    assert_eq!(std::fs::read(&s.path).expect("read backing"), data);
    run_ok(
        "qemu-img",
        &["convert", "-f", "raw", "-O", "raw", &s.uri(), back],
    );
    assert_eq!(std::fs::read(back).expect("read back"), data);
    let st = s.stats.snapshot();
    assert!(st.write_bytes > 0 && st.read_bytes > 0, "{st:?}");
}

#[test]
fn qemu_io_pattern_write_then_verify() {
    let s = TestServer::start(4 << 20);
    let out = run_ok(
        "qemu-io",
        &[
            "-f",
            "raw",
            "-c",
            "write -P 0xab 0 1M",
            "-c",
            "read -P 0xab 0 1M",
            &s.uri(),
        ],
    );
    assert!(
        out.contains("wrote 1048576/1048576 bytes at offset 0"),
        "{out}"
    );
    assert!(
        out.contains("read 1048576/1048576 bytes at offset 0"),
        "{out}"
    );
    assert!(!out.contains("Pattern verification failed"), "{out}");
    let file = std::fs::read(&s.path).expect("read backing");
    assert!(file[..1 << 20].iter().all(|&b| b == 0xab));
    // Zeroes through qemu-io (WRITE_ZEROES) and a FUA write.
    let out = run_ok(
        "qemu-io",
        &[
            "-f",
            "raw",
            "-c",
            "write -z 0 64k",
            "-c",
            "write -f -P 0x11 64k 4k",
            "-c",
            "read -P 0 0 64k",
            "-c",
            "read -P 0x11 64k 4k",
            &s.uri(),
        ],
    );
    assert!(!out.contains("Pattern verification failed"), "{out}");
}

#[test]
fn nbdinfo_plain_list_and_map() {
    let s = TestServer::start(4 << 20);
    let out = run_ok("nbdinfo", &[&s.uri()]);
    assert!(out.contains("export-size: 4194304"), "{out}");
    assert!(out.contains("description: test disk"), "{out}");
    assert!(out.contains("base:allocation"), "{out}");
    assert!(out.contains("can_multi_conn: true"), "{out}");
    assert!(out.contains("block_size_maximum: 33554432"), "{out}");

    let list = run_ok("nbdinfo", &["--list", &format!("nbd://{}", s.addr)]);
    assert!(list.contains("export=\"disk\""), "{list}");
    assert!(list.contains("export=\"ro\""), "{list}");
    assert!(list.contains("is_read_only: true"), "{list}");

    // Data in the second MiB only: the map shows hole / data / hole.
    run_ok(
        "qemu-io",
        &["-f", "raw", "-c", "write -P 0x5a 1M 1M", &s.uri()],
    );
    let map = run_ok("nbdinfo", &["--map", &s.uri()]);
    let rows: Vec<Vec<&str>> = map
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows.len(), 3, "{map}");
    assert_eq!(rows[0][..3], ["0", "1048576", "3"], "{map}");
    assert_eq!(rows[1][..3], ["1048576", "1048576", "0"], "{map}");
    assert_eq!(rows[2][..3], ["2097152", "2097152", "3"], "{map}");
}

#[test]
fn nbdcopy_round_trip_single_and_multi_conn() {
    let s = TestServer::start(32 << 20);
    let src = s.dir().join("src.img");
    let back = s.dir().join("back.img");
    let data = pseudo_random(32 << 20, 2);
    std::fs::write(&src, &data).expect("write src");
    let (src, back) = (src.to_str().expect("path"), back.to_str().expect("path"));

    run_ok("nbdcopy", &[src, &s.uri()]);
    run_ok("nbdcopy", &[&s.uri(), back]);
    assert_eq!(std::fs::read(back).expect("read back"), data);

    // Multi-conn is advertised, so nbdcopy may spread over 4 connections.
    assert!(
        run("nbdinfo", &["--can", "multi-conn", &s.uri()])
            .status
            .success()
    );
    let data2 = pseudo_random(32 << 20, 3);
    std::fs::write(src, &data2).expect("write src");
    run_ok("nbdcopy", &["--connections=4", src, &s.uri()]);
    run_ok("nbdcopy", &["--connections=4", &s.uri(), back]);
    assert_eq!(std::fs::read(back).expect("read back"), data2);
    assert_eq!(std::fs::read(&s.path).expect("read backing"), data2);
    assert!(s.stats.snapshot().connections >= 4);
}

#[test]
fn refused_peers_get_a_failure_from_real_tools() {
    // Only 127.0.0.3 may open "disk": the tools connect from 127.0.0.1.
    let s = TestServer::start_with(1 << 20, common::only("127.0.0.3"));
    let out = run("nbdinfo", &[&s.uri()]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    // libnbd words the NBD_REP_ERR_POLICY reply to GO in its own way; the
    // reply type itself is asserted in tests/protocol.rs.
    assert!(err.contains("opt_go") || err.contains("policy"), "{err}");
    let out = run("qemu-img", &["info", &s.uri()]);
    assert!(!out.status.success());
    // The read-only export has no restriction and still works.
    let ok = run_ok("nbdinfo", &[&format!("nbd://{}/ro", s.addr)]);
    assert!(ok.contains("is_read_only: true"), "{ok}");
}

#[test]
fn writes_to_the_read_only_export_fail() {
    let s = TestServer::start(1 << 20);
    let out = run(
        "qemu-io",
        &[
            "-f",
            "raw",
            "-c",
            "write -P 1 0 4k",
            &format!("nbd://{}/ro", s.addr),
        ],
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("wrote 4096/4096"), "{text}");
    assert!(
        std::fs::read(&s.path)
            .expect("read")
            .iter()
            .all(|&b| b == 0)
    );
}
