//! The client side of the grammar: [`Command`] values back to wire bytes (RFC 3501 9), for
//! round-trip tests and test clients.
//!
//! Every string is written in the form the server-side writers in [`crate::response`] choose:
//! an atom where allowed, a quoted string for short 7-bit text, a synchronizing literal `{n}`
//! otherwise. Decoding the output with [`crate::Decoder`] gives the same value back for every
//! command the decoder can produce.

use std::fmt::Write as _;

use crate::command::*;
use crate::parser::is_list_char;
use crate::response::{write_astring, write_date_time, write_nstring, write_quoted, write_string};
use mail_types::is_atom_char;

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl Command {
    /// The command as a client sends it, CRLF included. Literals are synchronizing, so a real
    /// client must wait for `+` after each `{n}\r\n`; test code usually sends everything at once.
    ///
    /// [`CommandBody::Append`] carries no message, so it is written with an empty message
    /// literal; use [`append_to_wire`] to send one.
    pub fn to_wire(&self) -> Vec<u8> {
        if let CommandBody::Append(header) = &self.body {
            return append_to_wire(&self.tag, header, b"");
        }
        let mut out = Vec::with_capacity(64);
        out.extend_from_slice(self.tag.0.as_bytes());
        out.push(b' ');
        write_body(&mut out, &self.body);
        out.extend_from_slice(b"\r\n");
        out
    }
}

/// An APPEND command (RFC 3501 6.3.11), or a REPLACE (RFC 8508), with its message, CRLF
/// included.
pub fn append_to_wire(tag: &Tag, header: &AppendHeader, message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(64 + message.len());
    out.extend_from_slice(tag.0.as_bytes());
    match header.replace {
        None => out.extend_from_slice(b" APPEND "),
        Some(target) => {
            let uid = if target.uid { " UID" } else { "" };
            out.extend_from_slice(format!("{uid} REPLACE {} ", target.message).as_bytes());
        }
    }
    write_astring(&mut out, &header.mailbox.0);
    if !header.flags.is_empty() {
        out.push(b' ');
        write_flags(&mut out, &header.flags);
    }
    if let Some(date) = header.date {
        out.push(b' ');
        write_date_time(&mut out, date);
    }
    if header.utf8 {
        // RFC 6855 4: `UTF8 (~{n})`.
        out.extend_from_slice(format!(" UTF8 (~{{{}}}\r\n", message.len()).as_bytes());
        out.extend_from_slice(message);
        out.extend_from_slice(b")\r\n");
    } else {
        out.extend_from_slice(format!(" {{{}}}\r\n", message.len()).as_bytes());
        out.extend_from_slice(message);
        out.extend_from_slice(b"\r\n");
    }
    out
}

fn push(out: &mut Vec<u8>, s: &str) {
    out.extend_from_slice(s.as_bytes());
}

