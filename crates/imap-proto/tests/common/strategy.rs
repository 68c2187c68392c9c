//! proptest strategies for [`Command`] values the decoder can produce.
//!
//! With `codec_safe`, values stay inside what imap-codec (RFC 3501 strictly, with the ID,
//! CONDSTORE and NAMESPACE extensions, and SORT/THREAD without ESORT) accepts: no NUL in
//! strings, atoms for SEARCH keywords, no STATUS SIZE, shallow SEARCH nesting, modest time zones.

use std::num::NonZeroU32;

use imap_proto::*;
use mail_types::{Flag, SeqBound, SeqRange, SeqSet};
use proptest::collection::vec;
use proptest::prelude::*;

pub fn tag() -> impl Strategy<Value = Tag> {
    "[A-Za-z0-9.$_\\-\\]]{1,8}".prop_map(Tag)
}

/// Bytes for an astring / string argument: atoms, text, and raw bytes.
pub fn bytes(codec_safe: bool) -> BoxedStrategy<Vec<u8>> {
    let raw = if codec_safe {
        vec(1u8..=255, 0..12).boxed()
    } else {
        vec(any::<u8>(), 0..12).boxed()
    };
    prop_oneof![
        "[A-Za-z0-9/._&,+-]{1,10}".prop_map(String::into_bytes),
        text(codec_safe).prop_map(String::into_bytes),
        raw,
        Just(b"NIL".to_vec()),
        Just(Vec::new()),
    ]
    .boxed()
}

pub fn text(codec_safe: bool) -> BoxedStrategy<String> {
    if codec_safe {
        "[^\u{0}]{0,10}".boxed()
    } else {
        any::<String>()
            .prop_map(|s| s.chars().take(12).collect())
            .boxed()
    }
}

fn atom() -> impl Strategy<Value = String> {
    "[A-Za-z0-9$_.+=-]{1,10}"
}

fn seq_bound() -> impl Strategy<Value = SeqBound> {
    prop_oneof![
        1 => Just(SeqBound::Star),
        4 => (1u32..=20).prop_map(|v| SeqBound::Value(NonZeroU32::new(v).unwrap())),
        1 => any::<NonZeroU32>().prop_map(SeqBound::Value),
    ]
}

pub fn seq_set() -> impl Strategy<Value = SeqSet> {
    vec(
        (seq_bound(), seq_bound()).prop_map(|(start, end)| SeqRange { start, end }),
        1..4,
    )
    .prop_map(|r| SeqSet::new(r).unwrap())
}

pub fn flag() -> impl Strategy<Value = Flag> {
    prop_oneof![
        Just(Flag::Seen),
        Just(Flag::Answered),
        Just(Flag::Flagged),
        Just(Flag::Deleted),
        Just(Flag::Draft),
        "[A-Za-z$][A-Za-z0-9$_.-]{0,10}".prop_map(|k| Flag::parse(&k).unwrap()),
    ]
}

fn date() -> impl Strategy<Value = Date> {
    (0u16..=9999, 1u8..=12, 1u8..=31).prop_map(|(year, month, day)| {
        let y = i64::from(year);
        let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        let max = match month {
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => 31,
        };
        Date {
            year,
            month,
            day: day.min(max),
        }
    })
}

pub fn date_time(codec_safe: bool) -> impl Strategy<Value = DateTime> {
    let max_offset: i16 = if codec_safe { 12 * 60 } else { 99 * 60 + 59 };
    // Local times from 1900 to 9998, so the written year always has four digits.
    (-2_208_988_800i64..253_370_764_800, -max_offset..=max_offset).prop_map(
        |(unix, offset_minutes)| DateTime {
            unix,
            offset_minutes,
        },
    )
}

