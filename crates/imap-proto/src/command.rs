//! The values a client command decodes into (RFC 3501 6 and 9, plus the extensions Columba
//! speaks). These types are the contract between the decoder and the session layer: the decoder
//! produces them, the session layer consumes them; neither looks at the other's internals.

use mail_types::{Flag, SeqSet};

/// A command tag (RFC 3501 9, `tag`): any ASTRING-CHAR except `+`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Tag(pub String);

impl Tag {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A complete command with its tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub tag: Tag,
    pub body: CommandBody,
}

/// A mailbox argument exactly as sent (an `astring`, RFC 3501 9 `mailbox`), before modified
/// UTF-7 decoding: the session decodes it with [`crate::utf7::decode`] (or accepts raw UTF-8 once
/// UTF8=ACCEPT is enabled), because only the session knows which rules apply.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct MailboxArg(pub Vec<u8>);

/// A `list-mailbox` pattern or reference name (may hold `*` and `%`), raw like [`MailboxArg`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ListPattern(pub Vec<u8>);

/// A calendar date as in SEARCH's `date` (RFC 3501 9: `date-day "-" date-month "-" date-year`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date {
    pub year: u16,
    /// 1..=12
    pub month: u8,
    /// 1..=31
    pub day: u8,
}

/// A `date-time` (RFC 3501 9): APPEND's internal date and the INTERNALDATE FETCH item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct DateTime {
    /// Seconds since the Unix epoch, UTC.
    pub unix: i64,
    /// The zone the client wrote, in minutes east of UTC (`-0730` is -450).
    pub offset_minutes: i16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandBody {
    // --- any state (RFC 3501 6.1) ---
    Capability,
    Noop,
    Logout,
    /// RFC 2971
    Id(Option<Vec<(String, Option<String>)>>),

    // --- not authenticated (RFC 3501 6.2) ---
    StartTls,
    /// `mechanism` is upper-cased. `initial_response` is the SASL-IR argument (RFC 4959):
    /// `Some(vec![])` for `=`, still base64-encoded otherwise.
    Authenticate {
        mechanism: String,
        initial_response: Option<Vec<u8>>,
    },
    Login {
        username: Vec<u8>,
        password: Vec<u8>,
    },

    // --- authenticated (RFC 3501 6.3) ---
    Select {
        mailbox: MailboxArg,
        params: SelectParams,
    },
    Examine {
        mailbox: MailboxArg,
        params: SelectParams,
    },
    /// `uses`: the special-use attributes of RFC 6154 3 `(USE (...))`, as written (`\\Sent`);
    /// empty without the parameter.
    Create {
        mailbox: MailboxArg,
        uses: Vec<String>,
    },
    Delete {
        mailbox: MailboxArg,
    },
    Rename {
        from: MailboxArg,
        to: MailboxArg,
    },
    Subscribe {
        mailbox: MailboxArg,
    },
    Unsubscribe {
        mailbox: MailboxArg,
    },
    List {
        reference: ListPattern,
        pattern: ListPattern,
    },
    Lsub {
        reference: ListPattern,
        pattern: ListPattern,
    },
    /// LIST with selection options, several patterns or return options (RFC 5258 3, RFC 5819,
    /// RFC 6154 5); a LIST without any of them is [`CommandBody::List`].
    ListExtended {
        select: ListSelect,
        reference: ListPattern,
        patterns: Vec<ListPattern>,
        returns: ListReturn,
    },
    Status {
        mailbox: MailboxArg,
        items: Vec<StatusItem>,
    },
    /// The message literal itself is never part of this value: see [`crate::Decoded::AppendStart`].
    Append(AppendHeader),
    /// RFC 2342
    Namespace,
    /// RFC 5161; capability names upper-cased.
    Enable(Vec<String>),
    /// RFC 2177
    Idle,
    /// RFC 4978; the mechanism upper-cased.
    Compress {
        mechanism: String,
    },
    /// RFC 9208 4.1.1
    GetQuota {
        root: Vec<u8>,
    },
    /// RFC 9208 4.1.2
    GetQuotaRoot {
        mailbox: MailboxArg,
    },
    /// RFC 9208 4.1.3; resource names upper-cased.
    SetQuota {
        root: Vec<u8>,
        limits: Vec<(String, u64)>,
    },

    // --- selected (RFC 3501 6.4) ---
    Check,
    Close,
    /// RFC 3691
    Unselect,
    /// RFC 5267 4.3.5: stop the updates of the searches with these tags.
    CancelUpdate(Vec<String>),
    Expunge,
    /// RFC 4315 2.1
    UidExpunge(MessageSet),
    Search {
        uid: bool,
        /// RFC 4731 `RETURN (...)`: `None` asks for a classic `* SEARCH`; `Some` (even empty,
        /// which means `ALL`) for `* ESEARCH`.
        returns: Option<Vec<SearchReturn>>,
        charset: Option<String>,
        criteria: SearchKey,
    },
    /// RFC 5256 SORT, with RFC 5957's DISPLAYFROM/DISPLAYTO keys and RFC 5267 ESORT's
    /// `RETURN (...)`.
    Sort {
        uid: bool,
        /// ESORT: `None` asks for a classic `* SORT`, `Some` (even empty, meaning `ALL`) for
        /// `* ESEARCH` with the numbers in sort order.
        returns: Option<Vec<SearchReturn>>,
        /// At least one criterion, as written (a repeated key is kept; it cannot change the
        /// order).
        criteria: Vec<SortCriterion>,
        charset: String,
        search: SearchKey,
    },
    /// RFC 5256 THREAD (and REFS, as Dovecot offers it).
    Thread {
        uid: bool,
        algorithm: ThreadAlgorithm,
        charset: String,
        search: SearchKey,
    },
    Fetch {
        uid: bool,
        set: MessageSet,
        items: Vec<FetchAttr>,
        /// RFC 7162 3.1.4.1 `(CHANGEDSINCE n)`: only messages whose mod-sequence is above n.
        changed_since: Option<u64>,
        /// RFC 7162 3.2.6 `VANISHED` (UID FETCH with CHANGEDSINCE only).
        vanished: bool,
    },
    Store {
        uid: bool,
        set: MessageSet,
        action: StoreAction,
        silent: bool,
        flags: Vec<Flag>,
        /// RFC 7162 3.1.3 `(UNCHANGEDSINCE n)`.
        unchanged_since: Option<u64>,
    },
    Copy {
        uid: bool,
        set: MessageSet,
        mailbox: MailboxArg,
    },
    /// RFC 6851
    Move {
        uid: bool,
        set: MessageSet,
        mailbox: MailboxArg,
    },
}

