//! One file per command family, like Dovecot's `src/imap/cmd-*.c`. Each handler is an `impl
//! Session` method that writes its untagged data to the output buffer and returns the tagged
//! reply; the dispatcher in `session.rs` adds the pending mailbox updates the command allows.

pub(crate) mod append;
pub(crate) mod authenticate;
pub(crate) mod capability;
pub(crate) mod catenate;
pub(crate) mod check;
pub(crate) mod close;
pub(crate) mod compress;
pub(crate) mod copy;
pub(crate) mod create;
pub(crate) mod delete;
pub(crate) mod enable;
pub(crate) mod expunge;
pub(crate) mod fetch;
pub(crate) mod id;
pub(crate) mod idle;
pub(crate) mod list;
pub(crate) mod login;
pub(crate) mod logout;
pub(crate) mod namespace;
pub(crate) mod noop;
pub(crate) mod objectid;
pub(crate) mod preview;
pub(crate) mod quota;
pub(crate) mod rename;
pub(crate) mod search;
pub(crate) mod search_context;
pub(crate) mod searchres;
pub(crate) mod select;
pub(crate) mod sort;
pub(crate) mod starttls;
pub(crate) mod status;
pub(crate) mod store;
pub(crate) mod subscribe;
pub(crate) mod thread;
