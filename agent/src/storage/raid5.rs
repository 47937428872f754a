//! RAID 5: data striped over the members with one rotating parity chunk
//! (P, the XOR of the stripe's data) per stripe, left-symmetric as Linux md
//! lays it out by default. Over 4 members:
//!
//! ```text
//!            member 0  member 1  member 2  member 3
//! stripe 0     D0        D1        D2        P
//! stripe 1     D4        D5        P         D3
//! stripe 2     D8        P         D6        D7
//! stripe 3     P         D9        D10       D11
//! ```
//!
//! The group serves with one member lost, rebuilding its chunks as the XOR
//! of the rest of each stripe. The engine is in `parity.rs`.

use std::sync::Arc;

use crate::storage::layout::Members;
use crate::storage::parity::Parity;

/// A RAID 5 group's address map.
#[derive(Debug)]
pub struct Raid5(Parity);

impl Raid5 {
    pub(crate) fn new(members: Arc<Members>, chunk: u64, per_member: u64) -> Self {
        Raid5(Parity::new(members, 1, chunk, per_member))
    }
}

/// Reads, writes and capacity are the parity engine's.
impl std::ops::Deref for Raid5 {
    type Target = Parity;

    fn deref(&self) -> &Parity {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use crate::storage::parity::{data_member, p_member};

    /// The table in the module comment: 'P' or the data chunk number.
    #[test]
    fn the_layout_is_left_symmetric() {
        let n = 4;
        let mut rows = vec![];
        for s in 0..4u64 {
            let mut row = vec![String::new(); n];
            row[p_member(n, s)] = "P".into();
            for j in 0..n - 1 {
                let m = data_member(n, 1, s, j);
                assert!(row[m].is_empty(), "stripe {s}: member {m} taken");
                row[m] = format!("D{}", s as usize * (n - 1) + j);
            }
            rows.push(row.join(" "));
        }
        assert_eq!(
            rows,
            ["D0 D1 D2 P", "D4 D5 P D3", "D8 P D6 D7", "P D9 D10 D11"]
        );
    }
}
