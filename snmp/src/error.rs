//! The errors of dvsan's SNMP layer.

use std::net::SocketAddr;

use crate::oid::Oid;

/// An SNMP error-status (RFC 3416), as a manager receives it or a handler
/// answers with it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorStatus {
    /// tooBig(1)
    TooBig,
    /// noSuchName(2), SNMPv1 only
    NoSuchName,
    /// badValue(3), SNMPv1 only
    BadValue,
    /// readOnly(4), SNMPv1 only
    ReadOnly,
    /// genErr(5)
    GenErr,
    /// noAccess(6)
    NoAccess,
    /// wrongType(7)
    WrongType,
    /// wrongLength(8)
    WrongLength,
    /// wrongEncoding(9)
    WrongEncoding,
    /// wrongValue(10)
    WrongValue,
    /// noCreation(11)
    NoCreation,
    /// inconsistentValue(12)
    InconsistentValue,
    /// resourceUnavailable(13)
    ResourceUnavailable,
    /// commitFailed(14)
    CommitFailed,
    /// undoFailed(15)
    UndoFailed,
    /// authorizationError(16)
    AuthorizationError,
    /// notWritable(17)
    NotWritable,
    /// inconsistentName(18)
    InconsistentName,
    /// A value outside RFC 3416's list.
    Other(i32),
}

impl ErrorStatus {
    /// The RFC 3416 name, as net-snmp prints it.
    pub fn name(self) -> &'static str {
        match self {
            ErrorStatus::TooBig => "tooBig",
            ErrorStatus::NoSuchName => "noSuchName",
            ErrorStatus::BadValue => "badValue",
            ErrorStatus::ReadOnly => "readOnly",
            ErrorStatus::GenErr => "genErr",
            ErrorStatus::NoAccess => "noAccess",
            ErrorStatus::WrongType => "wrongType",
            ErrorStatus::WrongLength => "wrongLength",
            ErrorStatus::WrongEncoding => "wrongEncoding",
            ErrorStatus::WrongValue => "wrongValue",
            ErrorStatus::NoCreation => "noCreation",
            ErrorStatus::InconsistentValue => "inconsistentValue",
            ErrorStatus::ResourceUnavailable => "resourceUnavailable",
            ErrorStatus::CommitFailed => "commitFailed",
            ErrorStatus::UndoFailed => "undoFailed",
            ErrorStatus::AuthorizationError => "authorizationError",
            ErrorStatus::NotWritable => "notWritable",
            ErrorStatus::InconsistentName => "inconsistentName",
            ErrorStatus::Other(_) => "unknown error status",
        }
    }

    pub(crate) fn from_engine(status: async_snmp::ErrorStatus) -> Self {
        use async_snmp::ErrorStatus as E;
        match status {
            E::TooBig => ErrorStatus::TooBig,
            E::NoSuchName => ErrorStatus::NoSuchName,
            E::BadValue => ErrorStatus::BadValue,
            E::ReadOnly => ErrorStatus::ReadOnly,
            E::GenErr => ErrorStatus::GenErr,
            E::NoAccess => ErrorStatus::NoAccess,
            E::WrongType => ErrorStatus::WrongType,
            E::WrongLength => ErrorStatus::WrongLength,
            E::WrongEncoding => ErrorStatus::WrongEncoding,
            E::WrongValue => ErrorStatus::WrongValue,
            E::NoCreation => ErrorStatus::NoCreation,
            E::InconsistentValue => ErrorStatus::InconsistentValue,
            E::ResourceUnavailable => ErrorStatus::ResourceUnavailable,
            E::CommitFailed => ErrorStatus::CommitFailed,
            E::UndoFailed => ErrorStatus::UndoFailed,
            E::AuthorizationError => ErrorStatus::AuthorizationError,
            E::NotWritable => ErrorStatus::NotWritable,
            E::InconsistentName => ErrorStatus::InconsistentName,
            other => ErrorStatus::Other(other.as_i32()),
        }
    }
}

impl std::fmt::Display for ErrorStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ErrorStatus::Other(v) => write!(f, "error status {v}"),
            known => f.write_str(known.name()),
        }
    }
}

/// Errors of dvsan's SNMP layer.
#[derive(Debug, thiserror::Error)]
pub enum SnmpError {
    /// A setting is wrong; the message names it.
    #[error("{0}")]
    Config(String),
    /// Local I/O failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// No answer in time. With SNMPv3 a wrong key looks the same from here:
    /// an agent cannot authenticate its answer to a manager whose key is
    /// wrong, so it either stays silent or sends an unauthenticated Report.
    #[error("{peer}: timeout (or wrong credentials) after {retries} retries{}", report.as_ref().map(|r| format!("; the agent reported {r}")).unwrap_or_default())]
    Timeout {
        /// The peer asked.
        peer: SocketAddr,
        /// Retries made.
        retries: u32,
        /// The usmStats Report that came back, when one did.
        report: Option<String>,
    },
    /// The peer's USM rejected our credentials (a usmStats Report).
    #[error("{peer}: SNMPv3 credentials refused: {report}")]
    Credentials {
        /// The peer asked.
        peer: SocketAddr,
        /// The Report, e.g. "unknown user name (counter 3)".
        report: String,
    },
    /// The peer answered with an error-status.
    #[error("{peer}: {status} at varbind {index}{}", oid.as_ref().map(|o| format!(" ({o})")).unwrap_or_default())]
    Status {
        /// The peer asked.
        peer: SocketAddr,
        /// Its error-status.
        status: ErrorStatus,
        /// Its error-index (1-based; 0 when the error concerns no varbind).
        index: u32,
        /// The OID at that index, when known.
        oid: Option<Oid>,
    },
    /// Anything else the protocol engine reported.
    #[error("{0}")]
    Protocol(String),
}

impl SnmpError {
    #[allow(clippy::boxed_local)] // the engine returns its errors boxed
    pub(crate) fn from_engine(err: Box<async_snmp::Error>) -> Self {
        use async_snmp::Error as E;
        match *err {
            E::Timeout {
                target, retries, ..
            } => SnmpError::Timeout {
                peer: target,
                retries,
                report: None,
            },
            E::Report { target, status, .. } => SnmpError::Credentials {
                peer: target,
                report: status.to_string(),
            },
            E::Auth { target } => SnmpError::Credentials {
                peer: target,
                report: "authentication failed".to_owned(),
            },
            E::Snmp {
                target,
                status,
                index,
                oid,
                ..
            } => SnmpError::Status {
                peer: target,
                status: ErrorStatus::from_engine(status),
                index,
                oid: oid.map(|o| Oid(*o)),
            },
            E::Exchange { source, .. } => SnmpError::from_engine(source),
            E::SharedOperation { source } => SnmpError::Protocol(source.to_string()),
            other => SnmpError::Protocol(other.to_string()),
        }
    }

    /// The error-status, when the peer answered with one.
    pub fn status(&self) -> Option<ErrorStatus> {
        match self {
            SnmpError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}
