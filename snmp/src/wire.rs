//! Decoding whole SNMP messages into a summary, for differential tests against
//! an independent decoder and for fuzzing.
