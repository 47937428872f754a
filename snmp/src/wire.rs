//! Whole SNMP messages as bytes: decoding into a summary (version,
//! community or user, PDU type, request-id, error fields, bindings) and
//! encoding SNMPv1/v2c messages from one.
//!
//! Used to compare the engine's decoder with an independent one on the same
//! bytes (captured packets and fuzz input), and for round-trip property
//! tests of the value encodings. Never panics on any input.

use bytes::Bytes;

use crate::oid::Oid;
use crate::value::{Value, VarBind};

/// The message version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum WireVersion {
    /// SNMPv1 (version 0 on the wire).
    V1,
    /// SNMPv2c (version 1 on the wire).
    V2c,
    /// SNMPv3 (version 3 on the wire).
    V3,
}

/// A PDU type: the BER tag, kept open so an unknown tag stays representable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PduType(pub u8);

impl PduType {
    /// GetRequest-PDU.
    pub const GET_REQUEST: PduType = PduType(0xa0);
    /// GetNextRequest-PDU.
    pub const GET_NEXT_REQUEST: PduType = PduType(0xa1);
    /// Response-PDU.
    pub const RESPONSE: PduType = PduType(0xa2);
    /// SetRequest-PDU.
    pub const SET_REQUEST: PduType = PduType(0xa3);
    /// SNMPv1 Trap-PDU.
    pub const TRAP_V1: PduType = PduType(0xa4);
    /// GetBulkRequest-PDU.
    pub const GET_BULK_REQUEST: PduType = PduType(0xa5);
    /// InformRequest-PDU.
    pub const INFORM_REQUEST: PduType = PduType(0xa6);
    /// SNMPv2-Trap-PDU.
    pub const TRAP_V2: PduType = PduType(0xa7);
    /// Report-PDU.
    pub const REPORT: PduType = PduType(0xa8);
}

/// A PDU's fields. For GetBulkRequest, `error_status` and `error_index`
/// hold non-repeaters and max-repetitions, as on the wire. For an SNMPv1
/// Trap-PDU, `request_id` holds the specific-trap code, `error_status` the
/// generic-trap code and `error_index` the time-stamp.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WirePdu {
    /// The PDU type.
    pub pdu_type: PduType,
    /// request-id.
    pub request_id: i32,
    /// error-status (non-repeaters for GetBulk).
    pub error_status: i32,
    /// error-index (max-repetitions for GetBulk).
    pub error_index: i32,
    /// The bindings.
    pub varbinds: Vec<VarBind>,
}

/// A decoded message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireMessage {
    /// Version.
    pub version: WireVersion,
    /// The community (v1/v2c).
    pub community: Option<Vec<u8>>,
    /// msgUserName (v3).
    pub user: Option<Vec<u8>>,
    /// msgID (v3).
    pub msg_id: Option<i32>,
    /// The PDU; `None` for a v3 message whose scoped PDU is encrypted.
    pub pdu: Option<WirePdu>,
}

/// Why bytes did not decode or a summary did not encode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The bytes are not an SNMP message.
    #[error("not an SNMP message: {0}")]
    Decode(String),
    /// The summary cannot be encoded.
    #[error("cannot encode: {0}")]
    Encode(String),
}

fn pdu_summary(pdu: &async_snmp::Pdu) -> WirePdu {
    let (error_status, error_index) = match pdu.get_bulk_fields() {
        Some((n, m)) => (n as i32, m as i32),
        None => pdu.error_fields().unwrap_or((0, 0)),
    };
    WirePdu {
        pdu_type: PduType(pdu.pdu_type() as u8),
        request_id: pdu.request_id(),
        error_status,
        error_index,
        varbinds: pdu.varbinds().iter().cloned().map(VarBind::from).collect(),
    }
}

