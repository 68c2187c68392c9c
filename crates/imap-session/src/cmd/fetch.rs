use std::sync::Arc;

use imap_proto::DateTime;
use imap_proto::response::{
    write_astring, write_date_time, write_flag_list, write_literal, write_number, write_string,
};
use imap_proto::{FetchAttr, MessageSet, Partial, Section, SectionText};
use mail_parse::{ParsedMessage, SectionSpec};
use mail_store::{CacheField, FlagChange, Mailbox, MessageInfo, StoreErrorKind, ViewMessage};
use mail_types::{Flags, SeqNum, SystemFlags, Uid};

use crate::cmd::{objectid, preview, searchres};
use crate::fetch::binary::{UnknownCte, decoded_section};
use crate::fetch::section;
use crate::fetch::structure::{envelope_text, write_body_structure};
use crate::session::{FLUSH_THRESHOLD, Reply, Session, State};

/// What a FETCH needs from each message, worked out once per command.
struct FetchPlan {
    items: Vec<FetchAttr>,
    needs_info: bool,
    needs_body: bool,
    sets_seen: bool,
    has_flags: bool,
    /// `\Recent` is shown (not under IMAP4rev2, RFC 9051 appendix E item 12).
    show_recent: bool,
}

impl FetchPlan {
    fn new(items: &[FetchAttr], uid_command: bool) -> Self {
        let mut list = Vec::with_capacity(items.len() + 1);
        // UID FETCH responses always carry the UID (RFC 3501 6.4.8); Dovecot puts it first.
        if uid_command && !items.contains(&FetchAttr::Uid) {
            list.push(FetchAttr::Uid);
        }
        list.extend(items.iter().cloned());
        let needs_info = list
            .iter()
            .any(|i| matches!(i, FetchAttr::InternalDate | FetchAttr::Rfc822Size));
        let needs_body = list.iter().any(|i| {
            matches!(
                i,
                FetchAttr::Envelope
                    | FetchAttr::Body
                    | FetchAttr::BodyStructure
                    | FetchAttr::Rfc822
                    | FetchAttr::Rfc822Header
                    | FetchAttr::Rfc822Text
                    | FetchAttr::BodySection { .. }
                    | FetchAttr::Binary { .. }
                    | FetchAttr::BinarySize { .. }
            )
        });
        let sets_seen = list.iter().any(|i| {
            matches!(
                i,
                FetchAttr::Rfc822
                    | FetchAttr::Rfc822Text
                    | FetchAttr::BodySection { peek: false, .. }
                    | FetchAttr::Binary { peek: false, .. }
            )
        });
        let has_flags = list.contains(&FetchAttr::Flags);
        FetchPlan {
            items: list,
            needs_info,
            needs_body,
            sets_seen,
            has_flags,
            show_recent: true,
        }
    }
}

/// Lazily loaded data of one message: each piece is read at most once per FETCH response.
struct Loaded {
    info: Option<MessageInfo>,
    raw: Option<Vec<u8>>,
    parsed: Option<ParsedMessage>,
}

impl Loaded {
    fn parsed(&mut self) -> Option<(&[u8], &ParsedMessage)> {
        let raw = self.raw.as_deref()?;
        let parsed = self.parsed.get_or_insert_with(|| ParsedMessage::parse(raw));
        Some((raw, parsed))
    }
}

