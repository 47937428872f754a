//! The concat export against real units and real clients: qemu-nbd and
//! nbdkit serve the extents (files in a temp dir, on loopback TCP or Unix
//! sockets), the concat export is served in-process, and nbdcopy, nbdinfo,
//! qemu-io and dvsan's own client use it. Checked on the bytes each unit's
//! file holds, and on a unit that dies and comes back.

mod common;
mod tools;
mod units;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use common::pseudo_random;
use dvsan_nbd::consts::NBD_EIO;
use dvsan_nbd::{
    Access, Client, ConcatExport, ConcatOptions, Error, ExportStats, RemoteAddr, RemoteSpec,
    StaticRegistry,
};
use tokio::sync::oneshot;
use tools::{run, run_ok};
use units::{Server, Transport, Unit};

const MIB: u64 = 1 << 20;
/// The concat export served on 127.0.0.1 (free port) as `vol`, on a
/// runtime thread of its own so tests can run blocking tools against it.
struct Attached {
    addr: SocketAddr,
    stats: Arc<ExportStats>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Attached {
    fn start(specs: Vec<RemoteSpec>) -> Attached {
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let opts = ConcatOptions {
                    request_timeout: Duration::from_secs(20),
                    ..ConcatOptions::default()
                };
                let export = Arc::new(
                    ConcatExport::connect(specs, opts)
                        .await
                        .expect("connect to the units"),
                );
                let mut registry = StaticRegistry::new();
                let stats = registry.add("vol", "test volume", export.clone(), Access::Everyone);
                registry.set_default("vol");
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                tx.send((listener.local_addr().expect("addr"), stats))
                    .expect("send addr");
                dvsan_nbd::serve(listener, Arc::new(registry), async {
                    let _ = stop_rx.await;
                })
                .await;
                export.disconnect().await;
            });
        });
        let (addr, stats) = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("concat export started");
        Attached {
            addr,
            stats,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn uri(&self) -> String {
        format!("nbd://{}/vol", self.addr)
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn nbdcopy_moves_64_mib_across_three_units_and_each_holds_its_slice() {
    let dir = tempfile::tempdir().expect("tempdir");
    // 40 + 16 + 24 MiB: 64 MiB of data crosses both boundaries.
    let units = [
        Unit::start(dir.path(), "u0", 40 * MIB, Server::QemuNbd, Transport::Tcp),
        Unit::start(
            dir.path(),
            "u1",
            16 * MIB,
            Server::NbdkitPlain,
            Transport::Tcp,
        ),
        Unit::start(dir.path(), "u2", 24 * MIB, Server::Nbdkit, Transport::Unix),
    ];
    let vol = Attached::start(units.iter().map(Unit::spec).collect());

    let data = pseudo_random((64 * MIB) as usize, 7);
    let src = dir.path().join("src.img");
    let back = dir.path().join("back.img");
    std::fs::write(&src, &data).expect("write src");
    // Four connections, so requests to every unit run concurrently; FLUSH at
    // the end reaches every unit.
    run_ok(
        "nbdcopy",
        &["--connections=4", "--flush", path_str(&src), &vol.uri()],
    );
    run_ok("nbdcopy", &[&vol.uri(), path_str(&back)]);
    let back = std::fs::read(&back).expect("read back");
    assert_eq!(back.len() as u64, 80 * MIB);
    assert!(back[..data.len()] == data[..], "data read back differs");
    assert!(back[data.len()..].iter().all(|&b| b == 0));

    // Each unit's own file holds exactly its slice of the volume.
    let (a, b) = ((40 * MIB) as usize, (56 * MIB) as usize);
    assert!(
        units[0].contents() == data[..a],
        "unit 0 holds bytes 0..40M"
    );
    assert!(units[1].contents() == data[a..b], "unit 1 holds 40M..56M");
    let u2 = units[2].contents();
    assert!(u2[..8 << 20] == data[b..], "unit 2 holds 56M..64M");
    assert!(u2[8 << 20..].iter().all(|&x| x == 0));

    let st = vol.stats.snapshot();
    assert!(st.flush_ops >= 1 && st.errors == 0, "{st:?}");
}

#[test]
fn nbdinfo_shows_the_summed_size_and_a_map_in_volume_space() {
    let dir = tempfile::tempdir().expect("tempdir");
    let units = [
        Unit::start(dir.path(), "u0", 40 * MIB, Server::QemuNbd, Transport::Tcp),
        Unit::start(dir.path(), "u1", 24 * MIB, Server::QemuNbd, Transport::Tcp),
        Unit::start(dir.path(), "u2", 16 * MIB, Server::Nbdkit, Transport::Tcp),
    ];
    let vol = Attached::start(units.iter().map(Unit::spec).collect());
    let info = run_ok("nbdinfo", &[&vol.uri()]);
    assert!(
        info.contains(&format!("export-size: {}", 80 * MIB)),
        "{info}"
    );
    assert!(info.contains("can_multi_conn: true"), "{info}");
    assert!(info.contains("can_trim: true"), "{info}");
    // nbdkit's file plugin has no fast zero, so the volume has none.
    assert!(info.contains("can_fast_zero: false"), "{info}");

    // Data on both sides of the first boundary (39M..41M) and at the start
    // of the last extent (64M..65M); the rest of the sparse files are holes.
    run_ok(
        "qemu-io",
        &[
            "-f",
            "raw",
            "-c",
            "write -P 0x5a 39M 2M",
            "-c",
            "write -P 0x5b 64M 1M",
            &vol.uri(),
        ],
    );
    let map = run_ok("nbdinfo", &["--map", &vol.uri()]);
    let rows: Vec<(u64, u64, u32)> = map
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            (
                f[0].parse().expect("offset"),
                f[1].parse().expect("length"),
                f[2].parse().expect("flags"),
            )
        })
        .collect();
    // Offsets are in volume space and the map covers the volume.
    let mut at = 0;
    for &(off, len, _) in &rows {
        assert_eq!(off, at, "{map}");
        at += len;
    }
    assert_eq!(at, 80 * MIB, "{map}");
    let flags_at = |x: u64| {
        rows.iter()
            .find(|&&(o, l, _)| o <= x && x < o + l)
            .map(|r| r.2)
    };
    assert_eq!(flags_at(39 * MIB), Some(0), "{map}");
    assert_eq!(flags_at(40 * MIB + 512 * 1024), Some(0), "{map}");
    assert_eq!(flags_at(64 * MIB), Some(0), "{map}");
    assert_eq!(flags_at(10 * MIB), Some(3), "{map}");
    assert_eq!(flags_at(50 * MIB), Some(3), "{map}");
    assert_eq!(flags_at(70 * MIB), Some(3), "{map}");
}

