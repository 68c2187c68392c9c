//! Password hash schemes in Dovecot's `{SCHEME}` notation and crypt(3) forms.
//!
//! INTERFACE CONTRACT — implementation pending (see the helper task).
