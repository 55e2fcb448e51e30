//! Fuzzes the client role's response-head parser. Arbitrary bytes, parsed whole and again split
//! in two at a point the input chooses, must never panic, must be read the same either way, and
//! a parsed head must keep the framing rules: no body where none can be, no reuse of a
//! connection whose body ends with it, no `101`, no HTTP/1.0 with a transfer coding. A head the
//! server role encodes from it must read back with the framing the encoder committed to.
//!
//! Input: one byte of flags (bit 0: the request was HEAD), two bytes of split point, then the
//! response bytes.

#![no_main]

use bytes::BytesMut;
use gateway_http1::fields::{FieldSpan, MAX_FIELDS, names_headers};
use gateway_http1::framing::has_no_body;
use gateway_http1::{Framing, encode_response_head, parse_response_head};
use http::{StatusCode, Version};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, PartialEq)]
enum Summary {
    Partial,
    Refused(&'static str),
    Head(Head),
}

#[derive(Debug, Clone, PartialEq)]
struct Head {
    status: StatusCode,
    version: Version,
    fields: Vec<(String, Vec<u8>)>,
    framing: Framing,
    keep_alive: bool,
    /// Bytes left in the buffer after the head.
    rest: usize,
}

fn parse(buffer: &mut BytesMut, spans: &mut Vec<FieldSpan>, to_head_request: bool) -> Summary {
    let before = buffer.clone();
    match parse_response_head(buffer, spans, to_head_request) {
        Err(error) => Summary::Refused(error.reason()),
        Ok(None) => {
            assert_eq!(*buffer, before, "waiting for more leaves the buffer");
            Summary::Partial
        }
        Ok(Some(head)) => {
            let consumed = before.len() - buffer.len();
            assert!(consumed > 0);
            assert_eq!(buffer[..], before[consumed..], "only the head is taken");
            let parts = &head.parts;
            assert_ne!(parts.status, StatusCode::SWITCHING_PROTOCOLS);
            assert_eq!(
                head.framing == Framing::NoBody,
                has_no_body(parts.status, to_head_request),
                "one rule for bodies that cannot exist"
            );
            if head.keep_alive {
                assert_ne!(head.framing, Framing::UntilClose);
            }
            let has_te = parts.headers.contains_key("transfer-encoding");
            if head.framing == Framing::Chunked {
                assert!(has_te);
            }
            if has_te && parts.headers.contains_key("content-length") {
                assert!(!head.keep_alive, "CL with TE is not kept");
            }
            if parts.version == Version::HTTP_10 {
                assert!(!has_te, "HTTP/1.0 with a transfer coding is refused");
            }
            assert!(!parts.headers.contains_key("keep-alive"));
            for value in parts.headers.get_all("connection") {
                assert!(names_headers(value.as_bytes()));
            }
            Summary::Head(Head {
                status: parts.status,
                version: parts.version,
                fields: parts
                    .headers
                    .iter()
                    .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
                    .collect(),
                framing: head.framing,
                keep_alive: head.keep_alive,
                rest: buffer.len(),
            })
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let [flags, high, low, input @ ..] = data else {
        return;
    };
    let to_head_request = flags & 1 == 1;
    let split = usize::from(u16::from_be_bytes([*high, *low])) % (input.len() + 1);
    let mut spans = Vec::new();

    let mut whole = BytesMut::from(input);
    let expected = parse(&mut whole, &mut spans, to_head_request);

    let mut buffer = BytesMut::from(&input[..split]);
    let first = parse(&mut buffer, &mut spans, to_head_request);
    match first {
        Summary::Partial => {
            buffer.extend_from_slice(&input[split..]);
            assert_eq!(parse(&mut buffer, &mut spans, to_head_request), expected);
        }
        Summary::Refused(_) => assert_eq!(first, expected, "a prefix decided"),
        Summary::Head(ref head) => {
            let Summary::Head(whole_head) = &expected else {
                panic!("a prefix read {first:?}, the whole {expected:?}");
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

    // The server role writes the head for an HTTP/1.1 client; read back, it is framed as the
    // encoder said.
    let mut again = BytesMut::from(input);
    if let Ok(Some(head)) = parse_response_head(&mut again, &mut spans, to_head_request)
        && !head.parts.status.is_informational()
        // The encoder adds up to three fields (Date, framing, Connection), and the parser takes
        // no more than MAX_FIELDS: a limit, not a disagreement.
        && head.parts.headers.len() + 3 <= MAX_FIELDS
    {
        let mut out = Vec::new();
        let committed = encode_response_head(
            &mut out,
            &head.parts,
            None,
            to_head_request,
            Version::HTTP_11,
            false,
        );
        let mut written = BytesMut::from(&out[..]);
        match parse(&mut written, &mut spans, to_head_request) {
            Summary::Head(read) => {
                assert_eq!(read.status, head.parts.status);
                assert_eq!(
                    read.framing,
                    committed.framing,
                    "{:?}",
                    String::from_utf8_lossy(&out)
                );
                assert_eq!(read.keep_alive, !committed.close);
                assert_eq!(read.rest, 0);
                assert!(read.fields.iter().any(|(name, _)| name == "date"));
            }
            other => panic!("{other:?} from {:?}", String::from_utf8_lossy(&out)),
        }
    }
});
