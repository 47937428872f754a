//! `volume_attach::attach` against real units and real clients: qemu-nbd
//! and nbdkit serve the extents on loopback, given to `attach` as the
//! `nbd://` URIs the station hands out; nbdinfo, qemu-io and nbdcopy use
//! the local endpoint it serves, over TCP and a Unix socket.

#[path = "../nbd/tests/tools/mod.rs"]
mod tools;
#[path = "../nbd/tests/units/mod.rs"]
mod units;
#[path = "../src/volume_attach.rs"]
mod volume_attach;

use std::path::Path;
use std::time::{Duration, Instant};

use dvsan_nbd::RemoteAddr;
use tokio::sync::oneshot;
use tools::run_ok;
use units::{Server, Transport, Unit, free_port};
use volume_attach::{AttachListen, RemoteExtent, attach};

const MIB: u64 = 1 << 20;

/// The extent as the station describes it.
fn extent(u: &Unit) -> RemoteExtent {
    let uri = match &u.addr {
        RemoteAddr::Tcp { host, port } => format!("nbd://{host}:{port}/disk"),
        RemoteAddr::Unix(p) => format!("nbd+unix:///disk?socket={}", p.display()),
    };
    RemoteExtent {
        uri,
        size_bytes: u.size,
    }
}

/// `attach` running on a runtime thread of its own until dropped (or
/// [`Attach::stop`]ped).
struct Attach {
    stop: Option<oneshot::Sender<()>>,
    done: std::sync::mpsc::Receiver<anyhow::Result<()>>,
}