fn write_body(out: &mut Vec<u8>, body: &CommandBody) {
    match body {
        CommandBody::Capability => push(out, "CAPABILITY"),
        CommandBody::Noop => push(out, "NOOP"),
        CommandBody::Logout => push(out, "LOGOUT"),
        CommandBody::StartTls => push(out, "STARTTLS"),
        CommandBody::Namespace => push(out, "NAMESPACE"),
        CommandBody::Compress { mechanism } => push(out, &format!("COMPRESS {mechanism}")),
        CommandBody::Idle => push(out, "IDLE"),
        CommandBody::Check => push(out, "CHECK"),
        CommandBody::Close => push(out, "CLOSE"),
        CommandBody::Unselect => push(out, "UNSELECT"),
        CommandBody::CancelUpdate(tags) => {
            push(out, "CANCELUPDATE");
            for tag in tags {
                out.push(b' ');
                // `quoted` (RFC 5267 5), never a literal.
                write_quoted(out, tag.as_bytes());
            }
        }
        CommandBody::Expunge => push(out, "EXPUNGE"),
        CommandBody::Id(None) => push(out, "ID NIL"),
        CommandBody::Id(Some(params)) => {
            push(out, "ID (");
            for (i, (k, v)) in params.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                write_string(out, k.as_bytes());
                out.push(b' ');
                write_nstring(out, v.as_deref().map(str::as_bytes));
            }
            out.push(b')');
        }
        CommandBody::Authenticate {
            mechanism,
            initial_response,
        } => {
            push(out, "AUTHENTICATE ");
            push(out, mechanism);
            match initial_response {
                Some(ir) if ir.is_empty() => push(out, " ="),
                Some(ir) => {
                    out.push(b' ');
                    out.extend_from_slice(ir);
                }
                None => {}
            }
        }
        CommandBody::Login { username, password } => {
            push(out, "LOGIN ");
            write_astring(out, username);
            out.push(b' ');
            write_astring(out, password);
        }
        CommandBody::Select { mailbox, params } | CommandBody::Examine { mailbox, params } => {
            push(
                out,
                if matches!(body, CommandBody::Select { .. }) {
                    "SELECT "
                } else {
                    "EXAMINE "
                },
            );
            write_astring(out, &mailbox.0);
            let mut opts = Vec::new();
            if params.condstore {
                opts.push("CONDSTORE".to_owned());
            }
            if let Some(q) = &params.qresync {
                let mut o = format!("QRESYNC ({} {}", q.uid_validity, q.modseq);
                if let Some(k) = &q.known_uids {
                    o.push_str(&format!(" {k}"));
                }
                if let Some((seqs, uids)) = &q.seq_match {
                    o.push_str(&format!(" ({seqs} {uids})"));
                }
                o.push(')');
                opts.push(o);
            }
            if !opts.is_empty() {
                push(out, &format!(" ({})", opts.join(" ")));
            }
        }
        CommandBody::Create { mailbox, uses } => {
            mailbox_cmd(out, "CREATE ", mailbox);
            if !uses.is_empty() {
                push(out, &format!(" (USE ({}))", uses.join(" ")));
            }
        }
        CommandBody::Delete { mailbox } => mailbox_cmd(out, "DELETE ", mailbox),
        CommandBody::Subscribe { mailbox } => mailbox_cmd(out, "SUBSCRIBE ", mailbox),
        CommandBody::Unsubscribe { mailbox } => mailbox_cmd(out, "UNSUBSCRIBE ", mailbox),
        CommandBody::Rename { from, to } => {
            push(out, "RENAME ");
            write_astring(out, &from.0);
            out.push(b' ');
            write_astring(out, &to.0);
        }
        CommandBody::List { reference, pattern } | CommandBody::Lsub { reference, pattern } => {
            push(
                out,
                if matches!(body, CommandBody::List { .. }) {
                    "LIST "
                } else {
                    "LSUB "
                },
            );
            // The reference is a `mailbox` (RFC 3501 9): wildcards in it must be quoted.
            write_astring(out, &reference.0);
            out.push(b' ');
            write_list_mailbox(out, &pattern.0);
        }
        CommandBody::Status { mailbox, items } => {
            push(out, "STATUS ");
            write_astring(out, &mailbox.0);
            push(out, " (");
            write_status_items(out, items);
            out.push(b')');
        }
        CommandBody::ListExtended {
            select,
            reference,
            patterns,
            returns,
        } => {
            push(out, "LIST (");
            let options = [
                (select.subscribed, "SUBSCRIBED"),
                (select.remote, "REMOTE"),
                (select.recursive_match, "RECURSIVEMATCH"),
                (select.special_use, "SPECIAL-USE"),
            ];
            let names: Vec<&str> = options.iter().filter(|o| o.0).map(|o| o.1).collect();
            push(out, &names.join(" "));
            push(out, ") ");
            write_astring(out, &reference.0);
            push(out, " (");
            for (i, p) in patterns.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                write_list_mailbox(out, &p.0);
            }
            push(out, ") RETURN (");
            let options = [
                (returns.subscribed, "SUBSCRIBED"),
                (returns.children, "CHILDREN"),
                (returns.special_use, "SPECIAL-USE"),
            ];
            let mut names: Vec<&str> = options.iter().filter(|o| o.0).map(|o| o.1).collect();
            if returns.status.is_some() {
                names.push("STATUS (");
            }
            push(out, &names.join(" "));
            if let Some(items) = &returns.status {
                write_status_items(out, items);
                out.push(b')');
            }
            out.push(b')');
        }
        // Handled by `to_wire`, which needs the tag.
        CommandBody::Append(_) => {}
        CommandBody::GetQuota { root } => {
            push(out, "GETQUOTA ");
            write_astring(out, root);
        }
        CommandBody::GetQuotaRoot { mailbox } => mailbox_cmd(out, "GETQUOTAROOT ", mailbox),
        CommandBody::SetQuota { root, limits } => {
            push(out, "SETQUOTA ");
            write_astring(out, root);
            let list: Vec<String> = limits.iter().map(|(n, l)| format!("{n} {l}")).collect();
            push(out, &format!(" ({})", list.join(" ")));
        }
        CommandBody::Enable(caps) => {
            push(out, "ENABLE");
            for cap in caps {
                out.push(b' ');
                push(out, cap);
            }
        }
        CommandBody::UidExpunge(set) => {
            push(out, "UID EXPUNGE ");
            push(out, &set.to_string());
        }
        CommandBody::Search {
            uid,
            returns,
            charset,
            criteria,
        } => {
            uid_prefix(out, *uid);
            push(out, "SEARCH");
            write_returns(out, returns.as_deref());
            if let Some(cs) = charset {
                push(out, " CHARSET ");
                write_astring(out, cs.as_bytes());
            }
            out.push(b' ');
            write_criteria(out, criteria);
        }
        CommandBody::Sort {
            uid,
            returns,
            criteria,
            charset,
            search,
        } => {
            uid_prefix(out, *uid);
            push(out, "SORT");
            write_returns(out, returns.as_deref());
            push(out, " (");
            for (i, c) in criteria.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                if c.reverse {
                    push(out, "REVERSE ");
                }
                push(out, c.key.name());
            }
            push(out, ") ");
            write_astring(out, charset.as_bytes());
            out.push(b' ');
            write_criteria(out, search);
        }
        CommandBody::Thread {
            uid,
            algorithm,
            charset,
            search,
        } => {
            uid_prefix(out, *uid);
            push(out, "THREAD ");
            push(out, algorithm.name());
            out.push(b' ');
            write_astring(out, charset.as_bytes());
            out.push(b' ');
            write_criteria(out, search);
        }
        CommandBody::Fetch {
            uid,
            set,
            items,
            changed_since,
            vanished,
        } => {
            uid_prefix(out, *uid);
            push(out, "FETCH ");
            push(out, &set.to_string());
            push(out, " (");
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                write_fetch_attr(out, item);
            }
            out.push(b')');
            if let Some(n) = changed_since {
                push(out, &format!(" (CHANGEDSINCE {n}"));
                if *vanished {
                    push(out, " VANISHED");
                }
                out.push(b')');
            }
        }
        CommandBody::Store {
            uid,
            set,
            action,
            silent,
            flags,
            unchanged_since,
        } => {
            uid_prefix(out, *uid);
            push(out, "STORE ");
            push(out, &set.to_string());
            if let Some(n) = unchanged_since {
                push(out, &format!(" (UNCHANGEDSINCE {n})"));
            }
            push(
                out,
                match action {
                    StoreAction::Replace => " FLAGS",
                    StoreAction::Add => " +FLAGS",
                    StoreAction::Remove => " -FLAGS",
                },
            );
            if *silent {
                push(out, ".SILENT");
            }
            out.push(b' ');
            write_flags(out, flags);
        }
        CommandBody::Copy { uid, set, mailbox } | CommandBody::Move { uid, set, mailbox } => {
            uid_prefix(out, *uid);
            push(
                out,
                if matches!(body, CommandBody::Copy { .. }) {
                    "COPY "
                } else {
                    "MOVE "
                },
            );
            push(out, &set.to_string());
            out.push(b' ');
            write_astring(out, &mailbox.0);
        }
    }
}

