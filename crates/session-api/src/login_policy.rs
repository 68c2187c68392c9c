//! What a password database may say about a login beyond "the password is right": Dovecot's
//! passdb extra fields `nologin`, `reason`, `host`, `port` and `destuser`. They let an operator
//! keep an account from logging in (maintenance, a suspended account) or send its client to
//! another server (IMAP login referrals, RFC 2221) without touching the password.
//!
//! Dovecot's order of preference is `proxy`, `host`, then `nologin`; Columba does not proxy, so
//! `host` (a referral) comes first. How each protocol words the answer is its own business.

use auth::UserRecord;

/// The server a referral points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Referral {
    pub host: String,
    /// `None`: the protocol's default port.
    pub port: Option<u16>,
    /// The name to log in with there, when it differs (`destuser`).
    pub user: Option<String>,
}

/// How a login whose credentials checked out is to be answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginPolicy {
    /// Log in as usual.
    Allow,
    /// Log in, but tell the client to use `referral` from now on (RFC 2221 4.2: `OK [REFERRAL]`).
    AllowWithReferral {
        referral: Referral,
        reason: Option<String>,
    },
    /// Refuse, pointing at another server (RFC 2221 4.1: `NO [REFERRAL]`).
    RefuseWithReferral {
        referral: Referral,
        reason: Option<String>,
    },
    /// Refuse (`nologin`), with the operator's reason if any.
    Refuse { reason: Option<String> },
}

impl LoginPolicy {
    /// Reads the fields from the user's record, where the password database left them. A field
    /// that cannot be used (a `port` that is not a number, a `host` with characters that do not
    /// belong in a host name) is logged and ignored; `nologin` still refuses without it, so a
    /// typo never lets in an account meant to be shut.
    pub fn of(user: &UserRecord) -> LoginPolicy {
        let field = |name: &str| {
            user.extra
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.as_str())
        };
        // Dovecot reads `nologin` as set whenever present (`nologin`, `nologin=y`).
        let nologin = field("nologin").is_some_and(|v| !matches!(v, "n" | "no" | "0" | "false"));
        let reason = field("reason").filter(|r| !r.is_empty()).map(one_line);
        let referral = field("host").and_then(|host| {
            if host.is_empty() || !host.chars().all(is_host_char) {
                tracing::warn!(user = %user.name, "passdb field host={host:?} is not a host name; no referral");
                return None;
            }
            let port = match field("port") {
                None => None,
                Some(p) => match p.parse::<u16>() {
                    Ok(p) if p > 0 => Some(p),
                    _ => {
                        tracing::warn!(user = %user.name, "passdb field port={p:?} is not a port; ignored");
                        None
                    }
                },
            };
            Some(Referral {
                host: host.to_owned(),
                port,
                user: field("destuser").filter(|u| !u.is_empty()).map(str::to_owned),
            })
        });
        match (referral, nologin) {
            (Some(referral), true) => LoginPolicy::RefuseWithReferral { referral, reason },
            (Some(referral), false) => LoginPolicy::AllowWithReferral { referral, reason },
            (None, true) => LoginPolicy::Refuse { reason },
            (None, false) => LoginPolicy::Allow,
        }
    }
}

/// Host names, IPv4 and bracketed IPv6 literals: nothing that could end a URL or a line.
fn is_host_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | '[' | ']' | ':')
}

/// The reason goes into one protocol line: no CR, LF or other control characters.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(fields: &[(&str, &str)]) -> UserRecord {
        let mut u = UserRecord::named("alice");
        u.extra = fields
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        u
    }

    #[test]
    fn no_fields_allow() {
        assert_eq!(LoginPolicy::of(&user(&[])), LoginPolicy::Allow);
        assert_eq!(
            LoginPolicy::of(&user(&[("nologin", "n"), ("reason", "x")])),
            LoginPolicy::Allow
        );
    }

    #[test]
    fn nologin_refuses_with_the_reason_on_one_line() {
        assert_eq!(
            LoginPolicy::of(&user(&[("nologin", ""), ("reason", "Down\r\nfor upgrade")])),
            LoginPolicy::Refuse {
                reason: Some("Down  for upgrade".into())
            }
        );
        assert_eq!(
            LoginPolicy::of(&user(&[("nologin", "y")])),
            LoginPolicy::Refuse { reason: None }
        );
    }

    #[test]
    fn host_makes_a_referral_refusing_only_with_nologin() {
        let referral = Referral {
            host: "imap2.example.org".into(),
            port: Some(1143),
            user: Some("al".into()),
        };
        let fields = [
            ("host", "imap2.example.org"),
            ("port", "1143"),
            ("destuser", "al"),
        ];
        assert_eq!(
            LoginPolicy::of(&user(&fields)),
            LoginPolicy::AllowWithReferral {
                referral: referral.clone(),
                reason: None
            }
        );
        let mut with_nologin = fields.to_vec();
        with_nologin.push(("nologin", "y"));
        assert_eq!(
            LoginPolicy::of(&user(&with_nologin)),
            LoginPolicy::RefuseWithReferral {
                referral,
                reason: None
            }
        );
    }

    #[test]
    fn unusable_host_or_port_is_ignored_but_nologin_still_refuses() {
        assert_eq!(
            LoginPolicy::of(&user(&[("host", "evil/ OK"), ("nologin", "y")])),
            LoginPolicy::Refuse { reason: None }
        );
        assert_eq!(
            LoginPolicy::of(&user(&[("host", "h.example"), ("port", "99999")])),
            LoginPolicy::AllowWithReferral {
                referral: Referral {
                    host: "h.example".into(),
                    port: None,
                    user: None
                },
                reason: None
            }
        );
    }
}
