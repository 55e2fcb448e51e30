//! Message bodies on the wire, without I/O. Decoding: a state machine over a buffer the caller
//! fills, for a known length, chunks (with extensions, which are skipped, and trailer fields), or
//! everything until the connection closes; the data it returns shares the buffer's bytes. Its
//! grammar and limits are hyper's (`proto/h1/decode.rs`) where hyper has them, so that a body
//! reads the same on both paths of the worker. Encoding: the lines around chunks, and the last
//! chunk with the trailer fields a response declared.

use bytes::{Buf, Bytes, BytesMut};
use http::HeaderMap;
use http::header::{
    AUTHORIZATION, CACHE_CONTROL, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE,
    HOST, HeaderName, HeaderValue, MAX_FORWARDS, SET_COOKIE, TE, TRAILER, TRANSFER_ENCODING,
};

use crate::error::{InvalidMessage, Truncated};
use crate::fields::{FieldSpan, is_visible_ascii, push_field, push_number};
use crate::framing::Framing;

/// Longest chunk-size line, extensions and line end included.
pub const MAX_CHUNK_LINE: usize = 4 * 1024;
/// Chunk extensions of one body, all lines together (hyper's limit): they are skipped, so a body
/// made mostly of them costs work for nothing.
pub const MAX_EXTENSION_BYTES: u64 = 16 * 1024;
/// Largest trailer section (a section this long or longer is refused, as in hyper) and the most
/// trailer fields in it.
pub const MAX_TRAILER_BYTES: usize = 16 * 1024;
pub const MAX_TRAILERS: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Bytes of the body left, never 0.
    Length(u64),
    ChunkSize,
    /// Bytes of the chunk left, never 0.
    ChunkData(u64),
    /// The CRLF after a chunk's data.
    ChunkEnd,
    Trailers(TrailerScan),
    UntilClose,
    Done,
    /// An error was returned; it is returned again.
    Failed(InvalidMessage),
    /// The input ended before the body did.
    Truncated,
}

/// What [`BodyDecoder::decode`] found in the buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decoded {
    /// Body data, never empty, taken out of the buffer without a copy.
    Data(Bytes),
    /// The trailer fields after the last chunk; the body has ended.
    Trailers(HeaderMap),
    /// The body has ended; the buffer starts with whatever follows it.
    End,
    /// Nothing more can be decoded until more input is in the buffer (or, for a body that runs
    /// until the connection closes, until [`BodyDecoder::end_of_input`]).
    NeedMore,
}

/// Decodes one message body from a buffer the caller fills.
#[derive(Debug, Clone)]
pub struct BodyDecoder {
    state: State,
    extension_bytes: u64,
}

fn invalid(reason: &'static str) -> InvalidMessage {
    InvalidMessage::new(reason)
}

impl BodyDecoder {
    pub fn new(framing: Framing) -> Self {
        let state = match framing {
            Framing::NoBody | Framing::Length(0) => State::Done,
            Framing::Length(length) => State::Length(length),
            Framing::Chunked => State::ChunkSize,
            Framing::UntilClose => State::UntilClose,
        };
        BodyDecoder {
            state,
            extension_bytes: 0,
        }
    }

