use std::sync::Arc;

use imap_proto::response::{Code, days_from_civil};
use imap_proto::{Date, SearchKey, SearchReturn, Tag};
use mail_parse::ParsedMessage;
use mail_store::{CacheField, Mailbox, MailboxView, MessageInfo, ViewMessage};
use mail_types::{Flag, Keyword, SystemFlags, Uid};

use crate::cmd::search_context;
use crate::session::{Reply, Session, State};

mod envelope;

use envelope::{AddressField, EnvelopeText, Layout};

/// Charsets SEARCH accepts (RFC 3501 6.4.4: US-ASCII is required; UTF-8 is what clients send).
const CHARSETS: [&str; 2] = ["UTF-8", "US-ASCII"];

/// One message under evaluation; its file is read and parsed only if a key needs it.
struct Candidate<'a> {
    seq: u32,
    msg: &'a ViewMessage,
    mailbox: &'a dyn Mailbox,
    info: Option<Option<MessageInfo>>,
    raw: Option<Option<Vec<u8>>>,
    parsed: Option<ParsedMessage>,
    /// The message's ENVELOPE text and where its fields are in it: cached or derived (`None`
    /// inside when the message could not be read).
    envelope: Option<Option<(Arc<[u8]>, Layout)>>,
    /// The cached envelope text read ahead with the other messages of a batch, when it was.
    prefetched: Option<Option<Arc<[u8]>>>,
}

/// What the mailbox-wide keys compare with: `*` of sequence-set keys, `$` (RFC 5182), and the
/// moment OLDER and YOUNGER count back from (RFC 5032 2).
struct Bounds<'a> {
    max_seq: u32,
    max_uid: u32,
    saved: &'a [Uid],
    now: i64,
}

impl<'a> Candidate<'a> {
    fn info(&mut self) -> Option<MessageInfo> {
        *self
            .info
            .get_or_insert_with(|| self.mailbox.message_info(self.msg.uid).ok())
    }

    fn message(&mut self) -> Option<(&[u8], &ParsedMessage)> {
        let raw = self
            .raw
            .get_or_insert_with(|| self.mailbox.read_message(self.msg.uid).ok())
            .as_deref()?;
        let parsed = self.parsed.get_or_insert_with(|| ParsedMessage::parse(raw));
        Some((raw, parsed))
    }

    fn has(&self, flag: SystemFlags) -> bool {
        self.msg.flags.system.contains(flag)
    }

    /// Case-insensitive substring search in the decoded values of a header field (RFC 3501
    /// 6.4.4 HEADER). An empty needle matches any message that has the field.
    fn header_contains(&mut self, field: &str, needle: &str) -> bool {
        let Some((raw, parsed)) = self.message() else {
            return false;
        };
        let values = parsed.header_values(raw, field);
        if needle.is_empty() {
            return !values.is_empty();
        }
        let needle = fold(needle);
        values.iter().any(|v| contains_folded(v, &needle))
    }

    /// FROM, TO, CC and BCC: a case-insensitive substring of the envelope's address list
    /// (RFC 3501 6.4.4, RFC 9051 6.4.4) written as people write it, `Name <mailbox@host>`, with
    /// encoded-words decoded (see [`EnvelopeText::address_text`]). An empty needle matches any
    /// message with an address there.
    fn address_contains(&mut self, field: AddressField, needle: &str) -> bool {
        let Some(env) = self.envelope() else {
            return false;
        };
        if needle.is_empty() {
            return env.has_addresses(field);
        }
        contains_folded(&env.address_text(field), &fold(needle))
    }

    /// SUBJECT: a case-insensitive substring of the envelope's subject, encoded-words decoded.
    /// An empty needle matches any message with a Subject.
    fn subject_contains(&mut self, needle: &str) -> bool {
        let Some(subject) = self.envelope().and_then(|e| e.subject_text()) else {
            return false;
        };
        needle.is_empty() || contains_folded(&subject, &fold(needle))
    }