#[test]
fn qemu_io_writes_and_zeroes_across_a_boundary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let units = [
        Unit::start(
            dir.path(),
            "u0",
            40 * MIB,
            Server::NbdkitPlain,
            Transport::Unix,
        ),
        Unit::start(dir.path(), "u1", 24 * MIB, Server::QemuNbd, Transport::Unix),
    ];
    let vol = Attached::start(units.iter().map(Unit::spec).collect());
    let at = (40 * MIB - 512 * 1024).to_string();
    let out = run_ok(
        "qemu-io",
        &[
            "-f",
            "raw",
            "-c",
            &format!("write -P 0xab {at} 1M"),
            "-c",
            &format!("read -P 0xab {at} 1M"),
            &vol.uri(),
        ],
    );
    assert!(
        out.contains(&format!("wrote 1048576/1048576 bytes at offset {at}")),
        "{out}"
    );
    assert!(
        out.contains(&format!("read 1048576/1048576 bytes at offset {at}")),
        "{out}"
    );
    assert!(!out.contains("Pattern verification failed"), "{out}");
    let (u0, u1) = (units[0].contents(), units[1].contents());
    let half = 512 * 1024;
    assert!(u0[u0.len() - half..].iter().all(|&b| b == 0xab));
    assert!(u0[..u0.len() - half].iter().all(|&b| b == 0));
    assert!(u1[..half].iter().all(|&b| b == 0xab));
    assert!(u1[half..].iter().all(|&b| b == 0));

    // WRITE_ZEROES and a FUA write, both split at the boundary.
    let zero_at = (40 * MIB - 4096).to_string();
    let out = run_ok(
        "qemu-io",
        &[
            "-f",
            "raw",
            "-c",
            &format!("write -z {zero_at} 8k"),
            "-c",
            &format!("read -P 0 {zero_at} 8k"),
            "-c",
            "write -f -P 0x11 1M 4k",
            "-c",
            "read -P 0x11 1M 4k",
            &vol.uri(),
        ],
    );
    assert!(!out.contains("Pattern verification failed"), "{out}");
    assert!(!out.contains("failed"), "{out}");
    let (u0, u1) = (units[0].contents(), units[1].contents());
    assert!(u0[u0.len() - 4096..].iter().all(|&b| b == 0));
    assert!(
        u0[u0.len() - half..u0.len() - 4096]
            .iter()
            .all(|&b| b == 0xab)
    );
    assert!(u1[..4096].iter().all(|&b| b == 0));
    assert!(u1[4096..half].iter().all(|&b| b == 0xab));
    assert!(u0[MIB as usize..][..4096].iter().all(|&b| b == 0x11));
}

