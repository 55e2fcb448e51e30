//! Fuzzes the body decoder. Arbitrary bytes, decoded at once and again fed in pieces of sizes
//! the input chooses, must never panic and must decode the same either way; decoded data never
//! exceeds the input (nor a declared length), is never empty, and a chunked body decoded then
//! encoded again by the server role decodes to the same data and (allowed) trailers.
//!
//! Input: one byte choosing the framing, two bytes of length (for a length-delimited body), one
//! byte seeding the piece sizes, then the body bytes.

#![no_main]

use bytes::BytesMut;
use gateway_http1::body::{chunk_end, chunk_header, is_valid_trailer_field, last_chunk};
use gateway_http1::{BodyDecoder, Decoded, Framing};
use http::header::{HeaderMap, HeaderValue, TRAILER};
use libfuzzer_sys::fuzz_target;

#[derive(Debug, PartialEq)]
struct Result {
    data: Vec<u8>,
    trailers: Option<HeaderMap>,
    /// What followed the body, or why it failed.
    end: std::result::Result<Vec<u8>, String>,
}

/// Decodes `input` fed in pieces whose sizes come from `seed` (`None`: all at once).
fn decode(framing: Framing, input: &[u8], seed: Option<u8>) -> Result {
    let mut decoder = BodyDecoder::new(framing);
    let mut buffer = BytesMut::new();
    let mut state = seed.map(u32::from);
    let mut fed = 0;
    let mut data = Vec::new();
    let mut trailers = None;
    loop {
        let buffered = buffer.len();
        match decoder.decode(&mut buffer) {
            Ok(Decoded::Data(bytes)) => {
                assert!(!bytes.is_empty(), "no empty data");
                assert!(bytes.len() <= buffered);
                data.extend_from_slice(&bytes);
            }
            Ok(Decoded::Trailers(map)) => {
                assert!(decoder.is_done());
                assert!(trailers.is_none() && !map.is_empty());
                trailers = Some(map);
            }
            Ok(Decoded::End) => {
                assert!(decoder.is_done());
                assert_eq!(decoder.remaining(), Some(0));
                buffer.extend_from_slice(&input[fed..]);
                return Result {
                    data,
                    trailers,
                    end: Ok(buffer.to_vec()),
                };
            }
            Ok(Decoded::NeedMore) if fed < input.len() => {
                let piece = match &mut state {
                    None => input.len() - fed,
                    Some(state) => {
                        *state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                        1 + (*state >> 16) as usize % 64
                    }
                };
                let piece = piece.min(input.len() - fed);
                buffer.extend_from_slice(&input[fed..fed + piece]);
                fed += piece;
            }
            Ok(Decoded::NeedMore) => {
                assert!(!decoder.is_done());
                if let Err(error) = decoder.end_of_input() {
                    return Result {
                        data,
                        trailers,
                        end: Err(error.to_string()),
                    };
                }
            }
            Err(error) => {
                assert!(!decoder.is_done());
                assert_eq!(decoder.decode(&mut buffer), Err(error), "errors stay");
                return Result {
                    data,
                    trailers,
                    end: Err(error.reason().to_owned()),
                };
            }
        }
        assert!(data.len() <= fed, "decoded data never exceeds the input");
    }
}

fuzz_target!(|data: &[u8]| {
    let [choice, high, low, seed, input @ ..] = data else {
        return;
    };
    let framing = match choice % 4 {
        0 => Framing::NoBody,
        1 => Framing::Length(u64::from(u16::from_be_bytes([*high, *low]))),
        2 => Framing::Chunked,
        _ => Framing::UntilClose,
    };
    let at_once = decode(framing, input, None);
    let in_pieces = decode(framing, input, Some(*seed));
    assert_eq!(at_once, in_pieces, "pieces decode as the whole");
    match (framing, &at_once.end) {
        (Framing::NoBody, end) => {
            assert!(at_once.data.is_empty());
            assert_eq!(end.as_deref(), Ok(input));
        }
        (Framing::Length(length), Ok(rest)) => {
            assert_eq!(at_once.data.len() as u64, length);
            assert_eq!([&at_once.data[..], rest].concat(), input);
        }
        (Framing::Length(length), Err(_)) => assert!((at_once.data.len() as u64) < length),
        (Framing::UntilClose, end) => {
            assert_eq!(at_once.data, input);
            assert_eq!(end.as_deref(), Ok(&b""[..]));
        }
        (Framing::Chunked, Ok(_)) => {
            // Encoded again with every trailer declared: the same data, and the trailers the
            // server role may send.
            let mut declared = HeaderMap::new();
            let mut allowed = HeaderMap::new();
            for (name, value) in at_once.trailers.iter().flatten() {
                if let Ok(value) = HeaderValue::from_str(name.as_str()) {
                    declared.append(TRAILER, value);
                }
                if is_valid_trailer_field(name) {
                    allowed.append(name, value.clone());
                }
            }
            let mut out = Vec::new();
            if !at_once.data.is_empty() {
                chunk_header(&mut out, at_once.data.len());
                out.extend_from_slice(&at_once.data);
                chunk_end(&mut out);
            }
            last_chunk(&mut out, at_once.trailers.as_ref(), &declared);
            let again = decode(Framing::Chunked, &out, None);
            assert_eq!(again.data, at_once.data);
            assert_eq!(again.trailers.unwrap_or_default(), allowed);
            assert_eq!(again.end, Ok(Vec::new()));
        }
        (Framing::Chunked, Err(_)) => {}
    }
});
