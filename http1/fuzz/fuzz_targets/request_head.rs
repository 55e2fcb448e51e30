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
use http::{Method, Version};
use libfuzzer_sys::fuzz_target;

/// What a parse decided, comparable.
#[derive(Debug, PartialEq)]
enum Summary {
    Partial,
    HandOff,
    Request(Head),
}

#[derive(Debug, Clone, PartialEq)]
struct Head {
    method: Method,
    uri: String,
    version: Version,
    fields: Vec<(String, Vec<u8>)>,
    keep_alive: bool,
    accepts_trailers: bool,
    /// Bytes left in the buffer after the head.
    rest: usize,
}

fn parse(buffer: &mut BytesMut, spans: &mut Vec<FieldSpan>, max_headers: usize) -> Summary {
    let before = buffer.clone();
    match parse_request(buffer, spans, max_headers) {
        Parsed::Partial => {
            assert_eq!(*buffer, before, "waiting for more leaves the buffer");
            Summary::Partial
        }
        Parsed::HandOff => {
            assert_eq!(*buffer, before, "a hand-off leaves the whole head");
            Summary::HandOff
        }
        Parsed::Request(head) => {
            let consumed = before.len() - buffer.len();
            assert!(consumed > 0);
            assert_eq!(buffer[..], before[consumed..], "only the head is taken");
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
            Summary::Request(Head {
                method: head.parts.method,
                uri: head.parts.uri.to_string(),
                version: head.parts.version,
                fields: head
                    .parts
                    .headers
                    .iter()
                    .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
                    .collect(),
                keep_alive: head.keep_alive,
                accepts_trailers: head.accepts_trailers,
                rest: buffer.len(),
            })
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [limit, high, low, input @ ..] = data else {
        return;
    };
    let max_headers = usize::from(*limit);
    let split = usize::from(u16::from_be_bytes([*high, *low])) % (input.len() + 1);
    let mut spans = Vec::new();

    let mut whole = BytesMut::from(input);
    let expected = parse(&mut whole, &mut spans, max_headers);

    let mut buffer = BytesMut::from(&input[..split]);
    let first = parse(&mut buffer, &mut spans, max_headers);
    match first {
        Summary::Partial => {
            buffer.extend_from_slice(&input[split..]);
            assert_eq!(parse(&mut buffer, &mut spans, max_headers), expected);
        }
        Summary::HandOff => assert_eq!(expected, Summary::HandOff, "a prefix decided"),
        Summary::Request(ref head) => {
            let Summary::Request(whole_head) = &expected else {
                panic!("a prefix served {first:?}, the whole {expected:?}");
            };
            assert_eq!(
                split - head.rest,
                input.len() - whole_head.rest,
                "the same head"
            );
            let moved = Head {
                rest: whole_head.rest,
                ..head.clone()
            };
            assert_eq!(&moved, whole_head);
        }
    }

    // The client role writes what the server role read; read again, it is the same request.
    if let Summary::Request(expected) = &expected {
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
            Summary::Request(read) => {
                let written = Head {
                    version: Version::HTTP_11,
                    keep_alive: read.keep_alive,
                    rest: 0,
                    ..expected.clone()
                };
                assert_eq!(read, written);
            }
            other => panic!("{other:?} from {:?}", String::from_utf8_lossy(&out)),
        }
    }
});