/// The messages a FETCH, STORE, COPY, MOVE or UID EXPUNGE works on: numbers, or `$`, the
/// result the last `SEARCH RETURN (SAVE)` kept (RFC 5182 2.1, `seq-last-command`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageSet {
    Numbers(SeqSet),
    SavedResult,
}

impl std::fmt::Display for MessageSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MessageSet::Numbers(set) => set.fmt(f),
            MessageSet::SavedResult => f.write_str("$"),
        }
    }
}

/// Parameters of SELECT/EXAMINE (RFC 4466 2.1); empty for plain RFC 3501 clients.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SelectParams {
    /// RFC 7162 3.1.8 `(CONDSTORE)`
    pub condstore: bool,
    /// RFC 7162 3.2.5 `(QRESYNC (...))`
    pub qresync: Option<QresyncParams>,
}

/// What a client knows of a mailbox it resynchronizes with QRESYNC (RFC 7162 3.2.5).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QresyncParams {
    pub uid_validity: u32,
    pub modseq: u64,
    /// The UIDs the client knows; absent means all.
    pub known_uids: Option<SeqSet>,
    /// Message sequence numbers and the UIDs the client has for them, to narrow the search for
    /// expunges.
    pub seq_match: Option<(SeqSet, SeqSet)>,
}

/// What precedes the message literal of an APPEND (RFC 3501 6.3.11), or of a REPLACE (RFC
/// 8508 3.2, 3.3), whose message goes where an APPEND's would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppendHeader {
    pub mailbox: MailboxArg,
    pub flags: Vec<Flag>,
    pub date: Option<DateTime>,
    /// For REPLACE: the message of the selected mailbox the new one replaces.
    pub replace: Option<ReplaceTarget>,
    /// The message came as RFC 6855 4's `UTF8 (~{n})`: UTF-8 header fields, from a client
    /// that enabled UTF8=ACCEPT.
    pub utf8: bool,
}

