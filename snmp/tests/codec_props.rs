//! Encoding then decoding a message gives back every value exactly, for
//! every SNMP value type and its extremes; and one message written out as
//! bytes, every TLV annotated, decodes to its fields and re-encodes to the
//! same bytes.

use dvsan_snmp::wire::{PduType, WirePdu, WireVersion, decode_message, encode_community};
use dvsan_snmp::{Oid, Value, VarBind};
use proptest::prelude::*;

fn oid_strategy() -> impl Strategy<Value = Oid> {
    // X.690 8.19.4: first arc 0..=2; second arc < 40 under 0 and 1, any
    // 32-bit value under 2 (as long as 80 + arc fits 32 bits).
    let head = prop_oneof![
        (0u32..=1, 0u32..40).prop_map(|(a, b)| vec![a, b]),
        (0u32..=(u32::MAX - 80)).prop_map(|b| vec![2, b]),
    ];
    let tail = prop::collection::vec(
        prop_oneof![
            0u32..128,
            128u32..16384,
            Just(1 << 28),
            (1u32 << 28)..=u32::MAX,
            Just(u32::MAX)
        ],
        0..12,
    );
    (head, tail).prop_map(|(h, t)| Oid::from_arcs(&[h, t].concat()))
}

fn value_strategy() -> impl Strategy<Value = Value> {
    prop_oneof![
        prop_oneof![
            any::<i32>(),
            Just(i32::MIN),
            Just(i32::MAX),
            Just(-1),
            Just(0)
        ]
        .prop_map(Value::Integer),
        prop::collection::vec(any::<u8>(), 0..600).prop_map(|b| Value::OctetString(b.into())),
        Just(Value::Null),
        oid_strategy().prop_map(Value::ObjectIdentifier),
        any::<[u8; 4]>().prop_map(Value::IpAddress),
        any::<u32>().prop_map(Value::Counter32),
        any::<u32>().prop_map(Value::Gauge32),
        any::<u32>().prop_map(Value::TimeTicks),
        prop::collection::vec(any::<u8>(), 0..40).prop_map(|b| Value::Opaque(b.into())),
        prop_oneof![
            any::<u64>(),
            Just(0u64),
            Just(u64::MAX),
            Just(1u64 << 63),
            (1u64 << 63)..=u64::MAX
        ]
        .prop_map(Value::Counter64),
    ]
}

fn response(request_id: i32, varbinds: Vec<VarBind>) -> WirePdu {
    WirePdu {
        pdu_type: PduType::RESPONSE,
        request_id,
        error_status: 0,
        error_index: 0,
        varbinds,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn v2c_encode_then_decode_is_the_identity(
        request_id in any::<i32>(),
        community in prop::collection::vec(any::<u8>(), 0..40),
        bindings in prop::collection::vec((oid_strategy(), value_strategy()), 0..8),
    ) {
        let pdu = response(request_id, bindings.into_iter().map(|(o, v)| VarBind::new(o, v)).collect());
        let bytes = encode_community(WireVersion::V2c, &community, &pdu).unwrap();
        let back = decode_message(&bytes).unwrap();
        prop_assert_eq!(back.version, WireVersion::V2c);
        prop_assert_eq!(back.community.as_deref(), Some(&community[..]));
        prop_assert_eq!(back.pdu.as_ref(), Some(&pdu));
    }

    #[test]
    fn v1_encode_then_decode_is_the_identity_without_counter64(
        request_id in any::<i32>(),
        bindings in prop::collection::vec((oid_strategy(), value_strategy()), 0..8),
    ) {
        // SNMPv1 has no Counter64 (RFC 2576).
        let bindings: Vec<VarBind> = bindings
            .into_iter()
            .filter(|(_, v)| !matches!(v, Value::Counter64(_)))
            .map(|(o, v)| VarBind::new(o, v))
            .collect();
        let pdu = response(request_id, bindings);
        let bytes = encode_community(WireVersion::V1, b"public", &pdu).unwrap();
        let back = decode_message(&bytes).unwrap();
        prop_assert_eq!(back.version, WireVersion::V1);
        prop_assert_eq!(back.pdu.as_ref(), Some(&pdu));
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..300)) {
        let _ = decode_message(&bytes);
    }
}

/// A v2c GetResponse, byte by byte.
const ANNOTATED: &[u8] = &[
    0x30, 0x37, //                               SEQUENCE, 55 octets: the message
    0x02, 0x01, 0x01, //                         INTEGER 1: version-2c
    0x04, 0x06, b'p', b'u', b'b', b'l', b'i', b'c', // OCTET STRING "public"
    0xa2, 0x2a, //                               GetResponse-PDU, 42 octets
    0x02, 0x01, 0xfe, //                         INTEGER -2 (one octet, minimal): request-id
    0x02, 0x01, 0x00, //                         INTEGER 0: error-status
    0x02, 0x01, 0x00, //                         INTEGER 0: error-index
    0x30, 0x1f, //                               SEQUENCE, 31 octets: bindings
    0x30, 0x13, //                               SEQUENCE: binding 1
    0x06, 0x08, 0x2b, 0x06, 0x01, 0x02, 0x01, 0x01, 0x05, 0x00, // OID 1.3.6.1.2.1.1.5.0
    0x04, 0x07, b'u', b'n', b'i', b't', b'-', b'a', b'1', // OCTET STRING "unit-a1"
    0x30, 0x08, //                               SEQUENCE: binding 2
    0x06, 0x03, 0x2b, 0x06, 0x01, //             OID 1.3.6.1
    0x46, 0x01, 0x2a, //                         Counter64 42
];

#[test]
fn annotated_response_decodes_field_by_field_and_reencodes_to_the_same_bytes() {
    let m = decode_message(ANNOTATED).unwrap();
    assert_eq!(m.version, WireVersion::V2c);
    assert_eq!(m.community.as_deref(), Some(&b"public"[..]));
    let pdu = m.pdu.clone().unwrap();
    assert_eq!(pdu.pdu_type, PduType::RESPONSE);
    assert_eq!(pdu.request_id, -2);
    assert_eq!((pdu.error_status, pdu.error_index), (0, 0));
    assert_eq!(
        pdu.varbinds,
        vec![
            VarBind::new(
                "1.3.6.1.2.1.1.5.0".parse::<Oid>().unwrap(),
                Value::text("unit-a1")
            ),
            VarBind::new("1.3.6.1".parse::<Oid>().unwrap(), Value::Counter64(42)),
        ]
    );
    assert_eq!(
        encode_community(WireVersion::V2c, b"public", &pdu).unwrap(),
        ANNOTATED
    );
}