fn search_leaf(codec_safe: bool) -> BoxedStrategy<SearchKey> {
    use SearchKey as K;
    let s = move || text(codec_safe);
    let keyword = move || {
        if codec_safe {
            atom().boxed()
        } else {
            prop_oneof![atom(), atom().prop_map(|a| format!("\\{a}")), text(false)].boxed()
        }
    };
    let modseq = if codec_safe {
        (0u64..i64::MAX as u64).boxed()
    } else {
        any::<u64>().boxed()
    };
    let leaves = prop_oneof![
        Just(K::All),
        Just(K::Answered),
        Just(K::Deleted),
        Just(K::Draft),
        Just(K::Flagged),
        Just(K::New),
        Just(K::Old),
        Just(K::Recent),
        Just(K::Seen),
        Just(K::Unanswered),
        Just(K::Undeleted),
        Just(K::Undraft),
        Just(K::Unflagged),
        Just(K::Unseen),
        s().prop_map(K::Bcc),
        s().prop_map(K::Body),
        s().prop_map(K::Cc),
        s().prop_map(K::From),
        s().prop_map(K::Subject),
        s().prop_map(K::Text),
        s().prop_map(K::To),
        (s(), s()).prop_map(|(f, v)| K::Header(f, v)),
        date().prop_map(K::Before),
        date().prop_map(K::On),
        date().prop_map(K::Since),
        date().prop_map(K::SentBefore),
        date().prop_map(K::SentOn),
        date().prop_map(K::SentSince),
        keyword().prop_map(K::Keyword),
        keyword().prop_map(K::Unkeyword),
        any::<u32>().prop_map(K::Larger),
        any::<u32>().prop_map(K::Smaller),
        seq_set().prop_map(K::Uid),
        seq_set().prop_map(K::SequenceSet),
        modseq.prop_map(K::ModSeq),
    ];
    if codec_safe {
        return leaves.boxed();
    }
    // RFC 5182 `$`, RFC 5032 OLDER/YOUNGER and RFC 8514's keys, which imap-codec does not read.
    let extensions = prop_oneof![
        Just(K::SavedResult),
        (1..=u32::MAX).prop_map(K::Older),
        (1..=u32::MAX).prop_map(K::Younger),
        date().prop_map(K::SavedBefore),
        date().prop_map(K::SavedOn),
        date().prop_map(K::SavedSince),
        Just(K::SaveDateSupported),
        "[A-Za-z0-9_-]{1,40}".prop_map(K::EmailId),
        "[A-Za-z0-9_-]{1,40}".prop_map(K::ThreadId),
    ];
    prop_oneof![6 => leaves, 1 => extensions].boxed()
}

/// A message set; `$` (RFC 5182) only outside `codec_safe`.
fn message_set(codec_safe: bool) -> BoxedStrategy<MessageSet> {
    if codec_safe {
        return seq_set().prop_map(MessageSet::Numbers).boxed();
    }
    prop_oneof![
        4 => seq_set().prop_map(MessageSet::Numbers),
        1 => Just(MessageSet::SavedResult),
    ]
    .boxed()
}

pub fn search_key(codec_safe: bool) -> impl Strategy<Value = SearchKey> {
    let depth = if codec_safe { 3 } else { 6 };
    search_leaf(codec_safe).prop_recursive(depth, 24, 3, |inner| {
        prop_oneof![
            inner.clone().prop_map(|k| SearchKey::Not(Box::new(k))),
            (inner.clone(), inner.clone())
                .prop_map(|(a, b)| SearchKey::Or(Box::new(a), Box::new(b))),
            vec(inner, 1..4).prop_map(SearchKey::And),
        ]
    })
}

fn section(codec_safe: bool) -> impl Strategy<Value = Section> {
    let fields = move || vec(text(codec_safe), 1..4);
    (
        vec(any::<NonZeroU32>().prop_map(NonZeroU32::get), 0..3),
        prop_oneof![
            Just(None),
            Just(Some(SectionText::Header)),
            Just(Some(SectionText::Text)),
            Just(Some(SectionText::Mime)),
            fields().prop_map(|f| Some(SectionText::HeaderFields(f))),
            fields().prop_map(|f| Some(SectionText::HeaderFieldsNot(f))),
        ],
    )
        .prop_map(|(part, text)| {
            // MIME is only valid after a part number.
            let text = match text {
                Some(SectionText::Mime) if part.is_empty() => None,
                t => t,
            };
            Section { part, text }
        })
}

