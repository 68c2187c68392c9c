//! SASL mechanisms (RFC 4422) as step machines over decoded bytes.
//!
//! INTERFACE CONTRACT — implementation pending (see the helper task).
