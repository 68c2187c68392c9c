//! The CAPABILITY list (RFC 3501 6.1.1, 7.2.1), which depends on the connection's state: before
//! login it advertises how to log in; afterwards, what the session can do.

use crate::session::Session;

/// Capabilities in the order Dovecot lists them, so clients and operators see a familiar line;
/// after login, the extensions Dovecot does not advertise by default come last.
pub(crate) fn list(s: &Session) -> Vec<String> {
    let mut caps: Vec<&str> = vec![
        "IMAP4rev1",
        "SASL-IR",
        "LOGIN-REFERRALS",
        "ID",
        "ENABLE",
        "IDLE",
    ];
    if s.is_authenticated() {
        caps.extend([
            "IMAP4rev2",
            "SORT",
            "SORT=DISPLAY",
            "THREAD=REFERENCES",
            "THREAD=REFS",
            "THREAD=ORDEREDSUBJECT",
            "MULTIAPPEND",
            "URL-PARTIAL",
            "CATENATE",
            "UNSELECT",
            "CHILDREN",
            "NAMESPACE",
            "UIDPLUS",
            "LIST-EXTENDED",
            "I18NLEVEL=1",
            "CONDSTORE",
            "QRESYNC",
            "ESEARCH",
            "ESORT",
            "SEARCHRES",
            "WITHIN",
            "CONTEXT=SEARCH",
            "LIST-STATUS",
            "BINARY",
            "MOVE",
            "SNIPPET=FUZZY",
            "PREVIEW=FUZZY",
            "PREVIEW",
            "STATUS=SIZE",
            "SAVEDATE",
            "LITERAL+",
            "SPECIAL-USE",
            "CREATE-SPECIAL-USE",
            "OBJECTID",
            "REPLACE",
            "COMPRESS=DEFLATE",
            "QUOTA",
            "QUOTA=RES-STORAGE",
            "QUOTA=RES-MESSAGE",
        ]);
    } else {
        caps.push("LITERAL+");
        if !s.tls && s.ctx.starttls.is_some() {
            caps.push("STARTTLS");
        }
        if !s.plaintext_auth_allowed() {
            caps.push("LOGINDISABLED");
        }
    }
    let mut caps: Vec<String> = caps.into_iter().map(str::to_owned).collect();
    if s.is_authenticated() && s.ctx.settings.utf8_accept {
        caps.push("UTF8=ACCEPT".to_owned());
    }
    if s.is_authenticated() {
        // RFC 7889 2 (a): one limit for every mailbox, the one APPEND enforces with TOOBIG.
        caps.push(format!("APPENDLIMIT={}", s.ctx.settings.limits.max_append));
    }
    if !s.is_authenticated() {
        // The backend's mechanisms; those that send the password itself only where a
        // plaintext password is allowed (RFC 3501 6.2.3; Dovecot's disable_plaintext_auth),
        // EXTERNAL only with a verified client certificate.
        let usable = session_api::offered_mechanisms(
            s.ctx.backend.as_ref(),
            s.tls_client_user.as_deref(),
            s.plaintext_auth_allowed(),
        );
        caps.extend(usable.iter().map(|m| format!("AUTH={m}")));
    }
    caps
}

impl Session {
    /// Plaintext passwords are accepted over TLS, from loopback peers, or where the operator
    /// allowed them (Dovecot's `disable_plaintext_auth`; RFC 3501 6.2.3, RFC 2595 3.1).
    pub(crate) fn plaintext_auth_allowed(&self) -> bool {
        self.tls
            || self.info.remote.ip().is_loopback()
            || self.ctx.settings.allow_plaintext_auth_without_tls
    }
}