    /// The message's ENVELOPE: the store's cached text (what FETCH ENVELOPE sends), or, when
    /// there is none or it does not read, derived from the message as FETCH derives it and
    /// offered to the cache, so that the next FETCH ENVELOPE or SEARCH reads no mail file.
    fn envelope(&mut self) -> Option<EnvelopeText<'_>> {
        if self.envelope.is_none() {
            let uid = self.msg.uid;
            let cached = match self.prefetched.take() {
                Some(prefetched) => prefetched,
                None => self.mailbox.cached(uid, CacheField::Envelope),
            };
            let cached = cached.and_then(|text| Layout::of(&text).map(|layout| (text, layout)));
            let envelope = match cached {
                Some(envelope) => Some(envelope),
                None => {
                    let derived = self
                        .message()
                        .map(|(raw, p)| crate::fetch::structure::envelope_text(raw, p));
                    if let Some(text) = &derived {
                        self.mailbox.cache(uid, CacheField::Envelope, text);
                    }
                    // Always reads: it is what the writer wrote.
                    derived.and_then(|text| Layout::of(&text).map(|l| (Arc::from(text), l)))
                }
            };
            self.envelope = Some(envelope);
        }
        let (text, layout) = self.envelope.as_ref()?.as_ref()?;
        Some(EnvelopeText::with_layout(text, layout.clone()))
    }

    fn body_contains(&mut self, needle: &str, with_headers: bool) -> bool {
        let Some((raw, parsed)) = self.message() else {
            return false;
        };
        let needle = fold(needle);
        if with_headers {
            let header = parsed
                .section(raw, &[], mail_parse::SectionSpec::Header)
                .unwrap_or_default();
            if fold(&String::from_utf8_lossy(&header)).contains(&needle) {
                return true;
            }
        }
        fold(&parsed.body_text(raw)).contains(&needle)
    }

    /// Days since the epoch of INTERNALDATE (UTC).
    fn internal_day(&mut self) -> Option<i64> {
        self.info().map(|i| i.internal_date.div_euclid(86_400))
    }

    /// Days since the epoch of the save date (UTC); INTERNALDATE's where the mailbox keeps no
    /// save dates (RFC 8514 4.3).
    fn saved_day(&mut self) -> Option<i64> {
        if !self.mailbox.has_save_dates() {
            return self.internal_day();
        }
        self.mailbox
            .save_date(self.msg.uid)
            .map(|d| d.div_euclid(86_400))
    }

    /// Days since the epoch of the envelope's date (the Date header) in its own zone
    /// ("disregarding time and timezone", RFC 3501 6.4.4); INTERNALDATE when the header is
    /// missing or unreadable, as Dovecot does.
    fn sent_day(&mut self) -> Option<i64> {
        match self.envelope().and_then(|e| e.sent_day()) {
            Some(day) => Some(day),
            None => self.internal_day(),
        }
    }

    fn matches(&mut self, key: &SearchKey, bounds: &Bounds) -> bool {
        use SearchKey::*;
        match key {
            All => true,
            Answered => self.has(SystemFlags::ANSWERED),
            Deleted => self.has(SystemFlags::DELETED),
            Draft => self.has(SystemFlags::DRAFT),
            Flagged => self.has(SystemFlags::FLAGGED),
            Seen => self.has(SystemFlags::SEEN),
            Unanswered => !self.has(SystemFlags::ANSWERED),
            Undeleted => !self.has(SystemFlags::DELETED),
            Undraft => !self.has(SystemFlags::DRAFT),
            Unflagged => !self.has(SystemFlags::FLAGGED),
            Unseen => !self.has(SystemFlags::SEEN),
            Recent => self.msg.recent,
            Old => !self.msg.recent,
            New => self.msg.recent && !self.has(SystemFlags::SEEN),
            Keyword(k) => has_keyword(self.msg, k),
            Unkeyword(k) => !has_keyword(self.msg, k),
            Larger(n) => self.info().is_some_and(|i| i.size > u64::from(*n)),
            Smaller(n) => self.info().is_some_and(|i| i.size < u64::from(*n)),
            Before(d) => self.internal_day().is_some_and(|day| day < day_number(d)),
            On(d) => self.internal_day().is_some_and(|day| day == day_number(d)),
            Since(d) => self.internal_day().is_some_and(|day| day >= day_number(d)),
            SentBefore(d) => self.sent_day().is_some_and(|day| day < day_number(d)),
            SentOn(d) => self.sent_day().is_some_and(|day| day == day_number(d)),
            SentSince(d) => self.sent_day().is_some_and(|day| day >= day_number(d)),
            SavedBefore(d) => self.saved_day().is_some_and(|day| day < day_number(d)),
            SavedOn(d) => self.saved_day().is_some_and(|day| day == day_number(d)),
            SavedSince(d) => self.saved_day().is_some_and(|day| day >= day_number(d)),
            SaveDateSupported => self.mailbox.has_save_dates(),
            EmailId(id) => crate::cmd::objectid::email_id(self.mailbox, self.msg.uid)
                .is_some_and(|own| own == *id),
            // RFC 8474 5.2: without THREADIDs a search for one matches nothing.
            ThreadId(_) => false,
            From(s) => self.address_contains(AddressField::From, s),
            To(s) => self.address_contains(AddressField::To, s),
            Cc(s) => self.address_contains(AddressField::Cc, s),
            Bcc(s) => self.address_contains(AddressField::Bcc, s),
            Subject(s) => self.subject_contains(s),
            Header(field, s) => self.header_contains(field, s),
            Body(s) => self.body_contains(s, false),
            Text(s) => self.body_contains(s, true),
            Uid(set) => set.contains(self.msg.uid.get(), bounds.max_uid),
            SequenceSet(set) => set.contains(self.seq, bounds.max_seq),
            ModSeq(n) => self.msg.modseq.get() >= *n,
            SavedResult => bounds.saved.binary_search(&self.msg.uid).is_ok(),
            // RFC 5032 2: OLDER matches at or before the target time, YOUNGER at or after it.
            Older(secs) => self
                .info()
                .is_some_and(|i| i.internal_date <= bounds.now - i64::from(*secs)),
            Younger(secs) => self
                .info()
                .is_some_and(|i| i.internal_date >= bounds.now - i64::from(*secs)),
            Not(inner) => !self.matches(inner, bounds),
            Or(a, b) => self.matches(a, bounds) || self.matches(b, bounds),
            And(keys) => keys.iter().all(|k| self.matches(k, bounds)),
        }
    }
}

