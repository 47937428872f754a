//! The SNMPv3 credential flags and `[snmp]` configuration keys that
//! `dvsan agent` and `dvsan station` share, checked the same way.

use anyhow::Context;
use clap::Args;
use dvsan_snmp::{AuthProtocol, PrivProtocol, UsmUser};
use serde::Deserialize;

/// SNMPv3 flags; each overrides the same key of `[snmp]` in `--config`.
#[derive(Debug, Args)]
pub struct SnmpArgs {
    /// SNMPv3 user name shared by station and units
    #[arg(long, value_name = "NAME", env = "DVSAN_SNMP_USER")]
    pub snmp_user: Option<String>,
    /// SNMPv3 authentication protocol: SHA-256 (default), SHA-384, SHA-512, SHA-224, SHA
    #[arg(long, value_name = "PROTOCOL")]
    pub snmp_auth_protocol: Option<String>,
    /// SNMPv3 authentication passphrase (at least 8 characters)
    #[arg(
        long,
        value_name = "PASS",
        env = "DVSAN_SNMP_AUTH_PASS",
        hide_env_values = true
    )]
    pub snmp_auth_password: Option<String>,
    /// SNMPv3 privacy protocol: AES (default) or AES-256
    #[arg(long, value_name = "PROTOCOL")]
    pub snmp_priv_protocol: Option<String>,
    /// SNMPv3 privacy passphrase (at least 8 characters)
    #[arg(
        long,
        value_name = "PASS",
        env = "DVSAN_SNMP_PRIV_PASS",
        hide_env_values = true
    )]
    pub snmp_priv_password: Option<String>,
}

/// The `[snmp]` table of a configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SnmpFileConfig {
    user: Option<String>,
    auth_protocol: Option<String>,
    auth_password: Option<String>,
    priv_protocol: Option<String>,
    priv_password: Option<String>,
}

impl SnmpArgs {
    /// The user, flags over file, checked; errors name the key.
    pub fn resolve(self, file: SnmpFileConfig) -> anyhow::Result<UsmUser> {
        let name = self.snmp_user.or(file.user).context(
            "snmp.user: not set (--snmp-user, DVSAN_SNMP_USER or [snmp] user in the config file)",
        )?;
        let auth_protocol = match self.snmp_auth_protocol.or(file.auth_protocol) {
            Some(p) => {
                AuthProtocol::parse(&p).map_err(|e| anyhow::anyhow!("snmp.auth_protocol: {e}"))?
            }
            None => AuthProtocol::Sha256,
        };
        let priv_protocol = match self.snmp_priv_protocol.or(file.priv_protocol) {
            Some(p) => {
                PrivProtocol::parse(&p).map_err(|e| anyhow::anyhow!("snmp.priv_protocol: {e}"))?
            }
            None => PrivProtocol::Aes128,
        };
        let auth_password = self.snmp_auth_password.or(file.auth_password).context(
            "snmp.auth_password: not set (--snmp-auth-password or DVSAN_SNMP_AUTH_PASS)",
        )?;
        let priv_password = self.snmp_priv_password.or(file.priv_password).context(
            "snmp.priv_password: not set (--snmp-priv-password or DVSAN_SNMP_PRIV_PASS)",
        )?;
        let user = UsmUser {
            name,
            auth_protocol,
            auth_password,
            priv_protocol,
            priv_password,
        };
        user.validate().map_err(|e| anyhow::anyhow!("snmp: {e}"))?;
        Ok(user)
    }
}

/// Reads and parses a TOML configuration file; the error names the file.
pub fn read_toml<T: serde::de::DeserializeOwned + Default>(
    path: Option<&std::path::Path>,
) -> anyhow::Result<T> {
    match path {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading {}", path.display()))?;
            toml::from_str(&text)
                .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.message()))
        }
        None => Ok(T::default()),
    }
}
