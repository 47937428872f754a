//! Shared by the station's tests.
pub mod simulated_unit;
