//! Object identifiers: dvsan's `Oid`, ordered arc by arc as SNMP orders them.

use std::fmt;
use std::str::FromStr;

/// An SNMP object identifier.
///
/// Wraps the engine's representation so that conversions at the crate edge
/// cost nothing, while no other dvsan crate names the engine's type.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Oid(pub(crate) async_snmp::Oid);

/// Why text did not parse as an OID.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid OID {text:?}: {reason}")]
pub struct OidParseError {
    /// The text that was given.
    pub text: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Oid {
    /// An OID from its arcs.
    pub fn from_arcs(arcs: &[u32]) -> Self {
        Oid(async_snmp::Oid::from_slice(arcs))
    }

    /// An OID from a prefix followed by more arcs (a column and an index, say).
    pub fn join(prefix: &[u32], suffix: &[u32]) -> Self {
        Oid(async_snmp::Oid::new(
            prefix.iter().copied().chain(suffix.iter().copied()),
        ))
    }

    /// The arcs.
    pub fn arcs(&self) -> &[u32] {
        self.0.arcs()
    }

    /// Number of arcs.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the OID has no arcs.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether `prefix` is a prefix of this OID (or equal to it).
    pub fn starts_with(&self, prefix: &Oid) -> bool {
        self.0.starts_with(&prefix.0)
    }

    /// This OID with one more arc.
    pub fn child(&self, arc: u32) -> Oid {
        Oid(self.0.child(arc))
    }

    /// The arcs after `prefix`, when `prefix` is a prefix of this OID.
    pub fn suffix_after(&self, prefix: &[u32]) -> Option<&[u32]> {
        self.arcs().strip_prefix(prefix)
    }
}

impl fmt::Display for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for arc in self.arcs() {
            if !first {
                f.write_str(".")?;
            }
            write!(f, "{arc}")?;
            first = false;
        }
        Ok(())
    }
}

impl fmt::Debug for Oid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Oid({self})")
    }
}

impl FromStr for Oid {
    type Err = OidParseError;

    /// Parses dotted numbers, with or without a leading dot (`.1.3.6.1`).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim().strip_prefix('.').unwrap_or(text.trim());
        if trimmed.is_empty() {
            return Err(OidParseError {
                text: text.to_owned(),
                reason: "no arcs".to_owned(),
            });
        }
        let mut arcs = Vec::new();
        for part in trimmed.split('.') {
            let arc = part.parse::<u32>().map_err(|_| OidParseError {
                text: text.to_owned(),
                reason: format!("arc {part:?} is not a number from 0 to 4294967295"),
            })?;
            arcs.push(arc);
        }
        Ok(Oid::from_arcs(&arcs))
    }
}

impl From<&[u32]> for Oid {
    fn from(arcs: &[u32]) -> Self {
        Oid::from_arcs(arcs)
    }
}

impl<const N: usize> From<[u32; N]> for Oid {
    fn from(arcs: [u32; N]) -> Self {
        Oid::from_arcs(&arcs)
    }
}

impl From<Vec<u32>> for Oid {
    fn from(arcs: Vec<u32>) -> Self {
        Oid::from_arcs(&arcs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_arc_by_arc_as_unsigned_numbers() {
        let a: Oid = "1.3.6.1.2".parse().unwrap();
        let b: Oid = "1.3.6.1.2.1".parse().unwrap();
        let c: Oid = "1.3.6.1.10".parse().unwrap();
        let d = Oid::from_arcs(&[1, 3, 6, 1, u32::MAX]);
        assert!(a < b && b < c && c < d);
    }

    #[test]
    fn parses_and_prints_dotted_form() {
        let oid: Oid = ".1.3.6.1.4.1.8072.9999.9999".parse().unwrap();
        assert_eq!(oid.to_string(), "1.3.6.1.4.1.8072.9999.9999");
        assert_eq!(
            oid.suffix_after(&[1, 3, 6, 1]),
            Some(&[4, 1, 8072, 9999, 9999][..])
        );
    }

    #[test]
    fn rejects_bad_text_with_the_reason() {
        let err = "1.3.x".parse::<Oid>().unwrap_err();
        assert!(err.reason.contains("\"x\""), "{err}");
        assert!("".parse::<Oid>().is_err());
        assert!("1.3.99999999999".parse::<Oid>().is_err());
    }
}
