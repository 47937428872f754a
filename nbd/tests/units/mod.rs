//! SAN unit stand-ins nobody here wrote, for tests of the concat export
//! and `dvsan volume attach`: qemu-nbd or nbdkit serving a sparse file in a
//! temp dir as export `disk`, on a free loopback TCP port or a Unix socket.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dvsan_nbd::{RemoteAddr, RemoteSpec};

/// Bound on a unit coming up.
const UNIT_START: Duration = Duration::from_secs(15);

/// A free TCP port on 127.0.0.1 (taken again by the caller, so a start
/// that loses the race retries).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

#[derive(Clone, Copy, PartialEq)]
pub enum Server {
    QemuNbd,
    Nbdkit,
    /// nbdkit without `CAN_MULTI_CONN` or FUA, so FLUSH must go to every
    /// connection and FUA is emulated.
    NbdkitPlain,
    /// nbdkit that advertises a 64 KiB maximum block size and refuses
    /// larger requests.
    NbdkitSmallBlocks,
}

#[derive(Clone, Copy, PartialEq)]
pub enum Transport {
    Tcp,
    Unix,
}

/// A SAN unit stand-in nobody here wrote: qemu-nbd or nbdkit serving a
/// sparse file as export `disk`, killed on drop.
pub struct Unit {
    server: Server,
    pub file: PathBuf,
    pub addr: RemoteAddr,
    pub size: u64,
    child: Option<Child>,
}

impl Unit {
    pub fn start(dir: &Path, name: &str, size: u64, server: Server, transport: Transport) -> Unit {
        let file = dir.join(format!("{name}.img"));
        std::fs::File::create(&file)
            .and_then(|f| f.set_len(size))
            .expect("create unit file");
        let addr = match transport {
            Transport::Tcp => RemoteAddr::Tcp {
                host: "127.0.0.1".into(),
                port: 0,
            },
            Transport::Unix => RemoteAddr::Unix(dir.join(format!("{name}.sock"))),
        };
        let mut u = Unit {
            server,
            file,
            addr,
            size,
            child: None,
        };
        u.restart();
        u
    }

    /// (Re)starts the server on the unit's socket; a TCP unit whose port
    /// was taken in the meantime moves to another free port.
    pub fn restart(&mut self) {
        for attempt in 0..5 {
            if let RemoteAddr::Tcp { port, .. } = &mut self.addr
                && (*port == 0 || attempt > 0)
            {
                *port = free_port();
            }
            if let RemoteAddr::Unix(p) = &self.addr {
                let _ = std::fs::remove_file(p);
            }
            let mut child = self.command().spawn().expect("spawn unit server");
            let deadline = Instant::now() + UNIT_START;
            loop {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                if self.accepts() {
                    self.child = Some(child);
                    return;
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("unit server did not start");
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("unit server kept exiting at start");
    }

    fn command(&self) -> Command {
        let file = self.file.to_str().expect("utf-8 path");
        let mut c = match self.server {
            Server::QemuNbd => {
                let mut c = Command::new("qemu-nbd");
                c.args(["-f", "raw", "-x", "disk", "-t", "-e", "0"]);
                match &self.addr {
                    RemoteAddr::Tcp { host, port } => {
                        c.args(["-b", host, "-p", &port.to_string()]);
                    }
                    RemoteAddr::Unix(p) => {
                        c.arg("-k").arg(p);
                    }
                }
                c.arg(file);
                c
            }
            Server::Nbdkit | Server::NbdkitPlain | Server::NbdkitSmallBlocks => {
                let mut c = Command::new("nbdkit");
                c.args(["-f", "--exit-with-parent", "-e", "disk"]);
                match &self.addr {
                    RemoteAddr::Tcp { host, port } => {
                        c.args(["-i", host, "-p", &port.to_string()]);
                    }
                    RemoteAddr::Unix(p) => {
                        c.arg("-U").arg(p);
                    }
                }
                if self.server == Server::NbdkitPlain {
                    c.args(["--filter=multi-conn", "--filter=fua"]);
                }
                if self.server == Server::NbdkitSmallBlocks {
                    c.arg("--filter=blocksize-policy");
                }
                c.args(["file", file]);
                if self.server == Server::NbdkitPlain {
                    // The fua filter's default mode hides FUA.
                    c.arg("multi-conn-mode=disable");
                }
                if self.server == Server::NbdkitSmallBlocks {
                    c.args(["blocksize-maximum=64K", "blocksize-error-policy=error"]);
                }
                c
            }
        };
        // The readiness probe's bare connections make the servers complain.
        let log = std::fs::File::create(self.file.with_extension("log")).expect("unit log");
        c.stdin(Stdio::null()).stdout(Stdio::null()).stderr(log);
        c
    }

    fn accepts(&self) -> bool {
        match &self.addr {
            RemoteAddr::Tcp { host, port } => {
                std::net::TcpStream::connect((host.as_str(), *port)).is_ok()
            }
            RemoteAddr::Unix(p) => std::os::unix::net::UnixStream::connect(p).is_ok(),
        }
    }

    pub fn spec(&self) -> RemoteSpec {
        RemoteSpec {
            addr: self.addr.clone(),
            export: "disk".into(),
            size: self.size,
            tls: false,
        }
    }

    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn contents(&self) -> Vec<u8> {
        std::fs::read(&self.file).expect("read unit file")
    }
}

impl Drop for Unit {
    fn drop(&mut self) {
        self.kill();
    }
}
