use imap_proto::response::{Code, days_from_civil};
use imap_proto::{Date, SearchKey, SearchReturn, Tag};
use mail_parse::ParsedMessage;
use mail_store::{CacheField, Mailbox, MailboxView, MessageInfo, ViewMessage};
use mail_types::{Flag, Keyword, SystemFlags, Uid};

use crate::cmd::search_context;
use crate::session::{Reply, Session, State};

mod headers;

use headers::SearchHeaders;

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
    headers: Option<Option<SearchHeaders>>,
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
    /// 6.4.4). An empty needle matches any message that has the field.
    fn header_contains(&mut self, field: &str, needle: &str) -> bool {
        if let Some(i) = SearchHeaders::field(field) {
            let Some(headers) = self.search_headers() else {
                return false;
            };
            let values = &headers.values[i];
            if needle.is_empty() {
                return !values.is_empty();
            }
            let needle = fold(needle);
            return values.iter().any(|v| v.contains(&needle));
        }
        let Some((raw, parsed)) = self.message() else {
            return false;
        };
        let values = parsed.header_values(raw, field);
        if needle.is_empty() {
            return !values.is_empty();
        }
        let needle = fold(needle);
        values.iter().any(|v| fold(v).contains(&needle))
    }

    /// The commonly searched header values: from the store's cache, or derived from the message
    /// and offered to the cache for next time.
    fn search_headers(&mut self) -> Option<&SearchHeaders> {
        if self.headers.is_none() {
            let uid = self.msg.uid;
            let cached = self
                .mailbox
                .cached(uid, CacheField::SearchHeaders)
                .and_then(|b| SearchHeaders::decode(&b));
            let headers = match cached {
                Some(h) => Some(h),
                None => {
                    let derived = self.message().map(|(raw, p)| SearchHeaders::derive(raw, p));
                    if let Some(h) = &derived {
                        self.mailbox
                            .cache(uid, CacheField::SearchHeaders, &h.encode());
                    }
                    derived
                }
            };
            self.headers = Some(headers);
        }
        self.headers.as_ref().and_then(Option::as_ref)
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

    /// Days since the epoch of the Date header in its own zone ("disregarding time and
    /// timezone", RFC 3501 6.4.4); INTERNALDATE when the header is missing or unreadable, as
    /// Dovecot does.
    fn sent_day(&mut self) -> Option<i64> {
        match self.search_headers().and_then(|h| h.sent_day) {
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
            From(s) => self.header_contains("From", s),
            To(s) => self.header_contains("To", s),
            Cc(s) => self.header_contains("Cc", s),
            Bcc(s) => self.header_contains("Bcc", s),
            Subject(s) => self.header_contains("Subject", s),
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
        From(_) | To(_) | Cc(_) | Bcc(_) | Subject(_) | Header(..) | SentBefore(_) | SentOn(_)
        | SentSince(_) => 2,
        Body(_) | Text(_) | EmailId(_) => 3,
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
    let mut hits = Vec::new();
    for (i, msg) in view.messages().iter().enumerate() {
        if msg.expunged || !candidate(msg) {
            continue;
        }
        let seq = i as u32 + 1;
        let mut cand = Candidate {
            seq,
            msg,
            mailbox,
            info: None,
            raw: None,
            parsed: None,
            headers: None,
        };
        if cand.matches(criteria, &bounds) {
            hits.push((seq, msg));
        }
    }
    hits
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
}
