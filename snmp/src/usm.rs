//! SNMP security settings: community strings, SNMPv3 USM users (SHA-2
//! authentication, AES privacy), and the local engine's persisted identity
//! (snmpEngineID and snmpEngineBoots, RFC 3414 section 2.2).

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;

use crate::error::SnmpError;

/// USM authentication protocol (RFC 3414, RFC 7860).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthProtocol {
    /// HMAC-SHA-96 (RFC 3414). Kept for old monitoring tools.
    Sha1,
    /// usmHMAC128SHA224AuthProtocol (RFC 7860).
    Sha224,
    /// usmHMAC192SHA256AuthProtocol (RFC 7860). dvsan's default.
    Sha256,
    /// usmHMAC256SHA384AuthProtocol (RFC 7860).
    Sha384,
    /// usmHMAC384SHA512AuthProtocol (RFC 7860).
    Sha512,
}

/// USM privacy protocol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PrivProtocol {
    /// usmAesCfb128Protocol (RFC 3826). dvsan's default.
    Aes128,
    /// AES-256 with Blumenthal key extension (as net-snmp's `AES-256`).
    Aes256,
}

impl AuthProtocol {
    /// Parses the names net-snmp uses (`SHA`, `SHA-256` …), case-insensitive.
    pub fn parse(text: &str) -> Result<Self, SnmpError> {
        match text.to_ascii_uppercase().as_str() {
            "SHA" | "SHA1" | "SHA-1" => Ok(AuthProtocol::Sha1),
            "SHA-224" | "SHA224" => Ok(AuthProtocol::Sha224),
            "SHA-256" | "SHA256" => Ok(AuthProtocol::Sha256),
            "SHA-384" | "SHA384" => Ok(AuthProtocol::Sha384),
            "SHA-512" | "SHA512" => Ok(AuthProtocol::Sha512),
            _ => Err(SnmpError::Config(format!(
                "unknown authentication protocol {text:?} (expected SHA, SHA-224, SHA-256, SHA-384 or SHA-512)"
            ))),
        }
    }

    /// net-snmp's name for it (`-a` of the net-snmp tools).
    pub fn net_snmp_name(self) -> &'static str {
        match self {
            AuthProtocol::Sha1 => "SHA",
            AuthProtocol::Sha224 => "SHA-224",
            AuthProtocol::Sha256 => "SHA-256",
            AuthProtocol::Sha384 => "SHA-384",
            AuthProtocol::Sha512 => "SHA-512",
        }
    }

    fn engine(self) -> async_snmp::AuthProtocol {
        match self {
            AuthProtocol::Sha1 => async_snmp::AuthProtocol::Sha1,
            AuthProtocol::Sha224 => async_snmp::AuthProtocol::Sha224,
            AuthProtocol::Sha256 => async_snmp::AuthProtocol::Sha256,
            AuthProtocol::Sha384 => async_snmp::AuthProtocol::Sha384,
            AuthProtocol::Sha512 => async_snmp::AuthProtocol::Sha512,
        }
    }
}

impl PrivProtocol {
    /// Parses the names net-snmp uses (`AES`, `AES-256`), case-insensitive.
    pub fn parse(text: &str) -> Result<Self, SnmpError> {
        match text.to_ascii_uppercase().as_str() {
            "AES" | "AES128" | "AES-128" => Ok(PrivProtocol::Aes128),
            "AES256" | "AES-256" => Ok(PrivProtocol::Aes256),
            _ => Err(SnmpError::Config(format!(
                "unknown privacy protocol {text:?} (expected AES or AES-256)"
            ))),
        }
    }

    /// net-snmp's name for it (`-x` of the net-snmp tools).
    pub fn net_snmp_name(self) -> &'static str {
        match self {
            PrivProtocol::Aes128 => "AES",
            PrivProtocol::Aes256 => "AES-256",
        }
    }

    fn engine(self) -> async_snmp::PrivProtocol {
        match self {
            PrivProtocol::Aes128 => async_snmp::PrivProtocol::Aes128,
            PrivProtocol::Aes256 => async_snmp::PrivProtocol::Aes256Blumenthal,
        }
    }
}

/// An SNMPv3 user with authentication and privacy (authPriv): the only v3
/// security level dvsan's own parts use between station and units.
#[derive(Clone, PartialEq, Eq)]
pub struct UsmUser {
    /// securityName.
    pub name: String,
    /// Authentication protocol.
    pub auth_protocol: AuthProtocol,
    /// Authentication passphrase (at least 8 characters, RFC 3414).
    pub auth_password: String,
    /// Privacy protocol.
    pub priv_protocol: PrivProtocol,
    /// Privacy passphrase (at least 8 characters).
    pub priv_password: String,
}