/// Relative cost of evaluating a key: what it has to load.
fn cost(key: &SearchKey) -> u8 {
    use SearchKey::*;
    match key {
        Larger(_) | Smaller(_) | Before(_) | On(_) | Since(_) | Older(_) | Younger(_)
        | SavedBefore(_) | SavedOn(_) | SavedSince(_) => 1,
        From(_) | To(_) | Cc(_) | Bcc(_) | Subject(_) | SentBefore(_) | SentOn(_)
        | SentSince(_) => 2,
        // HEADER reads the message file (only the envelope's fields are cached).
        Header(..) | Body(_) | Text(_) | EmailId(_) => 3,
        Not(inner) => cost(inner),
        Or(a, b) => cost(a).max(cost(b)),
        And(keys) => keys.iter().map(cost).max().unwrap_or(0),
        _ => 0,
    }
}

/// Reorders every AND so cheap keys can rule a message out before expensive ones load it.
fn cheapest_first(key: SearchKey) -> SearchKey {
    use SearchKey::*;
    match key {
        And(keys) => {
            let mut keys: Vec<SearchKey> = keys.into_iter().map(cheapest_first).collect();
            keys.sort_by_key(cost);
            And(keys)
        }
        Not(inner) => Not(Box::new(cheapest_first(*inner))),
        Or(a, b) => Or(Box::new(cheapest_first(*a)), Box::new(cheapest_first(*b))),
        other => other,
    }
}

fn has_keyword(msg: &ViewMessage, name: &str) -> bool {
    match Flag::parse(name) {
        Ok(Flag::Keyword(k)) => msg.flags.has_keyword(&k),
        Ok(flag) => msg.flags.contains(&flag),
        Err(_) => Keyword::new(name).is_ok_and(|k| msg.flags.has_keyword(&k)),
    }
}

fn day_number(d: &Date) -> i64 {
    days_from_civil(i64::from(d.year), u32::from(d.month), u32::from(d.day))
}

/// Case folding for substring matching: i;unicode-casemap as Dovecot implements it (RFC 5255
/// I18NLEVEL=1, RFC 5051) — titlecase, then one level of decomposition — the same mapping SORT
/// and THREAD compare with; for ASCII it is i;ascii-casemap.
fn fold(s: &str) -> String {
    crate::cmd::sort::casemap(s)
}

