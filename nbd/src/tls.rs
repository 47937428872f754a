//! TLS for NBD connections (`NBD_OPT_STARTTLS`, X.509 through rustls).
//!
//! A server given a [`TlsPolicy`] accepts `NBD_OPT_STARTTLS` during option
//! haggling: it acknowledges, runs the TLS handshake on the socket, and
//! haggling starts over inside TLS (nothing negotiated before it counts).
//! With TLS required, every option but `NBD_OPT_STARTTLS` and
//! `NBD_OPT_ABORT` is refused with `NBD_REP_ERR_TLS_REQD` until then (and
//! `NBD_OPT_EXPORT_NAME`, which cannot carry an error, ends the session),
//! so no export name, list or data crosses the network in the clear. With
//! a client CA, only clients presenting a certificate it signed get
//! through the TLS handshake.
//!
//! A client given a [`ClientTls`] sends `NBD_OPT_STARTTLS` first thing,
//! checks the server's certificate against the CAs it trusts and the name
//! it dialled, and haggles inside TLS; a server that does not offer TLS
//! is an error, never a quiet fall back to the clear.
//!
//! Certificates and keys are read from PEM files, as qemu's and libnbd's
//! `tls-creds-x509` directories hold them. A server reads its files again
//! on [`TlsPolicy::reload`] (a renewed certificate, a new client CA):
//! connections from then on use the new ones, connections up keep theirs,
//! and files that cannot be used leave the old configuration in place.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use tokio::io::{AsyncRead, AsyncWrite, BufReader};
use tokio_rustls::{TlsAcceptor, TlsConnector};

/// Bytes of ciphertext taken off the socket at once under TLS. rustls asks
/// for 4 KiB at a time; without a buffer below it every 4 KiB of a large
/// WRITE was a `recv` of its own (and a window update back to the peer).
const TLS_READ_BUFFER: usize = 256 << 10;

/// `stream` with a read buffer below TLS (see [`TLS_READ_BUFFER`]).
pub(crate) fn buffered<S: AsyncRead>(stream: S) -> BufReader<S> {
    BufReader::with_capacity(TLS_READ_BUFFER, stream)
}

/// Why a TLS configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{what} {}: {message}", path.display())]
    Pem {
        /// What the file should hold.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What went wrong.
        message: String,
    },
    /// rustls refused the certificates or key.
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// Whether clients must use TLS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Clients may start TLS, or not.
    Optional,
    /// Nothing but `NBD_OPT_STARTTLS` (or `NBD_OPT_ABORT`) is answered
    /// before TLS is up.
    Required,
}

/// The server's TLS identity and rules.
pub struct TlsPolicy {
    /// The configuration new connections get; replaced whole by a reload.
    config: RwLock<Arc<rustls::ServerConfig>>,
    files: PemFiles,
    pub(crate) mode: TlsMode,
}

/// Where a server's TLS configuration is read from.
#[derive(Debug, Clone)]
struct PemFiles {
    cert: PathBuf,
    key: PathBuf,
    client_ca: Option<PathBuf>,
}

impl fmt::Debug for TlsPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsPolicy")
            .field("mode", &self.mode)
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

fn pem_error(what: &'static str, path: &Path, e: impl fmt::Display) -> TlsError {
    TlsError::Pem {
        what,
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

fn certificates(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| pem_error(what, path, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| pem_error(what, path, e))?;
    if certs.is_empty() {
        return Err(pem_error(what, path, "no CERTIFICATE block in the file"));
    }
    Ok(certs)
}

impl PemFiles {
    /// A server configuration from the files as they are now.
    fn load(&self) -> Result<rustls::ServerConfig, TlsError> {
        let chain = certificates("certificate", &self.cert)?;
        let key = PrivateKeyDer::from_pem_file(&self.key)
            .map_err(|e| pem_error("private key", &self.key, e))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?;
        let builder = match &self.client_ca {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let mut roots = rustls::RootCertStore::empty();
                for ca in certificates("client CA certificate", path)? {
                    roots
                        .add(ca)
                        .map_err(|e| pem_error("client CA certificate", path, e))?;
                }
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider)
                        .build()
                        .map_err(|e| TlsError::Config(e.to_string()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        builder
            .with_single_cert(chain, key)
            .map_err(|e| TlsError::Config(e.to_string()))
    }
}

impl TlsPolicy {
    /// A policy serving the certificate chain in `cert` (PEM, the server's
    /// own certificate first) with the private key in `key` (PEM: PKCS#8,
    /// PKCS#1 or SEC1). With `client_ca` (PEM), clients must present a
    /// certificate signed by one of its certificates.
    pub fn from_pem_files(
        cert: &Path,
        key: &Path,
        client_ca: Option<&Path>,
        mode: TlsMode,
    ) -> Result<Self, TlsError> {
        let files = PemFiles {
            cert: cert.to_path_buf(),
            key: key.to_path_buf(),
            client_ca: client_ca.map(Path::to_path_buf),
        };
        let config = files.load()?;
        Ok(TlsPolicy {
            config: RwLock::new(Arc::new(config)),
            files,
            mode,
        })
    }

    /// Reads the certificate, key and client CA files again; connections
    /// from now on use them. On an error nothing changes (the files as
    /// they were at the last successful load stay in use). Blocking file
    /// reads: call it off the async reactor.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = Arc::new(self.files.load()?);
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = config;
        Ok(())
    }

    /// The acceptor for a new connection, with the current configuration.
    pub(crate) fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(
            self.config
                .read()
                .unwrap_or_else(|e| e.into_inner())
                .clone(),
        )
    }

    /// Whether clients must use TLS.
    pub fn mode(&self) -> TlsMode {
        self.mode
    }
}

/// A client's TLS settings: the CAs whose certificates it trusts for
/// servers and, for servers that ask for one, its own certificate.
#[derive(Clone)]
pub struct ClientTls {
    connector: TlsConnector,
    client_cert: bool,
}

impl fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientTls")
            .field("client_cert", &self.client_cert)
            .finish_non_exhaustive()
    }
}

impl ClientTls {
    /// Trusts servers whose certificate one of the certificates in `ca`
    /// (PEM) signed; with `identity` (certificate chain and private key,
    /// PEM), presents that certificate to servers that ask for one.
    pub fn from_pem_files(ca: &Path, identity: Option<(&Path, &Path)>) -> Result<Self, TlsError> {
        let mut roots = rustls::RootCertStore::empty();
        for cert in certificates("CA certificate", ca)? {
            roots
                .add(cert)
                .map_err(|e| pem_error("CA certificate", ca, e))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsError::Config(e.to_string()))?
            .with_root_certificates(roots);
        let config = match identity {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = certificates("client certificate", cert)?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| pem_error("client private key", key, e))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| TlsError::Config(e.to_string()))?
            }
        };
        Ok(ClientTls {
            connector: TlsConnector::from(Arc::new(config)),
            client_cert: identity.is_some(),
        })
    }

    /// Runs the TLS handshake on `stream` with a server that must prove to
    /// be `server_name` (a host name or IP address, as dialled).
    pub(crate) async fn connect<S>(
        &self,
        server_name: &str,
        stream: S,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<BufReader<S>>>
    where
        S: AsyncRead + AsyncWrite + Unpin,
    {
        let name = ServerName::try_from(server_name.to_owned()).map_err(|e| {
            std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{server_name:?} is not a host name or IP address for TLS: {e}"),
            )
        })?;
        self.connector.connect(name, buffered(stream)).await
    }
}
