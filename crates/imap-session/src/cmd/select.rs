use std::sync::Arc;

use imap_proto::response::{Code, Status, status_line, write_flag_list, write_mailbox};
use imap_proto::{MailboxArg, QresyncParams, SelectParams};
use mail_store::{ChangeListener, MailboxView};
use mail_types::{Flag, Keyword, SystemFlags};
use tokio::sync::Notify;

use crate::session::{Reply, Selected, Session, State, Wakeup};

impl Session {
    /// SELECT and EXAMINE (RFC 3501 6.3.1, 6.3.2). Any previously selected mailbox is closed first
    /// (without expunging, and said so with `OK [CLOSED]`, RFC 7162 3.2.11), so a failed SELECT
    /// leaves the session in the authenticated state.
    ///
    /// With CONDSTORE enabled the mailbox's HIGHESTMODSEQ is announced (RFC 7162 3.1.2.1). The
    /// QRESYNC parameter (3.2.5) also sends what changed since the client's mod-sequence: the
    /// UIDs expunged since as `VANISHED (EARLIER)`, then a FETCH of each changed message.
    pub(crate) fn cmd_select(
        &mut self,
        arg: &MailboxArg,
        params: SelectParams,
        read_only: bool,
    ) -> Reply {
        if params.qresync.is_some() && !self.qresync {
            return Reply::bad("QRESYNC parameter without ENABLE QRESYNC.");
        }
        // RFC 5182 2.1: `$` starts empty in every newly selected mailbox.
        self.saved_result.clear();
        // RFC 5267 4.3: updates cease when the mailbox is no longer selected.
        self.search_contexts.clear();
        let user = match std::mem::replace(&mut self.state, State::Logout) {
            State::Authenticated(u) => u,
            State::Selected(u, _) => {
                // RFC 7162 3.2.11: the boundary between the closed mailbox's responses and the
                // new one's, sent by every server that advertises CONDSTORE or QRESYNC.
                self.out.extend_from_slice(&status_line(
                    None,
                    Status::Ok,
                    Some(&Code::Closed),
                    "Previous mailbox closed.",
                ));
                u
            }
            other => {
                self.state = other;
                return Reply::bad("Please log in first.");
            }
        };
        let name = match self.mailbox_name(arg) {
            Ok(n) => n,
            Err(reply) => {
                self.state = State::Authenticated(user);
                return reply;
            }
        };
        let opened = user
            .store
            .open(&name)
            .and_then(|mb| MailboxView::open(mb, read_only));
        let view = match opened {
            Ok(view) => view,
            Err(e) => {
                self.state = State::Authenticated(user);
                return self.store_error(e);
            }
        };
        let keywords = used_keywords(&view);
        let flags: Vec<Flag> = SystemFlags::ALL
            .iter()
            .chain(keywords.into_iter().map(Flag::Keyword))
            .collect();
        self.out.extend_from_slice(b"* FLAGS ");
        write_flag_list(&mut self.out, flags.iter().cloned(), false);
        self.out.extend_from_slice(b"\r\n");
        let permanent: Vec<String> = if read_only {
            Vec::new()
        } else {
            flags
                .iter()
                .map(|f| f.to_string())
                .chain(std::iter::once("\\*".to_owned()))
                .collect()
        };
        let line = status_line(
            None,
            Status::Ok,
            Some(&Code::PermanentFlags(permanent)),
            "Flags permitted.",
        );
        self.out.extend_from_slice(&line);
        self.out
            .extend_from_slice(format!("* {} EXISTS\r\n", view.exists()).as_bytes());
        // IMAP4rev2 drops RECENT and the UNSEEN code and asks for the mailbox's LIST
        // response instead (RFC 9051 6.3.2, appendix E items 10-12).
        if self.rev2 {
            self.out.extend_from_slice(b"* LIST () \"/\" ");
            write_mailbox(&mut self.out, name.as_str(), true);
            self.out.extend_from_slice(b"\r\n");
        } else {
            self.out
                .extend_from_slice(format!("* {} RECENT\r\n", view.recent_count()).as_bytes());
        }
        if let Some(seq) = view.first_unseen().filter(|_| !self.rev2) {
            let line = status_line(
                None,
                Status::Ok,
                Some(&Code::Unseen(seq.get())),
                "First unseen.",
            );
            self.out.extend_from_slice(&line);
        }
        let validity = view.mailbox().uid_validity().get();
        let line = status_line(
            None,
            Status::Ok,
            Some(&Code::UidValidity(validity)),
            "UIDs valid",
        );
        self.out.extend_from_slice(&line);
        let line = status_line(
            None,
            Status::Ok,
            Some(&Code::UidNext(view.uid_next().get())),
            "Predicted next UID",
        );
        self.out.extend_from_slice(&line);
        if self.condstore {
            let line = status_line(
                None,
                Status::Ok,
                Some(&Code::HighestModSeq(view.highest_modseq().get())),
                "Highest",
            );
            self.out.extend_from_slice(&line);
        }
        // RFC 8474 4.2: every successful SELECT and EXAMINE names the mailbox's MAILBOXID.
        if let Some(id) = view.mailbox().mailbox_id() {
            let line = status_line(None, Status::Ok, Some(&Code::MailboxId(id)), "Ok");
            self.out.extend_from_slice(&line);
        }
        if let Some(q) = params
            .qresync
            .as_ref()
            .filter(|q| q.uid_validity == validity)
            && let Err(e) = self.write_resync(&view, q)
        {
            self.state = State::Authenticated(user);
            return self.store_error(e);
        }
        let wakeup = Arc::new(Wakeup(Notify::new()));
        let listener: Arc<dyn ChangeListener> = wakeup.clone();
        view.mailbox().watch(Arc::downgrade(&listener));
        self.state = State::Selected(user, Selected { view, wakeup });
        let (code, verb) = if read_only {
            (Code::ReadOnly, "Examine")
        } else {
            (Code::ReadWrite, "Select")
        };
        Reply::ok(format!("{verb} completed.")).with_code(code)
    }
}