/// Whether `haystack` folded contains `needle` (already folded). ASCII text is compared in
/// place, since folding it is upper-casing it.
fn contains_folded(haystack: &str, needle: &str) -> bool {
    if haystack.is_ascii() && needle.is_ascii() {
        let (h, n) = (haystack.as_bytes(), needle.as_bytes());
        return n.is_empty()
            || h.windows(n.len())
                .any(|w| w.iter().zip(n).all(|(a, b)| a.to_ascii_uppercase() == *b));
    }
    fold(haystack).contains(needle)
}

impl Session {
    /// The selected view and its messages that match `criteria` (see [`matching`]), or the
    /// reply that refuses the SEARCH, SORT or THREAD.
    #[allow(clippy::type_complexity)]
    pub(crate) fn matching(
        &self,
        charset: Option<&str>,
        criteria: &SearchKey,
    ) -> Result<(&MailboxView, Vec<(u32, &ViewMessage)>), Reply> {
        if let Some(reply) = charset_error(charset) {
            return Err(reply);
        }
        let State::Selected(_, selected) = &self.state else {
            return Err(Reply::bad("No mailbox selected."));
        };
        let found = matching(&selected.view, &self.saved_result, criteria);
        Ok((&selected.view, found))
    }
}

/// `NO [BADCHARSET]` for a charset SEARCH, SORT and THREAD cannot take (RFC 3501 6.4.4).
fn charset_error(charset: Option<&str>) -> Option<Reply> {
    let cs = charset?;
    if CHARSETS.iter().any(|c| c.eq_ignore_ascii_case(cs)) {
        return None;
    }
    let list = CHARSETS.iter().map(|c| (*c).to_owned()).collect();
    Some(Reply::no("Unsupported charset.").with_code(Code::BadCharset(list)))
}

/// The messages of the view that match `criteria`, with their sequence numbers, in sequence
/// order: what SEARCH, SORT and THREAD all start from. Within each AND, keys run cheapest first
/// (flags and UIDs from the view, then dates and sizes, then headers, then bodies), and a
/// message file is read only when a key that needs it is reached.
fn matching<'v>(
    view: &'v MailboxView,
    saved: &[Uid],
    criteria: &SearchKey,
) -> Vec<(u32, &'v ViewMessage)> {
    matching_where(view, saved, criteria, |_| true)
}

/// [`matching`] over only the messages `candidate` picks (the others are not looked at): how a
/// search context re-checks just the messages that changed (RFC 5267 4.3).
pub(crate) fn matching_where<'v>(
    view: &'v MailboxView,
    saved: &[Uid],
    criteria: &SearchKey,
    candidate: impl Fn(&ViewMessage) -> bool,
) -> Vec<(u32, &'v ViewMessage)> {
    let criteria = &cheapest_first(criteria.clone());
    let mailbox = view.mailbox().as_ref();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let bounds = Bounds {
        max_seq: view.exists(),
        max_uid: view.messages().last().map_or(0, |m| m.uid.get()),
        saved,
        now,
    };
    let wants_envelope = reads_envelope(criteria);
    let mut hits = Vec::new();
    let mut batch: Vec<(u32, &ViewMessage)> = Vec::with_capacity(ENVELOPE_BATCH);
    let mut run = |batch: &mut Vec<(u32, &'v ViewMessage)>| {
        // The cached envelopes of a batch are read together: a few large reads of the cache
        // file instead of one per message.
        let mut envelopes = if wants_envelope {
            let uids: Vec<Uid> = batch.iter().map(|(_, m)| m.uid).collect();
            mailbox.cached_many(&uids, CacheField::Envelope)
        } else {
            Vec::new()
        };
        for (i, (seq, msg)) in batch.drain(..).enumerate() {
            let mut cand = Candidate {
                seq,
                msg,
                mailbox,
                info: None,
                raw: None,
                parsed: None,
                prefetched: envelopes.get_mut(i).map(Option::take),
                envelope: None,
            };
            if cand.matches(criteria, &bounds) {
                hits.push((seq, msg));
            }
        }
    };
    for (i, msg) in view.messages().iter().enumerate() {
        if msg.expunged || !candidate(msg) {
            continue;
        }
        batch.push((i as u32 + 1, msg));
        if batch.len() == ENVELOPE_BATCH {
            run(&mut batch);
        }
    }
    run(&mut batch);
    hits
}

