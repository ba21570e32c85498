//! A connection's socket, which can be made to end with a TCP reset.

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper::rt::{Read, ReadBufCursor, Write};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Shared between a connection and the requests it carries.
#[derive(Debug, Default)]
pub struct ConnControl {
    reset: AtomicBool,
}

impl ConnControl {
    /// When the connection closes, close it with RST instead of FIN.
    pub fn reset_on_close(&self) {
        self.reset.store(true, Ordering::SeqCst);
    }
}

/// The socket hyper serves. Dropped after `reset_on_close`, it sets
/// `SO_LINGER` to 0 first, so closing sends a TCP RST: the client sees
/// "connection reset by peer" rather than an orderly end of stream.
pub struct ResettableIo {
    io: TokioIo<TcpStream>,
    control: Arc<ConnControl>,
}

impl ResettableIo {
    pub fn new(stream: TcpStream, control: Arc<ConnControl>) -> ResettableIo {
        ResettableIo {
            io: TokioIo::new(stream),
            control,
        }
    }
}

impl Drop for ResettableIo {
    fn drop(&mut self) {
        if self.control.reset.load(Ordering::SeqCst) {
            let _ = socket2::SockRef::from(self.io.inner()).set_linger(Some(Duration::ZERO));
        }
    }
}

impl Read for ResettableIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl Write for ResettableIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
}