impl Attach {
    fn start(volume: &str, extents: Vec<RemoteExtent>, listen: AttachListen) -> Attach {
        let (stop, stop_rx) = oneshot::channel::<()>();
        let (done_tx, done) = std::sync::mpsc::channel();
        let volume = volume.to_owned();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            let r = rt.block_on(attach(&volume, extents, listen, None, async {
                let _ = stop_rx.await;
            }));
            let _ = done_tx.send(r);
        });
        Attach {
            stop: Some(stop),
            done,
        }
    }

    /// Waits for `ready` (the endpoint answering); panics with attach's
    /// error if it ended first.
    fn wait_until(&self, ready: impl Fn() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !ready() {
            if let Ok(r) = self.done.try_recv() {
                panic!("attach ended early: {r:?}");
            }
            assert!(Instant::now() < deadline, "attach did not come up");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Shuts it down and returns what `attach` returned.
    fn stop(mut self) -> anyhow::Result<()> {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        self.done
            .recv_timeout(Duration::from_secs(60))
            .expect("attach returned after shutdown")
    }

    /// What `attach` returned, when it fails on its own.
    fn outcome(&self) -> anyhow::Result<()> {
        self.done
            .recv_timeout(Duration::from_secs(60))
            .expect("attach returned")
    }
}

impl Drop for Attach {
    fn drop(&mut self) {
        // A send fails once attach has returned (it drops the shutdown
        // future); only a running attach is waited for.
        if let Some(s) = self.stop.take()
            && s.send(()).is_ok()
        {
            let _ = self.done.recv_timeout(Duration::from_secs(60));
        }
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn a_volume_over_two_units_is_served_on_a_unix_socket_until_shutdown() {
    let dir = tempfile::tempdir().expect("tempdir");
    let units = [
        Unit::start(dir.path(), "u0", 24 * MIB, Server::Nbdkit, Transport::Tcp),
        Unit::start(dir.path(), "u1", 8 * MIB, Server::QemuNbd, Transport::Tcp),
    ];
    let sock = dir.path().join("vol.sock");
    let a = Attach::start(
        "vol-1",
        units.iter().map(extent).collect(),
        AttachListen::Unix(sock.clone()),
    );
    a.wait_until(|| std::os::unix::net::UnixStream::connect(&sock).is_ok());
    let uri = format!("nbd+unix:///vol-1?socket={}", sock.display());

    let info = run_ok("nbdinfo", &[&uri]);
    assert!(
        info.contains(&format!("export-size: {}", 32 * MIB)),
        "{info}"
    );
    assert!(
        info.contains("description: dvsan volume vol-1 (2 extents)"),
        "{info}"
    );

    // A pattern across the boundary at 24 MiB, read back and found on both
    // units' files.
    let out = run_ok(
        "qemu-io",
        &[
            "-f",
            "raw",
            "-c",
            "write -P 0xab 23M 2M",
            "-c",
            "read -P 0xab 23M 2M",
            &uri,
        ],
    );
    assert!(!out.contains("Pattern verification failed"), "{out}");
    let (u0, u1) = (units[0].contents(), units[1].contents());
    assert!(u0[(23 * MIB) as usize..].iter().all(|&b| b == 0xab));
    assert!(u1[..MIB as usize].iter().all(|&b| b == 0xab));
    assert!(u1[MIB as usize..].iter().all(|&b| b == 0));

    a.stop().expect("attach ends cleanly at shutdown");
    assert!(!sock.exists(), "the socket is removed at shutdown");
}

#[test]
fn a_volume_served_on_tcp_answers_to_its_name_and_as_the_default_export() {
    let dir = tempfile::tempdir().expect("tempdir");
    let units = [
        Unit::start(dir.path(), "u0", 16 * MIB, Server::QemuNbd, Transport::Unix),
        Unit::start(dir.path(), "u1", 16 * MIB, Server::Nbdkit, Transport::Tcp),
    ];
    // A port picked free, then bound by attach (a lost race retries).
    let mut attached = None;
    for _ in 0..5 {
        let port = free_port();
        let listen: AttachListen = format!("127.0.0.1:{port}").parse().expect("listen");
        let a = Attach::start("data", units.iter().map(extent).collect(), listen);
        let deadline = Instant::now() + Duration::from_secs(30);
        let up = loop {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                break true;
            }
            if a.done.try_recv().is_ok() || Instant::now() > deadline {
                break false;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if up {
            attached = Some((a, port));
            break;
        }
    }
    let (a, port) = attached.expect("attach bound a free port");

    let named = format!("nbd://127.0.0.1:{port}/data");
    let default = format!("nbd://127.0.0.1:{port}");
    for uri in [&named, &default] {
        let info = run_ok("nbdinfo", &[uri]);
        assert!(
            info.contains(&format!("export-size: {}", 32 * MIB)),
            "{info}"
        );
    }
    let src = dir.path().join("src.img");
    let back = dir.path().join("back.img");
    let data: Vec<u8> = (0..32 * MIB).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&src, &data).expect("write src");
    run_ok("nbdcopy", &["--connections=2", path_str(&src), &named]);
    run_ok("nbdcopy", &[&default, path_str(&back)]);
    assert!(std::fs::read(&back).expect("read back") == data);
    assert!(units[0].contents() == data[..(16 * MIB) as usize]);
    assert!(units[1].contents() == data[(16 * MIB) as usize..]);
    a.stop().expect("attach ends cleanly at shutdown");
}

#[test]
fn attach_fails_with_one_line_for_a_bad_extent_or_an_absent_unit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let sock = dir.path().join("vol.sock");
    let listen = AttachListen::Unix(sock.clone());
    let bad = RemoteExtent {
        uri: "nbd://[::1/disk".into(),
        size_bytes: MIB,
    };
    let e = Attach::start("v", vec![bad], listen.clone())
        .outcome()
        .expect_err("a malformed URI is refused");
    assert_eq!(
        format!("{e:#}"),
        "extent 0: \"nbd://[::1/disk\": \"[::1\" in brackets is not an IPv6 address"
    );

    let absent = RemoteExtent {
        uri: format!(
            "nbd+unix:///disk?socket={}",
            dir.path().join("gone.sock").display()
        ),
        size_bytes: MIB,
    };
    let e = Attach::start("v", vec![absent], listen)
        .outcome()
        .expect_err("an absent unit is refused");
    let msg = format!("{e:#}");
    assert!(
        msg.starts_with(
            "connecting to the units of volume v: connecting to nbd+unix:///disk?socket="
        ),
        "{msg}"
    );
    assert!(!msg.contains('\n'), "{msg}");
    assert!(!sock.exists(), "nothing was bound");
}