/// Messages whose cached envelopes are read together when a search needs them.
const ENVELOPE_BATCH: usize = 1024;

/// Whether `key` has a key answered from the envelope.
fn reads_envelope(key: &SearchKey) -> bool {
    use SearchKey::*;
    match key {
        From(_) | To(_) | Cc(_) | Bcc(_) | Subject(_) | SentBefore(_) | SentOn(_)
        | SentSince(_) => true,
        Not(inner) => reads_envelope(inner),
        Or(a, b) => reads_envelope(a) || reads_envelope(b),
        And(keys) => keys.iter().any(reads_envelope),
        _ => false,
    }
}

/// RFC 7162 3.1.5: a search by MODSEQ reports the highest mod-sequence it matched.
pub(crate) fn reported_modseq(criteria: &SearchKey, found: &[(u32, &ViewMessage)]) -> Option<u64> {
    if !crate::session::has_modseq_key(criteria) {
        return None;
    }
    found.iter().map(|(_, m)| m.modseq.get()).max()
}

impl Session {
    /// SEARCH and UID SEARCH (RFC 3501 6.4.4, 6.4.8). Within each AND, keys run cheapest first
    /// (flags and UIDs from the view, then dates and sizes, then headers, then bodies), and a
    /// message file is read only when a key that needs it is reached.
    pub(crate) fn cmd_search(
        &mut self,
        tag: &Tag,
        uid_command: bool,
        returns: Option<&[SearchReturn]>,
        charset: Option<&str>,
        criteria: &SearchKey,
    ) -> Reply {
        if self.utf8_accept && charset.is_some() {
            // RFC 6855 3: after ENABLE UTF8=ACCEPT, strings are UTF-8 and a CHARSET conflicts.
            return Reply::bad("CHARSET is not allowed after ENABLE UTF8=ACCEPT.");
        }
        let update = search_context::wants_update(returns);
        if update && self.context_tag_in_use(tag) {
            // RFC 5267 4.3: the tag of a live update context cannot name another.
            return Reply::bad("Tag reuse.");
        }
        let found = match self.matching(charset, criteria) {
            Ok((_, found)) => found,
            Err(reply) => {
                self.save_search_result(returns, None);
                return reply;
            }
        };
        let found_uids: Vec<Uid> = found.iter().map(|(_, m)| m.uid).collect();
        let hits: Vec<u32> = found
            .iter()
            .map(|(seq, msg)| if uid_command { msg.uid.get() } else { *seq })
            .collect();
        let modseq = reported_modseq(criteria, &found);
        // IMAP4rev2 answers every SEARCH with ESEARCH, RETURN () being ALL (RFC 9051 6.4.4).
        let returns = returns.or_else(|| self.rev2.then_some(&[][..]));
        match returns {
            None => {
                let mut line = String::with_capacity(9 + hits.len() * 6);
                line.push_str("* SEARCH");
                for h in hits {
                    line.push(' ');
                    line.push_str(&h.to_string());
                }
                if let Some(m) = modseq {
                    line.push_str(&format!(" (MODSEQ {m})"));
                }
                line.push_str("\r\n");
                self.out.extend_from_slice(line.as_bytes());
            }
            Some(options) => {
                let line = esearch_line(tag, uid_command, options, &hits, modseq);
                self.out.extend_from_slice(line.as_bytes());
            }
        }
        self.save_search_result(returns, Some(&found_uids));
        if update {
            self.start_search_context(tag, uid_command, criteria, &found_uids);
        }
        Reply::ok("Search completed.")
    }
}

