//! NBD over TLS (`NBD_OPT_STARTTLS`) against clients nobody here wrote:
//! nbdinfo and nbdcopy (libnbd, GnuTLS) and qemu-io (qemu's
//! tls-creds-x509), with certificates made by the openssl tool. Required
//! TLS refuses clients in the clear; a client CA refuses clients without a
//! certificate it signed; a client that does not trust the server's
//! certificate gets nothing.

mod common;
#[path = "common/pki.rs"]
mod pki;
mod tools;

use bytes::BytesMut;
use common::{EXPORT, TestServer, haggling, option, option_reply, pseudo_random, read_to_close};
use dvsan_nbd::codec;
use dvsan_nbd::consts::*;
use dvsan_nbd::{TlsMode, TlsPolicy};
use pki::Pki;
use tools::{run, run_ok};

fn policy(pki: &Pki, client_ca: bool, mode: TlsMode) -> TlsPolicy {
    let ca = pki.path("ca-cert.pem");
    TlsPolicy::from_pem_files(
        &pki.path("server-cert.pem"),
        &pki.path("server-key.pem"),
        client_ca.then_some(ca.as_path()),
        mode,
    )
    .expect("TLS policy")
}

fn tls_uri(s: &TestServer, creds: &str) -> String {
    format!("nbds://{}/{EXPORT}?tls-certificates={creds}", s.addr)
}

/// The export's size as nbdinfo reads it over TLS with `creds`.
fn tls_size(s: &TestServer, creds: &str) -> String {
    run_ok("nbdinfo", &["--size", &tls_uri(s, creds)])
        .trim()
        .to_owned()
}

