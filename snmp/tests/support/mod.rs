//! Shared by the SNMP crate's integration tests: running net-snmp's tools
//! and daemons (in `net_snmp.rs`, shared with other crates' tests), and a
//! RowStatus table model to serve.
#![allow(dead_code)]

pub mod compare;
pub mod net_snmp;
pub mod one_way;
pub mod row_table;

pub use net_snmp::*;