impl Session {
    /// FETCH and UID FETCH (RFC 3501 6.4.5, 6.4.8). Messages another session expunged but this
    /// client has not been told about yet are skipped and the command ends in NO, as RFC 2180
    /// 4.1.2 describes. Fetching a body section without PEEK sets `\Seen` first, so the FLAGS in
    /// the response already show it.
    ///
    /// `CHANGEDSINCE n` (RFC 7162 3.1.4.1) keeps the messages whose mod-sequence is above n and
    /// adds MODSEQ to the items; `VANISHED` (3.2.6, UID FETCH under QRESYNC) first reports the
    /// UIDs of the set expunged since n as `* VANISHED (EARLIER)`.
    pub(crate) async fn cmd_fetch(
        &mut self,
        uid_command: bool,
        set: &MessageSet,
        items: &[FetchAttr],
        changed_since: Option<u64>,
        vanished: bool,
    ) -> Reply {
        if vanished && !self.qresync {
            return Reply::bad("Error in IMAP command UID FETCH: VANISHED needs ENABLE QRESYNC.");
        }
        let mut items = items.to_vec();
        if changed_since.is_some() && !items.contains(&FetchAttr::ModSeq) {
            items.push(FetchAttr::ModSeq);
        }
        let mut plan = FetchPlan::new(&items, uid_command);
        plan.show_recent = !self.rev2;
        let State::Selected(_, selected) = &mut self.state else {
            return Reply::bad("No mailbox selected.");
        };
        let resolved = searchres::resolve(&selected.view, &self.saved_result, set, uid_command);
        let mut targets = match resolved {
            Ok(t) => t,
            Err(e) => return Reply::bad(format!("Error in IMAP command FETCH: {e}.")),
        };
        if let Some(since) = changed_since {
            let view = &selected.view;
            targets.retain(|(seq, _)| view.get(*seq).is_some_and(|m| m.modseq.get() > since));
            if vanished {
                let max_uid = view.uid_next().get().saturating_sub(1);
                match view
                    .mailbox()
                    .changes_since(mail_store::ChangeCursor(since), false)
                {
                    Ok(changes) => {
                        // By runs, as in SELECT's QRESYNC (`write_resync`).
                        let asked = searchres::uid_ranges(set, &self.saved_result, max_uid);
                        if let Some(gone) = changes.expunged.within(&asked).to_seq_set() {
                            self.out.extend_from_slice(
                                format!("* VANISHED (EARLIER) {gone}\r\n").as_bytes(),
                            );
                        }
                    }
                    Err(e) => return self.store_error(e),
                }
            }
        }
        let State::Selected(_, selected) = &mut self.state else {
            return Reply::bad("No mailbox selected.");
        };
        let mailbox = selected.view.mailbox().clone();
        let mut seen_set = Vec::new();
        if plan.sets_seen && !selected.view.read_only() {
            let unseen: Vec<Uid> = targets
                .iter()
                .filter_map(|(seq, uid)| selected.view.get(*seq).map(|m| (m, *uid)))
                .filter(|(m, _)| !m.expunged && !m.flags.system.contains(SystemFlags::SEEN))
                .map(|(_, uid)| uid)
                .collect();
            if !unseen.is_empty() {
                let add = Flags::new(SystemFlags::SEEN, []);
                match mailbox.store_flags(&unseen, &FlagChange::Add(add)) {
                    Ok(states) => {
                        seen_set = states.iter().map(|s| s.uid).collect();
                        selected.view.note_own_changes(&states);
                    }
                    Err(e) => {
                        tracing::warn!(session = %self.info.session_id, "implicit \\Seen failed: {e}")
                    }
                }
            }
        }
        seen_set.sort_unstable();
        let mut expunged = false;
        for (seq, uid) in targets {
            let State::Selected(_, selected) = &self.state else {
                return Reply::bad("No mailbox selected.");
            };
            let Some(entry) = selected.view.get(seq).cloned() else {
                continue;
            };
            if entry.expunged {
                expunged = true;
                continue;
            }
            let flags_changed = seen_set.binary_search(&uid).is_ok();
            match write_fetch_response(
                &mut self.out,
                &plan,
                mailbox.as_ref(),
                seq,
                &entry,
                flags_changed,
                self.condstore,
            ) {
                Ok(()) => {}
                Err(FetchError::Expunged) => expunged = true,
                Err(FetchError::Store(e)) => return self.store_error(e),
                Err(FetchError::UnknownCte(cte)) => {
                    return Reply::no(format!("Unknown Content-Transfer-Encoding: {cte}"))
                        .with_code(imap_proto::response::Code::UnknownCte);
                }
            }
            if self.out.len() >= FLUSH_THRESHOLD && self.flush().await.is_err() {
                return Reply::no("Connection lost.");
            }
        }
        if expunged {
            Reply::no("Some of the requested messages no longer exist.")
                .with_code(imap_proto::response::Code::ExpungeIssued)
        } else {
            Reply::ok("Fetch completed.")
        }
    }
}