/// Decodes one whole message.
pub fn decode_message(bytes: &[u8]) -> Result<WireMessage, WireError> {
    use async_snmp::message::{CommunityPdu, Message};
    let decoded = Message::decode(
        Bytes::copy_from_slice(bytes),
        async_snmp::DecodeConfig::default(),
    )
    .map_err(|e| WireError::Decode(e.to_string()))?;
    match decoded.value {
        Message::Community(m) => {
            let version = match m.version() {
                async_snmp::Version::V1 => WireVersion::V1,
                _ => WireVersion::V2c,
            };
            let community = Some(m.community().as_bytes().to_vec());
            let pdu = match m.pdu() {
                CommunityPdu::Standard(pdu) => pdu_summary(pdu),
                CommunityPdu::TrapV1(trap) => WirePdu {
                    pdu_type: PduType::TRAP_V1,
                    request_id: trap.specific_trap(),
                    error_status: trap.generic_trap().as_i32(),
                    error_index: trap.time_stamp() as i32,
                    varbinds: trap.varbinds().iter().cloned().map(VarBind::from).collect(),
                },
            };
            Ok(WireMessage {
                version,
                community,
                user: None,
                msg_id: None,
                pdu: Some(pdu),
            })
        }
        Message::V3(m) => {
            let usm = async_snmp::v3::UsmSecurityParams::decode(
                m.security_params().clone(),
                async_snmp::DecodeConfig::default(),
            )
            .map_err(|e| WireError::Decode(format!("USM parameters: {e}")))?;
            Ok(WireMessage {
                version: WireVersion::V3,
                community: None,
                user: Some(usm.value.username().to_vec()),
                msg_id: Some(m.msg_id()),
                pdu: m.pdu().map(pdu_summary),
            })
        }
    }
}

/// Encodes an SNMPv1 or SNMPv2c message with `community` and `pdu`
/// (any standard PDU type, or GetBulk for v2c).
pub fn encode_community(
    version: WireVersion,
    community: &[u8],
    pdu: &WirePdu,
) -> Result<Vec<u8>, WireError> {
    use async_snmp::message::CommunityMessage;
    use async_snmp::pdu::{PduBody, StandardPduType};
    let body = match pdu.pdu_type {
        PduType::GET_BULK_REQUEST => PduBody::GetBulk {
            non_repeaters: u32::try_from(pdu.error_status)
                .map_err(|_| WireError::Encode("negative non-repeaters".into()))?,
            max_repetitions: u32::try_from(pdu.error_index)
                .map_err(|_| WireError::Encode("negative max-repetitions".into()))?,
        },
        other => PduBody::Standard {
            pdu_type: match other {
                PduType::GET_REQUEST => StandardPduType::GetRequest,
                PduType::GET_NEXT_REQUEST => StandardPduType::GetNextRequest,
                PduType::RESPONSE => StandardPduType::Response,
                PduType::SET_REQUEST => StandardPduType::SetRequest,
                PduType::INFORM_REQUEST => StandardPduType::InformRequest,
                PduType::TRAP_V2 => StandardPduType::TrapV2,
                PduType::REPORT => StandardPduType::Report,
                PduType(tag) => return Err(WireError::Encode(format!("PDU type 0x{tag:02x}"))),
            },
            error_status: pdu.error_status,
            error_index: pdu.error_index,
        },
    };
    let raw = async_snmp::Pdu::from_raw_parts(
        pdu.request_id,
        body,
        pdu.varbinds.iter().cloned().map(Into::into).collect(),
    );
    let version = match version {
        WireVersion::V1 => async_snmp::CommunityVersion::V1,
        WireVersion::V2c => async_snmp::CommunityVersion::V2c,
        WireVersion::V3 => {
            return Err(WireError::Encode(
                "SNMPv3 is not a community message".into(),
            ));
        }
    };
    let message = CommunityMessage::new(version, Bytes::copy_from_slice(community), raw)
        .map_err(|e| WireError::Encode(e.to_string()))?;
    message
        .encode()
        .map(|b| b.to_vec())
        .map_err(|e| WireError::Encode(e.to_string()))
}

/// A binding for building PDUs in tests and tools.
pub fn binding(oid: &[u32], value: Value) -> VarBind {
    VarBind::new(Oid::from_arcs(oid), value)
}