/// ` RETURN (...)` of SEARCH and SORT (RFC 4731 3.1, RFC 5267 3.2), when asked for.
fn write_returns(out: &mut Vec<u8>, returns: Option<&[SearchReturn]>) {
    let Some(opts) = returns else {
        return;
    };
    push(out, " RETURN (");
    for (i, o) in opts.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        match o {
            SearchReturn::Min => push(out, "MIN"),
            SearchReturn::Max => push(out, "MAX"),
            SearchReturn::All => push(out, "ALL"),
            SearchReturn::Count => push(out, "COUNT"),
            SearchReturn::Save => push(out, "SAVE"),
            SearchReturn::Context => push(out, "CONTEXT"),
            SearchReturn::Update => push(out, "UPDATE"),
            SearchReturn::Partial { first, last } => push(out, &format!("PARTIAL {first}:{last}")),
        }
    }
    out.push(b')');
}

/// The search keys of SEARCH, SORT and THREAD. The top level is an implicit AND: no
/// parentheses needed for two or more keys.
fn write_criteria(out: &mut Vec<u8>, criteria: &SearchKey) {
    match criteria {
        SearchKey::And(keys) if keys.len() > 1 => {
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                write_key(out, k);
            }
        }
        k => write_key(out, k),
    }
}

fn uid_prefix(out: &mut Vec<u8>, uid: bool) {
    if uid {
        push(out, "UID ");
    }
}