    /// Decodes what it can from the start of `buffer`, taking what it decodes out of it.
    pub fn decode(&mut self, buffer: &mut BytesMut) -> Result<Decoded, InvalidMessage> {
        loop {
            match self.state {
                State::Done => return Ok(Decoded::End),
                State::Failed(error) => return Err(error),
                State::Truncated => return Err(invalid("the body ended early")),
                State::Length(_) | State::ChunkData(_) | State::UntilClose if buffer.is_empty() => {
                    return Ok(Decoded::NeedMore);
                }
                State::UntilClose => return Ok(Decoded::Data(buffer.split().freeze())),
                State::Length(left) | State::ChunkData(left) => {
                    let take =
                        usize::try_from(left).map_or(buffer.len(), |left| left.min(buffer.len()));
                    let data = buffer.split_to(take).freeze();
                    let left = left - take as u64;
                    self.state = match (self.state, left) {
                        (State::Length(_), 0) => State::Done,
                        (State::Length(_), left) => State::Length(left),
                        (_, 0) => State::ChunkEnd,
                        (_, left) => State::ChunkData(left),
                    };
                    return Ok(Decoded::Data(data));
                }
                State::ChunkSize => match chunk_size_line(buffer, self.extension_bytes) {
                    Ok(Some(line)) => {
                        buffer.advance(line.len);
                        self.extension_bytes += line.extension_bytes;
                        self.state = if line.size == 0 {
                            State::Trailers(TrailerScan::default())
                        } else {
                            State::ChunkData(line.size)
                        };
                    }
                    Ok(None) => return Ok(Decoded::NeedMore),
                    Err(reason) => return self.fail(reason),
                },
                State::ChunkEnd => match buffer.get(..2) {
                    Some(b"\r\n") => {
                        buffer.advance(2);
                        self.state = State::ChunkSize;
                    }
                    None if buffer.first().is_none_or(|b| *b == b'\r') => {
                        return Ok(Decoded::NeedMore);
                    }
                    _ => return self.fail("chunk not ended by CRLF"),
                },
                State::Trailers(mut scan) => match trailer_section(buffer, &mut scan) {
                    Ok(Some(trailers)) => {
                        self.state = State::Done;
                        if !trailers.is_empty() {
                            return Ok(Decoded::Trailers(trailers));
                        }
                    }
                    Ok(None) => {
                        self.state = State::Trailers(scan);
                        return Ok(Decoded::NeedMore);
                    }
                    Err(reason) => return self.fail(reason),
                },
            }
        }
    }

    fn fail(&mut self, reason: &'static str) -> Result<Decoded, InvalidMessage> {
        let error = invalid(reason);
        self.state = State::Failed(error);
        Err(error)
    }

    /// Tells the decoder that no more input will come (the connection closed). That ends a body
    /// delimited by the close, once [`decode`](Self::decode) has returned `NeedMore`; any other
    /// body that has not ended is cut short.
    pub fn end_of_input(&mut self) -> Result<(), Truncated> {
        match self.state {
            State::Done => Ok(()),
            State::UntilClose => {
                self.state = State::Done;
                Ok(())
            }
            // The first error stays the one `decode` returns.
            State::Failed(_) => Err(Truncated),
            _ => {
                self.state = State::Truncated;
                Err(Truncated)
            }
        }
    }

    /// Whether the body has ended: all its data and trailers have been returned. A body known
    /// to be empty is done from the start.
    pub fn is_done(&self) -> bool {
        self.state == State::Done
    }

    /// The bytes of body data still to come, when that is known: a length-delimited body, or one
    /// that has ended.
    pub fn remaining(&self) -> Option<u64> {
        match self.state {
            State::Length(left) => Some(left),
            State::Done => Some(0),
            _ => None,
        }
    }
}

/// A chunk-size line read whole.
struct ChunkLine {
    /// Bytes of the line, its CRLF included.
    len: usize,
    size: u64,
    extension_bytes: u64,
}