enum FetchError {
    Expunged,
    Store(mail_store::StoreError),
    /// RFC 3516 4.3: the transfer encoding named cannot be removed.
    UnknownCte(String),
}

impl From<mail_store::StoreError> for FetchError {
    fn from(e: mail_store::StoreError) -> Self {
        if e.kind() == StoreErrorKind::Expunged {
            FetchError::Expunged
        } else {
            FetchError::Store(e)
        }
    }
}

/// Writes one `* n FETCH (...)` response. Nothing is written if the message turns out to be gone.
fn write_fetch_response(
    out: &mut Vec<u8>,
    plan: &FetchPlan,
    mailbox: &dyn Mailbox,
    seq: SeqNum,
    entry: &ViewMessage,
    flags_changed: bool,
    condstore: bool,
) -> Result<(), FetchError> {
    let mut loaded = Loaded {
        info: None,
        raw: None,
        parsed: None,
    };
    if plan.needs_info {
        loaded.info = Some(mailbox.message_info(entry.uid)?);
    }
    let cached_only = plan.items.iter().all(|i| {
        !matches!(
            i,
            FetchAttr::Rfc822
                | FetchAttr::Rfc822Header
                | FetchAttr::Rfc822Text
                | FetchAttr::BodySection { .. }
                | FetchAttr::Binary { .. }
                | FetchAttr::BinarySize { .. }
        )
    });
    let mut cached: Vec<(CacheField, Arc<[u8]>)> = Vec::new();
    if plan.needs_body {
        let mut all_cached = cached_only;
        for item in &plan.items {
            let field = match item {
                FetchAttr::Envelope => CacheField::Envelope,
                FetchAttr::BodyStructure => CacheField::BodyStructure,
                FetchAttr::Body => CacheField::Body,
                _ => continue,
            };
            match mailbox.cached(entry.uid, field) {
                Some(v) => cached.push((field, v)),
                None => all_cached = false,
            }
        }
        if !all_cached {
            loaded.raw = Some(mailbox.read_message(entry.uid)?);
        }
    }
    // RFC 3516 4.3: an encoding that cannot be removed fails the command before anything of
    // this response is written. Decoded in item order, used in the loop below.
    let mut binaries = Vec::new();
    for item in &plan.items {
        if let FetchAttr::Binary { part, .. } | FetchAttr::BinarySize { part } = item {
            let Some((raw, parsed)) = loaded.parsed() else {
                return Err(FetchError::Expunged);
            };
            match decoded_section(raw, parsed, part) {
                Ok(data) => binaries.push(data),
                Err(UnknownCte(cte)) => return Err(FetchError::UnknownCte(cte)),
            }
        }
    }
    let mut binaries = binaries.into_iter();
    let start = out.len();
    out.extend_from_slice(b"* ");
    write_number(out, u64::from(seq.get()));
    out.extend_from_slice(b" FETCH (");
    let mut first = true;
    let mut sep = |out: &mut Vec<u8>| {
        if !std::mem::take(&mut first) {
            out.push(b' ');
        }
    };
    for item in &plan.items {
        sep(out);
        match item {
            FetchAttr::Uid => {
                out.extend_from_slice(b"UID ");
                write_number(out, u64::from(entry.uid.get()));
            }
            FetchAttr::Flags => {
                out.extend_from_slice(b"FLAGS ");
                write_flag_list(out, entry.flags.iter(), entry.recent && plan.show_recent);
            }
            FetchAttr::InternalDate => {
                out.extend_from_slice(b"INTERNALDATE ");
                let unix = loaded.info.map_or(0, |i| i.internal_date);
                write_date_time(
                    out,
                    DateTime {
                        unix,
                        offset_minutes: 0,
                    },
                );
            }
            FetchAttr::Rfc822Size => {
                out.extend_from_slice(b"RFC822.SIZE ");
                write_number(out, loaded.info.map_or(0, |i| i.size));
            }
            FetchAttr::ModSeq => {
                out.extend_from_slice(b"MODSEQ (");
                write_number(out, entry.modseq.get());
                out.push(b')');
            }
            FetchAttr::EmailId => match objectid::email_id(mailbox, entry.uid) {
                Some(id) => out.extend_from_slice(format!("EMAILID ({id})").as_bytes()),
                None => return Err(FetchError::Expunged),
            },
            FetchAttr::Preview { lazy } => {
                out.extend_from_slice(b"PREVIEW ");
                write_preview(out, mailbox, entry.uid, *lazy)?;
            }
            // The draft form Dovecot answers: `(FUZZY "text")`, `(FUZZY NIL)` when lazy.
            FetchAttr::FuzzyPreview { snippet, lazy } => {
                out.extend_from_slice(if *snippet {
                    b"SNIPPET (FUZZY "
                } else {
                    b"PREVIEW (FUZZY "
                });
                write_preview(out, mailbox, entry.uid, *lazy)?;
                out.push(b')');
            }
            // RFC 8474 5.2: THREADID is optional; NIL says it is not computed.
            FetchAttr::ThreadId => out.extend_from_slice(b"THREADID NIL"),
            // RFC 8514 4.2: NIL where the mailbox keeps no save dates.
            FetchAttr::SaveDate => {
                out.extend_from_slice(b"SAVEDATE ");
                match mailbox.save_date(entry.uid) {
                    Some(unix) => write_date_time(
                        out,
                        DateTime {
                            unix,
                            offset_minutes: 0,
                        },
                    ),
                    None => out.extend_from_slice(b"NIL"),
                }
            }
            FetchAttr::Envelope | FetchAttr::Body | FetchAttr::BodyStructure => {
                let (label, field) = match item {
                    FetchAttr::Envelope => ("ENVELOPE ", CacheField::Envelope),
                    FetchAttr::Body => ("BODY ", CacheField::Body),
                    _ => ("BODYSTRUCTURE ", CacheField::BodyStructure),
                };
                out.extend_from_slice(label.as_bytes());
                if let Some((_, v)) = cached.iter().find(|(f, _)| *f == field) {
                    out.extend_from_slice(v);
                } else if let Some((raw, parsed)) = loaded.parsed() {
                    let encoded = if *item == FetchAttr::Envelope {
                        envelope_text(raw, parsed)
                    } else {
                        let mut encoded = Vec::new();
                        let extended = *item == FetchAttr::BodyStructure;
                        write_body_structure(&mut encoded, &parsed.body_structure(raw), extended);
                        encoded
                    };
                    mailbox.cache(entry.uid, field, &encoded);
                    out.extend_from_slice(&encoded);
                } else {
                    out.truncate(start);
                    return Err(FetchError::Expunged);
                }
            }
            FetchAttr::Rfc822 => {
                out.extend_from_slice(b"RFC822 ");
                write_literal(out, loaded.raw.as_deref().unwrap_or_default());
            }
            FetchAttr::Rfc822Header | FetchAttr::Rfc822Text => {
                let (label, spec) = if *item == FetchAttr::Rfc822Header {
                    ("RFC822.HEADER ", SectionSpec::Header)
                } else {
                    ("RFC822.TEXT ", SectionSpec::Text)
                };
                out.extend_from_slice(label.as_bytes());
                let data = loaded
                    .parsed()
                    .and_then(|(raw, p)| p.section(raw, &[], spec).map(|c| c.into_owned()));
                write_literal(out, data.as_deref().unwrap_or_default());
            }
            FetchAttr::Binary { part, partial, .. } => {
                let data = binaries.next().unwrap_or_default();
                out.extend_from_slice(b"BINARY[");
                write_part_numbers(out, part);
                out.push(b']');
                let slice = partial_slice(out, &data, partial.as_ref());
                out.push(b' ');
                if slice.contains(&0) {
                    // RFC 3516 4.3: NUL octets only travel in a literal8.
                    out.extend_from_slice(format!("~{{{}}}\r\n", slice.len()).as_bytes());
                    out.extend_from_slice(slice);
                } else {
                    write_literal(out, slice);
                }
            }
            FetchAttr::BinarySize { part } => {
                let size = binaries.next().map_or(0, |d| d.len());
                out.extend_from_slice(b"BINARY.SIZE[");
                write_part_numbers(out, part);
                out.extend_from_slice(format!("] {size}").as_bytes());
            }
            FetchAttr::BodySection {
                section, partial, ..
            } => {
                out.extend_from_slice(b"BODY[");
                write_section_name(out, section);
                out.push(b']');
                let data = loaded
                    .parsed()
                    .and_then(|(raw, p)| section::bytes(raw, p, section).map(|c| c.into_owned()))
                    .unwrap_or_default();
                let slice = partial_slice(out, &data, partial.as_ref());
                out.push(b' ');
                write_literal(out, slice);
            }
        }
    }
    if flags_changed && !plan.has_flags {
        // RFC 3501 6.4.5: a FETCH that sets \Seen reports the new flags.
        sep(out);
        out.extend_from_slice(b"FLAGS ");
        write_flag_list(out, entry.flags.iter(), entry.recent && plan.show_recent);
    }
    if flags_changed && condstore && !plan.items.contains(&FetchAttr::ModSeq) {
        // RFC 7162 3.1.4.1: with CONDSTORE, a flag change is reported with its mod-sequence.
        sep(out);
        out.extend_from_slice(format!("MODSEQ ({})", entry.modseq).as_bytes());
    }
    out.extend_from_slice(b")\r\n");
    Ok(())
}

