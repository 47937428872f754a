//! A throwaway X.509 PKI for TLS tests, made by the openssl tool (not by
//! the code under test).
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// Runs openssl, bounded in time; it must succeed.
fn openssl(args: &[&str]) {
    let out = Command::new("timeout")
        .args(["-k", "5", "60", "openssl"])
        .args(args)
        .output()
        .expect("run openssl");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A throwaway PKI in a temp dir: a CA, a server certificate for
/// 127.0.0.1, a client certificate, and the directories the clients read
/// (`ca-cert.pem`, and `client-cert.pem` / `client-key.pem` when the
/// client has one), as GnuTLS-based tools expect them.
pub struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    pub fn new() -> Pki {
        let pki = Pki {
            dir: tempfile::tempdir().expect("tempdir"),
        };
        pki.make_ca("ca");
        pki.make_ca("other-ca");
        pki.make_leaf("ca", "server", "IP:127.0.0.1,DNS:localhost", "serverAuth");
        pki.make_leaf("ca", "client", "DNS:client.example.org", "clientAuth");
        pki
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn p(&self, name: &str) -> String {
        self.path(name).to_str().expect("utf-8 path").to_owned()
    }

    fn make_ca(&self, name: &str) {
        openssl(&[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN=dvsan test {name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            &self.p(&format!("{name}-key.pem")),
            "-out",
            &self.p(&format!("{name}-cert.pem")),
        ]);
    }

    /// A server certificate `name-cert.pem` (key `name-key.pem`) for
    /// 127.0.0.1 and localhost, signed by `ca`.
    pub fn make_server(&self, ca: &str, name: &str) {
        self.make_leaf(ca, name, "IP:127.0.0.1,DNS:localhost", "serverAuth");
    }

    fn make_leaf(&self, ca: &str, name: &str, san: &str, usage: &str) {
        let ext = self.path(&format!("{name}.ext"));
        std::fs::write(
            &ext,
            format!(
                "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\n\
                 extendedKeyUsage={usage}\nsubjectAltName={san}\n"
            ),
        )
        .expect("write extensions");
        openssl(&[
            "req",
            "-new",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            &format!("/CN=dvsan test {name}"),
            "-keyout",
            &self.p(&format!("{name}-key.pem")),
            "-out",
            &self.p(&format!("{name}.csr")),
        ]);
        openssl(&[
            "x509",
            "-req",
            "-days",
            "2",
            "-in",
            &self.p(&format!("{name}.csr")),
            "-CA",
            &self.p(&format!("{ca}-cert.pem")),
            "-CAkey",
            &self.p(&format!("{ca}-key.pem")),
            "-CAcreateserial",
            "-extfile",
            ext.to_str().expect("utf-8 path"),
            "-out",
            &self.p(&format!("{name}-cert.pem")),
        ]);
    }

    /// A client's credentials directory trusting `ca`, with the client
    /// certificate when `with_cert`.
    pub fn client_dir(&self, name: &str, ca: &str, with_cert: bool) -> String {
        let dir = self.path(name);
        std::fs::create_dir_all(&dir).expect("client dir");
        std::fs::copy(
            self.path(&format!("{ca}-cert.pem")),
            dir.join("ca-cert.pem"),
        )
        .expect("copy CA");
        if with_cert {
            std::fs::copy(self.path("client-cert.pem"), dir.join("client-cert.pem"))
                .expect("copy client cert");
            std::fs::copy(self.path("client-key.pem"), dir.join("client-key.pem"))
                .expect("copy client key");
        }
        dir.to_str().expect("utf-8 path").to_owned()
    }
}
