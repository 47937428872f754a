//! dvsan's decoder (async-snmp underneath) and rusticata's snmp-parser on
//! the same bytes: captured net-snmp and pysnmp packets, then bounded
//! mutations of them. Where both accept a message they must agree.

mod support;

use dvsan_snmp::wire::{PduType, WireVersion, decode_message};
use dvsan_snmp::{Oid, Value};
use support::compare::{Verdict, check};

fn fixtures() -> Vec<(String, Vec<u8>)> {
    let dir = support::repo_path("snmp/tests/fixtures");
    let mut all: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("fixtures")
        .map(|e| {
            let path = e.expect("entry").path();
            (
                path.file_stem().unwrap().to_string_lossy().into_owned(),
                std::fs::read(&path).expect("read fixture"),
            )
        })
        .collect();
    all.sort();
    assert!(
        all.len() >= 14,
        "fixtures missing: run scripts/capture-snmp-fixtures"
    );
    all
}

fn fixture(name: &str) -> Vec<u8> {
    fixtures()
        .into_iter()
        .find(|(n, _)| n == name)
        .expect(name)
        .1
}

/// Fixtures that snmp-parser wrongly refuses, and why.
const SNMP_PARSER_REFUSES: &[(&str, &str)] = &[(
    "pysnmp-trap-v2c",
    // Counter64 18446744073709551615 is sent, as BER requires for a
    // positive value with the top bit set, in 9 octets (00 ff .. ff);
    // snmp-parser 0.11 answers IntegerTooLarge. RFC 2578 gives Counter64
    // the range 0..18446744073709551615, so snmp-parser is wrong.
    "Counter64 at or above 2^63",
)];

#[test]
fn every_captured_packet_decodes_the_same_in_both() {
    for (name, bytes) in fixtures() {
        let verdict = check(&bytes).unwrap_or_else(|e| panic!("{name}: decoders disagree: {e}"));
        let want = if SNMP_PARSER_REFUSES.iter().any(|(n, _)| *n == name) {
            Verdict::OnlyOurs
        } else {
            Verdict::BothAgree
        };
        assert_eq!(verdict, want, "{name}");
    }
}

#[test]
fn mutated_packets_never_split_the_decoders() {
    let mut compared = 0;
    for (name, bytes) in fixtures() {
        // Every truncation.
        for n in 0..bytes.len() {
            if let Err(e) = check(&bytes[..n]) {
                panic!("{name} cut at {n}: {e}");
            }
        }
        // Every single-bit flip of every byte (bounded: the fixtures are small).
        for i in 0..bytes.len() {
            for bit in 0..8 {
                let mut m = bytes.clone();
                m[i] ^= 1 << bit;
                match check(&m) {
                    Ok(Verdict::BothAgree) => compared += 1,
                    Ok(_) => {}
                    Err(e) => panic!("{name} with bit {bit} of byte {i} flipped: {e}\n{m:02x?}"),
                }
            }
        }
    }
    assert!(
        compared > 1000,
        "only {compared} mutations were accepted by both"
    );
}

#[test]
fn snmpget_v2c_fixture_fields() {
    let m = decode_message(&fixture("netsnmp-get-v2c")).unwrap();
    assert_eq!(m.version, WireVersion::V2c);
    assert_eq!(m.community.as_deref(), Some(&b"public"[..]));
    let pdu = m.pdu.unwrap();
    assert_eq!(pdu.pdu_type, PduType::GET_REQUEST);
    assert_eq!((pdu.error_status, pdu.error_index), (0, 0));
    assert_eq!(pdu.varbinds.len(), 1);
    assert_eq!(
        pdu.varbinds[0].oid,
        "1.3.6.1.2.1.1.1.0".parse::<Oid>().unwrap()
    );
    assert_eq!(pdu.varbinds[0].value, Value::Null);
}

