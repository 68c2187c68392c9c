//! FETCH support: encoding of message structure and sections.

pub mod binary;
pub mod structure;
