//! The Maildir backend, compatible in place with Dovecot's Maildir++.
//!
//! INTERFACE CONTRACT — implementation pending (see the helper task).