fn mailbox_cmd(out: &mut Vec<u8>, name: &str, mailbox: &MailboxArg) {
    push(out, name);
    write_astring(out, &mailbox.0);
}

/// `list-mailbox` (RFC 3501 9): bare when every byte is a list-char, a string otherwise.
fn write_list_mailbox(out: &mut Vec<u8>, bytes: &[u8]) {
    if !bytes.is_empty() && bytes.iter().all(|&b| is_list_char(b)) {
        out.extend_from_slice(bytes);
    } else {
        write_string(out, bytes);
    }
}

fn write_flags(out: &mut Vec<u8>, flags: &[mail_types::Flag]) {
    out.push(b'(');
    for (i, f) in flags.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        push(out, &f.to_string());
    }
    out.push(b')');
}

/// `date` (RFC 3501 9) as `d-Mon-yyyy`.
fn write_date(out: &mut Vec<u8>, d: Date) {
    let month = MONTHS
        .get(usize::from(d.month).saturating_sub(1))
        .unwrap_or(&"Jan");
    let mut s = String::new();
    let _ = write!(s, "{}-{}-{:04}", d.day, month, d.year);
    push(out, &s);
}

/// One search key (RFC 3501 6.4.4). Recursive: keys built by the decoder are bounded in depth,
/// and this is client-side code for tests.
fn write_key(out: &mut Vec<u8>, key: &SearchKey) {
    use SearchKey as K;
    let string = |out: &mut Vec<u8>, name: &str, s: &str| {
        push(out, name);
        out.push(b' ');
        write_astring(out, s.as_bytes());
    };
    match key {
        K::All => push(out, "ALL"),
        K::Answered => push(out, "ANSWERED"),
        K::Deleted => push(out, "DELETED"),
        K::Draft => push(out, "DRAFT"),
        K::Flagged => push(out, "FLAGGED"),
        K::New => push(out, "NEW"),
        K::Old => push(out, "OLD"),
        K::Recent => push(out, "RECENT"),
        K::Seen => push(out, "SEEN"),
        K::Unanswered => push(out, "UNANSWERED"),
        K::Undeleted => push(out, "UNDELETED"),
        K::Undraft => push(out, "UNDRAFT"),
        K::Unflagged => push(out, "UNFLAGGED"),
        K::Unseen => push(out, "UNSEEN"),
        K::Bcc(s) => string(out, "BCC", s),
        K::Body(s) => string(out, "BODY", s),
        K::Cc(s) => string(out, "CC", s),
        K::From(s) => string(out, "FROM", s),
        K::Subject(s) => string(out, "SUBJECT", s),
        K::Text(s) => string(out, "TEXT", s),
        K::To(s) => string(out, "TO", s),
        K::Header(field, value) => {
            string(out, "HEADER", field);
            out.push(b' ');
            write_astring(out, value.as_bytes());
        }
        K::Keyword(k) | K::Unkeyword(k) => {
            push(
                out,
                if matches!(key, K::Keyword(_)) {
                    "KEYWORD "
                } else {
                    "UNKEYWORD "
                },
            );
            match k.strip_prefix('\\') {
                Some(atom) if !atom.is_empty() && atom.bytes().all(is_atom_char) => push(out, k),
                _ => write_astring(out, k.as_bytes()),
            }
        }
        K::Before(d)
        | K::On(d)
        | K::Since(d)
        | K::SentBefore(d)
        | K::SentOn(d)
        | K::SentSince(d)
        | K::SavedBefore(d)
        | K::SavedOn(d)
        | K::SavedSince(d) => {
            push(
                out,
                match key {
                    K::Before(_) => "BEFORE ",
                    K::On(_) => "ON ",
                    K::Since(_) => "SINCE ",
                    K::SentBefore(_) => "SENTBEFORE ",
                    K::SentOn(_) => "SENTON ",
                    K::SavedBefore(_) => "SAVEDBEFORE ",
                    K::SavedOn(_) => "SAVEDON ",
                    K::SavedSince(_) => "SAVEDSINCE ",
                    _ => "SENTSINCE ",
                },
            );
            write_date(out, *d);
        }
        K::Larger(n) => push(out, &format!("LARGER {n}")),
        K::Smaller(n) => push(out, &format!("SMALLER {n}")),
        K::ModSeq(n) => push(out, &format!("MODSEQ {n}")),
        K::SavedResult => push(out, "$"),
        K::Older(n) => push(out, &format!("OLDER {n}")),
        K::Younger(n) => push(out, &format!("YOUNGER {n}")),
        K::SaveDateSupported => push(out, "SAVEDATESUPPORTED"),
        K::EmailId(id) => push(out, &format!("EMAILID {id}")),
        K::ThreadId(id) => push(out, &format!("THREADID {id}")),
        K::Uid(set) => push(out, &format!("UID {set}")),
        K::SequenceSet(set) => push(out, &set.to_string()),
        K::Not(k) => {
            push(out, "NOT ");
            write_key(out, k);
        }
        K::Or(a, b) => {
            push(out, "OR ");
            write_key(out, a);
            out.push(b' ');
            write_key(out, b);
        }
        K::And(keys) => {
            out.push(b'(');
            for (i, k) in keys.iter().enumerate() {
                if i > 0 {
                    out.push(b' ');
                }
                write_key(out, k);
            }
            out.push(b')');
        }
    }
}

