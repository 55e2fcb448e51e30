//! Fuzzes the server role's request-head parser. Arbitrary bytes, parsed whole and again split
//! in two at a point the input chooses, must never panic, must leave the buffer whole unless a
//! request is served, must be read the same either way, and a served head must come back the
//! same once encoded by the client role and parsed again.
//!
//! Input: one byte of field limit, two bytes of split point, then the request bytes.

#![no_main]

use bytes::BytesMut;
use gateway_http1::fields::FieldSpan;
use gateway_http1::{Parsed, encode_request_head, parse_request};
use gateway_http1_fuzz::{Summary, assert_head_taken, check_split, fields, split_input};
use http::{Method, Version};
use libfuzzer_sys::fuzz_target;

/// The server role's decision without a head: the request goes to hyper whole.
#[derive(Debug, PartialEq)]
struct HandOff;

#[derive(Debug, Clone, PartialEq)]
struct Head {
    method: Method,
    uri: String,
    version: Version,
    fields: Vec<(String, Vec<u8>)>,
    keep_alive: bool,
    accepts_trailers: bool,
}

fn parse(
    buffer: &mut BytesMut,
    spans: &mut Vec<FieldSpan>,
    max_headers: usize,
) -> Summary<Head, HandOff> {
    let before = buffer.clone();
    match parse_request(buffer, spans, max_headers) {
        Parsed::Partial => {
            assert_eq!(*buffer, before, "waiting for more leaves the buffer");
            Summary::Partial
        }
        Parsed::HandOff => {
            assert_eq!(*buffer, before, "a hand-off leaves the whole head");
            Summary::Decided(HandOff)
        }
        Parsed::Request(head) => {
            assert_head_taken(&before, buffer);
            assert!(head.parts.headers.len() <= max_headers);
            for name in ["content-length", "transfer-encoding", "upgrade", "expect"] {
                let values: Vec<_> = head.parts.headers.get_all(name).iter().collect();
                match name {
                    "content-length" => {
                        assert!(values.len() <= 1 && values.iter().all(|v| *v == "0"))
                    }
                    _ => assert!(values.is_empty(), "{name} is served"),
                }
            }
            assert_ne!(head.parts.method, Method::CONNECT);
            Summary::Head {
                head: Head {
                    method: head.parts.method,
                    uri: head.parts.uri.to_string(),
                    version: head.parts.version,
                    fields: fields(&head.parts.headers),
                    keep_alive: head.keep_alive,
                    accepts_trailers: head.accepts_trailers,
                },
                rest: buffer.len(),
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((limit, split, input)) = split_input(data) else {
        return;
    };
    let max_headers = usize::from(limit);
    let mut spans = Vec::new();
    let expected = check_split(input, split, |buffer| {
        parse(buffer, &mut spans, max_headers)
    });

    // The client role writes what the server role read; read again, it is the same request.
    if let Summary::Head { head: expected, .. } = &expected {
        let mut served = BytesMut::from(input);
        let Parsed::Request(head) = parse_request(&mut served, &mut spans, max_headers) else {
            unreachable!("parsed before");
        };
        let mut out = Vec::new();
        encode_request_head(
            &mut out,
            &head.parts.method,
            &expected.uri,
            &head.parts.headers,
        );
        let mut again = BytesMut::from(&out[..]);
        match parse(&mut again, &mut spans, max_headers) {
            Summary::Head { head: read, rest } => {
                let written = Head {
                    version: Version::HTTP_11,
                    keep_alive: read.keep_alive,
                    ..expected.clone()
                };
                assert_eq!((read, rest), (written, 0));
            }
            other => panic!("{other:?} from {:?}", String::from_utf8_lossy(&out)),
        }
    }
});
