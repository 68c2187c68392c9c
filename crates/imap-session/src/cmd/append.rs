use std::borrow::Cow;
use std::sync::Arc;

use imap_proto::response::{Code, continuation, status_line};
use imap_proto::{AppendHeader, ReplaceTarget, Tag};
use mail_store::{AppendWriter, FlagChange, Mailbox, PendingAppend};
use mail_types::{Flags, SeqRange, SeqSet, SystemFlags, Uid};

use crate::session::{Flow, Reply, Session, State};

/// Where an APPEND's message goes: its mailbox and the writer streaming the message there.
type AppendTarget = (Arc<dyn Mailbox>, Box<dyn AppendWriter>);

/// An APPEND whose message literal(s) are being streamed (RFC 3501 6.3.11; several messages with
/// MULTIAPPEND, RFC 3502). Nothing becomes visible until the whole command has arrived.
#[derive(Default)]
pub(crate) struct AppendInProgress {
    pub(crate) mailbox: Option<Arc<dyn Mailbox>>,
    pub(crate) pending: Vec<PendingAppend>,
    /// REPLACE (RFC 8508): the selected mailbox's message the new one replaces.
    pub(crate) replaces: Option<Uid>,
    /// Octets of the messages taken so far, for the quota check of the next (RFC 9208).
    pub(crate) pending_bytes: u64,
    /// Set when the command already failed; the rest of its literals are read and dropped.
    pub(crate) failed: Option<Reply>,
    /// The message being built from CATENATE parts (RFC 4469 3), between its start and `)`.
    pub(crate) catenating: Option<Catenation>,
    /// The command's tag, for refusing a CATENATE `TEXT` literal before it is sent.
    pub(crate) tag: Option<Tag>,
}

/// A message being built from CATENATE parts, written to the store as the parts arrive.
pub(crate) struct Catenation {
    /// `None` once the command failed.
    pub(crate) writer: Option<Box<dyn AppendWriter>>,
    pub(crate) flags: Flags,
    pub(crate) internal_date: Option<i64>,
    /// Octets written so far.
    pub(crate) size: u64,
    /// Watches the header of the message for 8-bit octets (RFC 6855 4), when it must.
    pub(crate) header_scan: Option<HeaderScan>,
}

/// Finds 8-bit octets in a message's header section as the message streams past, for RFC 6855
/// 4: "If an IMAP server supports UTF8=ACCEPT and the IMAP client has not issued the ENABLE
/// UTF8=ACCEPT command, the server MUST reject, with a NO response, an APPEND command that
/// includes any 8-bit character in message header fields." The header ends at the first empty
/// line (CRLF or bare LF).
#[derive(Debug, Clone, Copy)]
pub(crate) struct HeaderScan {
    at_line_start: bool,
    header_done: bool,
    eight_bit: bool,
}

impl Default for HeaderScan {
    fn default() -> Self {
        HeaderScan {
            at_line_start: true,
            header_done: false,
            eight_bit: false,
        }
    }
}

impl HeaderScan {
    pub(crate) fn feed(&mut self, chunk: &[u8]) {
        for &b in chunk {
            if self.header_done {
                return;
            }
            match b {
                b'\n' if self.at_line_start => self.header_done = true,
                b'\n' => self.at_line_start = true,
                // A CR at the start of a line may be the first half of the empty line.
                b'\r' if self.at_line_start => {}
                _ => {
                    self.eight_bit |= b >= 0x80;
                    self.at_line_start = false;
                }
            }
        }
    }

    /// The refusal for a message whose header had 8-bit octets, if it had.
    pub(crate) fn refusal(&self) -> Option<Reply> {
        self.eight_bit.then(|| {
            Reply::no("Message header has 8-bit octets; ENABLE UTF8=ACCEPT first (RFC 6855 4).")
        })
    }
}