/// A blocking client call against the concat export.
fn with_client<T>(addr: SocketAddr, f: impl AsyncFnOnce(&Client) -> T) -> T {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let c = tokio::time::timeout(Duration::from_secs(30), Client::connect(addr, "vol"))
            .await
            .expect("connect in time")
            .expect("connect");
        tokio::time::timeout(Duration::from_secs(60), f(&c))
            .await
            .expect("client calls in time")
    })
}

#[test]
fn a_dead_unit_fails_its_range_and_the_endpoint_stays_up_and_reconnects() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut units = [
        Unit::start(dir.path(), "u0", 8 * MIB, Server::QemuNbd, Transport::Unix),
        Unit::start(dir.path(), "u1", 8 * MIB, Server::QemuNbd, Transport::Unix),
    ];
    let vol = Attached::start(units.iter().map(Unit::spec).collect());
    let pattern = pseudo_random((2 * MIB) as usize, 11);
    with_client(vol.addr, async |c| {
        // Across the boundary, so both units have pooled connections.
        c.write(7 * MIB, &pattern, false).await.expect("write");
        c.flush().await.expect("flush");
    });

    units[1].kill();
    with_client(vol.addr, async |c| {
        // The dead unit's range fails with EIO: a read inside it, one that
        // crosses into it, and a write.
        for (off, len) in [(9 * MIB, 4096u32), (8 * MIB - 4096, 8192)] {
            match c.read(off, len).await {
                Err(Error::Request { errno, .. }) => assert_eq!(errno, NBD_EIO),
                other => panic!("read at {off} on a dead unit gave {other:?}"),
            }
        }
        assert!(matches!(
            c.write(12 * MIB, &[1; 4096], false).await,
            Err(Error::Request { errno: NBD_EIO, .. })
        ));
        // FLUSH touches every unit, so it fails too.
        assert!(c.flush().await.is_err());
        // The live unit's range still works, on the same connection.
        let got = c.read(7 * MIB, (MIB) as u32).await.expect("read live unit");
        assert!(got == pattern[..MIB as usize]);
    });
    // The endpoint is still up for new clients.
    let info = run_ok("nbdinfo", &[&vol.uri()]);
    assert!(
        info.contains(&format!("export-size: {}", 16 * MIB)),
        "{info}"
    );
    let out = run("qemu-io", &["-f", "raw", "-c", "read 9M 4k", &vol.uri()]);
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Input/output error"), "{text}");

    // The unit comes back: the next request connects again and sees the
    // data written before it died.
    units[1].restart();
    with_client(vol.addr, async |c| {
        let got = c
            .read(7 * MIB, (2 * MIB) as u32)
            .await
            .expect("read after restart");
        assert!(got == pattern, "data across the boundary after the restart");
        c.write(12 * MIB, &[2; 4096], true)
            .await
            .expect("write after restart");
        c.flush().await.expect("flush after restart");
    });
    assert!(
        units[1].contents()[4 * MIB as usize..][..4096]
            .iter()
            .all(|&b| b == 2)
    );
}

