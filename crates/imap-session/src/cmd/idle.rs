use std::borrow::Cow;
use std::time::Instant;

use imap_proto::response::{Status, continuation, status_line};
use imap_proto::{LineRead, Tag, take_line};
use tokio::io::AsyncReadExt;

use crate::session::{Flow, Reply, Session, State, UpdatePolicy};

/// Longest line accepted while idling (it should be `DONE`).
const MAX_IDLE_LINE: usize = 1024;

impl Session {
    /// IDLE (RFC 2177 3): after the continuation request, mailbox changes are pushed as they happen
    /// — changes made in this process wake the session at once; other processes' changes are
    /// picked up by a poll every `idle_poll_interval` — until the client sends `DONE`.
    pub(crate) async fn cmd_idle(&mut self, tag: Tag) -> Flow {
        self.out.extend_from_slice(&continuation("idling"));
        let settings = self.ctx.settings.clone();
        let mut last_activity = Instant::now();
        let mut last_keepalive = Instant::now();
        let mut chunk = vec![0u8; 4096];
        loop {
            self.send_updates(true);
            if self.mailbox_lost {
                return Flow::Close;
            }
            match take_line(&mut self.rbuf, MAX_IDLE_LINE) {
                LineRead::Line(line) if line.eq_ignore_ascii_case(b"DONE") => {
                    self.finish(&tag, Reply::ok("Idle completed."), UpdatePolicy::All);
                    return Flow::Continue;
                }
                LineRead::Line(_) | LineRead::TooLong => {
                    self.finish(&tag, Reply::bad("Expected DONE."), UpdatePolicy::None);
                    return Flow::Continue;
                }
                LineRead::NeedMore => {}
            }
            if self.flush().await.is_err() {
                return Flow::Close;
            }
            if last_activity.elapsed() >= settings.idle_timeout {
                self.out.extend_from_slice(&status_line(
                    None,
                    Status::Bye,
                    None,
                    "Disconnected for inactivity.",
                ));
                self.disconnect_reason = Cow::Borrowed("Disconnected for inactivity during IDLE");
                return Flow::Close;
            }
            if last_keepalive.elapsed() >= settings.idle_keepalive {
                self.out.extend_from_slice(b"* OK Still here\r\n");
                last_keepalive = Instant::now();
                continue;
            }
            let wakeup = match &self.state {
                State::Selected(_, selected) => Some(selected.wakeup.clone()),
                _ => None,
            };
            let notified = async {
                match &wakeup {
                    Some(w) => w.0.notified().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                read = self.stream.read(&mut chunk) => match read {
                    Ok(0) | Err(_) => {
                        self.disconnect_reason = Cow::Borrowed("Connection closed during IDLE");
                        return Flow::Close;
                    }
                    Ok(n) => {
                        self.bytes_in += n as u64;
                        self.rbuf.extend_from_slice(&chunk[..n]);
                        last_activity = Instant::now();
                    }
                },
                () = notified => {}
                () = tokio::time::sleep(settings.idle_poll_interval) => {}
            }
        }
    }
}
