//! COMPRESS=DEFLATE (RFC 4978): the connection's stream wrapped in raw DEFLATE (RFC 1951)
//! both ways. Whatever sits below (TCP, TLS) stays below, so data is compressed before it is
//! encrypted, as 3 requires.
//!
//! Writes are compressed into a buffer; `flush` ends them with a sync flush (RFC 4978 4:
//! "flush after each response"), which the session calls whenever it waits for the client —
//! so a response, IDLE's continuation and `* n EXISTS` during IDLE all reach the client at
//! once. The compressor uses a 4 KiB window instead of 32 KiB to keep the per-connection
//! memory small (4); the decompressor must accept whatever window the client chose.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use crate::context::BoxedStream;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// How much compressed input is read from the stream at a time.
const READ_CHUNK: usize = 16 * 1024;
/// The compressor's window: 2^12 bytes.
const WINDOW_BITS: u8 = 12;

/// A stream that inflates what it reads and deflates what it writes.
pub(crate) struct DeflateStream {
    inner: BoxedStream,
    inflate: Decompress,
    deflate: Compress,
    /// Compressed bytes read from `inner` and not inflated yet, from `raw_in_pos` on.
    raw_in: Vec<u8>,
    raw_in_pos: usize,
    /// Compressed bytes for `inner` not written yet, from `raw_out_pos` on.
    raw_out: Vec<u8>,
    raw_out_pos: usize,
    /// Bytes went into the compressor since the last sync flush.
    unflushed: bool,
    /// `inner` reached its end, or the client ended its DEFLATE stream.
    eof: bool,
}

impl DeflateStream {
    /// Wraps `inner`; `pending` holds compressed bytes the client sent right after the OK that
    /// were read already.
    pub(crate) fn new(inner: BoxedStream, pending: Vec<u8>) -> DeflateStream {
        DeflateStream {
            inner,
            inflate: Decompress::new(false),
            deflate: Compress::new_with_window_bits(Compression::default(), false, WINDOW_BITS),
            raw_in: pending,
            raw_in_pos: 0,
            raw_out: Vec::new(),
            raw_out_pos: 0,
            unflushed: false,
            eof: false,
        }
    }

    /// Writes out every compressed byte waiting in `raw_out`.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.raw_out_pos < self.raw_out.len() {
            let pending = &self.raw_out[self.raw_out_pos..];
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, pending))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.raw_out_pos += n;
        }
        self.raw_out.clear();
        self.raw_out_pos = 0;
        Poll::Ready(Ok(()))
    }

    fn compress(&mut self, input: &[u8], flush: FlushCompress) -> io::Result<usize> {
        let before = self.deflate.total_in();
        self.deflate
            .compress_vec(input, &mut self.raw_out, flush)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
        Ok((self.deflate.total_in() - before) as usize)
    }
}

impl AsyncRead for DeflateStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if buf.remaining() == 0 {
            return Poll::Ready(Ok(()));
        }
        loop {
            if this.raw_in_pos < this.raw_in.len() && !this.eof {
                let (in_before, out_before) = (this.inflate.total_in(), this.inflate.total_out());
                let status = this
                    .inflate
                    .decompress(
                        &this.raw_in[this.raw_in_pos..],
                        buf.initialize_unfilled(),
                        FlushDecompress::None,
                    )
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                let consumed = (this.inflate.total_in() - in_before) as usize;
                let produced = (this.inflate.total_out() - out_before) as usize;
                this.raw_in_pos += consumed;
                buf.advance(produced);
                if status == Status::StreamEnd {
                    this.eof = true;
                }
                if produced > 0 || this.eof {
                    return Poll::Ready(Ok(()));
                }
                if consumed > 0 {
                    continue;
                }
            }
            if this.eof {
                return Poll::Ready(Ok(()));
            }
            // Everything read is inflated (or waits for more): read the next compressed bytes.
            this.raw_in.drain(..this.raw_in_pos);
            this.raw_in_pos = 0;
            let start = this.raw_in.len();
            this.raw_in.resize(start + READ_CHUNK, 0);
            let mut read = ReadBuf::new(&mut this.raw_in[start..]);
            let polled = Pin::new(&mut this.inner).poll_read(cx, &mut read);
            let n = read.filled().len();
            this.raw_in.truncate(start + n);
            ready!(polled)?;
            if n == 0 {
                this.eof = true;
            }
        }
    }
}

impl AsyncWrite for DeflateStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // Keep the compressed backlog bounded: write it out before taking more.
        if this.raw_out.len() - this.raw_out_pos >= READ_CHUNK {
            ready!(this.poll_drain(cx))?;
        }
        let mut consumed = 0;
        while consumed < data.len() {
            this.raw_out.reserve(data.len() - consumed + 64);
            consumed += this.compress(&data[consumed..], FlushCompress::None)?;
        }
        this.unflushed |= !data.is_empty();
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.unflushed {
            // A sync flush ends on a byte boundary; done once the compressor left room spare.
            loop {
                this.raw_out.reserve(256);
                this.compress(&[], FlushCompress::Sync)?;
                if this.raw_out.len() < this.raw_out.capacity() {
                    break;
                }
            }
            this.unflushed = false;
        }
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.as_mut().poll_flush(cx))?;
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