/// Reads the chunk-size line at the start of `buffer`, with hyper's grammar: at least one hex
/// digit (any number of them, as long as the size fits in 64 bits), optional spaces or tabs, an
/// optional extension (`;` and anything but CR or LF, skipped), CRLF. `None` while the line is
/// incomplete; an error as soon as a byte breaks it.
fn chunk_size_line(buffer: &[u8], extension_bytes: u64) -> Result<Option<ChunkLine>, &'static str> {
    #[derive(Clone, Copy, PartialEq)]
    enum At {
        Start,
        Size,
        Space,
        Extension,
        LineFeed,
    }
    let mut at = At::Start;
    let mut size: u64 = 0;
    let mut extension: u64 = 0;
    for (index, byte) in buffer.iter().copied().enumerate() {
        if index >= MAX_CHUNK_LINE {
            return Err("chunk-size line too long");
        }
        at = match (at, byte) {
            (At::Start | At::Size, _) if byte.is_ascii_hexdigit() => {
                let digit = match byte {
                    b'0'..=b'9' => byte - b'0',
                    b'a'..=b'f' => byte - b'a' + 10,
                    _ => byte - b'A' + 10,
                };
                size = size
                    .checked_mul(16)
                    .and_then(|size| size.checked_add(u64::from(digit)))
                    .ok_or("chunk size too large")?;
                At::Size
            }
            (At::Start, _) => return Err("invalid chunk size"),
            (At::Size | At::Space, b' ' | b'\t') => At::Space,
            (At::Size | At::Space, b';') => At::Extension,
            (At::Size | At::Space | At::Extension, b'\r') => At::LineFeed,
            (At::Size | At::Space, _) => return Err("invalid chunk size"),
            (At::Extension, b'\n') => return Err("line feed in a chunk extension"),
            (At::Extension, _) => {
                extension += 1;
                if extension_bytes + extension >= MAX_EXTENSION_BYTES {
                    return Err("chunk extensions too large");
                }
                At::Extension
            }
            (At::LineFeed, b'\n') => {
                return Ok(Some(ChunkLine {
                    len: index + 1,
                    size,
                    extension_bytes: extension,
                }));
            }
            (At::LineFeed, _) => return Err("chunk-size line not ended by CRLF"),
        };
    }
    if buffer.len() >= MAX_CHUNK_LINE {
        return Err("chunk-size line too long");
    }
    Ok(None)
}

/// Where the search for the end of a trailer section stands: the section may arrive in many
/// pieces, and each byte is looked at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct TrailerScan {
    at: TrailerAt,
    lines: usize,
    scanned: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum TrailerAt {
    #[default]
    LineStart,
    Line,
    LineFeed,
    EndFeed,
}

/// Finds the end of the trailer section at the start of `buffer`, with hyper's grammar: each
/// line ends at a CR, which must be followed by LF, and an empty line ends the section. Decided
/// byte by byte, in hyper's order, so that a section read in pieces fails where the same
/// section read at once does. Returns the section's length and its number of lines; `None`
/// while it is incomplete.
fn trailer_section_end(
    buffer: &[u8],
    scan: &mut TrailerScan,
) -> Result<Option<(usize, usize)>, &'static str> {
    use TrailerAt::{EndFeed, Line, LineFeed, LineStart};
    // hyper gathers the bytes of a section that has fields, and refuses it at the limit.
    let gathered = buffer.first().is_some_and(|b| *b != b'\r');
    for (index, byte) in buffer.iter().copied().enumerate().skip(scan.scanned) {
        let mut ended = false;
        scan.at = match (scan.at, byte) {
            (LineStart, b'\r') => EndFeed,
            (Line, b'\r') => LineFeed,
            (LineStart | Line, _) => Line,
            (LineFeed, b'\n') => {
                scan.lines += 1;
                if scan.lines > MAX_TRAILERS {
                    return Err("too many trailer fields");
                }
                LineStart
            }
            (LineFeed, _) => return Err("trailer field not ended by CRLF"),
            (EndFeed, b'\n') => {
                ended = true;
                EndFeed
            }
            (EndFeed, _) => return Err("trailer section not ended by CRLF"),
        };
        scan.scanned = index + 1;
        if gathered && scan.scanned >= MAX_TRAILER_BYTES {
            return Err("trailers too large");
        }
        if ended {
            return Ok(Some((scan.scanned, scan.lines)));
        }
    }
    Ok(None)
}