impl Session {
    /// The decoder has parsed an APPEND up to its message literal of `size` bytes.
    pub(crate) async fn append_start(
        &mut self,
        tag: Tag,
        header: AppendHeader,
        size: u64,
        sync: bool,
    ) -> Flow {
        let mut progress = self.append.take().unwrap_or_default();
        self.begin_message(&mut progress, &header, size);
        if let (None, Some(reply)) = (&progress.failed, self.utf8_data_refusal(header.utf8)) {
            progress.failed = Some(reply);
        }
        if progress.failed.is_none() {
            match self.prepare_append(&header, size, progress.mailbox.clone()) {
                Ok((mailbox, writer)) => {
                    progress.mailbox = Some(mailbox);
                    if sync {
                        self.out.extend_from_slice(&continuation("OK"));
                    }
                    let mut writer = Some(writer);
                    let mut scan = self.header_scan();
                    let streamed = self
                        .stream_literal(size, &mut writer, false, scan.as_mut())
                        .await;
                    let streamed = match (streamed, scan.and_then(|s| s.refusal())) {
                        (Ok(None), Some(reply)) => Ok(Some(reply)),
                        (other, _) => other,
                    };
                    match streamed {
                        Err(()) => {
                            // The client went away mid-literal: dropping the writer removes the
                            // temporary file, so nothing half-written is ever visible.
                            self.disconnect_reason =
                                Cow::Borrowed("Connection closed during APPEND");
                            return Flow::Close;
                        }
                        Ok(Some(reply)) => progress.failed = Some(reply),
                        Ok(None) => {
                            if let Some(writer) = writer {
                                progress.pending_bytes =
                                    progress.pending_bytes.saturating_add(size);
                                progress.pending.push(PendingAppend {
                                    writer,
                                    flags: Flags::from_flags(header.flags.iter()),
                                    internal_date: header.date.map(|d| d.unix),
                                });
                            }
                        }
                    }
                    self.decoder.append_literal_done();
                    self.append = Some(progress);
                    return Flow::Continue;
                }
                Err(reply) => progress.failed = Some(reply),
            }
        }
        self.refuse_literal(&tag, size, sync, progress).await
    }

    /// The checks every message of the command gets before its content arrives: the quota for
    /// the whole command so far with `size` more octets (RFC 9208 4.3) and, for the message
    /// of a REPLACE, the message it replaces (RFC 8508 3.2).
    pub(crate) fn begin_message(
        &self,
        progress: &mut AppendInProgress,
        header: &AppendHeader,
        size: u64,
    ) {
        if progress.failed.is_none() {
            let messages = progress.pending.len() as u64 + 1;
            let bytes = progress.pending_bytes.saturating_add(size);
            progress.failed = self.quota_refusal(bytes, messages);
        }
        if let Some(target) = header.replace
            && progress.failed.is_none()
        {
            match self.replace_target(target) {
                Ok(uid) => progress.replaces = Some(uid),
                Err(reply) => progress.failed = Some(reply),
            }
        }
    }

    /// A literal of a command that has already failed: a synchronizing one is refused with
    /// the tagged NO at once, so the client never sends it; a non-synchronizing one is on its
    /// way regardless (RFC 7888 4), so it is read and dropped and the NO waits for the end.
    pub(crate) async fn refuse_literal(
        &mut self,
        tag: &Tag,
        size: u64,
        sync: bool,
        mut progress: AppendInProgress,
    ) -> Flow {
        if sync {
            // The client waits for our go-ahead; refusing now means it sends no literal.
            let reply = progress
                .failed
                .take()
                .unwrap_or_else(|| Reply::no("APPEND failed."));
            self.out.extend_from_slice(&status_line(
                Some(tag),
                reply.status,
                reply.code.as_ref(),
                &reply.text,
            ));
            self.decoder.reject_append();
            self.append = None;
            return Flow::Continue;
        }
        // A non-synchronizing literal is already on its way: read and drop it, answer at the end.
        if self
            .stream_literal(size, &mut None, false, None)
            .await
            .is_err()
        {
            return Flow::Close;
        }
        self.decoder.append_literal_done();
        self.append = Some(progress);
        Flow::Continue
    }

    /// A scanner for 8-bit header octets when RFC 6855 4 asks for one: the server offers
    /// UTF8=ACCEPT and this client has enabled neither it nor IMAP4rev2 (which includes it).
    pub(crate) fn header_scan(&self) -> Option<HeaderScan> {
        (self.ctx.settings.utf8_accept && !self.utf8).then(HeaderScan::default)
    }