/// Part numbers as `1.2.3`.
fn write_part(out: &mut Vec<u8>, part: &[u32]) {
    let numbers: Vec<String> = part.iter().map(u32::to_string).collect();
    push(out, &numbers.join("."));
}

fn write_fetch_attr(out: &mut Vec<u8>, attr: &FetchAttr) {
    match attr {
        FetchAttr::Envelope => push(out, "ENVELOPE"),
        FetchAttr::Flags => push(out, "FLAGS"),
        FetchAttr::InternalDate => push(out, "INTERNALDATE"),
        FetchAttr::Rfc822 => push(out, "RFC822"),
        FetchAttr::Rfc822Header => push(out, "RFC822.HEADER"),
        FetchAttr::Rfc822Size => push(out, "RFC822.SIZE"),
        FetchAttr::Rfc822Text => push(out, "RFC822.TEXT"),
        FetchAttr::Body => push(out, "BODY"),
        FetchAttr::BodyStructure => push(out, "BODYSTRUCTURE"),
        FetchAttr::Uid => push(out, "UID"),
        FetchAttr::ModSeq => push(out, "MODSEQ"),
        FetchAttr::SaveDate => push(out, "SAVEDATE"),
        FetchAttr::EmailId => push(out, "EMAILID"),
        FetchAttr::ThreadId => push(out, "THREADID"),
        FetchAttr::Preview { lazy: false } => push(out, "PREVIEW"),
        FetchAttr::Preview { lazy: true } => push(out, "PREVIEW (LAZY)"),
        FetchAttr::Binary {
            peek,
            part,
            partial,
        } => {
            push(out, if *peek { "BINARY.PEEK[" } else { "BINARY[" });
            write_part(out, part);
            out.push(b']');
            if let Some(p) = partial {
                push(out, &format!("<{}.{}>", p.origin, p.length));
            }
        }
        FetchAttr::FuzzyPreview { snippet, lazy } => {
            push(out, if *snippet { "SNIPPET" } else { "PREVIEW" });
            push(out, if *lazy { " (LAZY=FUZZY)" } else { " (FUZZY)" });
        }
        FetchAttr::BinarySize { part } => {
            push(out, "BINARY.SIZE[");
            write_part(out, part);
            out.push(b']');
        }
        FetchAttr::BodySection {
            peek,
            section,
            partial,
        } => {
            push(out, if *peek { "BODY.PEEK[" } else { "BODY[" });
            write_section(out, section);
            out.push(b']');
            if let Some(p) = partial {
                push(out, &format!("<{}.{}>", p.origin, p.length));
            }
        }
    }
}