/// The message a REPLACE removes: `REPLACE seq-number` or `UID REPLACE uid` (RFC 8508 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReplaceTarget {
    pub uid: bool,
    pub message: mail_types::SeqBound,
}

/// What an ESEARCH response reports (RFC 4731 3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SearchReturn {
    Min,
    Max,
    All,
    Count,
    /// RFC 5182 2.1: keep the result for `$`.
    Save,
    /// RFC 5267 4.2: a hint that the search will be used again; nothing to return.
    Context,
    /// RFC 5267 4.3: keep telling the client how the result changes (ADDTO/REMOVEFROM).
    Update,
    /// RFC 5267 4.4: results `first` to `last` (1-based, `first <= last`).
    Partial {
        first: u32,
        last: u32,
    },
}

/// One `sort-criterion` (RFC 5256 3): a key, optionally reversed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SortCriterion {
    pub reverse: bool,
    pub key: SortKey,
}

/// `sort-key` (RFC 5256 3, RFC 5957 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SortKey {
    Arrival,
    Cc,
    Date,
    From,
    Size,
    Subject,
    To,
    DisplayFrom,
    DisplayTo,
}

impl SortKey {
    /// The key as the grammar spells it.
    pub fn name(self) -> &'static str {
        match self {
            SortKey::Arrival => "ARRIVAL",
            SortKey::Cc => "CC",
            SortKey::Date => "DATE",
            SortKey::From => "FROM",
            SortKey::Size => "SIZE",
            SortKey::Subject => "SUBJECT",
            SortKey::To => "TO",
            SortKey::DisplayFrom => "DISPLAYFROM",
            SortKey::DisplayTo => "DISPLAYTO",
        }
    }
}

/// A THREAD algorithm (RFC 5256 3; `REFS` is draft-ietf-morg-inthread's, as Dovecot has it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ThreadAlgorithm {
    OrderedSubject,
    References,
    Refs,
}

impl ThreadAlgorithm {
    pub fn name(self) -> &'static str {
        match self {
            ThreadAlgorithm::OrderedSubject => "ORDEREDSUBJECT",
            ThreadAlgorithm::References => "REFERENCES",
            ThreadAlgorithm::Refs => "REFS",
        }
    }
}

/// LIST selection options (RFC 5258 3.1; `SPECIAL-USE` from RFC 6154 5.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ListSelect {
    pub subscribed: bool,
    pub remote: bool,
    pub recursive_match: bool,
    pub special_use: bool,
}