/// Reads the trailer section after the last chunk, up to and including its blank line, and
/// takes it out of the buffer; `None` while it is incomplete. The trailer values share the
/// buffer's bytes.
fn trailer_section(
    buffer: &mut BytesMut,
    scan: &mut TrailerScan,
) -> Result<Option<HeaderMap>, &'static str> {
    let Some((end, lines)) = trailer_section_end(buffer, scan)? else {
        return Ok(None);
    };
    if lines == 0 {
        buffer.advance(end);
        return Ok(Some(HeaderMap::new()));
    }
    let mut spans = [None::<FieldSpan>; MAX_TRAILERS];
    let count = {
        let section = &buffer[..end];
        let mut slots = [httparse::EMPTY_HEADER; MAX_TRAILERS];
        // As many slots as lines, as hyper gives: a line holding more fields (split by bare line
        // feeds) makes the section invalid rather than longer.
        let parsed = httparse::parse_headers(section, &mut slots[..lines])
            .map_err(|_| "invalid trailers")?;
        let httparse::Status::Complete((_, fields)) = parsed else {
            return Err("invalid trailers");
        };
        let start = section.as_ptr() as usize;
        for (span, field) in spans.iter_mut().zip(fields.iter()) {
            *span = Some(FieldSpan::of(field, start));
        }
        fields.len()
    };
    let section = buffer.split_to(end).freeze();
    let mut trailers = HeaderMap::with_capacity(count);
    for span in spans.iter().flatten() {
        span.append_to(&section, &mut trailers)
            .ok_or("invalid trailer field")?;
    }
    Ok(Some(trailers))
}

/// Appends the line that starts a chunk of `len` bytes; the data and then [`chunk_end`] follow.
pub fn chunk_header(out: &mut Vec<u8>, len: usize) {
    push_number(out, len as u64, 16);
    out.extend_from_slice(b"\r\n");
}

/// Appends the line end that follows a chunk's data.
pub fn chunk_end(out: &mut Vec<u8>) {
    out.extend_from_slice(b"\r\n");
}

/// Whether `name` may be sent as a trailer field: not one RFC 9110 §6.5.1 says a recipient
/// cannot process after the content (framing, routing, authentication, controls). hyper's list
/// exactly, so that both paths drop the same fields.
pub fn is_valid_trailer_field(name: &HeaderName) -> bool {
    !matches!(
        *name,
        AUTHORIZATION
            | CACHE_CONTROL
            | CONTENT_ENCODING
            | CONTENT_LENGTH
            | CONTENT_RANGE
            | CONTENT_TYPE
            | HOST
            | MAX_FORWARDS
            | SET_COOKIE
            | TRAILER
            | TRANSFER_ENCODING
            | TE
    )
}

/// Whether the `Trailer` fields of `declared` (the response head's fields) name `name`.
fn is_declared(name: &HeaderName, declared: &HeaderMap) -> bool {
    declared
        .get_all(TRAILER)
        .iter()
        .map(HeaderValue::as_bytes)
        .filter(|value| is_visible_ascii(value))
        .flat_map(|value| value.split(|b| *b == b','))
        .any(|token| {
            token
                .trim_ascii()
                .eq_ignore_ascii_case(name.as_str().as_bytes())
        })
}