impl fmt::Debug for UsmUser {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UsmUser")
            .field("name", &self.name)
            .field("auth_protocol", &self.auth_protocol)
            .field("priv_protocol", &self.priv_protocol)
            .finish_non_exhaustive()
    }
}

impl UsmUser {
    /// A SHA-256 + AES-128 user, checking the RFC 3414 passphrase minimum.
    pub fn sha256_aes(
        name: impl Into<String>,
        auth_password: impl Into<String>,
        priv_password: impl Into<String>,
    ) -> Result<Self, SnmpError> {
        let user = UsmUser {
            name: name.into(),
            auth_protocol: AuthProtocol::Sha256,
            auth_password: auth_password.into(),
            priv_protocol: PrivProtocol::Aes128,
            priv_password: priv_password.into(),
        };
        user.validate()?;
        Ok(user)
    }

    /// Checks what USM requires of a user before any packet is sent.
    pub fn validate(&self) -> Result<(), SnmpError> {
        if self.name.is_empty() || self.name.len() > 32 {
            return Err(SnmpError::Config(format!(
                "SNMPv3 user name must be 1 to 32 characters, got {}",
                self.name.len()
            )));
        }
        if self.auth_password.len() < 8 {
            return Err(SnmpError::Config(format!(
                "authentication passphrase of SNMPv3 user {:?} must have at least 8 characters",
                self.name
            )));
        }
        if self.priv_password.len() < 8 {
            return Err(SnmpError::Config(format!(
                "privacy passphrase of SNMPv3 user {:?} must have at least 8 characters",
                self.name
            )));
        }
        Ok(())
    }

    pub(crate) fn client_auth(&self) -> Result<async_snmp::Auth, SnmpError> {
        let config = async_snmp::UsmConfig::new(Bytes::from(self.name.clone()))
            .auth_priv(
                self.auth_protocol.engine(),
                self.auth_password.as_bytes(),
                self.priv_protocol.engine(),
                self.priv_password.as_bytes(),
            )
            .map_err(|e| SnmpError::Config(format!("SNMPv3 user {:?}: {e}", self.name)))?;
        Ok(async_snmp::Auth::Usm(config))
    }

    pub(crate) fn engine_user(
        &self,
        user: async_snmp::v3::UsmUser,
    ) -> async_snmp::CryptoResult<async_snmp::v3::UsmUser> {
        user.auth_priv(
            self.auth_protocol.engine(),
            self.auth_password.as_bytes(),
            self.priv_protocol.engine(),
            self.priv_password.as_bytes(),
        )
    }
}

/// How a manager or notifier authenticates to one peer.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    /// SNMPv2c with a community string (cleartext; monitoring tools only).
    V2c {
        /// The community.
        community: String,
    },
    /// SNMPv3 USM, authPriv.
    V3(UsmUser),
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credentials::V2c { .. } => f.write_str("Credentials::V2c(<community>)"),
            Credentials::V3(user) => write!(f, "Credentials::V3({user:?})"),
        }
    }
}

impl Credentials {
    /// SNMPv2c with `community`.
    pub fn v2c(community: impl Into<String>) -> Self {
        Credentials::V2c {
            community: community.into(),
        }
    }

    pub(crate) fn client_auth(&self) -> Result<async_snmp::Auth, SnmpError> {
        match self {
            Credentials::V2c { community } => Ok(async_snmp::Auth::v2c(community.as_bytes())),
            Credentials::V3(user) => user.client_auth(),
        }
    }

    /// Whether these are SNMPv3 credentials.
    pub fn is_v3(&self) -> bool {
        matches!(self, Credentials::V3(_))
    }
}

/// The local SNMP engine's identity, kept in a file so that snmpEngineID
/// stays the same across restarts and snmpEngineBoots grows at each start
/// (RFC 3414 requires both for replay protection).
#[derive(Clone)]
pub struct EngineIdentity {
    pub(crate) engine: async_snmp::AuthoritativeEngine,
}

impl fmt::Debug for EngineIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EngineIdentity")
            .field("engine_id", &hex(self.engine_id()))
            .field("engine_boots", &self.engine_boots())
            .finish()
    }
}

