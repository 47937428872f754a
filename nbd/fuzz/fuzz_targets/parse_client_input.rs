//! Feeds arbitrary bytes to every decoder the server runs on client input:
//! client flags, options and their payloads (INFO/GO, meta contexts), and
//! transmission requests. None may panic, and a successful decode must
//! never claim more bytes than it was given.
#![no_main]

use dvsan_nbd::codec;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = codec::decode_client_flags(data);
    let mut rest = data;
    // Walk the input as a stream of options, as the handshake does.
    for _ in 0..64 {
        match codec::decode_option(rest, 64 * 1024) {
            Ok((opt, n)) => {
                assert!(n <= rest.len());
                let _ = codec::parse_info_request(opt.data);
                let _ = codec::parse_meta_context_request(opt.data);
                let _ = codec::parse_server_reply(opt.data);
                rest = &rest[n..];
            }
            Err(_) => break,
        }
    }
    // And as a stream of requests, as the transmission phase does.
    let mut rest = data;
    for _ in 0..64 {
        let _ = codec::request_frame_len(rest);
        match codec::decode_request(rest, dvsan_nbd::MAX_PAYLOAD) {
            Ok((_, n)) => {
                assert!(n <= rest.len());
                rest = &rest[n..];
            }
            Err(_) => break,
        }
    }
    // Client-side decoders, for the client half.
    let _ = codec::decode_reply_header(data);
    let _ = codec::decode_option_reply(data, 64 * 1024);
    let _ = codec::parse_info_reply(data);
    let _ = codec::parse_error_payload(data);
    let _ = codec::parse_block_status_payload(data);
    let _ = codec::parse_meta_context_reply(data);
});
