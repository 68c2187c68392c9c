use imap_proto::Tag;
use imap_proto::response::{Status, status_line};

use crate::session::{Flow, Reply, Session, UpdatePolicy};

mod stream;

use stream::DeflateStream;

impl Session {
    /// COMPRESS (RFC 4978 3): DEFLATE is the only mechanism; a second COMPRESS is BAD. After
    /// the tagged OK everything in both directions is compressed: anything the client sent
    /// after the command is already compressed data, so it becomes the inflater's first input.
    pub(crate) async fn cmd_compress(&mut self, tag: Tag, mechanism: &str) -> Flow {
        let refusal = if !mechanism.eq_ignore_ascii_case("DEFLATE") {
            Some("Unknown compression mechanism.")
        } else if self.compressed {
            Some("COMPRESS is already active.")
        } else {
            None
        };
        if let Some(text) = refusal {
            self.finish(&tag, Reply::bad(text), UpdatePolicy::None);
            return Flow::Continue;
        }
        self.out
            .extend_from_slice(&status_line(Some(&tag), Status::Ok, None, "DEFLATE active"));
        if self.flush().await.is_err() {
            return Flow::Close;
        }
        let pending = std::mem::take(&mut self.rbuf);
        let plain = std::mem::replace(&mut self.stream, Box::new(tokio::io::empty()));
        self.stream = Box::new(DeflateStream::new(plain, pending));
        self.compressed = true;
        Flow::Continue
    }
}