/// `* ESEARCH (TAG "t") [UID] ...` (RFC 4731 3.1, RFC 5267 4.2): the options asked for, in the
/// RFC's order; `RETURN ()` means ALL. MIN, MAX and ALL are left out when nothing matched;
/// COUNT never is. SAVE alone (RFC 5182) returns nothing: the line is empty.
///
/// `hits` are in result order: ascending for SEARCH, the sort order for SORT. MIN and MAX are
/// the first and last of them (for ESORT the first and last in sort order, as Dovecot answers),
/// and ALL keeps their order, joining only runs that ascend by one (`3:5,1:2`).
pub(crate) fn esearch_line(
    tag: &Tag,
    uid: bool,
    options: &[SearchReturn],
    hits: &[u32],
    modseq: Option<u64>,
) -> String {
    if crate::cmd::searchres::only_saves(options) {
        return String::new();
    }
    // CONTEXT and UPDATE ask for no data (RFC 5267 4.2, 4.3): with nothing else, ALL.
    let all = options.contains(&SearchReturn::All) || !options.iter().any(returns_data);
    let mut line = format!("* ESEARCH (TAG \"{}\")", tag.0);
    if uid {
        line.push_str(" UID");
    }
    if let (true, Some(min)) = (options.contains(&SearchReturn::Min), hits.first()) {
        line.push_str(&format!(" MIN {min}"));
    }
    if let (true, Some(max)) = (options.contains(&SearchReturn::Max), hits.last()) {
        line.push_str(&format!(" MAX {max}"));
    }
    if all && !hits.is_empty() {
        line.push_str(" ALL ");
        write_runs(&mut line, hits);
    }
    if let Some(&SearchReturn::Partial { first, last }) = options
        .iter()
        .find(|o| matches!(o, SearchReturn::Partial { .. }))
    {
        // RFC 5267 4.4: the range asked for, and the results in it in result order (NIL when
        // the range starts beyond them).
        line.push_str(&format!(" PARTIAL ({first}:{last} "));
        let from = (first as usize).saturating_sub(1).min(hits.len());
        let to = (last as usize).min(hits.len());
        if from >= to {
            line.push_str("NIL");
        } else {
            write_runs(&mut line, &hits[from..to]);
        }
        line.push(')');
    }
    if options.contains(&SearchReturn::Count) {
        line.push_str(&format!(" COUNT {}", hits.len()));
    }
    if let Some(m) = modseq {
        line.push_str(&format!(" MODSEQ {m}"));
    }
    line.push_str("\r\n");
    line
}

/// Whether a return option asks for result data in the ESEARCH response (RFC 4731 3.1, RFC 5267
/// 4.4); SAVE, CONTEXT and UPDATE do not.
pub(crate) fn returns_data(option: &SearchReturn) -> bool {
    matches!(
        option,
        SearchReturn::Min
            | SearchReturn::Max
            | SearchReturn::All
            | SearchReturn::Count
            | SearchReturn::Partial { .. }
    )
}

