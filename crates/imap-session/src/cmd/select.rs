use std::sync::Arc;

use imap_proto::response::{Code, Status, status_line, write_flag_list};
use imap_proto::{MailboxArg, SelectParams};
use mail_store::{ChangeListener, MailboxView};
use mail_types::{Flag, Keyword, SystemFlags};
use tokio::sync::Notify;

use crate::names::mailbox_name;
use crate::session::{Reply, Selected, Session, State, Wakeup};

impl Session {
    /// SELECT and EXAMINE (RFC 3501 6.3.1, 6.3.2). Any previously selected mailbox is closed first
    /// (without expunging), so a failed SELECT leaves the session in the authenticated state.
    pub(crate) fn cmd_select(
        &mut self,
        arg: &MailboxArg,
        params: SelectParams,
        read_only: bool,
    ) -> Reply {
        let _ = params;
        let user = match std::mem::replace(&mut self.state, State::Logout) {
            State::Authenticated(u) | State::Selected(u, _) => u,
            other => {
                self.state = other;
                return Reply::bad("Please log in first.");
            }
        };
        let name = match mailbox_name(arg) {
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
        self.out.extend_from_slice(
            format!(
                "* {} EXISTS\r\n* {} RECENT\r\n",
                view.exists(),
                view.recent_count()
            )
            .as_bytes(),
        );
        if let Some(seq) = view.first_unseen() {
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

/// The keywords in use in the mailbox, for FLAGS and PERMANENTFLAGS.
fn used_keywords(view: &MailboxView) -> Vec<Keyword> {
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
