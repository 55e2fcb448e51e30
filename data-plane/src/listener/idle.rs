//! Waiting on a client connection that has nothing to say yet, while holding as little as
//! possible: no read buffer (the first bytes land on the stack, and only then is a buffer
//! allocated for them), and none of the state of serving a request, which the listener keeps
//! in a separate allocation only while a request is under way. With 100,000 clients keeping
//! connections open between requests, what each holds while idle is most of the worker's memory.

use std::future::poll_fn;
use std::io;
use std::mem::MaybeUninit;
use std::pin::Pin;
use std::task::{Poll, ready};
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncRead, ReadBuf};

/// How long a connection waits for its next request with its buffers and request state still
/// held: a client sending requests back to back (a page's resources, an API client in a loop)
/// never pays for them again, and a connection kept open between a user's clicks holds almost
/// nothing.
pub const RELEASE_AFTER: Duration = Duration::from_millis(10);

/// Room for the first read of a request (the whole head, almost always), on the stack.
const LANDING: usize = 8 * 1024;

/// Waits until the client sends something and returns it in a new buffer; an empty buffer
/// when the client closed its side.
pub async fn first_bytes<S: AsyncRead + Unpin>(stream: &mut S) -> io::Result<BytesMut> {
    poll_fn(|cx| {
        // Lives only while this poll runs, so the waiting future holds none of it.
        let mut landing = [MaybeUninit::<u8>::uninit(); LANDING];
        let mut landed = ReadBuf::uninit(&mut landing);
        ready!(Pin::new(&mut *stream).poll_read(cx, &mut landed))?;
        let mut read = BytesMut::with_capacity(LANDING);
        read.extend_from_slice(landed.filled());
        Poll::Ready(Ok(read))
    })
    .await
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn the_first_bytes_arrive_in_a_buffer_of_their_own() {
        let (mut client, mut server) = tokio::io::duplex(64);
        let waiting = tokio::spawn(async move { first_bytes(&mut server).await.unwrap() });
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        let read = waiting.await.unwrap();
        assert_eq!(&read[..], b"GET / HTTP/1.1\r\n");
        assert!(read.capacity() >= LANDING);
    }

    #[tokio::test]
    async fn a_client_that_closes_gives_an_empty_buffer() {
        let (client, mut server) = tokio::io::duplex(64);
        drop(client);
        assert!(first_bytes(&mut server).await.unwrap().is_empty());
    }
}
