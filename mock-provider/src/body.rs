//! Response bodies: whole, or fed event by event through a channel, and the
//! error that aborts a response midway.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Body, Frame};
use tokio::sync::mpsc;

/// Ends a response (or the connection) on purpose: a fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Aborted;

impl fmt::Display for Aborted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("aborted by mock-provider fault injection")
    }
}

impl std::error::Error for Aborted {}

pub type ResBody = BoxBody<Bytes, Aborted>;

pub fn full(bytes: impl Into<Bytes>) -> ResBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

pub type Sender = mpsc::Sender<Result<Bytes, Aborted>>;

/// A body whose frames another task sends; an `Err` aborts it.
pub struct ChannelBody {
    rx: mpsc::Receiver<Result<Bytes, Aborted>>,
}

/// A channel body and its sender; `depth` events may wait in between.
pub fn channel(depth: usize) -> (Sender, ResBody) {
    let (tx, rx) = mpsc::channel(depth.max(1));
    (tx, ChannelBody { rx }.boxed())
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = Aborted;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Aborted>>> {
        match self.get_mut().rx.poll_recv(cx) {
            Poll::Ready(Some(Ok(bytes))) => Poll::Ready(Some(Ok(Frame::data(bytes)))),
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// A body whose frames an iterator makes on demand: a stream sent at the
/// pace the client reads it, without a task or the whole body in memory.
pub struct IterBody<I> {
    events: I,
}

pub fn from_iter<I>(events: I) -> ResBody
where
    I: Iterator<Item = Bytes> + Send + Sync + Unpin + 'static,
{
    IterBody { events }.boxed()
}

impl<I> Body for IterBody<I>
where
    I: Iterator<Item = Bytes> + Unpin,
{
    type Data = Bytes;
    type Error = Aborted;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Aborted>>> {
        Poll::Ready(self.get_mut().events.next().map(|b| Ok(Frame::data(b))))
    }
}