#[test]
fn a_flush_after_unflushed_writes_were_lost_with_a_unit_fails_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    // No CAN_MULTI_CONN: each connection's writes need their own FLUSH.
    let mut units = [
        Unit::start(dir.path(), "u0", 4 * MIB, Server::Nbdkit, Transport::Unix),
        Unit::start(
            dir.path(),
            "u1",
            4 * MIB,
            Server::NbdkitPlain,
            Transport::Unix,
        ),
    ];
    let vol = Attached::start(units.iter().map(Unit::spec).collect());
    with_client(vol.addr, async |c| {
        c.write(5 * MIB, &[7; 65536], false).await.expect("write");
    });
    units[1].kill();
    units[1].restart();
    with_client(vol.addr, async |c| {
        // The unit is back, but the connection that carried the write is
        // gone before any FLUSH reached it: durability is not known.
        let e = c.flush().await.expect_err("flush reports the lost writes");
        assert!(matches!(e, Error::Request { errno: NBD_EIO, .. }), "{e}");
        // Reported once; new writes flush normally.
        c.write(5 * MIB, &[8; 65536], false).await.expect("write");
        c.flush().await.expect("flush");
    });
}

#[test]
fn requests_larger_than_a_unit_accepts_are_split_for_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let units = [
        Unit::start(dir.path(), "u0", 4 * MIB, Server::QemuNbd, Transport::Unix),
        Unit::start(
            dir.path(),
            "u1",
            4 * MIB,
            Server::NbdkitSmallBlocks,
            Transport::Unix,
        ),
    ];
    let vol = Attached::start(units.iter().map(Unit::spec).collect());
    let data = pseudo_random((2 * MIB) as usize, 5);
    with_client(vol.addr, async |c| {
        // The volume advertises what every unit accepts.
        let max = c.info().block_sizes.expect("block sizes").maximum;
        assert_eq!(max, 64 * 1024);
        // A client that ignores it still gets its 2 MiB written and read,
        // half on the unit that refuses requests over 64 KiB.
        c.write(3 * MIB, &data, false).await.expect("large write");
        let back = c.read(3 * MIB, (2 * MIB) as u32).await.expect("large read");
        assert!(back == data);
    });
    assert!(units[1].contents()[..MIB as usize] == data[MIB as usize..]);
}

#[test]
fn unreachable_or_too_small_units_are_refused_at_attach() {
    let dir = tempfile::tempdir().expect("tempdir");
    let unit = Unit::start(dir.path(), "u0", 4 * MIB, Server::Nbdkit, Transport::Unix);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let too_big = RemoteSpec {
            size: 8 * MIB,
            ..unit.spec()
        };
        let e = ConcatExport::connect(vec![too_big], ConcatOptions::default())
            .await
            .err()
            .expect("a unit smaller than its extent is refused");
        assert!(e.to_string().contains("less than its extent"), "{e}");

        let gone = RemoteSpec {
            addr: RemoteAddr::Unix(dir.path().join("nobody.sock")),
            ..unit.spec()
        };
        let e = ConcatExport::connect(vec![unit.spec(), gone], ConcatOptions::default())
            .await
            .err()
            .expect("an unreachable unit is refused");
        assert!(e.to_string().contains("nobody.sock"), "{e}");
    });
}