fn fetch_attr(codec_safe: bool) -> BoxedStrategy<FetchAttr> {
    use FetchAttr as F;
    let items = prop_oneof![
        Just(F::Envelope),
        Just(F::Flags),
        Just(F::InternalDate),
        Just(F::Rfc822),
        Just(F::Rfc822Header),
        Just(F::Rfc822Size),
        Just(F::Rfc822Text),
        Just(F::Body),
        Just(F::BodyStructure),
        Just(F::Uid),
        Just(F::ModSeq),
        (
            any::<bool>(),
            section(codec_safe),
            proptest::option::of((any::<u32>(), 1u32..)),
        )
            .prop_map(|(peek, section, partial)| F::BodySection {
                peek,
                section,
                partial: partial.map(|(origin, length)| Partial { origin, length }),
            }),
    ];
    if codec_safe {
        return items.boxed();
    }
    // RFC 8514 SAVEDATE, which imap-codec does not read.
    prop_oneof![
        12 => items,
        1 => Just(F::SaveDate),
        1 => Just(F::EmailId),
        1 => Just(F::ThreadId),
        1 => any::<bool>().prop_map(|lazy| F::Preview { lazy }),
        1 => (any::<bool>(), any::<bool>())
            .prop_map(|(snippet, lazy)| F::FuzzyPreview { snippet, lazy }),
        1 => (
            any::<bool>(),
            vec(1u32.., 0..4),
            proptest::option::of((any::<u32>(), 1u32..)),
        )
            .prop_map(|(peek, part, partial)| F::Binary {
                peek,
                part,
                partial: partial.map(|(origin, length)| Partial { origin, length }),
            }),
        1 => vec(1u32.., 0..4).prop_map(|part| F::BinarySize { part }),
    ]
    .boxed()
}

fn status_item(codec_safe: bool) -> BoxedStrategy<StatusItem> {
    use StatusItem as S;
    let mut items = vec![
        S::Messages,
        S::Recent,
        S::UidNext,
        S::UidValidity,
        S::Unseen,
        S::HighestModSeq,
        S::Deleted,
    ];
    if !codec_safe {
        items.push(S::Size);
        items.push(S::AppendLimit);
        items.push(S::MailboxId);
        items.push(S::DeletedStorage);
    }
    proptest::sample::select(items).boxed()
}

/// Canonical base64 (RFC 4648 4) of arbitrary bytes, for SASL-IR.
pub fn base64(data: &[u8]) -> Vec<u8> {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::new();
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(A[((n >> (18 - 6 * i)) & 63) as usize]);
            } else {
                out.push(b'=');
            }
        }
    }
    out
}

pub fn append_header(codec_safe: bool) -> impl Strategy<Value = AppendHeader> {
    // RFC 8508 REPLACE only outside `codec_safe`: imap-codec does not read it.
    let replace = if codec_safe {
        Just(None).boxed()
    } else {
        proptest::option::of(
            (any::<bool>(), seq_bound()).prop_map(|(uid, message)| ReplaceTarget { uid, message }),
        )
        .boxed()
    };
    // RFC 6855 `UTF8 (~{n})` only outside `codec_safe` either.
    let utf8 = if codec_safe {
        Just(false).boxed()
    } else {
        any::<bool>().boxed()
    };
    (
        bytes(codec_safe),
        vec(flag(), 0..3),
        proptest::option::of(date_time(codec_safe)),
        replace,
        utf8,
    )
        .prop_map(|(mailbox, flags, date, replace, utf8)| AppendHeader {
            mailbox: MailboxArg(mailbox),
            flags,
            date,
            replace,
            utf8,
        })
}

/// RFC 4731 ESEARCH / RFC 5267 ESORT return options; imap-codec does not read them.
fn search_returns(codec_safe: bool) -> BoxedStrategy<Option<Vec<SearchReturn>>> {
    if codec_safe {
        return Just(None).boxed();
    }
    // At most one of ALL and PARTIAL (RFC 5267 4.4).
    let range = prop_oneof![
        Just(None),
        Just(Some(SearchReturn::All)),
        (1u32..1000, 1u32..1000).prop_map(|(a, b)| Some(SearchReturn::Partial {
            first: a.min(b),
            last: a.max(b)
        })),
    ];
    let others = proptest::sample::subsequence(
        vec![
            SearchReturn::Min,
            SearchReturn::Max,
            SearchReturn::Count,
            SearchReturn::Save,
            SearchReturn::Context,
            SearchReturn::Update,
        ],
        0..=6,
    );
    proptest::option::of((range, others).prop_map(|(range, mut others)| {
        if let Some(r) = range {
            others.insert(others.len() / 2, r);
        }
        others
    }))
    .boxed()
}