/// Appends the last chunk, the trailer fields, and the blank line that ends the body. Only the
/// trailers `declared` announces in its `Trailer` fields and that [`is_valid_trailer_field`]
/// allows are written, as hyper does; whether the client accepts trailers at all (`TE:
/// trailers`) is the caller's to check.
pub fn last_chunk(out: &mut Vec<u8>, trailers: Option<&HeaderMap>, declared: &HeaderMap) {
    out.extend_from_slice(b"0\r\n");
    for (name, value) in trailers.into_iter().flatten() {
        if is_valid_trailer_field(name) && is_declared(name, declared) {
            push_field(out, name.as_str().as_bytes(), value.as_bytes());
        }
    }
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Everything `decoder` makes of `input` at once, then of the end of input.
    fn decode_all(
        framing: Framing,
        input: &[u8],
    ) -> (Vec<u8>, Option<HeaderMap>, Result<BytesMut, String>) {
        let mut decoder = BodyDecoder::new(framing);
        let mut buffer = BytesMut::from(input);
        let mut data = Vec::new();
        let mut trailers = None;
        let mut ended = false;
        loop {
            match decoder.decode(&mut buffer) {
                Ok(Decoded::Data(bytes)) => {
                    assert!(!bytes.is_empty());
                    data.extend_from_slice(&bytes);
                }
                Ok(Decoded::Trailers(map)) => trailers = Some(map),
                Ok(Decoded::End) => return (data, trailers, Ok(buffer)),
                Ok(Decoded::NeedMore) if !ended => {
                    ended = true;
                    if let Err(error) = decoder.end_of_input() {
                        return (data, trailers, Err(error.to_string()));
                    }
                }
                Ok(Decoded::NeedMore) => panic!("more wanted after the end of input"),
                Err(error) => return (data, trailers, Err(error.reason().to_owned())),
            }
        }
    }

    /// The same, fed one byte at a time.
    fn decode_bytewise(
        framing: Framing,
        input: &[u8],
    ) -> (Vec<u8>, Option<HeaderMap>, Result<BytesMut, String>) {
        let mut decoder = BodyDecoder::new(framing);
        let mut buffer = BytesMut::new();
        let mut data = Vec::new();
        let mut trailers = None;
        let mut fed = 0;
        loop {
            match decoder.decode(&mut buffer) {
                Ok(Decoded::Data(bytes)) => data.extend_from_slice(&bytes),
                Ok(Decoded::Trailers(map)) => trailers = Some(map),
                Ok(Decoded::End) => {
                    buffer.extend_from_slice(&input[fed..]);
                    return (data, trailers, Ok(buffer));
                }
                Ok(Decoded::NeedMore) if fed < input.len() => {
                    buffer.extend_from_slice(&input[fed..=fed]);
                    fed += 1;
                }
                Ok(Decoded::NeedMore) => {
                    if let Err(error) = decoder.end_of_input() {
                        return (data, trailers, Err(error.to_string()));
                    }
                }
                Err(error) => return (data, trailers, Err(error.reason().to_owned())),
            }
        }
    }

    fn decode_both(
        framing: Framing,
        input: &[u8],
    ) -> (Vec<u8>, Option<HeaderMap>, Result<BytesMut, String>) {
        let whole = decode_all(framing, input);
        let bytewise = decode_bytewise(framing, input);
        assert_eq!(whole.0, bytewise.0, "{:?}", String::from_utf8_lossy(input));
        assert_eq!(whole.1, bytewise.1);
        assert_eq!(whole.2, bytewise.2);
        whole
    }

    /// The error of a body the input ended in ([`Truncated`]), spelled out, as a caller sees it.
    const CUT_SHORT: &str = "the connection closed before the message ended";

    /// Asserts that `input`, read as a chunked body (at once and byte by byte), fails for
    /// `reason`.
    fn assert_chunked_fails(input: &[u8], reason: &str) {
        let (_, _, rest) = decode_both(Framing::Chunked, input);
        assert_eq!(
            rest.unwrap_err(),
            reason,
            "{:?}",
            String::from_utf8_lossy(input)
        );
    }

    #[test]
    fn a_length_delimits_the_body() {
        let (data, trailers, rest) = decode_both(Framing::Length(5), b"helloHTTP/1.1");
        assert_eq!(data, b"hello");
        assert!(trailers.is_none());
        assert_eq!(&rest.unwrap()[..], b"HTTP/1.1");
        let (data, _, rest) = decode_both(Framing::Length(10), b"abc");
        assert_eq!(data, b"abc");
        assert_eq!(rest.unwrap_err(), CUT_SHORT);
    }

    #[test]
    fn data_shares_the_buffer() {
        let mut buffer = BytesMut::from(&b"0123456789"[..]);
        let start = buffer.as_ptr();
        let mut decoder = BodyDecoder::new(Framing::Length(4));
        assert_eq!(decoder.remaining(), Some(4));
        let Ok(Decoded::Data(data)) = decoder.decode(&mut buffer) else {
            panic!("no data");
        };
        assert_eq!(data.as_ptr(), start);
        assert!(decoder.is_done(), "done as soon as the last data is out");
        assert_eq!(decoder.remaining(), Some(0));
        assert_eq!(decoder.decode(&mut buffer), Ok(Decoded::End));
        assert_eq!(&buffer[..], b"456789");
    }

    #[test]
    fn empty_bodies_are_done_at_once() {
        for framing in [Framing::NoBody, Framing::Length(0)] {
            let mut decoder = BodyDecoder::new(framing);
            assert!(decoder.is_done());
            let mut buffer = BytesMut::from(&b"next"[..]);
            assert_eq!(decoder.decode(&mut buffer), Ok(Decoded::End));
            assert_eq!(&buffer[..], b"next");
            assert_eq!(decoder.end_of_input(), Ok(()));
        }
    }

    #[test]
    fn chunks_are_decoded_with_their_trailers() {
        let (data, trailers, rest) = decode_both(
            Framing::Chunked,
            b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nx-checksum: abc\r\n\r\nnext",
        );
        assert_eq!(data, b"hello world");
        assert_eq!(trailers.unwrap()["x-checksum"], "abc");
        assert_eq!(&rest.unwrap()[..], b"next");
        let (data, trailers, rest) = decode_both(Framing::Chunked, b"3\r\nabc\r\n0\r\n\r\n");
        assert_eq!(data, b"abc");
        assert!(trailers.is_none());
        assert!(rest.unwrap().is_empty());
    }

    #[test]
    fn chunk_sizes_follow_hypers_grammar() {
        for (input, data) in [
            (&b"A\r\n0123456789\r\n0\r\n\r\n"[..], &b"0123456789"[..]),
            (b"a \t ;x\r\n0123456789\r\n0\r\n\r\n", b"0123456789"),
            (b"00000000000000000000003\r\nabc\r\n0\r\n\r\n", b"abc"),
            (b"3;a=\"b;c\"\x01\xff\r\nabc\r\n000\r\n\r\n", b"abc"),
            (b"3 \r\nabc\r\n0\r\n\r\n", b"abc"),
        ] {
            let (decoded, _, rest) = decode_both(Framing::Chunked, input);
            assert_eq!(decoded, data, "{:?}", String::from_utf8_lossy(input));
            assert!(rest.is_ok(), "{:?}", String::from_utf8_lossy(input));
        }
        for (input, reason) in [
            (&b"\r\n"[..], "invalid chunk size"),
            (b" 3\r\nabc\r\n0\r\n\r\n", "invalid chunk size"),
            (b";x\r\n", "invalid chunk size"),
            (b"0x3\r\nabc\r\n0\r\n\r\n", "invalid chunk size"),
            (b"-3\r\nabc\r\n", "invalid chunk size"),
            (b"3 3\r\nabc\r\n", "invalid chunk size"),
            (b"3\nabc\r\n0\r\n\r\n", "invalid chunk size"),
            (b"3\r\r\nabc\r\n", "chunk-size line not ended by CRLF"),
            (b"3;x\nabc\r\n0\r\n\r\n", "line feed in a chunk extension"),
            (b"10000000000000000\r\n", "chunk size too large"),
            (b"3\r\nabcd\r\n0\r\n\r\n", "chunk not ended by CRLF"),
            (b"3\r\nabc\n0\r\n\r\n", "chunk not ended by CRLF"),
            (b"ffffffffffffffff\r\nabc", CUT_SHORT),
        ] {
            assert_chunked_fails(input, reason);
        }
    }

    #[test]
    fn a_chunked_body_cut_short_is_truncated() {
        for input in [
            &b""[..],
            b"5\r\nhel",
            b"5\r\nhello",
            b"5\r\nhello\r",
            b"0\r\n",
            b"0\r\nx: 1\r\n",
        ] {
            assert_chunked_fails(input, CUT_SHORT);
        }
    }

    #[test]
    fn trailer_sections_follow_hypers_grammar() {
        let (_, trailers, rest) =
            decode_both(Framing::Chunked, b"0\r\nA: 1\r\nb: 2\r\nA: 3\r\n\r\n");
        let trailers = trailers.unwrap();
        let all: Vec<_> = trailers.get_all("a").iter().collect();
        assert_eq!(all, ["1", "3"]);
        assert_eq!(trailers["b"], "2");
        assert!(rest.unwrap().is_empty());
        // A bare line feed ends no line of the section, though httparse reads it as one.
        let (_, trailers, rest) = decode_both(Framing::Chunked, b"0\r\na: 1\n\r\n\r\nnext");
        assert_eq!(trailers.unwrap()["a"], "1");
        assert_eq!(&rest.unwrap()[..], b"next");
        for (input, reason) in [
            (&b"0\r\na: 1\nb: 2\r\n\r\n"[..], "invalid trailers"),
            (b"0\r\n\rx", "trailer section not ended by CRLF"),
            (b"0\r\na: 1\rx", "trailer field not ended by CRLF"),
            (b"0\r\nbad trailer\r\n\r\n", "invalid trailers"),
            (b"0\r\nx : 1\r\n\r\n", "invalid trailers"),
            // hyper gathers a trailer line until a CR; without one the body never ends.
            (b"0\r\n\n\n", CUT_SHORT),
        ] {
            assert_chunked_fails(input, reason);
        }
    }

    #[test]
    fn limits_are_enforced() {
        let mut long_line = b"1;".to_vec();
        long_line.resize(MAX_CHUNK_LINE - 2, b'x');
        long_line.extend_from_slice(b"\r\n");
        assert_eq!(long_line.len(), MAX_CHUNK_LINE);
        long_line.extend_from_slice(b"a\r\n0\r\n\r\n");
        let (data, _, rest) = decode_both(Framing::Chunked, &long_line);
        assert_eq!(data, b"a");
        assert!(rest.is_ok());
        let mut too_long = b"1;".to_vec();
        too_long.resize(MAX_CHUNK_LINE - 1, b'x');
        too_long.extend_from_slice(b"\r\na\r\n0\r\n\r\n");
        let (_, _, rest) = decode_all(Framing::Chunked, &too_long);
        assert_eq!(rest.unwrap_err(), "chunk-size line too long");
        let (_, _, rest) = decode_all(Framing::Chunked, &too_long[..MAX_CHUNK_LINE]);
        assert_eq!(rest.unwrap_err(), "chunk-size line too long");

        // Extensions of all lines together.
        let mut extended = Vec::new();
        for _ in 0..5 {
            extended.extend_from_slice(b"1;");
            extended.resize(extended.len() + 3500, b'e');
            extended.extend_from_slice(b"\r\na\r\n");
        }
        let (data, _, rest) = decode_all(Framing::Chunked, &extended);
        assert_eq!(data, b"aaaa");
        assert_eq!(rest.unwrap_err(), "chunk extensions too large");

        let mut trailers = b"0\r\n".to_vec();
        for i in 0..MAX_TRAILERS {
            trailers.extend_from_slice(format!("x-{i}: v\r\n").as_bytes());
        }
        let mut over = trailers.clone();
        trailers.extend_from_slice(b"\r\n");
        let (_, decoded, rest) = decode_both(Framing::Chunked, &trailers);
        assert_eq!(decoded.unwrap().len(), MAX_TRAILERS);
        assert!(rest.is_ok());
        over.extend_from_slice(b"x-last: v\r\n\r\n");
        let (_, _, rest) = decode_both(Framing::Chunked, &over);
        assert_eq!(rest.unwrap_err(), "too many trailer fields");

        let fits = |section_len: usize| {
            let mut body = b"0\r\nx: ".to_vec();
            body.resize(3 + section_len - 4, b'v');
            body.extend_from_slice(b"\r\n\r\n");
            assert_eq!(body.len() - 3, section_len);
            decode_all(Framing::Chunked, &body).2
        };
        assert!(fits(MAX_TRAILER_BYTES - 1).is_ok());
        assert_eq!(fits(MAX_TRAILER_BYTES).unwrap_err(), "trailers too large");
        let mut endless = b"0\r\nx: ".to_vec();
        endless.resize(MAX_TRAILER_BYTES + 10, b'v');
        assert_eq!(
            decode_all(Framing::Chunked, &endless).2.unwrap_err(),
            "trailers too large"
        );
    }

    #[test]
    fn errors_stay() {
        let mut decoder = BodyDecoder::new(Framing::Chunked);
        let mut buffer = BytesMut::from(&b"zz\r\n"[..]);
        let error = decoder.decode(&mut buffer).unwrap_err();
        assert_eq!(error.reason(), "invalid chunk size");
        assert_eq!(decoder.decode(&mut buffer), Err(error));
        assert!(!decoder.is_done());
        assert_eq!(decoder.end_of_input(), Err(Truncated));
        assert_eq!(
            decoder.decode(&mut buffer),
            Err(error),
            "the first error stays"
        );
    }

    #[test]
    fn a_body_until_close_ends_with_the_input() {
        let mut decoder = BodyDecoder::new(Framing::UntilClose);
        let mut buffer = BytesMut::from(&b"all of"[..]);
        assert_eq!(decoder.remaining(), None);
        assert_eq!(
            decoder.decode(&mut buffer),
            Ok(Decoded::Data(Bytes::from_static(b"all of")))
        );
        assert_eq!(decoder.decode(&mut buffer), Ok(Decoded::NeedMore));
        buffer.extend_from_slice(b" it");
        assert_eq!(
            decoder.decode(&mut buffer),
            Ok(Decoded::Data(Bytes::from_static(b" it")))
        );
        assert!(!decoder.is_done());
        assert_eq!(decoder.end_of_input(), Ok(()));
        assert!(decoder.is_done());
        assert_eq!(decoder.decode(&mut buffer), Ok(Decoded::End));
    }

    #[test]
    fn chunks_are_encoded_in_hex() {
        let mut out = Vec::new();
        chunk_header(&mut out, 0x1a2b);
        out.extend_from_slice(b"data");
        chunk_end(&mut out);
        assert_eq!(out, b"1a2b\r\ndata\r\n");
    }

    #[test]
    fn only_declared_and_allowed_trailers_are_written() {
        let mut trailers = HeaderMap::new();
        trailers.insert("x-sum", HeaderValue::from_static("5"));
        trailers.append("x-sum", HeaderValue::from_static("6"));
        trailers.insert("x-undeclared", HeaderValue::from_static("1"));
        trailers.insert("content-type", HeaderValue::from_static("text/plain"));
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        let mut declared = HeaderMap::new();
        declared.insert(TRAILER, HeaderValue::from_static("X-Sum, content-type"));
        declared.append(TRAILER, HeaderValue::from_static(" grpc-status "));
        let mut out = Vec::new();
        last_chunk(&mut out, Some(&trailers), &declared);
        assert_eq!(out, b"0\r\nx-sum: 5\r\nx-sum: 6\r\ngrpc-status: 0\r\n\r\n");
        out.clear();
        last_chunk(&mut out, Some(&trailers), &HeaderMap::new());
        assert_eq!(out, b"0\r\n\r\n", "nothing declared, nothing sent");
        out.clear();
        last_chunk(&mut out, None, &declared);
        assert_eq!(out, b"0\r\n\r\n");
    }

    #[test]
    fn the_forbidden_trailers_are_hypers() {
        for name in [
            AUTHORIZATION,
            CACHE_CONTROL,
            CONTENT_ENCODING,
            CONTENT_LENGTH,
            CONTENT_RANGE,
            CONTENT_TYPE,
            HOST,
            MAX_FORWARDS,
            SET_COOKIE,
            TRAILER,
            TRANSFER_ENCODING,
            TE,
        ] {
            assert!(!is_valid_trailer_field(&name), "{name}");
        }
        assert!(is_valid_trailer_field(&HeaderName::from_static(
            "grpc-status"
        )));
        assert!(is_valid_trailer_field(&HeaderName::from_static(
            "server-timing"
        )));
    }
}
