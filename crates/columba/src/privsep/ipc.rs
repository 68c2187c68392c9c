//! The wire between Columba's own processes: length-prefixed frames of length-prefixed fields
//! over Unix stream sockets, optionally carrying one descriptor (`SCM_RIGHTS`).
//!
//! A frame is `u32 length (big-endian) | u8 has_fd | fields`, each field `u32 length | bytes`.
//! The first field names the message. Nothing here parses IMAP or POP3, and every length is
//! checked against [`MAX_FRAME`] and against what is left of the frame: the peer may be a
//! compromised login process.

use std::collections::VecDeque;
use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::sync::Arc;

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use tokio::io::Interest;
use tokio::net::UnixStream;
use tokio::sync::Mutex;

/// The largest frame accepted. The biggest legitimate one is a hand-off carrying the input a
/// client pipelined after its login command, which the IMAP reader bounds to well below this.
pub const MAX_FRAME: usize = 4 << 20;

#[derive(Debug, thiserror::Error)]
pub enum IpcError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("malformed message: {0}")]
    Malformed(&'static str),
}

/// Builds one frame.
pub struct FrameWriter {
    buf: Vec<u8>,
}

impl FrameWriter {
    pub fn new(kind: &str) -> FrameWriter {
        let mut w = FrameWriter { buf: vec![0; 5] };
        w.bytes(kind.as_bytes());
        w
    }

    pub fn bytes(&mut self, field: &[u8]) -> &mut Self {
        // Fields are bounded by MAX_FRAME, far below u32::MAX.
        self.buf
            .extend_from_slice(&(field.len() as u32).to_be_bytes());
        self.buf.extend_from_slice(field);
        self
    }

    pub fn str(&mut self, field: &str) -> &mut Self {
        self.bytes(field.as_bytes())
    }

    pub fn u64(&mut self, n: u64) -> &mut Self {
        self.bytes(&n.to_be_bytes())
    }

    pub fn opt_u32(&mut self, n: Option<u32>) -> &mut Self {
        match n {
            Some(n) => self.bytes(&n.to_be_bytes()),
            None => self.bytes(&[]),
        }
    }

    pub fn opt_str(&mut self, s: Option<&str>) -> &mut Self {
        self.opt_bytes(s.map(str::as_bytes))
    }

    pub fn opt_bytes(&mut self, b: Option<&[u8]>) -> &mut Self {
        match b {
            // A leading byte tells "absent" from "empty".
            Some(b) => {
                let mut v = Vec::with_capacity(b.len() + 1);
                v.push(1);
                v.extend_from_slice(b);
                self.bytes(&v)
            }
            None => self.bytes(&[0]),
        }
    }

    fn finish(mut self, has_fd: bool) -> Vec<u8> {
        let len = (self.buf.len() - 4) as u32;
        self.buf[..4].copy_from_slice(&len.to_be_bytes());
        self.buf[4] = u8::from(has_fd);
        self.buf
    }
}

/// Reads the fields of one received frame, in order.
pub struct FrameReader {
    body: Vec<u8>,
    pos: usize,
    pub fd: Option<OwnedFd>,
}

impl FrameReader {
    /// The message kind (the first field).
    pub fn kind(&mut self) -> Result<String, IpcError> {
        self.string()
    }

    pub fn bytes(&mut self) -> Result<Vec<u8>, IpcError> {
        let rest = &self.body[self.pos..];
        let Some(len) = rest.get(..4) else {
            return Err(IpcError::Malformed("field length missing"));
        };
        let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
        let Some(field) = rest.get(4..4 + len) else {
            return Err(IpcError::Malformed("field longer than its frame"));
        };
        let field = field.to_vec();
        self.pos += 4 + len;
        Ok(field)
    }

    pub fn string(&mut self) -> Result<String, IpcError> {
        String::from_utf8(self.bytes()?).map_err(|_| IpcError::Malformed("field is not UTF-8"))
    }

    pub fn u64(&mut self) -> Result<u64, IpcError> {
        let field = self.bytes()?;
        let bytes: [u8; 8] = field
            .try_into()
            .map_err(|_| IpcError::Malformed("number field of the wrong size"))?;
        Ok(u64::from_be_bytes(bytes))
    }

