//! Any bytes as a stored message: parsing and every query the session makes must not panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use mail_parse::{ParsedMessage, SectionSpec};

fuzz_target!(|data: &[u8]| {
    let parsed = ParsedMessage::parse(data);
    let _ = parsed.envelope(data);
    let _ = parsed.body_structure(data);
    let _ = parsed.section(data, &[1], SectionSpec::Text);
    let _ = parsed.body_text(data);
});
