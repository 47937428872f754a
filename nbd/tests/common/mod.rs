//! Test harness: an in-process NBD server on 127.0.0.1 (free port) serving
//! a temp file through `FileExport`, on its own runtime thread so that
//! tests can run blocking external tools against it.

#![allow(dead_code)]

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use bytes::BytesMut;
use dvsan_nbd::codec;
use dvsan_nbd::connection::Connection;
use dvsan_nbd::consts::{ClientFlags, OptType, RepType};
use dvsan_nbd::{Access, Export, ExportStats, FileExport, StaticRegistry, TlsPolicy};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::sync::oneshot;

pub const EXPORT: &str = "disk";

pub struct TestServer {
    pub addr: SocketAddr,
    pub path: PathBuf,
    pub stats: Arc<ExportStats>,
    _dir: tempfile::TempDir,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

/// A temp dir holding `disk.img`, `size` zero bytes.
fn backing_file(size: u64) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("disk.img");
    std::fs::File::create(&path)
        .and_then(|f| f.set_len(size))
        .expect("create backing file");
    (dir, path)
}

impl TestServer {
    /// A server with one export, `disk`, of `size` zero bytes.
    pub fn start(size: u64) -> TestServer {
        Self::start_with(size, Access::Everyone)
    }

    pub fn start_with(size: u64, access: Access) -> TestServer {
        let (dir, path) = backing_file(size);
        let export = FileExport::open(&path, false).expect("open export");
        let mut registry = StaticRegistry::new();
        let stats = registry.add(EXPORT, "test disk", Arc::new(export), access);
        let ro = FileExport::open(&path, true).expect("open read-only export");
        registry.add("ro", "read-only view", Arc::new(ro), Access::Everyone);
        registry.set_default(EXPORT);
        Self::serve(registry, dir, path, stats, None)
    }

    /// A server with one export, `disk`, of `size` zero bytes, offering or
    /// requiring TLS under `tls`.
    pub fn start_tls(size: u64, tls: TlsPolicy) -> TestServer {
        let (dir, path) = backing_file(size);
        let export = FileExport::open(&path, false).expect("open export");
        let mut registry = StaticRegistry::new();
        let stats = registry.add(EXPORT, "test disk", Arc::new(export), Access::Everyone);
        Self::serve(registry, dir, path, stats, Some(Arc::new(tls)))
    }

    /// A server whose export `disk` is `export` (built over a file of
    /// `size` zero bytes at the path given to `make`).
    pub fn start_export(size: u64, make: impl FnOnce(&Path) -> Arc<dyn Export>) -> TestServer {
        let (dir, path) = backing_file(size);
        let mut registry = StaticRegistry::new();
        let stats = registry.add(EXPORT, "test disk", make(&path), Access::Everyone);
        registry.set_default(EXPORT);
        Self::serve(registry, dir, path, stats, None)
    }

    fn serve(
        registry: StaticRegistry,
        dir: tempfile::TempDir,
        path: PathBuf,
        stats: Arc<ExportStats>,
        tls: Option<Arc<TlsPolicy>>,
    ) -> TestServer {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                addr_tx
                    .send(listener.local_addr().expect("addr"))
                    .expect("send addr");
                dvsan_nbd::serve_with_tls(listener, Arc::new(registry), tls, async {
                    let _ = stop_rx.await;
                })
                .await;
            });
        });
        let addr = addr_rx.recv().expect("server address");
        TestServer {
            addr,
            path,
            stats,
            _dir: dir,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    pub fn uri(&self) -> String {
        format!("nbd://{}/{}", self.addr, EXPORT)
    }

    pub fn dir(&self) -> PathBuf {
        self._dir.path().to_path_buf()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Deterministic pseudo-random bytes (xorshift64*), so failures reproduce.
pub fn pseudo_random(len: usize, seed: u64) -> Vec<u8> {
    let mut x = seed | 1;
    let mut v = Vec::with_capacity(len + 8);
    while v.len() < len {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        v.extend_from_slice(&x.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
    }
    v.truncate(len);
    v
}

pub fn only(ip: &str) -> Access {
    Access::Addresses(vec![ip.parse::<IpAddr>().expect("ip")])
}

// Hand-made protocol bytes.

pub async fn raw(addr: SocketAddr) -> TcpStream {
    TcpStream::connect(addr).await.expect("connect")
}

/// Reads until EOF (bounded by the server closing); returns what came.
pub async fn read_to_close(s: &mut TcpStream) -> Vec<u8> {
    let mut v = Vec::new();
    let r = tokio::time::timeout(std::time::Duration::from_secs(10), s.read_to_end(&mut v)).await;
    assert!(r.is_ok(), "server did not close the connection");
    v
}

/// Greeting and client flags by hand; returns the connection in option
/// haggling.
pub async fn haggling(addr: SocketAddr) -> Connection<TcpStream> {
    let mut conn = Connection::new(raw(addr).await);
    let flags = conn
        .read_decoded(codec::decode_greeting)
        .await
        .expect("greeting")
        .expect("greeting present");
    assert_eq!(flags, 3, "FIXED_NEWSTYLE | NO_ZEROES");
    let mut out = BytesMut::new();
    codec::encode_client_flags(
        &mut out,
        ClientFlags::FIXED_NEWSTYLE | ClientFlags::NO_ZEROES,
    );
    conn.write_all(&out).await.expect("flags");
    conn
}

pub async fn option(conn: &mut Connection<TcpStream>, opt: OptType, data: &[u8]) {
    let mut out = BytesMut::new();
    codec::encode_option(&mut out, opt, data);
    conn.write_all(&out).await.expect("send option");
}

pub async fn option_reply(conn: &mut Connection<TcpStream>) -> (OptType, RepType, Vec<u8>) {
    conn.read_decoded(|b| {
        codec::decode_option_reply(b, 1 << 20)
            .map(|(r, n)| ((r.option, r.reply, r.data.to_vec()), n))
    })
    .await
    .expect("option reply")
    .expect("reply present")
}