/// The preview text as a string, or NIL for a lazy request it was not ready for (RFC 8970
/// 3.2: NIL only with LAZY; without it, no preview means the message is gone).
fn write_preview(
    out: &mut Vec<u8>,
    mailbox: &dyn Mailbox,
    uid: Uid,
    lazy: bool,
) -> Result<(), FetchError> {
    match preview::preview(mailbox, uid, lazy) {
        Some(text) => write_string(out, text.as_bytes()),
        None if lazy => out.extend_from_slice(b"NIL"),
        None => return Err(FetchError::Expunged),
    }
    Ok(())
}

/// The `<origin.length>` part of `data` (all of it without a partial), writing the `<origin>`
/// the response names it with (RFC 3501 7.4.2; RFC 3516 4.3 counts in decoded octets).
fn partial_slice<'d>(out: &mut Vec<u8>, data: &'d [u8], partial: Option<&Partial>) -> &'d [u8] {
    match partial {
        Some(p) => {
            out.extend_from_slice(format!("<{}>", p.origin).as_bytes());
            &data[section::partial_range(data.len(), p.origin, Some(p.length))]
        }
        None => data,
    }
}

/// Part numbers as `1.2.3` (empty for the whole message).
fn write_part_numbers(out: &mut Vec<u8>, part: &[u32]) {
    let numbers: Vec<String> = part.iter().map(u32::to_string).collect();
    out.extend_from_slice(numbers.join(".").as_bytes());
}

/// The section as the response names it (RFC 3501 7.4.2: `BODY[section]`), field names echoed.
fn write_section_name(out: &mut Vec<u8>, section: &Section) {
    let parts: Vec<String> = section.part.iter().map(u32::to_string).collect();
    out.extend_from_slice(parts.join(".").as_bytes());
    let Some(text) = &section.text else { return };
    if !section.part.is_empty() {
        out.push(b'.');
    }
    let fields = match text {
        SectionText::Header => {
            out.extend_from_slice(b"HEADER");
            return;
        }
        SectionText::Text => {
            out.extend_from_slice(b"TEXT");
            return;
        }
        SectionText::Mime => {
            out.extend_from_slice(b"MIME");
            return;
        }
        SectionText::HeaderFields(f) => {
            out.extend_from_slice(b"HEADER.FIELDS (");
            f
        }
        SectionText::HeaderFieldsNot(f) => {
            out.extend_from_slice(b"HEADER.FIELDS.NOT (");
            f
        }
    };
    for (i, name) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        write_astring(out, name.as_bytes());
    }
    out.push(b')');
}
