//! Feeds fuzz input to dvsan's SNMP decoder and to snmp-parser: neither may
//! panic, and where both accept the bytes they must agree (the same check
//! as snmp/tests/differential.rs).
#![no_main]

#[path = "../../tests/support/compare.rs"]
mod compare;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(disagreement) = compare::check(data) {
        panic!("decoders disagree: {disagreement}");
    }
});