    pub fn opt_u32(&mut self) -> Result<Option<u32>, IpcError> {
        let field = self.bytes()?;
        if field.is_empty() {
            return Ok(None);
        }
        let bytes: [u8; 4] = field
            .try_into()
            .map_err(|_| IpcError::Malformed("number field of the wrong size"))?;
        Ok(Some(u32::from_be_bytes(bytes)))
    }

    pub fn opt_string(&mut self) -> Result<Option<String>, IpcError> {
        match self.opt_bytes()? {
            None => Ok(None),
            Some(b) => Ok(Some(
                String::from_utf8(b).map_err(|_| IpcError::Malformed("field is not UTF-8"))?,
            )),
        }
    }

    pub fn opt_bytes(&mut self) -> Result<Option<Vec<u8>>, IpcError> {
        let mut field = self.bytes()?;
        match field.first() {
            Some(0) if field.len() == 1 => Ok(None),
            Some(1) => {
                field.remove(0);
                Ok(Some(field))
            }
            _ => Err(IpcError::Malformed("optional field without its marker")),
        }
    }

    /// The descriptor this frame carries; an error if it carries none.
    pub fn take_fd(&mut self) -> Result<OwnedFd, IpcError> {
        self.fd
            .take()
            .ok_or(IpcError::Malformed("descriptor missing"))
    }
}

/// The sending half of a channel; clones share the socket and send whole frames in turn.
#[derive(Clone)]
pub struct Sender {
    stream: Arc<UnixStream>,
    lock: Arc<Mutex<()>>,
}

impl Sender {
    pub async fn send(&self, frame: FrameWriter) -> io::Result<()> {
        self.send_with(frame, None).await
    }

    /// Sends `frame` with `fd` attached to its first byte.
    pub async fn send_fd(&self, frame: FrameWriter, fd: BorrowedFd<'_>) -> io::Result<()> {
        self.send_with(frame, Some(fd)).await
    }

    /// Ends the channel for the peer, which reads end-of-file; receiving still works.
    pub fn close(&self) {
        let _ = rustix::net::shutdown(self.stream.as_fd(), rustix::net::Shutdown::Write);
    }

    async fn send_with(&self, frame: FrameWriter, fd: Option<BorrowedFd<'_>>) -> io::Result<()> {
        let bytes = frame.finish(fd.is_some());
        let _turn = self.lock.lock().await;
        let mut sent = 0;
        while sent < bytes.len() {
            let n = self
                .stream
                .async_io(Interest::WRITABLE, || {
                    let iov = [IoSlice::new(&bytes[sent..])];
                    // The descriptor rides on the frame's first byte only.
                    let fds: Vec<BorrowedFd<'_>> = fd.filter(|_| sent == 0).into_iter().collect();
                    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
                    let mut control = SendAncillaryBuffer::new(&mut space);
                    if !fds.is_empty() {
                        control.push(SendAncillaryMessage::ScmRights(&fds));
                    }
                    rustix::net::sendmsg(
                        self.stream.as_fd(),
                        &iov,
                        &mut control,
                        SendFlags::NOSIGNAL,
                    )
                    .map_err(io::Error::from)
                })
                .await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            sent += n;
        }
        Ok(())
    }
}

/// The receiving half of a channel.
pub struct Receiver {
    stream: Arc<UnixStream>,
    buf: Vec<u8>,
    fds: VecDeque<OwnedFd>,
}

impl Receiver {
    /// The next frame; `None` when the peer closed the channel.
    pub async fn recv(&mut self) -> Result<Option<FrameReader>, IpcError> {
        loop {
            if let Some(frame) = self.take_frame()? {
                return Ok(Some(frame));
            }
            let mut chunk = vec![0u8; 64 * 1024];
            let (n, fds) = self
                .stream
                .async_io(Interest::READABLE, || {
                    let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(8))];
                    let mut control = RecvAncillaryBuffer::new(&mut space);
                    let mut iov = [IoSliceMut::new(&mut chunk)];
                    let msg = rustix::net::recvmsg(
                        self.stream.as_fd(),
                        &mut iov,
                        &mut control,
                        RecvFlags::CMSG_CLOEXEC,
                    )
                    .map_err(io::Error::from)?;
                    let mut fds = Vec::new();
                    for message in control.drain() {
                        if let RecvAncillaryMessage::ScmRights(received) = message {
                            fds.extend(received);
                        }
                    }
                    Ok((msg.bytes, fds))
                })
                .await?;
            self.fds.extend(fds);
            if n == 0 {
                if self.buf.is_empty() {
                    return Ok(None);
                }
                return Err(IpcError::Malformed("channel closed inside a frame"));
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }

