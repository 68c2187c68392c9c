//! Helpers shared by the tests of several Columba crates.
//!
//! - [`dovecot`]: a throwaway Dovecot 2.3 on 127.0.0.1, the reference implementation our IMAP
//!   answers and Maildirs are compared with. Tests call [`dovecot::Dovecot::start`] (or
//!   [`dovecot::Dovecot::builder`] for another configuration, or to fill the Maildir before the
//!   server starts) and skip the comparison when it returns `None` (Dovecot not installed).
//! - [`imap_client`]: a tiny blocking IMAP client (std::net) that sends commands, literals included,
//!   and collects the untagged lines up to the tagged answer.
//! - [`transcript`]: what the IMAP and POP3 transcript tests share — directive lines, `{*}`
//!   matching, the client end of an in-memory connection, a two-user backend over Maildir.
//! - [`sasl`]: a backend over the real authenticator offering chosen SASL mechanisms, and the
//!   client side of CRAM-MD5 and SCRAM.
//! - [`postgres`]: a throwaway PostgreSQL cluster on 127.0.0.1 for the SQL passdb tests.
//!
//! Only ever a dev-dependency (`test-support = { path = "../test-support" }` under
//! `[dev-dependencies]`): nothing here is meant for production code.
//!
//! ```no_run
//! let Some(dovecot) = test_support::Dovecot::start() else { return Ok(()) };
//! let mut imap = dovecot.connect()?;
//! imap.append("INBOX", b"Subject: hi\r\n\r\nbody\r\n")?.ok()?;
//! imap.command("SELECT INBOX")?.ok()?;
//! let answer = imap.command("FETCH 1 (BODYSTRUCTURE)")?.ok()?;
//! println!("{}", String::from_utf8_lossy(&answer.untagged[0]));
//! # Ok::<(), std::io::Error>(())
//! ```

pub mod dovecot;
pub mod imap_client;
pub mod postgres;
pub mod sasl;
pub mod transcript;

pub use dovecot::{Dovecot, DovecotBuilder, DovecotHome};
pub use imap_client::{ImapClient, Response};
