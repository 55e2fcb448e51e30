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
use gateway_http1_fuzz::{Summary, assert_head_taken, check_split, fields, split_input};
use http::{StatusCode, Version};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, PartialEq)]
struct Head {
    status: StatusCode,
    version: Version,
    fields: Vec<(String, Vec<u8>)>,
    framing: Framing,
    keep_alive: bool,
}

/// A response refused comes back as its reason.
fn parse(
    buffer: &mut BytesMut,
    spans: &mut Vec<FieldSpan>,
    to_head_request: bool,
) -> Summary<Head, &'static str> {
    let before = buffer.clone();
    match parse_response_head(buffer, spans, to_head_request) {
        Err(error) => Summary::Decided(error.reason()),
        Ok(None) => {
            assert_eq!(*buffer, before, "waiting for more leaves the buffer");
            Summary::Partial
        }
        Ok(Some(head)) => {
            assert_head_taken(&before, buffer);
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
            Summary::Head {
                head: Head {
                    status: parts.status,
                    version: parts.version,
                    fields: fields(&parts.headers),
                    framing: head.framing,
                    keep_alive: head.keep_alive,
                },
                rest: buffer.len(),
            }
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((flags, split, input)) = split_input(data) else {
        return;
    };
    let to_head_request = flags & 1 == 1;
    let mut spans = Vec::new();
    check_split(input, split, |buffer| {
        parse(buffer, &mut spans, to_head_request)
    });

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
            Summary::Head { head: read, rest } => {
                assert_eq!(read.status, head.parts.status);
                assert_eq!(
                    read.framing,
                    committed.framing,
                    "{:?}",
                    String::from_utf8_lossy(&out)
                );
                assert_eq!(read.keep_alive, !committed.close);
                assert_eq!(rest, 0);
                assert!(read.fields.iter().any(|(name, _)| name == "date"));
            }
            other => panic!("{other:?} from {:?}", String::from_utf8_lossy(&out)),
        }
    }
});
