//! RAID 6: data striped over the members with two rotating parity chunks
//! per stripe, P (XOR) and Q (Reed-Solomon over GF(2^8) with generator 2,
//! see `gf256.rs`), left-symmetric as Linux md lays it out: P on member
//! `n-1 - (s mod n)`, Q on the member after it, and the data after Q. Over
//! 5 members:
//!
//! ```text
//!            member 0  member 1  member 2  member 3  member 4
//! stripe 0     Q         D0        D1        D2        P
//! stripe 1     D3        D4        D5        P         Q
//! stripe 2     D7        D8        P         Q         D6
//! stripe 3     D11       P         Q         D9        D10
//! stripe 4     P         Q         D12       D13       D14
//! ```
//!
//! Q weighs the stripe's data chunk `j` by g^j. The group serves with any
//! two members lost. The engine is in `parity.rs`.

use std::sync::Arc;

use crate::storage::layout::Members;
use crate::storage::parity::Parity;

/// A RAID 6 group's address map.
#[derive(Debug)]
pub struct Raid6(Parity);

impl Raid6 {
    pub(crate) fn new(members: Arc<Members>, chunk: u64, per_member: u64) -> Self {
        Raid6(Parity::new(members, 2, chunk, per_member))
    }
}

/// Reads, writes and capacity are the parity engine's.
impl std::ops::Deref for Raid6 {
    type Target = Parity;

    fn deref(&self) -> &Parity {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use crate::storage::parity::{data_member, p_member, q_member};

    /// The table in the module comment.
    #[test]
    fn the_layout_is_mds_left_symmetric() {
        let n = 5;
        let mut rows = vec![];
        for s in 0..5u64 {
            let mut row = vec![String::new(); n];
            row[p_member(n, s)] = "P".into();
            row[q_member(n, s)] = "Q".into();
            for j in 0..n - 2 {
                let m = data_member(n, 2, s, j);
                assert!(row[m].is_empty(), "stripe {s}: member {m} taken");
                row[m] = format!("D{}", s as usize * (n - 2) + j);
            }
            rows.push(row.join(" "));
        }
        assert_eq!(
            rows,
            [
                "Q D0 D1 D2 P",
                "D3 D4 D5 P Q",
                "D7 D8 P Q D6",
                "D11 P Q D9 D10",
                "P Q D12 D13 D14"
            ]
        );
    }
}