    /// `UTF8 (~{n})` (RFC 6855 4) belongs to UTF8=ACCEPT: refused unless the client enabled it
    /// (or IMAP4rev2, which includes it).
    pub(crate) fn utf8_data_refusal(&self, utf8_data: bool) -> Option<Reply> {
        (utf8_data && !self.utf8)
            .then(|| Reply::bad("UTF8 APPEND data without ENABLE UTF8=ACCEPT."))
    }

    /// Checks an APPEND's target and size and opens a writer for its message.
    fn prepare_append(
        &mut self,
        header: &AppendHeader,
        size: u64,
        current: Option<Arc<dyn Mailbox>>,
    ) -> Result<AppendTarget, Reply> {
        if self.user().is_none() {
            return Err(Reply::bad("Please log in first."));
        }
        self.check_size(size)?;
        if size == 0 {
            return Err(Reply::no("Can't save a zero byte message."));
        }
        self.open_append(header, current)
    }

    /// RFC 7889 4: a message above APPENDLIMIT is refused with TOOBIG (RFC 4469 4.2 too).
    pub(crate) fn check_size(&self, size: u64) -> Result<(), Reply> {
        if size > self.ctx.settings.limits.max_append {
            return Err(Reply::no("Message is too large.").with_code(Code::TooBig));
        }
        Ok(())
    }

    /// Opens the target mailbox of an APPEND (unless the command's earlier messages already
    /// did) and a writer for one message there.
    pub(crate) fn open_append(
        &mut self,
        header: &AppendHeader,
        current: Option<Arc<dyn Mailbox>>,
    ) -> Result<AppendTarget, Reply> {
        let Some(user) = self.user() else {
            return Err(Reply::bad("Please log in first."));
        };
        let mailbox = match current {
            Some(mb) => mb,
            None => {
                let name = self.mailbox_name(&header.mailbox)?;
                match user.store.open(&name) {
                    Ok(mb) => mb,
                    Err(e) if e.kind() == mail_store::StoreErrorKind::NotFound => {
                        // RFC 3501 6.3.11: TRYCREATE tells the client that CREATE would help.
                        return Err(Reply::no(format!("Mailbox doesn't exist: {name}"))
                            .with_code(Code::TryCreate));
                    }
                    Err(e) => return Err(self.store_error(e)),
                }
            }
        };
        let writer = mailbox.begin_append().map_err(|e| self.store_error(e))?;
        Ok((mailbox, writer))
    }

    /// Moves `size` literal bytes from the client into `writer` (or nowhere, when `None`) without
    /// holding more than one read chunk in memory. `Err(())`: the client disconnected.
    /// `Ok(Some(reply))`: the bytes were consumed but could not be stored. `refuse_nul`: a NUL
    /// octet fails the literal, which is then not a `literal8` (RFC 3501 9 `CHAR8`).
    pub(crate) async fn stream_literal(
        &mut self,
        size: u64,
        writer: &mut Option<Box<dyn AppendWriter>>,
        refuse_nul: bool,
        mut scan: Option<&mut HeaderScan>,
    ) -> Result<Option<Reply>, ()> {
        let mut remaining = size;
        let mut failure = None;
        while remaining > 0 {
            if self.rbuf.is_empty() {
                if self.flush().await.is_err() {
                    return Err(());
                }
                let timeout = self.input_timeout();
                match tokio::time::timeout(timeout, self.fill()).await {
                    Ok(Ok(true)) => {}
                    _ => return Err(()),
                }
            }
            let n = remaining.min(self.rbuf.len() as u64) as usize;
            let chunk = &self.rbuf[..n];
            if let Some(scan) = scan.as_deref_mut() {
                scan.feed(chunk);
            }
            if refuse_nul && writer.is_some() && chunk.contains(&0) {
                failure = Some(Reply::no(
                    "NUL octets are only allowed in a literal8 (~{n}) part.",
                ));
                *writer = None;
            }
            if let Some(w) = writer.as_mut()
                && let Err(e) = w.write(chunk)
            {
                failure = Some(self.store_error(e));
                *writer = None;
            }
            self.rbuf.drain(..n);
            remaining -= n as u64;
        }
        Ok(failure)
    }