#[test]
fn snmpbulkget_fixture_carries_non_repeaters_and_max_repetitions() {
    let pdu = decode_message(&fixture("netsnmp-bulk-v2c"))
        .unwrap()
        .pdu
        .unwrap();
    assert_eq!(pdu.pdu_type, PduType::GET_BULK_REQUEST);
    assert_eq!((pdu.error_status, pdu.error_index), (1, 5));
}

#[test]
fn snmpset_fixture_values_are_typed_as_sent() {
    let pdu = decode_message(&fixture("netsnmp-set-v2c"))
        .unwrap()
        .pdu
        .unwrap();
    let values: Vec<Value> = pdu.varbinds.into_iter().map(|vb| vb.value).collect();
    assert_eq!(
        values,
        vec![
            Value::text("rack 4"),
            Value::Gauge32(u32::MAX),
            Value::Integer(-5),
            Value::ObjectIdentifier("1.3.6.1.4.1.8072.3.2.10".parse().unwrap()),
            Value::IpAddress([192, 0, 2, 1]),
            Value::TimeTicks(u32::MAX),
            Value::OctetString(vec![0x00, 0xff, 0x7f, 0x80].into()),
            Value::OctetString(vec![1, 2, 255].into()),
        ]
    );
}

#[test]
fn pysnmp_trap_fixture_extremes() {
    let m = decode_message(&fixture("pysnmp-trap-v2c")).unwrap();
    let pdu = m.pdu.unwrap();
    assert_eq!(pdu.pdu_type, PduType::TRAP_V2);
    let values: Vec<&Value> = pdu.varbinds.iter().map(|vb| &vb.value).collect();
    assert!(values.contains(&&Value::Counter64(u64::MAX)));
    assert!(values.contains(&&Value::Counter64(0)));
    assert!(values.contains(&&Value::Integer(i32::MIN)));
    assert!(values.contains(&&Value::ObjectIdentifier(
        "1.3.6.1.4.1.4294967295.268435456".parse().unwrap()
    )));
    assert!(
        values
            .iter()
            .any(|v| matches!(v, Value::OctetString(b) if b.len() == 300))
    );
}

#[test]
fn v3_fixtures_name_the_user_and_hide_encrypted_pdus() {
    let m = decode_message(&fixture("netsnmp-authpriv-v3")).unwrap();
    assert_eq!(m.version, WireVersion::V3);
    assert_eq!(m.user.as_deref(), Some(&b"dvsanadmin"[..]));
    assert!(m.pdu.is_none(), "an encrypted scoped PDU was read");
    let m = decode_message(&fixture("netsnmp-noauth-v3")).unwrap();
    assert_eq!(m.user.as_deref(), Some(&b"watcher"[..]));
    assert_eq!(
        m.pdu.unwrap().varbinds[0].oid,
        "1.3.6.1.2.1.1.5.0".parse::<Oid>().unwrap()
    );
}

#[test]
fn v1_trap_fixture_fields() {
    let m = decode_message(&fixture("netsnmp-trap-v1")).unwrap();
    assert_eq!(m.version, WireVersion::V1);
    let pdu = m.pdu.unwrap();
    assert_eq!(pdu.pdu_type, PduType::TRAP_V1);
    assert_eq!(
        (pdu.request_id, pdu.error_status, pdu.error_index),
        (17, 6, 12345)
    );
}

#[test]
fn snmp_parser_misreads_a_first_subidentifier_of_120_or_more() {
    // Found by the fuzz target: a binding named with first octet 0x7a.
    // X.690 8.19.4 makes that 2.42; snmp-parser says 3.2.
    let bytes = fixture("fuzz-oid-first-arc-3");
    let ours = decode_message(&bytes).unwrap();
    let names: Vec<String> = ours
        .pdu
        .unwrap()
        .varbinds
        .iter()
        .map(|vb| vb.oid.to_string())
        .collect();
    assert!(names.iter().any(|n| n.starts_with("2.42.")), "{names:?}");
    assert_eq!(check(&bytes), Ok(Verdict::BothAgree));
}