impl Session {
    /// The QRESYNC part of SELECT (RFC 7162 3.2.5.1): what the client missed since `q.modseq`,
    /// among the UIDs it knows.
    fn write_resync(&mut self, view: &MailboxView, q: &QresyncParams) -> mail_store::Result<()> {
        let max_uid = view.uid_next().get().saturating_sub(1);
        let known = |uid: u32| {
            q.known_uids
                .as_ref()
                .is_none_or(|k| k.contains(uid, max_uid))
        };
        let changes = view
            .mailbox()
            .changes_since(mail_store::ChangeCursor(q.modseq), false)?;
        // By runs: with a cursor older than the history, `expunged` is every UID below UIDNEXT
        // without a message, billions of them in a mailbox with large UIDs.
        let gone = match &q.known_uids {
            Some(k) => changes.expunged.within(&k.normalized(max_uid)),
            None => changes.expunged,
        };
        if let Some(set) = gone.to_seq_set() {
            self.out
                .extend_from_slice(format!("* VANISHED (EARLIER) {set}\r\n").as_bytes());
        }
        for (i, m) in view.messages().iter().enumerate() {
            if m.modseq.get() <= q.modseq || !known(m.uid.get()) {
                continue;
            }
            self.out
                .extend_from_slice(format!("* {} FETCH (UID {} FLAGS ", i + 1, m.uid).as_bytes());
            write_flag_list(&mut self.out, m.flags.iter(), m.recent && !self.rev2);
            self.out
                .extend_from_slice(format!(" MODSEQ ({}))\r\n", m.modseq).as_bytes());
        }
        Ok(())
    }
}

/// The keywords of the mailbox, for FLAGS and PERMANENTFLAGS: from the store's table when it
/// keeps one (no walk over a big mailbox), else those its messages carry.
fn used_keywords(view: &MailboxView) -> Vec<Keyword> {
    if let Some(mut all) = view.mailbox().keywords() {
        all.sort();
        all.dedup_by(|a, b| a.eq_ignore_case(b));
        return all;
    }
    let mut all: Vec<Keyword> = Vec::new();
    for m in view.messages() {
        for k in m.flags.keywords() {
            if !all.iter().any(|x| x.eq_ignore_case(k)) {
                all.push(k.clone());
            }
        }
    }
    all.sort();
    all
}