fn failed(cmd: &str, args: &[&str]) -> String {
    let out = run(cmd, args);
    assert!(!out.status.success(), "{cmd} {args:?} succeeded");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn required_tls_serves_nbdinfo_and_qemu_io_inside_tls_and_nobody_in_the_clear() {
    let pki = Pki::new();
    let s = TestServer::start_tls(8 << 20, policy(&pki, false, TlsMode::Required));
    let creds = pki.client_dir("trusting", "ca", false);

    // In the clear: refused (libnbd reports the server's TLS requirement).
    let err = failed("nbdinfo", &["--size", &s.uri()]);
    assert!(err.to_lowercase().contains("tls"), "{err}");
    // (libnbd reports NBD_REP_ERR_TLS_REQD to a LIST as "not supported".)
    failed("nbdinfo", &["--list", &format!("nbd://{}", s.addr)]);

    // Inside TLS: the size, the list, and data written and read back.
    let uri = tls_uri(&s, &creds);
    assert_eq!(run_ok("nbdinfo", &["--size", &uri]).trim(), "8388608");
    let list = run_ok(
        "nbdinfo",
        &[
            "--list",
            &format!("nbds://{}?tls-certificates={creds}", s.addr),
        ],
    );
    assert!(list.contains("export=\"disk\""), "{list}");
    let out = run_ok(
        "qemu-io",
        &[
            "--object",
            &format!("tls-creds-x509,id=tls0,dir={creds},endpoint=client"),
            "--image-opts",
            &format!(
                "driver=nbd,host=127.0.0.1,port={},export={EXPORT},tls-creds=tls0",
                s.addr.port()
            ),
            "-c",
            "write -P 0xcd 1M 1M",
            "-c",
            "read -P 0xcd 1M 1M",
            // Small reads of data in the page cache, answered without a
            // hop to the blocking pool.
            "-c",
            "read -P 0xcd 1028k 4k",
            "-c",
            "read -P 0 60k 8k",
        ],
    );
    for done in [
        "read 1048576/1048576 bytes at offset 1048576",
        "read 4096/4096 bytes at offset 1052672",
        "read 8192/8192 bytes at offset 61440",
    ] {
        assert!(out.contains(done), "{out}");
    }
    let disk = std::fs::read(&s.path).expect("read backing file");
    assert!(disk[1 << 20..2 << 20].iter().all(|b| *b == 0xcd));
    assert!(disk[..1 << 20].iter().all(|b| *b == 0));
}

#[test]
fn nbdcopy_round_trips_random_data_over_tls() {
    let pki = Pki::new();
    let s = TestServer::start_tls(16 << 20, policy(&pki, false, TlsMode::Required));
    let creds = pki.client_dir("trusting", "ca", false);
    let uri = tls_uri(&s, &creds);
    let src = s.dir().join("src.img");
    let back = s.dir().join("back.img");
    let data = pseudo_random(16 << 20, 7);
    std::fs::write(&src, &data).expect("write source");
    run_ok("nbdcopy", &[src.to_str().unwrap(), &uri]);
    assert!(std::fs::read(&s.path).expect("read backing") == data);
    run_ok("nbdcopy", &[&uri, back.to_str().unwrap()]);
    assert!(std::fs::read(&back).expect("read copy") == data);
}

#[test]
fn a_client_that_does_not_trust_the_server_certificate_gets_nothing() {
    let pki = Pki::new();
    let s = TestServer::start_tls(1 << 20, policy(&pki, false, TlsMode::Required));
    let creds = pki.client_dir("distrusting", "other-ca", false);
    failed("nbdinfo", &["--size", &tls_uri(&s, &creds)]);
    // The server is still there for a client that trusts it.
    let creds = pki.client_dir("trusting", "ca", false);
    assert_eq!(tls_size(&s, &creds), "1048576");
}

#[test]
fn with_a_client_ca_only_clients_with_a_certificate_it_signed_get_in() {
    let pki = Pki::new();
    let s = TestServer::start_tls(1 << 20, policy(&pki, true, TlsMode::Required));
    let without = pki.client_dir("no-cert", "ca", false);
    failed("nbdinfo", &["--size", &tls_uri(&s, &without)]);
    let with = pki.client_dir("with-cert", "ca", true);
    assert_eq!(tls_size(&s, &with), "1048576");
}

#[test]
fn optional_tls_serves_clients_in_the_clear_and_inside_tls() {
    let pki = Pki::new();
    let s = TestServer::start_tls(2 << 20, policy(&pki, false, TlsMode::Optional));
    assert_eq!(run_ok("nbdinfo", &["--size", &s.uri()]).trim(), "2097152");
    let creds = pki.client_dir("trusting", "ca", false);
    assert_eq!(tls_size(&s, &creds), "2097152");
}

#[test]
fn unreadable_or_mismatched_pem_files_are_refused_with_the_file_named() {
    let pki = Pki::new();
    let missing = pki.path("nope.pem");
    let e = TlsPolicy::from_pem_files(
        &missing,
        &pki.path("server-key.pem"),
        None,
        TlsMode::Required,
    )
    .expect_err("a missing certificate file");
    assert!(e.to_string().contains("nope.pem"), "{e}");
    // A key file given as the certificate: no certificate in it.
    let e = TlsPolicy::from_pem_files(
        &pki.path("server-key.pem"),
        &pki.path("server-key.pem"),
        None,
        TlsMode::Required,
    )
    .expect_err("no certificate");
    assert!(e.to_string().contains("server-key.pem"), "{e}");
    // The client's key with the server's certificate.
    let e = TlsPolicy::from_pem_files(
        &pki.path("server-cert.pem"),
        &pki.path("client-key.pem"),
        None,
        TlsMode::Required,
    )
    .expect_err("a key that does not match");
    assert!(!e.to_string().is_empty());
}

#[tokio::test]
async fn required_tls_refuses_every_option_but_starttls_and_abort_in_the_clear() {
    let pki = Pki::new();
    let s = TestServer::start_tls(1 << 20, policy(&pki, false, TlsMode::Required));
    let mut conn = haggling(s.addr).await;
    let mut info = BytesMut::new();
    codec::encode_info_request(&mut info, EXPORT, &[]);
    for (opt, data) in [
        (NBD_OPT_LIST, &[][..]),
        (NBD_OPT_INFO, &info[..]),
        (NBD_OPT_GO, &info[..]),
        (NBD_OPT_STRUCTURED_REPLY, &[][..]),
        (OptType(0x1234), &b"unknown"[..]),
    ] {
        option(&mut conn, opt, data).await;
        assert_eq!(
            option_reply(&mut conn).await.1,
            NBD_REP_ERR_TLS_REQD,
            "{opt}"
        );
    }
    // STARTTLS takes no data; haggling goes on.
    option(&mut conn, NBD_OPT_STARTTLS, b"x").await;
    assert_eq!(option_reply(&mut conn).await.1, NBD_REP_ERR_INVALID);
    // EXPORT_NAME cannot carry the refusal: the server hangs up.
    option(&mut conn, NBD_OPT_EXPORT_NAME, EXPORT.as_bytes()).await;
    let (mut stream, rest) = conn.into_parts();
    assert!(rest.is_empty());
    assert!(read_to_close(&mut stream).await.is_empty());
    // ABORT is acknowledged in the clear.
    let mut conn = haggling(s.addr).await;
    option(&mut conn, NBD_OPT_ABORT, &[]).await;
    assert_eq!(option_reply(&mut conn).await.1, NBD_REP_ACK);
    // STARTTLS is acknowledged; a client that then sends garbage instead
    // of a TLS hello is dropped, and the server serves on.
    let mut conn = haggling(s.addr).await;
    option(&mut conn, NBD_OPT_STARTTLS, &[]).await;
    assert_eq!(option_reply(&mut conn).await.1, NBD_REP_ACK);
    conn.write_all(&[0x55; 64]).await.expect("send garbage");
    let (mut stream, _) = conn.into_parts();
    read_to_close(&mut stream).await;
    let creds = pki.client_dir("trusting", "ca", false);
    assert_eq!(tls_size(&s, &creds), "1048576");
}
