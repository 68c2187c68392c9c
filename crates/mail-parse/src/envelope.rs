//! ENVELOPE (RFC 3501 7.4.2) from a header block.

use crate::address::parse_address_list;
use crate::header::{Field, for_humans, nolf};
use crate::{Address, Envelope};

/// The envelope of the header `fields`, as Dovecot builds it: strings are the raw values
/// unfolded, except that the subject (like display names) is tidied for people — whitespace
/// runs made one space, trimmed; when a string field occurs more than once the last one counts,
/// while the addresses of repeated address fields add up; Sender and Reply-To fall back to From
/// when absent or empty (RFC 3501 7.4.2).
pub(crate) fn envelope(fields: &[Field<'_>]) -> Envelope {
    let mut e = Envelope::default();
    let (mut sender, mut reply_to) = (Vec::new(), Vec::new());
    for f in fields {
        let text = |f: &Field<'_>| Some(nolf(f.value()));
        let add =
            |list: &mut Vec<Address>, f: &Field<'_>| list.extend(parse_address_list(&f.value()));
        if f.is("Date") {
            e.date = text(f);
        } else if f.is("Subject") {
            e.subject = Some(for_humans(&f.value()));
        } else if f.is("From") {
            add(&mut e.from, f);
        } else if f.is("Sender") {
            add(&mut sender, f);
        } else if f.is("Reply-To") {
            add(&mut reply_to, f);
        } else if f.is("To") {
            add(&mut e.to, f);
        } else if f.is("Cc") {
            add(&mut e.cc, f);
        } else if f.is("Bcc") {
            add(&mut e.bcc, f);
        } else if f.is("In-Reply-To") {
            e.in_reply_to = text(f);
        } else if f.is("Message-ID") {
            e.message_id = text(f);
        }
    }
    let or_from =
        |v: Vec<Address>, from: &Vec<Address>| if v.is_empty() { from.clone() } else { v };
    e.sender = or_from(sender, &e.from);
    e.reply_to = or_from(reply_to, &e.from);
    e
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::header::fields;

    #[test]
    fn last_wins_and_defaults() {
        let h = b"Subject: one\r\nSubject: two\r\n  folded\r\nFrom: a@b\r\nSender:\r\nMessage-ID:  <x@y>\r\nTo: a@b\r\nTo: c@d\r\n\r\n";
        let e = envelope(&fields(h, 0..h.len()));
        assert_eq!(e.subject.as_deref(), Some(&b"two folded"[..]));
        assert_eq!(e.to.len(), 2);
        assert_eq!(e.sender, e.from);
        assert_eq!(e.reply_to, e.from);
        assert_eq!(e.message_id.as_deref(), Some(&b"<x@y>"[..]));
        assert_eq!(e.date, None);
        assert!(e.cc.is_empty());
    }
}
