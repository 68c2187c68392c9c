//! THREAD and UID THREAD (RFC 5256 4): ORDEREDSUBJECT here, REFERENCES and REFS in
//! `references.rs`. The messages are those SEARCH would find; their keys come from the same
//! cache as SORT's, so a warm THREAD reads no mail file.

use imap_proto::{SearchKey, SortCriterion, SortKey, ThreadAlgorithm};

use crate::cmd::sort::{Needs, Row, Want, load_rows, sort_order, subject};
use crate::session::{Reply, Session};

pub(crate) mod msgid;
mod references;

use references::{ThreadMsg, Threads};

impl Session {
    /// THREAD and UID THREAD: `* THREAD` with the thread lists (RFC 5256 5), written as
    /// Dovecot writes them.
    pub(crate) fn cmd_thread(
        &mut self,
        uid_command: bool,
        algorithm: ThreadAlgorithm,
        charset: &str,
        search: &SearchKey,
    ) -> Reply {
        let (view, found) = match self.matching(Some(charset), search) {
            Ok(m) => m,
            Err(reply) => return reply,
        };
        let needs = Needs {
            info: false,
            keys: Some(Want {
                subject: algorithm != ThreadAlgorithm::Refs,
                ids: algorithm != ThreadAlgorithm::OrderedSubject,
                ..Want::default()
            }),
        };
        let rows = load_rows(view.mailbox().as_ref(), &found, needs);
        let mut line = b"* THREAD".to_vec();
        let mut threads = Vec::new();
        match algorithm {
            ThreadAlgorithm::OrderedSubject => ordered_subject(&rows, uid_command, &mut threads),
            ThreadAlgorithm::References | ThreadAlgorithm::Refs => {
                let msgs: Vec<ThreadMsg<'_>> = rows
                    .iter()
                    .map(|r| ThreadMsg {
                        num: if uid_command { r.uid } else { r.seq },
                        uid: r.uid,
                        date: r.date,
                        message_id: r.keys.message_id.as_deref(),
                        references: &r.keys.references,
                        subject: r.keys.subject.as_deref(),
                        reply_or_forward: r.keys.reply_or_forward,
                    })
                    .collect();
                Threads::build(&msgs, algorithm).write(&mut threads);
            }
        }
        if !threads.is_empty() {
            line.push(b' ');
            line.extend_from_slice(&threads);
        }
        line.extend_from_slice(b"\r\n");
        self.out.extend_from_slice(&line);
        Reply::ok("Thread completed.")
    }
}

/// ORDEREDSUBJECT (RFC 5256 4): messages sorted by base subject, then date; each run of one
/// subject is a thread whose first message is the parent of the others; threads ordered by the
/// date of their first message. A missing subject counts as empty.
fn ordered_subject(rows: &[Row], uid: bool, out: &mut Vec<u8>) {
    let by = |key| SortCriterion {
        reverse: false,
        key,
    };
    let order = sort_order(rows, &[by(SortKey::Subject), by(SortKey::Date)]);
    let rows: Vec<&Row> = order.into_iter().filter_map(|i| rows.get(i)).collect();
    // (date of the first message, its number, the run's rows)
    let mut threads: Vec<(i64, u32, &[&Row])> = Vec::new();
    let mut start = 0;
    while let Some(first) = rows.get(start) {
        let s = subject(first);
        let mut end = start + 1;
        while rows.get(end).is_some_and(|r| subject(r) == s) {
            end += 1;
        }
        threads.push((
            first.date,
            num(first, uid),
            rows.get(start..end).unwrap_or(&[]),
        ));
        start = end;
    }
    threads.sort_by_key(|&(date, n, _)| (date, n));
    for (_, _, run) in threads {
        match run {
            [one] => out.extend_from_slice(format!("({})", num(one, uid)).as_bytes()),
            [a, b] => {
                out.extend_from_slice(format!("({} {})", num(a, uid), num(b, uid)).as_bytes())
            }
            [first, rest @ ..] => {
                out.extend_from_slice(format!("({} ", num(first, uid)).as_bytes());
                for r in rest {
                    out.extend_from_slice(format!("({})", num(r, uid)).as_bytes());
                }
                out.push(b')');
            }
            [] => {}
        }
    }
}

fn num(r: &Row, uid: bool) -> u32 {
    if uid { r.uid } else { r.seq }
}