    /// The APPEND command is complete: commit every message, in order and all or none
    /// (MULTIAPPEND, RFC 3502 3), and report their UIDs with APPENDUID (RFC 4315 3).
    pub(crate) fn append_done(&mut self) -> Reply {
        let Some(progress) = self.append.take() else {
            return Reply::bad("APPEND without a message.");
        };
        if let Some(reply) = progress.failed {
            return reply;
        }
        let Some(mailbox) = progress.mailbox else {
            return Reply::no("APPEND failed.");
        };
        let uids = match mailbox.commit_appends(progress.pending) {
            Ok(uids) => uids,
            Err(e) => return self.store_error(e),
        };
        if let Some(old) = progress.replaces {
            return self.replace_done(mailbox.as_ref(), &uids, old);
        }
        match SeqSet::from_values(uids.iter().map(|u| u.get())) {
            Some(set) => Reply::ok("Append completed.").with_code(Code::AppendUid {
                uid_validity: mailbox.uid_validity().get(),
                uids: set,
            }),
            None => Reply::ok("Append completed."),
        }
    }

    /// REPLACE and UID REPLACE (RFC 8508 3.2-3.5): only in the selected state, only in a
    /// writable mailbox, and only for a message that exists, all checked before the literal
    /// is accepted; the UID of the message to remove.
    fn replace_target(&self, target: ReplaceTarget) -> Result<Uid, Reply> {
        if !self.is_authenticated() {
            return Err(Reply::bad("Please log in first."));
        }
        let State::Selected(_, selected) = &self.state else {
            return Err(Reply::bad("No mailbox selected."));
        };
        if selected.view.read_only() {
            return Err(Reply::no("Mailbox is read-only.").with_code(Code::ReadOnly));
        }
        let range = SeqRange {
            start: target.message,
            end: target.message,
        };
        let Some(set) = SeqSet::new(vec![range]) else {
            return Err(Reply::bad(
                "Error in IMAP command REPLACE: Invalid messageset",
            ));
        };
        let found = selected
            .view
            .resolve(&set, target.uid)
            .map_err(|e| Reply::bad(format!("Error in IMAP command REPLACE: {e}.")))?;
        match found.first() {
            Some((seq, uid)) if selected.view.get(*seq).is_some_and(|m| !m.expunged) => Ok(*uid),
            Some(_) => Err(Reply::no("The message to replace no longer exists.")
                .with_code(Code::ExpungeIssued)),
            None => Err(Reply::no("The message to replace does not exist.")),
        }
    }

    /// The new message is in: report its UID in an untagged OK before the EXPUNGE (RFC 8508
    /// 4.3), then remove the replaced message as UID EXPUNGE would (3.4, 4.5). If that fails,
    /// the new message goes again, so that the mailboxes look as if nothing happened.
    fn replace_done(&mut self, mailbox: &dyn Mailbox, new: &[Uid], old: Uid) -> Reply {
        let State::Selected(_, selected) = &self.state else {
            return Reply::bad("No mailbox selected.");
        };
        let source = selected.view.mailbox().clone();
        let deleted = || FlagChange::Add(Flags::new(SystemFlags::DELETED, []));
        let removed = source
            .store_flags(&[old], &deleted())
            .and_then(|_| source.expunge(Some(&[old])));
        let removed = match removed {
            Ok(gone) if gone.contains(&old) => Ok(()),
            Ok(_) => Err(Reply::no("The message to replace no longer exists.")
                .with_code(Code::ExpungeIssued)),
            Err(e) => Err(self.store_error(e)),
        };
        if let Err(reply) = removed {
            let undone = mailbox
                .store_flags(new, &deleted())
                .and_then(|_| mailbox.expunge(Some(new)));
            if let Err(e) = undone {
                tracing::warn!(session = %self.info.session_id, "REPLACE could not remove its new message again: {e}");
            }
            return reply;
        }
        if let Some(uids) = SeqSet::from_values(new.iter().map(|u| u.get())) {
            let code = Code::AppendUid {
                uid_validity: mailbox.uid_validity().get(),
                uids,
            };
            self.out.extend_from_slice(&status_line(
                None,
                imap_proto::response::Status::Ok,
                Some(&code),
                "Replacement Message ready",
            ));
        }
        Reply::ok("Replace completed.")
    }
}
