//! SNMP values and variable bindings, as dvsan's code sees them.

use std::fmt;

use bytes::Bytes;

use crate::oid::Oid;

/// One SNMP value (RFC 2578 base types, plus the RFC 3416 exceptions a
/// response can carry in place of a value).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Value {
    /// INTEGER / Integer32 (enumerations, RowStatus, TruthValue).
    Integer(i32),
    /// OCTET STRING (DisplayString, opaque bytes).
    OctetString(Bytes),
    /// NULL, as sent in GET requests.
    Null,
    /// OBJECT IDENTIFIER.
    ObjectIdentifier(Oid),
    /// IpAddress (IPv4 only, by SMIv2 definition).
    IpAddress([u8; 4]),
    /// Counter32.
    Counter32(u32),
    /// Gauge32 / Unsigned32.
    Gauge32(u32),
    /// TimeTicks, hundredths of a second.
    TimeTicks(u32),
    /// Opaque.
    Opaque(Bytes),
    /// Counter64.
    Counter64(u64),
    /// noSuchObject exception.
    NoSuchObject,
    /// noSuchInstance exception.
    NoSuchInstance,
    /// endOfMibView exception.
    EndOfMibView,
    /// A type this layer does not interpret, kept with its BER tag.
    Other {
        /// The BER tag.
        tag: u8,
        /// The content octets.
        data: Bytes,
    },
}

impl Value {
    /// An OCTET STRING holding text.
    pub fn text(text: impl Into<String>) -> Value {
        Value::OctetString(Bytes::from(text.into()))
    }

    /// The text of an OCTET STRING when it is UTF-8.
    pub fn as_text(&self) -> Option<&str> {
        match self {
            Value::OctetString(bytes) => std::str::from_utf8(bytes).ok(),
            _ => None,
        }
    }

    /// The number in an INTEGER.
    pub fn as_i32(&self) -> Option<i32> {
        match self {
            Value::Integer(v) => Some(*v),
            _ => None,
        }
    }

    /// The number in an unsigned 32-bit type (Gauge32, Counter32, TimeTicks).
    pub fn as_u32(&self) -> Option<u32> {
        match self {
            Value::Gauge32(v) | Value::Counter32(v) | Value::TimeTicks(v) => Some(*v),
            _ => None,
        }
    }

    /// The number in a Counter64 or any unsigned 32-bit type.
    pub fn as_u64(&self) -> Option<u64> {
        match self {
            Value::Counter64(v) => Some(*v),
            other => other.as_u32().map(u64::from),
        }
    }

    /// Whether this is one of the three RFC 3416 exceptions.
    pub fn is_exception(&self) -> bool {
        matches!(
            self,
            Value::NoSuchObject | Value::NoSuchInstance | Value::EndOfMibView
        )
    }

    /// The SMI type's name, for messages ("Gauge32", "OCTET STRING" …).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Integer(_) => "INTEGER",
            Value::OctetString(_) => "OCTET STRING",
            Value::Null => "NULL",
            Value::ObjectIdentifier(_) => "OBJECT IDENTIFIER",
            Value::IpAddress(_) => "IpAddress",
            Value::Counter32(_) => "Counter32",
            Value::Gauge32(_) => "Gauge32",
            Value::TimeTicks(_) => "TimeTicks",
            Value::Opaque(_) => "Opaque",
            Value::Counter64(_) => "Counter64",
            Value::NoSuchObject => "noSuchObject",
            Value::NoSuchInstance => "noSuchInstance",
            Value::EndOfMibView => "endOfMibView",
            Value::Other { .. } => "unknown type",
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Integer(v) => write!(f, "INTEGER: {v}"),
            Value::OctetString(bytes) => match std::str::from_utf8(bytes) {
                Ok(text) => write!(f, "STRING: {text:?}"),
                Err(_) => {
                    write!(f, "Hex-STRING:")?;
                    for b in bytes.iter() {
                        write!(f, " {b:02X}")?;
                    }
                    Ok(())
                }
            },
            Value::Null => write!(f, "NULL"),
            Value::ObjectIdentifier(oid) => write!(f, "OID: {oid}"),
            Value::IpAddress(a) => write!(f, "IpAddress: {}.{}.{}.{}", a[0], a[1], a[2], a[3]),
            Value::Counter32(v) => write!(f, "Counter32: {v}"),
            Value::Gauge32(v) => write!(f, "Gauge32: {v}"),
            Value::TimeTicks(v) => write!(f, "Timeticks: ({v})"),
            Value::Opaque(bytes) => write!(f, "Opaque: {} octets", bytes.len()),
            Value::Counter64(v) => write!(f, "Counter64: {v}"),
            Value::NoSuchObject => write!(f, "No Such Object"),
            Value::NoSuchInstance => write!(f, "No Such Instance"),
            Value::EndOfMibView => write!(f, "End of MIB View"),
            Value::Other { tag, data } => write!(f, "tag 0x{tag:02x}: {} octets", data.len()),
        }
    }
}