    fn take_frame(&mut self) -> Result<Option<FrameReader>, IpcError> {
        let Some(header) = self.buf.get(..5) else {
            return Ok(None);
        };
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let has_fd = header[4];
        if len > MAX_FRAME || len == 0 || has_fd > 1 {
            return Err(IpcError::Malformed("frame header"));
        }
        if self.buf.len() < 4 + len {
            return Ok(None);
        }
        let body = self.buf[5..4 + len].to_vec();
        self.buf.drain(..4 + len);
        let fd = if has_fd == 1 {
            // The descriptor travelled with the frame's first byte, so it has arrived.
            Some(
                self.fds
                    .pop_front()
                    .ok_or(IpcError::Malformed("descriptor missing"))?,
            )
        } else {
            None
        };
        Ok(Some(FrameReader { body, pos: 0, fd }))
    }
}

/// Both halves of a channel over one connected Unix socket.
pub fn channel(stream: std::os::unix::net::UnixStream) -> io::Result<(Sender, Receiver)> {
    stream.set_nonblocking(true)?;
    let stream = Arc::new(UnixStream::from_std(stream)?);
    Ok((
        Sender {
            stream: stream.clone(),
            lock: Arc::new(Mutex::new(())),
        },
        Receiver {
            stream,
            buf: Vec::new(),
            fds: VecDeque::new(),
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read as _, Write as _};

    #[tokio::test]
    async fn frames_and_descriptors_cross() {
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let (tx, _) = channel(a).unwrap();
        let (_, mut rx) = channel(b).unwrap();
        let (mut mine, theirs) = std::os::unix::net::UnixStream::pair().unwrap();
        let mut w = FrameWriter::new("hello");
        w.str("user")
            .u64(7)
            .opt_u32(None)
            .opt_u32(Some(1000))
            .opt_str(Some(""))
            .opt_str(None)
            .bytes(&vec![b'x'; 200_000]);
        tx.send_fd(w, theirs.as_fd()).await.unwrap();
        drop(theirs);
        tx.send(FrameWriter::new("second")).await.unwrap();

        let mut f = rx.recv().await.unwrap().unwrap();
        assert_eq!(f.kind().unwrap(), "hello");
        assert_eq!(f.string().unwrap(), "user");
        assert_eq!(f.u64().unwrap(), 7);
        assert_eq!(f.opt_u32().unwrap(), None);
        assert_eq!(f.opt_u32().unwrap(), Some(1000));
        assert_eq!(f.opt_string().unwrap(), Some(String::new()));
        assert_eq!(f.opt_string().unwrap(), None);
        assert_eq!(f.bytes().unwrap().len(), 200_000);
        assert!(f.bytes().is_err(), "reading past the last field fails");
        // The received descriptor is the other end of `mine`.
        let mut passed = std::os::unix::net::UnixStream::from(f.take_fd().unwrap());
        mine.write_all(b"ping").unwrap();
        let mut got = [0u8; 4];
        passed.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"ping");

        let mut g = rx.recv().await.unwrap().unwrap();
        assert_eq!(g.kind().unwrap(), "second");
        assert!(g.take_fd().is_err());
    }

    #[tokio::test]
    async fn hostile_frames_are_refused() {
        for bytes in [
            // Longer than allowed.
            [0xff, 0xff, 0xff, 0xff, 0].to_vec(),
            // A descriptor flag that is neither 0 nor 1.
            [0, 0, 0, 1, 7].to_vec(),
            // Claims a descriptor that never came.
            [0, 0, 0, 1, 1].to_vec(),
        ] {
            let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
            let (_, mut rx) = channel(b).unwrap();
            let mut a = a;
            a.write_all(&bytes).unwrap();
            assert!(rx.recv().await.is_err(), "{bytes:?}");
        }
        // A field length running past the frame.
        let (a, b) = std::os::unix::net::UnixStream::pair().unwrap();
        let (_, mut rx) = channel(b).unwrap();
        let mut a = a;
        a.write_all(&[0, 0, 0, 9, 0, 0, 0, 0, 99, b'x', b'y', b'z', b'w'])
            .unwrap();
        let mut f = rx.recv().await.unwrap().unwrap();
        assert!(f.kind().is_err());
        // The peer closing between frames is the end, not an error.
        drop(a);
        assert!(rx.recv().await.unwrap().is_none());
    }
}
