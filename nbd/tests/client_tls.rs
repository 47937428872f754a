//! The client half over TLS against a server nobody here wrote: nbdkit
//! (GnuTLS) requiring TLS, with certificates made by the openssl tool.
//! The client starts TLS before anything else, checks the server's
//! certificate against its CA and the name it dialled, presents its own
//! certificate when it has one, and never falls back to the clear.

mod common;
#[path = "common/pki.rs"]
mod pki;

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{EXPORT, TestServer, pseudo_random};
use dvsan_nbd::consts::{NBD_REP_ERR_POLICY, NBD_REP_ERR_UNSUP};
use dvsan_nbd::{
    Client, ClientOptions, ClientTls, ConcatExport, ConcatOptions, Error, Export, RemoteAddr,
    RemoteSpec, TlsMode, TlsPolicy,
};
use pki::Pki;
use tokio::net::TcpStream;

/// nbdkit serving an 8 MiB memory disk as `disk` on a free loopback port,
/// killed on drop.
struct Nbdkit {
    addr: SocketAddr,
    child: Child,
}

impl Nbdkit {
    /// `tls`: nbdkit's `--tls` (off, on, require); `verify_peer`: client
    /// certificates signed by the PKI's CA required.
    fn start(pki: &Pki, tls: &str, verify_peer: bool) -> Nbdkit {
        for _ in 0..5 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("free port")
                .port();
            let mut c = Command::new("nbdkit");
            c.args(["-f", "--exit-with-parent", "-e", EXPORT, "-i", "127.0.0.1"])
                .args(["-p", &port.to_string(), &format!("--tls={tls}")])
                .arg(format!("--tls-certificates={}", pki.p("")))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if verify_peer {
                c.arg("--tls-verify-peer");
            }
            let mut child = c.args(["memory", "8M"]).spawn().expect("spawn nbdkit");
            let addr: SocketAddr = ([127, 0, 0, 1], port).into();
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break; // the port was taken: try another
                }
                if std::net::TcpStream::connect(addr).is_ok() {
                    return Nbdkit { addr, child };
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        panic!("nbdkit did not start");
    }
}

impl Drop for Nbdkit {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn trusting(pki: &Pki, ca: &str) -> ClientTls {
    ClientTls::from_pem_files(&pki.path(&format!("{ca}-cert.pem")), None).expect("client TLS")
}

fn with_certificate(pki: &Pki) -> ClientTls {
    ClientTls::from_pem_files(
        &pki.path("ca-cert.pem"),
        Some((&pki.path("client-cert.pem"), &pki.path("client-key.pem"))),
    )
    .expect("client TLS with a certificate")
}

/// Connects to `addr` over TLS, the server to prove it is `name`.
async fn connect(addr: SocketAddr, tls: ClientTls, name: &str) -> dvsan_nbd::Result<Client> {
    let stream = TcpStream::connect(addr).await?;
    Client::handshake(stream, &ClientOptions::new(EXPORT).with_tls(tls, name)).await
}

#[tokio::test]
async fn the_client_reads_and_writes_through_nbdkit_requiring_tls() {
    let pki = Pki::new();
    let kit = Nbdkit::start(&pki, "require", false);
    // In the clear nbdkit answers nothing useful.
    let plain = Client::connect(kit.addr, EXPORT).await;
    assert!(plain.is_err(), "a client in the clear got in");

    for name in ["127.0.0.1", "localhost"] {
        let c = connect(kit.addr, trusting(&pki, "ca"), name)
            .await
            .unwrap_or_else(|e| panic!("TLS as {name}: {e}"));
        assert_eq!(c.info().size, 8 << 20);
        let data = pseudo_random(256 << 10, 7);
        c.write(1 << 20, &data, false).await.expect("write");
        c.flush().await.expect("flush");
        assert!(c.read(1 << 20, data.len() as u32).await.expect("read") == data);
        c.write_zeroes(1 << 20, 4096, false, false)
            .await
            .expect("zero");
        assert_eq!(c.read(1 << 20, 4096).await.expect("read"), vec![0u8; 4096]);
        c.disconnect().await.expect("disconnect");
    }
}

#[tokio::test]
async fn a_certificate_from_another_ca_or_for_another_name_is_refused() {
    let pki = Pki::new();
    let kit = Nbdkit::start(&pki, "require", false);
    let e = connect(kit.addr, trusting(&pki, "other-ca"), "127.0.0.1")
        .await
        .err()
        .expect("a server signed by a CA the client does not trust");
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
    let e = connect(kit.addr, trusting(&pki, "ca"), "unit9.example.org")
        .await
        .err()
        .expect("a server whose certificate names another host");
    assert!(e.to_string().to_lowercase().contains("certificate"), "{e}");
}

#[tokio::test]
async fn the_client_never_falls_back_to_the_clear() {
    let pki = Pki::new();
    let kit = Nbdkit::start(&pki, "off", false);
    match connect(kit.addr, trusting(&pki, "ca"), "127.0.0.1").await {
        Err(Error::OptionRefused { reply, .. }) => {
            assert!(
                reply == NBD_REP_ERR_UNSUP || reply == NBD_REP_ERR_POLICY,
                "{reply}"
            );
        }
        Err(e) => panic!("expected STARTTLS refused, got {e}"),
        Ok(_) => panic!("a client asking for TLS went on in the clear"),
    }
}

#[tokio::test]
async fn a_server_that_asks_for_a_client_certificate_gets_it() {
    let pki = Pki::new();
    let kit = Nbdkit::start(&pki, "require", true);
    assert!(
        connect(kit.addr, trusting(&pki, "ca"), "127.0.0.1")
            .await
            .is_err(),
        "a client without a certificate got in"
    );
    let c = connect(kit.addr, with_certificate(&pki), "127.0.0.1")
        .await
        .expect("a client with a certificate the server's CA signed");
    assert_eq!(c.info().size, 8 << 20);

    // dvsan's own server asking the same.
    let policy = TlsPolicy::from_pem_files(
        &pki.path("server-cert.pem"),
        &pki.path("server-key.pem"),
        Some(&pki.path("ca-cert.pem")),
        TlsMode::Required,
    )
    .expect("policy");
    let s = TestServer::start_tls(1 << 20, policy);
    let c = connect(s.addr, with_certificate(&pki), "localhost")
        .await
        .expect("dvsan's server");
    assert_eq!(c.info().size, 1 << 20);
}

#[tokio::test]
async fn a_concatenated_export_reaches_its_tls_remotes_only_with_tls_settings() {
    let pki = Pki::new();
    let kit = Nbdkit::start(&pki, "require", false);
    let spec = RemoteSpec {
        addr: RemoteAddr::Tcp {
            host: "127.0.0.1".into(),
            port: kit.addr.port(),
        },
        export: EXPORT.into(),
        size: 8 << 20,
        tls: true,
    };
    let e = ConcatExport::connect(vec![spec.clone()], ConcatOptions::default())
        .await
        .err()
        .expect("a TLS remote without TLS settings");
    assert!(e.to_string().contains("nbds://127.0.0.1"), "{e}");
    let opts = ConcatOptions {
        tls: Some(trusting(&pki, "ca")),
        ..ConcatOptions::default()
    };
    let export = ConcatExport::connect(vec![spec], opts)
        .await
        .expect("a TLS remote with TLS settings");
    let data = pseudo_random(64 << 10, 3);
    tokio::task::spawn_blocking(move || {
        export.write_at(&data, 4096, true).expect("write");
        let mut back = vec![0u8; data.len()];
        export.read_at(&mut back, 4096).expect("read");
        assert!(back == data);
    })
    .await
    .expect("blocking I/O");
}