impl EngineIdentity {
    /// Loads the engine state from `path` and increments snmpEngineBoots, or
    /// creates a new engine ID (boots 1) when the file does not exist. The new
    /// state is on disk (written to a temporary file, synced, renamed) before
    /// this returns.
    pub fn load_or_create(path: &Path) -> Result<Self, SnmpError> {
        let store = path.to_path_buf();
        let persist = move |state: &async_snmp::v3::PersistedAuthoritativeEngine| {
            write_engine_file(&store, state.engine_id(), state.engine_boots())
        };
        let engine = match std::fs::read_to_string(path) {
            Ok(text) => {
                let (id, boots) = parse_engine_file(&text).ok_or_else(|| {
                    SnmpError::Config(format!(
                        "{}: not an engine state file (expected \"engine-id <hex>\" and \"engine-boots <n>\")",
                        path.display()
                    ))
                })?;
                let previous = async_snmp::v3::PersistedAuthoritativeEngine::new(id, boots)
                    .map_err(|e| SnmpError::Config(format!("{}: {e}", path.display())))?;
                async_snmp::AuthoritativeEngine::restart(previous, persist)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let id = async_snmp::v3::generate_engine_id()
                    .map_err(|e| SnmpError::Config(format!("generating an engine ID: {e}")))?;
                async_snmp::AuthoritativeEngine::install(id, persist)
            }
            Err(e) => {
                return Err(SnmpError::Io {
                    context: format!("reading {}", path.display()),
                    source: e,
                });
            }
        }
        .map_err(|e| SnmpError::Config(format!("persisting engine state to {}: {e}", path.display())))?;
        Ok(EngineIdentity { engine })
    }

    /// An engine whose state lives only in memory (tests, the station's
    /// receiver when no state directory is given). Boots is 1.
    pub fn ephemeral() -> Result<Self, SnmpError> {
        let id = async_snmp::v3::generate_engine_id()
            .map_err(|e| SnmpError::Config(format!("generating an engine ID: {e}")))?;
        let engine =
            async_snmp::AuthoritativeEngine::install(
                id,
                |_| Ok::<(), std::convert::Infallible>(()),
            )
            .map_err(|e| SnmpError::Config(format!("engine state: {e}")))?;
        Ok(EngineIdentity { engine })
    }

    /// snmpEngineID.
    pub fn engine_id(&self) -> &[u8] {
        self.engine.engine_id()
    }

    /// snmpEngineBoots at this start.
    pub fn engine_boots(&self) -> u32 {
        self.engine.engine_boots()
    }

    /// snmpEngineID as hex, the form net-snmp's `-e` takes.
    pub fn engine_id_hex(&self) -> String {
        hex(self.engine_id())
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn parse_engine_file(text: &str) -> Option<(Bytes, u32)> {
    let mut id = None;
    let mut boots = None;
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        match (parts.next(), parts.next()) {
            (Some("engine-id"), Some(h)) => {
                if h.len() % 2 != 0 {
                    return None;
                }
                let bytes: Option<Vec<u8>> = (0..h.len())
                    .step_by(2)
                    .map(|i| u8::from_str_radix(h.get(i..i + 2)?, 16).ok())
                    .collect();
                id = Some(Bytes::from(bytes?));
            }
            (Some("engine-boots"), Some(n)) => boots = n.parse().ok(),
            _ => {}
        }
    }
    Some((id?, boots?))
}

fn write_engine_file(path: &Path, id: &[u8], boots: u32) -> Result<(), std::io::Error> {
    let tmp: PathBuf = path.with_extension("tmp");
    {
        let mut file = std::fs::File::create(&tmp)?;
        writeln!(file, "# dvsan SNMP engine state (RFC 3414); do not edit")?;
        writeln!(file, "engine-id {}", hex(id))?;
        writeln!(file, "engine-boots {boots}")?;
        file.sync_all()?;
    }
    std::fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent()
        && let Ok(d) = std::fs::File::open(dir)
    {
        let _ = d.sync_all();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn engine_boots_grow_across_restarts_and_the_id_stays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snmp-engine");
        let first = EngineIdentity::load_or_create(&path).unwrap();
        assert_eq!(first.engine_boots(), 1);
        let second = EngineIdentity::load_or_create(&path).unwrap();
        assert_eq!(second.engine_boots(), 2);
        assert_eq!(first.engine_id(), second.engine_id());
        let third = EngineIdentity::load_or_create(&path).unwrap();
        assert_eq!(third.engine_boots(), 3);
    }

    #[test]
    fn a_damaged_engine_file_is_an_error_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("snmp-engine");
        std::fs::write(&path, "garbage").unwrap();
        let err = EngineIdentity::load_or_create(&path).unwrap_err();
        assert!(err.to_string().contains("snmp-engine"), "{err}");
    }

    #[test]
    fn short_passphrases_are_refused() {
        assert!(UsmUser::sha256_aes("admin", "short", "longenough").is_err());
        assert!(UsmUser::sha256_aes("admin", "longenough", "longenough").is_ok());
        assert_eq!(
            AuthProtocol::parse("sha-256").unwrap(),
            AuthProtocol::Sha256
        );
        assert!(PrivProtocol::parse("DES").is_err());
    }
}
