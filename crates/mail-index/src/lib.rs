//! Per-mailbox state that every storage format shares: the UID map, flags and keywords, modseqs,
//! the change history sessions catch up from, and `\Recent` ownership.
//!
//! This crate owns the index: today an in-memory structure rebuilt from the mail files on open;
//! the Indexes issue makes it a set of on-disk files (main index, transaction log, cache) behind
//! the same interface. It knows nothing of any mailbox format (Maildir file names, mbox offsets
//! are opaque `backend` references to it), of sockets or of IMAP.
//!
//! INTERFACE CONTRACT — implementation pending (see the helper task).