/// LIST return options (RFC 5258 3.2; `STATUS` from RFC 5819; `SPECIAL-USE` from RFC 6154 5.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct ListReturn {
    pub subscribed: bool,
    pub children: bool,
    pub special_use: bool,
    pub status: Option<Vec<StatusItem>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StatusItem {
    Messages,
    Recent,
    UidNext,
    UidValidity,
    Unseen,
    /// RFC 7162 3.1.9
    HighestModSeq,
    /// RFC 8438
    Size,
    /// RFC 7889 3.1
    AppendLimit,
    /// RFC 8474 4.3
    MailboxId,
    /// RFC 9208 4.2
    DeletedStorage,
    /// RFC 9051 6.3.11
    Deleted,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreAction {
    /// `FLAGS`
    Replace,
    /// `+FLAGS`
    Add,
    /// `-FLAGS`
    Remove,
}

/// A FETCH data item (RFC 3501 6.4.5). The macros ALL, FAST and FULL are expanded by the decoder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchAttr {
    Envelope,
    Flags,
    InternalDate,
    /// `RFC822`: like `BODY[]`, and sets `\Seen`.
    Rfc822,
    /// `RFC822.HEADER`: like `BODY.PEEK[HEADER]`.
    Rfc822Header,
    Rfc822Size,
    /// `RFC822.TEXT`: like `BODY[TEXT]`, and sets `\Seen`.
    Rfc822Text,
    /// `BODY`: the non-extensible body structure.
    Body,
    BodyStructure,
    Uid,
    /// `BODY[section]<partial>` and `BODY.PEEK[...]`.
    BodySection {
        peek: bool,
        section: Section,
        partial: Option<Partial>,
    },
    /// RFC 7162 3.1.4.1
    ModSeq,
    /// RFC 8514 4.2
    SaveDate,
    /// RFC 8474 5.3
    EmailId,
    /// RFC 8474 5.3
    ThreadId,
    /// RFC 8970 3: `PREVIEW`, or `PREVIEW (LAZY)` (4.1), which may answer NIL rather than wait.
    Preview {
        lazy: bool,
    },
    /// RFC 3516 4.2 `BINARY[part]<partial>` and `BINARY.PEEK[...]`: the part's body with its
    /// transfer encoding removed; `part` empty is the whole message.
    Binary {
        peek: bool,
        part: Vec<u32>,
        partial: Option<Partial>,
    },
    /// RFC 3516 4.2 `BINARY.SIZE[part]`.
    BinarySize {
        part: Vec<u32>,
    },
    /// The preview's draft forms that Dovecot answers (SNIPPET=FUZZY, PREVIEW=FUZZY):
    /// `SNIPPET (FUZZY)` or `PREVIEW (FUZZY)`, `LAZY=FUZZY` for lazy; answered
    /// `(FUZZY "text")`.
    FuzzyPreview {
        snippet: bool,
        lazy: bool,
    },
}

/// `<origin.octets>` of a partial fetch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Partial {
    pub origin: u32,
    pub length: u32,
}

/// A body section specifier (RFC 3501 6.4.5 / 9 `section`). `part` empty means the whole message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Section {
    /// Part numbers, each >= 1 (`1.2.3`).
    pub part: Vec<u32>,
    pub text: Option<SectionText>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionText {
    Header,
    /// Field names as the client wrote them (the response echoes them).
    HeaderFields(Vec<String>),
    HeaderFieldsNot(Vec<String>),
    Text,
    /// Only valid after a part number.
    Mime,
}

/// A search key (RFC 3501 6.4.4). String arguments are already converted to UTF-8 from the
/// command's CHARSET. A list of keys (implicit AND, also from parentheses) is `And`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SearchKey {
    All,
    Answered,
    Bcc(String),
    Before(Date),
    Body(String),
    Cc(String),
    Deleted,
    Draft,
    Flagged,
    From(String),
    /// Field name, then the string to find (empty matches any message with the field).
    Header(String, String),
    /// The keyword as written; an invalid keyword simply matches nothing.
    Keyword(String),
    Larger(u32),
    New,
    Not(Box<SearchKey>),
    Old,
    On(Date),
    Or(Box<SearchKey>, Box<SearchKey>),
    Recent,
    Seen,
    SentBefore(Date),
    SentOn(Date),
    SentSince(Date),
    Since(Date),
    Smaller(u32),
    Subject(String),
    Text(String),
    To(String),
    Uid(SeqSet),
    Unanswered,
    Undeleted,
    Undraft,
    Unflagged,
    Unkeyword(String),
    Unseen,
    SequenceSet(SeqSet),
    And(Vec<SearchKey>),
    /// RFC 7162 3.1.5 `MODSEQ`
    ModSeq(u64),
    /// RFC 5182 `$` (and `UID $`): the messages the last `SEARCH RETURN (SAVE)` kept.
    SavedResult,
    /// RFC 5032 `OLDER n`: INTERNALDATE at least n seconds ago.
    Older(u32),
    /// RFC 5032 `YOUNGER n`: INTERNALDATE at most n seconds ago.
    Younger(u32),
    /// RFC 8514 4.3: the save date's day, like BEFORE/ON/SINCE for INTERNALDATE.
    SavedBefore(Date),
    SavedOn(Date),
    SavedSince(Date),
    /// RFC 8514 4.3: every message where the mailbox keeps save dates, none elsewhere.
    SaveDateSupported,
    /// RFC 8474 6: the message with this EMAILID (an `objectid`).
    EmailId(String),
    /// RFC 8474 6: the messages with this THREADID.
    ThreadId(String),
}