/// `section-spec` (RFC 3501 9), without the brackets. Also used by the session to echo the
/// section in a FETCH response (RFC 3501 7.4.2: `BODY[section]<origin>`).
pub fn write_section(out: &mut Vec<u8>, section: &Section) {
    for (i, p) in section.part.iter().enumerate() {
        if i > 0 {
            out.push(b'.');
        }
        push(out, &p.to_string());
    }
    let Some(text) = &section.text else {
        return;
    };
    if !section.part.is_empty() {
        out.push(b'.');
    }
    let fields = |out: &mut Vec<u8>, name: &str, list: &[String]| {
        push(out, name);
        push(out, " (");
        for (i, f) in list.iter().enumerate() {
            if i > 0 {
                out.push(b' ');
            }
            write_astring(out, f.as_bytes());
        }
        out.push(b')');
    };
    match text {
        SectionText::Header => push(out, "HEADER"),
        SectionText::Text => push(out, "TEXT"),
        SectionText::Mime => push(out, "MIME"),
        SectionText::HeaderFields(list) => fields(out, "HEADER.FIELDS", list),
        SectionText::HeaderFieldsNot(list) => fields(out, "HEADER.FIELDS.NOT", list),
    }
}

fn write_status_items(out: &mut Vec<u8>, items: &[StatusItem]) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(b' ');
        }
        push(
            out,
            match item {
                StatusItem::Messages => "MESSAGES",
                StatusItem::Recent => "RECENT",
                StatusItem::UidNext => "UIDNEXT",
                StatusItem::UidValidity => "UIDVALIDITY",
                StatusItem::Unseen => "UNSEEN",
                StatusItem::HighestModSeq => "HIGHESTMODSEQ",
                StatusItem::Size => "SIZE",
                StatusItem::Deleted => "DELETED",
                StatusItem::AppendLimit => "APPENDLIMIT",
                StatusItem::MailboxId => "MAILBOXID",
                StatusItem::DeletedStorage => "DELETED-STORAGE",
            },
        );
    }
}