pub fn command_body(codec_safe: bool) -> impl Strategy<Value = CommandBody> {
    use CommandBody as C;
    let b = move || bytes(codec_safe);
    let mb = move || b().prop_map(MailboxArg);
    let pat = move || b().prop_map(ListPattern);
    let t = move || text(codec_safe);
    let simple = prop_oneof![
        Just(C::Capability),
        Just(C::Noop),
        Just(C::Logout),
        Just(C::StartTls),
        Just(C::Namespace),
        Just(C::Idle),
        Just(C::Check),
        Just(C::Close),
        Just(C::Unselect),
        Just(C::Expunge),
    ];
    // RFC 4978 COMPRESS, which imap-codec is not built to read.
    let simple = if codec_safe {
        simple.boxed()
    } else {
        prop_oneof![
            10 => simple,
            1 => "[A-Z0-9]{1,10}".prop_map(|mechanism| C::Compress { mechanism }),
            // RFC 9208 QUOTA.
            1 => bytes(false).prop_map(|root| C::GetQuota { root }),
            1 => bytes(false).prop_map(|m| C::GetQuotaRoot { mailbox: MailboxArg(m) }),
            1 => (bytes(false), vec(("[A-Z]{1,12}", any::<u64>()), 0..3))
                .prop_map(|(root, limits)| C::SetQuota { root, limits }),
            // RFC 5267 CANCELUPDATE, with tags as clients make them.
            1 => vec("[A-Za-z0-9.]{1,8}", 1..4).prop_map(C::CancelUpdate),
        ]
        .boxed()
    };
    let auth = (
        "[A-Z0-9_-]{1,12}",
        proptest::option::of(vec(any::<u8>(), 0..20)),
    )
        .prop_map(|(mechanism, ir)| C::Authenticate {
            mechanism,
            initial_response: ir.map(|d| base64(&d)),
        });
    // RFC 7162 modifiers (QRESYNC, CHANGEDSINCE, UNCHANGEDSINCE) only outside `codec_safe`.
    let qresync = if codec_safe {
        Just(None).boxed()
    } else {
        proptest::option::of(
            (
                1u32..,
                1u64..,
                proptest::option::of(seq_set()),
                proptest::option::of((seq_set(), seq_set())),
            )
                .prop_map(|(uid_validity, modseq, known_uids, seq_match)| {
                    QresyncParams {
                        uid_validity,
                        modseq,
                        known_uids,
                        seq_match,
                    }
                }),
        )
        .boxed()
    };
    let changed_since = if codec_safe {
        Just((None, false)).boxed()
    } else {
        proptest::option::of((1u64.., any::<bool>()))
            .prop_map(|o| (o.map(|(n, _)| n), o.is_some_and(|(_, v)| v)))
            .boxed()
    };
    let unchanged_since = if codec_safe {
        Just(None).boxed()
    } else {
        proptest::option::of(any::<u64>()).boxed()
    };
    // RFC 6154 3 `USE (...)`, which imap-codec does not read.
    let uses = if codec_safe {
        Just(Vec::new()).boxed()
    } else {
        vec(atom().prop_map(|a| format!("\\{a}")), 0..3).boxed()
    };
    let mailbox_ops = (0u8..7, mb(), mb(), any::<bool>(), qresync, uses).prop_map(
        |(op, a, b, condstore, qresync, uses)| {
            let params = SelectParams { condstore, qresync };
            match op {
                0 => C::Select { mailbox: a, params },
                1 => C::Examine { mailbox: a, params },
                2 => C::Create { mailbox: a, uses },
                3 => C::Delete { mailbox: a },
                4 => C::Subscribe { mailbox: a },
                5 => C::Unsubscribe { mailbox: a },
                _ => C::Rename { from: a, to: b },
            }
        },
    );
    let lists = (any::<bool>(), pat(), pat()).prop_map(|(list, reference, pattern)| {
        if list {
            C::List { reference, pattern }
        } else {
            C::Lsub { reference, pattern }
        }
    });
    // RFC 5258 LIST-EXTENDED; imap-codec does not read it, so only outside `codec_safe`.
    let extended_lists = (
        pat(),
        vec(pat(), 1..4),
        any::<[bool; 7]>(),
        proptest::option::of(vec(status_item(codec_safe), 1..4)),
    )
        .prop_map(|(reference, patterns, o, status)| C::ListExtended {
            select: ListSelect {
                subscribed: o[0],
                remote: o[1],
                // RECURSIVEMATCH alone is BAD (RFC 5258 3.1).
                recursive_match: o[2] && (o[0] || o[3]),
                special_use: o[3],
            },
            reference,
            patterns,
            returns: ListReturn {
                subscribed: o[4],
                children: o[5],
                special_use: o[6],
                status,
            },
        });
    let lists = if codec_safe {
        lists.boxed()
    } else {
        prop_oneof![lists, extended_lists].boxed()
    };
    let status = (mb(), vec(status_item(codec_safe), 1..5))
        .prop_map(|(mailbox, items)| C::Status { mailbox, items });
    let id = proptest::option::of(vec((t(), proptest::option::of(t())), 0..4)).prop_map(C::Id);
    let enable = vec("[A-Z0-9=+-]{1,12}", 1..4).prop_map(C::Enable);
    let login = (b(), b()).prop_map(|(username, password)| C::Login { username, password });
    let search = (
        any::<bool>(),
        search_returns(codec_safe),
        proptest::option::of("[A-Z0-9-]{1,10}"),
        search_key(codec_safe),
    )
        .prop_map(|(uid, returns, charset, criteria)| C::Search {
            uid,
            returns,
            charset,
            criteria,
        });
    // RFC 5256 SORT and THREAD, which imap-codec reads (ESORT's RETURN it does not).
    let sort_key = proptest::sample::select(vec![
        SortKey::Arrival,
        SortKey::Cc,
        SortKey::Date,
        SortKey::From,
        SortKey::Size,
        SortKey::Subject,
        SortKey::To,
        SortKey::DisplayFrom,
        SortKey::DisplayTo,
    ]);
    let sort = (
        any::<bool>(),
        search_returns(codec_safe),
        vec(
            (any::<bool>(), sort_key).prop_map(|(reverse, key)| SortCriterion { reverse, key }),
            1..5,
        ),
        "[A-Z0-9-]{1,10}",
        search_key(codec_safe),
    )
        .prop_map(|(uid, returns, criteria, charset, search)| C::Sort {
            uid,
            returns,
            criteria,
            charset,
            search,
        });
    let thread = (
        any::<bool>(),
        proptest::sample::select(vec![
            ThreadAlgorithm::OrderedSubject,
            ThreadAlgorithm::References,
            ThreadAlgorithm::Refs,
        ]),
        "[A-Z0-9-]{1,10}",
        search_key(codec_safe),
    )
        .prop_map(|(uid, algorithm, charset, search)| C::Thread {
            uid,
            algorithm,
            charset,
            search,
        });
    let fetch = (
        any::<bool>(),
        message_set(codec_safe),
        vec(fetch_attr(codec_safe), 1..5),
        changed_since,
    )
        .prop_map(|(uid, set, items, (changed_since, vanished))| C::Fetch {
            uid,
            set,
            items,
            changed_since,
            // VANISHED only with UID FETCH and CHANGEDSINCE (RFC 7162 3.2.6).
            vanished: vanished && uid,
        });
    let store = (
        any::<bool>(),
        message_set(codec_safe),
        0u8..3,
        any::<bool>(),
        vec(flag(), 0..4),
        unchanged_since,
    )
        .prop_map(
            |(uid, set, action, silent, flags, unchanged_since)| C::Store {
                uid,
                set,
                action: match action {
                    0 => StoreAction::Replace,
                    1 => StoreAction::Add,
                    _ => StoreAction::Remove,
                },
                silent,
                flags,
                unchanged_since,
            },
        );
    let copy_move = (0u8..5, any::<bool>(), message_set(codec_safe), mb()).prop_map(
        |(op, uid, set, mailbox)| match op {
            0 | 1 => C::Copy { uid, set, mailbox },
            2 | 3 => C::Move { uid, set, mailbox },
            _ => C::UidExpunge(set),
        },
    );
    prop_oneof![
        1 => simple,
        1 => auth,
        1 => mailbox_ops,
        1 => lists,
        1 => status,
        1 => id,
        1 => enable,
        1 => login,
        3 => search,
        1 => sort,
        1 => thread,
        3 => fetch,
        1 => store,
        1 => copy_move,
    ]
}

pub fn command(codec_safe: bool) -> impl Strategy<Value = Command> {
    (tag(), command_body(codec_safe)).prop_map(|(tag, body)| Command { tag, body })
}
