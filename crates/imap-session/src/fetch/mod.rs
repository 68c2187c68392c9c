//! FETCH support: encoding of message structure and sections.

pub mod structure;