impl From<Value> for async_snmp::Value {
    fn from(value: Value) -> Self {
        use async_snmp::Value as V;
        match value {
            Value::Integer(v) => V::Integer(v),
            Value::OctetString(b) => V::OctetString(b),
            Value::Null => V::Null,
            Value::ObjectIdentifier(oid) => V::ObjectIdentifier(oid.0),
            Value::IpAddress(a) => V::IpAddress(a),
            Value::Counter32(v) => V::Counter32(v),
            Value::Gauge32(v) => V::Gauge32(v),
            Value::TimeTicks(v) => V::TimeTicks(v),
            Value::Opaque(b) => V::Opaque(b),
            Value::Counter64(v) => V::Counter64(v),
            Value::NoSuchObject => V::NoSuchObject,
            Value::NoSuchInstance => V::NoSuchInstance,
            Value::EndOfMibView => V::EndOfMibView,
            Value::Other { tag, data } => V::Unknown { tag, data },
        }
    }
}

impl From<async_snmp::Value> for Value {
    fn from(value: async_snmp::Value) -> Self {
        use async_snmp::Value as V;
        match value {
            V::Integer(v) => Value::Integer(v),
            V::OctetString(b) => Value::OctetString(b),
            V::Null => Value::Null,
            V::ObjectIdentifier(oid) => Value::ObjectIdentifier(Oid(oid)),
            V::IpAddress(a) => Value::IpAddress(a),
            V::Counter32(v) => Value::Counter32(v),
            // UInteger32 (RFC 1442, obsolete) shares Gauge32's meaning.
            V::Gauge32(v) | V::UInteger32(v) => Value::Gauge32(v),
            V::TimeTicks(v) => Value::TimeTicks(v),
            V::Opaque(b) => Value::Opaque(b),
            V::Counter64(v) => Value::Counter64(v),
            V::NoSuchObject => Value::NoSuchObject,
            V::NoSuchInstance => Value::NoSuchInstance,
            V::EndOfMibView => Value::EndOfMibView,
            V::Nsap(data) => Value::Other { tag: 0x45, data },
            V::Unknown { tag, data } => Value::Other { tag, data },
            // The engine's enum is non-exhaustive; anything new is kept opaque.
            other => Value::Other {
                tag: 0,
                data: Bytes::from(format!("{other:?}")),
            },
        }
    }
}

/// A variable binding: a name and its value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct VarBind {
    /// The object instance.
    pub oid: Oid,
    /// Its value (or an exception).
    pub value: Value,
}

impl VarBind {
    /// A binding of `value` to `oid`.
    pub fn new(oid: impl Into<Oid>, value: Value) -> Self {
        VarBind {
            oid: oid.into(),
            value,
        }
    }
}

impl fmt::Display for VarBind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} = {}", self.oid, self.value)
    }
}

impl From<VarBind> for async_snmp::VarBind {
    fn from(vb: VarBind) -> Self {
        async_snmp::VarBind::new(vb.oid.0, vb.value.into())
    }
}

impl From<async_snmp::VarBind> for VarBind {
    fn from(vb: async_snmp::VarBind) -> Self {
        VarBind {
            oid: Oid(vb.oid),
            value: vb.value.into(),
        }
    }
}
