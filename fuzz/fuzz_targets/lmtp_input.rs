//! Arbitrary client bytes, in fragments the first byte chooses, through `lmtp_proto::Decoder`,
//! switching to DATA after the command the second byte names (as a session does after 354).
//! Nothing may panic; the buffer stays bounded by the line limit (commands) or the chunk the
//! DATA reader keeps (a partial line); a finished message is within its size limit and
//! every line of it ends in CRLF.
#![no_main]

use libfuzzer_sys::fuzz_target;
use lmtp_proto::{DataEnd, Decoder};

const MAX_LINE: usize = 200;
const MAX_SIZE: u64 = 4096;

fuzz_target!(|data: &[u8]| {
    let Some((&fragment, data)) = data.split_first() else { return };
    let Some((&data_after, data)) = data.split_first() else { return };
    let fragment = usize::from(fragment).max(1);
    let mut d = Decoder::new(MAX_LINE);
    let mut commands = 0u8;
    for piece in data.chunks(fragment) {
        d.buffer().extend_from_slice(piece);
        loop {
            if d.in_data() {
                match d.decode_data() {
                    Some(DataEnd::Message(m)) => {
                        assert!(m.len() as u64 <= MAX_SIZE);
                        assert!(m.is_empty() || m.ends_with(b"\r\n"));
                    }
                    Some(DataEnd::TooBig) => {}
                    None => break,
                }
            } else if d.decode().is_some() {
                commands = commands.wrapping_add(1);
                if commands == data_after {
                    d.start_data(MAX_SIZE);
                }
            } else {
                break;
            }
        }
        assert!(d.buffer().len() <= 64 * 1024 + MAX_LINE + 256 + fragment);
    }
});