/// Numbers as a `sequence-set` in their own order: each run that ascends by one as `a:b`.
fn write_runs(out: &mut String, numbers: &[u32]) {
    use std::fmt::Write as _;
    let mut i = 0;
    while let Some(&start) = numbers.get(i) {
        let mut end = start;
        while let Some(&next) = numbers.get(i + 1) {
            if Some(next) != end.checked_add(1) {
                break;
            }
            i += 1;
            end = next;
        }
        i += 1;
        if !out.ends_with(' ') {
            out.push(',');
        }
        if start == end {
            let _ = write!(out, "{start}");
        } else {
            let _ = write!(out, "{start}:{end}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_keep_their_order() {
        let runs = |n: &[u32]| {
            let mut s = String::from(" ");
            write_runs(&mut s, n);
            s
        };
        assert_eq!(runs(&[1, 2, 3, 5, 9, 10]), " 1:3,5,9:10");
        assert_eq!(runs(&[3, 4, 5, 1, 2]), " 3:5,1:2");
        assert_eq!(runs(&[5, 4, 3]), " 5,4,3");
        assert_eq!(runs(&[u32::MAX, 1]), " 4294967295,1");
    }

    /// Messages for the envelope keys: encoded-words in names and subjects, a quoted name with
    /// escapes, groups, 8-bit text (cached as literals), and one without From or Date.
    const MESSAGES: [(&str, i64); 4] = [
        (
            "From: =?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?= <juergen@example.de>\r\n\
             To: \"Smith, \\\"Agent\\\" J.\" <smith@example.com>\r\n\
             Subject: =?UTF-8?B?R3LDvMOfZQ==?= aus =?ISO-8859-1?Q?M=FCnchen?=\r\n\
             Date: Mon, 15 Mar 2021 23:30:00 -0200\r\n\r\nbody\r\n",
            1_615_852_800, // 16-Mar-2021 00:00 UTC
        ),
        (
            "From: Fred <fred@example.com>\r\n\
             To: Team: alice@example.com, Bob <bob@example.org>;\r\n\
             Cc: undisclosed-recipients:;\r\n\
             Bcc: hidden@example.net\r\n\
             Subject: Quarterly report\r\n\
             Date: Wed, 1 Jan 2020 09:00:00 +0000\r\n\r\nbody\r\n",
            1_577_869_200,
        ),
        (
            "To: x@example.com\r\nSubject: no sender\r\n\r\nbody\r\n",
            1_655_712_000, // 20-Jun-2022 08:00 UTC
        ),
        (
            "From: J\u{f6}rg <joerg@example.de>\r\n\
             Subject: Gr\u{fc}\u{df}e direkt\r\n\
             Date: Tue, 2 Jan 2024 00:30:00 +0100\r\n\r\nbody\r\n",
            1_704_150_000,
        ),
    ];

    fn on(day: u8, month: u8, year: u16) -> Date {
        Date { year, month, day }
    }

    /// Each key with the sequence numbers it must find among [`MESSAGES`].
    fn cases() -> Vec<(SearchKey, Vec<u32>)> {
        use SearchKey::*;
        let s = |v: &str| v.to_owned();
        vec![
            (From(s("müller")), vec![1]),
            (From(s("JÜRGEN MÜLLER <juergen@EXAMPLE.de>")), vec![1]),
            (From(s("=?utf-8?")), vec![]),
            (From(s("jörg <joerg")), vec![4]),
            (From(s("example.de")), vec![1, 4]),
            // A message without From has nothing for FROM, not even the empty string.
            (From(s("")), vec![1, 2, 4]),
            (From(s("smith")), vec![]),
            // The quoted name is unquoted and unescaped, as the envelope holds it.
            (To(s("smith, \"agent\" j. <smith@example.com>")), vec![1]),
            (To(s("\\")), vec![]),
            // Groups read as written: `Team: member, member;`.
            (To(s("team: alice@example.com, bob <bob@")), vec![2]),
            (To(s("example.org>;")), vec![2]),
            (To(s("x@example.com")), vec![3]),
            (Cc(s("undisclosed-recipients:;")), vec![2]),
            (Cc(s("")), vec![2]),
            (Bcc(s("HIDDEN@")), vec![2]),
            (Bcc(s("")), vec![2]),
            (Subject(s("grüße aus münchen")), vec![1]),
            (Subject(s("grüße")), vec![1, 4]),
            (Subject(s("quarterly REPORT")), vec![2]),
            (Subject(s("iso-8859")), vec![]),
            (Subject(s("")), vec![1, 2, 3, 4]),
            // The sent day is the Date's own day in its own zone; without a Date, INTERNALDATE.
            (SentOn(on(15, 3, 2021)), vec![1]),
            (SentOn(on(2, 1, 2024)), vec![4]),
            (SentOn(on(20, 6, 2022)), vec![3]),
            (SentBefore(on(15, 3, 2021)), vec![2]),
            (SentSince(on(1, 1, 2022)), vec![3, 4]),
            (
                And(vec![SentSince(on(1, 1, 2020)), SentBefore(on(1, 1, 2021))]),
                vec![2],
            ),
            // HEADER still reads the raw field (decoded): quotes and all.
            (Header(s("To"), s("\"Smith, \\\"Agent")), vec![1]),
            (Header(s("from"), s("jürgen")), vec![1]),
            (Header(s("Subject"), s("aus münchen")), vec![1]),
            (Header(s("From"), s("")), vec![1, 2, 4]),
            (
                Or(Box::new(From(s("fred"))), Box::new(Subject(s("direkt")))),
                vec![2, 4],
            ),
        ]
    }

    fn mailbox(dir: &std::path::Path) -> std::sync::Arc<dyn Mailbox> {
        use mail_store::MailStore as _;
        let store = mail_store::maildir::MaildirStore::new(dir.join("Maildir")).unwrap();
        let mailbox = store.open(&mail_types::MailboxName::inbox()).unwrap();
        for (text, date) in MESSAGES {
            let mut w = mailbox.begin_append().unwrap();
            w.write(text.as_bytes()).unwrap();
            w.commit(mail_types::Flags::default(), Some(date)).unwrap();
        }
        mailbox
    }

    fn found(mailbox: &std::sync::Arc<dyn Mailbox>, key: &SearchKey) -> Vec<u32> {
        let view = MailboxView::open(mailbox.clone(), true).unwrap();
        matching(&view, &[], key)
            .into_iter()
            .map(|(seq, _)| seq)
            .collect()
    }

    /// What FETCH ENVELOPE sends for the message.
    fn fetched_envelope(mailbox: &dyn Mailbox, uid: Uid) -> Vec<u8> {
        let raw = mailbox.read_message(uid).unwrap();
        crate::fetch::structure::envelope_text(&raw, &ParsedMessage::parse(&raw))
    }

    #[test]
    fn envelope_keys_without_a_cached_envelope() {
        for (key, want) in cases() {
            // A fresh mailbox for each key: nothing is cached when it runs.
            let tmp = tempfile::tempdir().unwrap();
            let mb = mailbox(tmp.path());
            let uids: Vec<Uid> = MailboxView::open(mb.clone(), true)
                .unwrap()
                .messages()
                .iter()
                .map(|m| m.uid)
                .collect();
            assert!(
                uids.iter()
                    .all(|u| mb.cached(*u, CacheField::Envelope).is_none())
            );
            assert_eq!(found(&mb, &key), want, "{key:?}");
            // A key that read an envelope left it in the cache, spelled as FETCH spells it.
            for uid in uids {
                if let Some(cached) = mb.cached(uid, CacheField::Envelope) {
                    assert_eq!(&*cached, &fetched_envelope(mb.as_ref(), uid)[..], "{key:?}");
                }
            }
        }
    }

    #[test]
    fn envelope_keys_with_the_envelope_fetch_cached() {
        let tmp = tempfile::tempdir().unwrap();
        let mb = mailbox(tmp.path());
        let view = MailboxView::open(mb.clone(), true).unwrap();
        for m in view.messages().iter() {
            mb.cache(
                m.uid,
                CacheField::Envelope,
                &fetched_envelope(mb.as_ref(), m.uid),
            );
        }
        for (key, want) in cases() {
            assert_eq!(found(&mb, &key), want, "{key:?}");
        }
    }

    #[test]
    fn a_damaged_cached_envelope_is_derived_again() {
        let damaged: [&[u8]; 6] = [
            b"",
            b"garbage",
            b"(NIL NIL",
            b"(\"Mon, 15 Mar 2021\" \"x\" ((NIL NIL \"a\" \"b\")) NIL NIL NIL NIL NIL NIL NIL) trailing",
            b"\xff\x00{99999999999}\r\n",
            b"(NIL {3}\r\nab",
        ];
        for bad in damaged {
            let tmp = tempfile::tempdir().unwrap();
            let mb = mailbox(tmp.path());
            let view = MailboxView::open(mb.clone(), true).unwrap();
            let uids: Vec<Uid> = view.messages().iter().map(|m| m.uid).collect();
            for uid in &uids {
                mb.cache(*uid, CacheField::Envelope, bad);
            }
            for (key, want) in cases() {
                assert_eq!(found(&mb, &key), want, "{key:?} over {bad:?}");
            }
            // The damaged entries were replaced with good ones.
            for uid in uids {
                assert_eq!(
                    mb.cached(uid, CacheField::Envelope).as_deref(),
                    Some(&fetched_envelope(mb.as_ref(), uid)[..])
                );
            }
        }
    }

    #[test]
    fn folded_containment() {
        assert!(contains_folded("Fred <fred@example.com>", "FRED@"));
        assert!(contains_folded("Jürgen", &fold("jürgen")));
        assert!(contains_folded("anything", ""));
        assert!(!contains_folded("ab", "ABC"));
        // The Kelvin sign folds to an ASCII K.
        assert!(contains_folded("Kilo", &fold("\u{212a}ilo")));
    }
}
