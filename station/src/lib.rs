//! The dvsan station: listens for SAN units' notifications, learns each unit
//! by walking its DVSAN-MIB over SNMPv3, and keeps the inventory in SQL.
//!
//! Data flow: `trap_receiver` (dvsan-snmp) → [`learner::Learner`] → poll
//! ([`unit_snapshot`]) → [`inventory`]. The allocator, REST API and web
//! console build on the inventory.
#![forbid(unsafe_code)]

pub mod allocator;
pub mod api;
pub mod daemon;
pub mod http;
pub mod inventory;
pub mod learner;
pub mod operations;
pub mod unit_address;
pub mod unit_control;
pub mod unit_snapshot;
pub mod web;

pub use daemon::{Station, StationConfig, StationError};
pub use inventory::{Inventory, InventoryError, UnitState};
pub use learner::Learner;
pub use unit_snapshot::{LearnError, UnitSnapshot};
