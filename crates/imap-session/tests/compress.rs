//! COMPRESS=DEFLATE (RFC 4978) end to end over an in-memory connection: after the tagged OK
//! both directions are raw DEFLATE; every response is flushed (an IDLE continuation and an
//! EXISTS during IDLE arrive without the client sending anything); large literals cross in
//! both directions; a second COMPRESS is refused.

mod common;

use std::time::Duration;

use common::{context, serve};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use test_support::transcript::Conn;
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// The client's end: plain until `compressing` starts, raw DEFLATE after.
struct Client {
    io: DuplexStream,
    deflate: Compress,
    inflate: Decompress,
    /// Received text not yet returned (inflated once compressing).
    text: Vec<u8>,
    compressing: bool,
}

impl Client {
    async fn send(&mut self, data: &[u8]) {
        if !self.compressing {
            self.io.write_all(data).await.unwrap();
            return;
        }
        let mut out = Vec::with_capacity(data.len() + 64);
        let mut consumed = 0;
        while consumed < data.len() {
            out.reserve(data.len() - consumed + 64);
            let before = self.deflate.total_in();
            self.deflate
                .compress_vec(&data[consumed..], &mut out, FlushCompress::None)
                .unwrap();
            consumed += (self.deflate.total_in() - before) as usize;
        }
        loop {
            out.reserve(256);
            self.deflate
                .compress_vec(&[], &mut out, FlushCompress::Sync)
                .unwrap();
            if out.len() < out.capacity() {
                break;
            }
        }
        self.io.write_all(&out).await.unwrap();
    }

    /// Reads until the received text holds `needle`; returns everything up to and including
    /// the line that holds it.
    async fn until(&mut self, needle: &str) -> String {
        loop {
            if let Some(at) = find(&self.text, needle.as_bytes()) {
                let end = self.text[at..]
                    .iter()
                    .position(|&b| b == b'\n')
                    .map_or(self.text.len(), |i| at + i + 1);
                let got: Vec<u8> = self.text.drain(..end).collect();
                return String::from_utf8_lossy(&got).into_owned();
            }
            let mut raw = vec![0; 8192];
            let read = tokio::time::timeout(Duration::from_secs(10), self.io.read(&mut raw));
            let n = read
                .await
                .unwrap_or_else(|_| panic!("timed out waiting for {needle:?}"))
                .unwrap();
            assert!(n > 0, "connection closed waiting for {needle:?}");
            if !self.compressing {
                self.text.extend_from_slice(&raw[..n]);
                continue;
            }
            let mut input = &raw[..n];
            while !input.is_empty() {
                let mut out = Vec::with_capacity(64 * 1024);
                let before = self.inflate.total_in();
                self.inflate
                    .decompress_vec(input, &mut out, FlushDecompress::Sync)
                    .unwrap();
                input = &input[(self.inflate.total_in() - before) as usize..];
                self.text.extend_from_slice(&out);
            }
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deflate_both_ways_with_idle_and_large_literals() {
    let dir = tempfile::tempdir().unwrap();
    let ctx = context(dir.path());
    let mut c = Client {
        io: {
            let (client, server) = tokio::io::duplex(1 << 16);
            serve(&ctx, server, "compress");
            client
        },
        deflate: Compress::new(Compression::default(), false),
        inflate: Decompress::new(false),
        text: Vec::new(),
        compressing: false,
    };
    c.until("Columba ready.").await;
    c.send(b"c0 COMPRESS DEFLATE\r\n").await;
    assert_eq!(c.until("c0 ").await, "c0 BAD Please log in first.\r\n");
    c.send(b"l LOGIN alice wonderland\r\n").await;
    assert!(c.until("l OK").await.contains("COMPRESS=DEFLATE"));
    c.send(b"c1 COMPRESS LZW\r\n").await;
    assert_eq!(
        c.until("c1 ").await,
        "c1 BAD Unknown compression mechanism.\r\n"
    );
    c.send(b"c2 COMPRESS DEFLATE\r\n").await;
    assert_eq!(c.until("c2 ").await, "c2 OK DEFLATE active\r\n");
    c.compressing = true;

    c.send(b"n NOOP\r\n").await;
    assert_eq!(c.until("n ").await, "n OK NOOP completed.\r\n");
    c.send(b"c3 COMPRESS DEFLATE\r\n").await;
    assert_eq!(
        c.until("c3 ").await,
        "c3 BAD COMPRESS is already active.\r\n"
    );

    // A large APPEND up and a large FETCH down, through both compressors.
    let body: String = (0..20_000)
        .map(|i| format!("line {i} of a long message\r\n"))
        .collect();
    let message = format!("Subject: big\r\n\r\n{body}");
    c.send(format!("a APPEND INBOX {{{}+}}\r\n", message.len()).as_bytes())
        .await;
    c.send(message.as_bytes()).await;
    c.send(b"\r\n").await;
    assert!(c.until("a OK").await.contains("[APPENDUID"));
    c.send(b"s SELECT INBOX\r\n").await;
    c.until("s OK").await;
    c.send(b"f FETCH 1 BODY.PEEK[]\r\n").await;
    let fetched = c.until("f OK").await;
    assert!(
        fetched.starts_with(&format!("* 1 FETCH (BODY[] {{{}}}\r\n", message.len())),
        "{}",
        &fetched[..80]
    );
    assert!(fetched.contains(&message));

    // IDLE: the continuation and the EXISTS of another session's APPEND arrive on their own.
    c.send(b"i IDLE\r\n").await;
    assert_eq!(c.until("+ ").await, "+ idling\r\n");
    let (mut other, server) = Conn::pair();
    serve(&ctx, server, "other");
    other.line().await;
    other.send(b"l LOGIN alice wonderland\r\n").await;
    other.line().await;
    other
        .send(b"a APPEND INBOX {15+}\r\nSubject: two\r\n\r\n")
        .await;
    assert!(other.line().await.starts_with("a OK"));
    assert_eq!(c.until("EXISTS").await, "* 2 EXISTS\r\n");
    c.send(b"DONE\r\n").await;
    assert!(c.until("i OK").await.ends_with("i OK Idle completed.\r\n"));
    c.send(b"z LOGOUT\r\n").await;
    assert!(c.until("z OK").await.starts_with("* BYE"));
}
