//! FETCH support: encoding of message structure and sections.

pub mod binary;
pub(crate) mod section;
pub mod structure;
