//! What the two head targets check alike. A head parser must come to the same decision whether
//! its input arrives at once or in two parts (a connection delivers bytes wherever it likes), and
//! a head it reads must have been taken whole from the front of the buffer; only what a head is
//! and what a parser may decide without one differ between the server and the client role.

use bytes::BytesMut;
use http::HeaderMap;
use std::fmt::Debug;

/// What one parse decided, comparable with another parse of the same bytes.
#[derive(Debug, PartialEq)]
pub enum Summary<H, D> {
    /// The head is incomplete; the parser waits for more.
    Partial,
    /// Decided without a head to compare: a request handed off, a response refused.
    Decided(D),
    /// A head, and the bytes left in the buffer after it.
    Head { head: H, rest: usize },
}

/// The target's input split into its first byte, a split point within the rest (from the next
/// two bytes) and the rest, the message bytes; `None` for an input too short to hold them.
pub fn split_input(data: &[u8]) -> Option<(u8, usize, &[u8])> {
    let [first, high, low, input @ ..] = data else {
        return None;
    };
    let split = usize::from(u16::from_be_bytes([*high, *low])) % (input.len() + 1);
    Some((*first, split, input))
}

/// Parses `input` whole, then its first `split` bytes (and, while those wait for more, the rest
/// after them), and asserts that both read the same: a prefix that decides decides as the whole
/// does, and a head read from a prefix is the whole input's head. Returns the whole's summary.
pub fn check_split<H: Debug + PartialEq, D: Debug + PartialEq>(
    input: &[u8],
    split: usize,
    mut parse: impl FnMut(&mut BytesMut) -> Summary<H, D>,
) -> Summary<H, D> {
    let expected = parse(&mut BytesMut::from(input));
    let mut buffer = BytesMut::from(&input[..split]);
    let first = parse(&mut buffer);
    match &first {
        Summary::Partial => {
            buffer.extend_from_slice(&input[split..]);
            assert_eq!(parse(&mut buffer), expected);
        }
        Summary::Decided(_) => assert_eq!(first, expected, "a prefix decided"),
        Summary::Head { head, rest } => {
            let Summary::Head {
                head: whole_head,
                rest: whole_rest,
            } = &expected
            else {
                panic!("a prefix read {first:?}, the whole {expected:?}");
            };
            assert_eq!(split - rest, input.len() - whole_rest, "the same head");
            assert_eq!(head, whole_head);
        }
    }
    expected
}

/// Asserts that a parse which read a head took it, and only it, from the front of the buffer
/// (`before` is the buffer before the parse, `after` what it left).
pub fn assert_head_taken(before: &[u8], after: &[u8]) {
    let consumed = before.len() - after.len();
    assert!(consumed > 0);
    assert_eq!(after, &before[consumed..], "only the head is taken");
}

/// The fields of a head in the order they were read, comparable.
pub fn fields(headers: &HeaderMap) -> Vec<(String, Vec<u8>)> {
    headers
        .iter()
        .map(|(name, value)| (name.as_str().to_owned(), value.as_bytes().to_vec()))
        .collect()
}
