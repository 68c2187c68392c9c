//! The header lines delivery adds in front of a message, as Dovecot 2.3's LMTP writes them
//! (`lmtp_local_add_headers`, `smtp_server_transaction_write_trace_record`): `Return-Path:`
//! with the envelope sender, `Delivered-To:` when the transaction has exactly one recipient
//! (`lmtp_hdr_delivery_address = final`), and a `Received:` trace line (RFC 5321 4.4,
//! `lmtp_add_received_header = yes`).

use mail_types::date::rfc5322_utc;

/// What the trace headers say.
pub(crate) struct Trace<'a> {
    /// The reverse-path, without brackets; empty for `<>`.
    pub sender: &'a str,
    /// The recipients, without brackets.
    pub recipients: &'a [String],
    /// The client's LHLO name.
    pub helo: &'a str,
    /// The client's address; `None` over a Unix socket.
    pub remote_ip: Option<std::net::IpAddr>,
    pub hostname: &'a str,
    pub id: &'a str,
    pub now: i64,
}

impl Trace<'_> {
    pub(crate) fn headers(&self) -> Vec<u8> {
        let mut h = format!("Return-Path: <{}>\r\n", self.sender);
        let single = match self.recipients {
            [one] => Some(one.as_str()),
            _ => None,
        };
        if let Some(rcpt) = single {
            h.push_str(&format!("Delivered-To: {rcpt}\r\n"));
        }
        h.push_str(&format!("Received: from {}", self.helo));
        if let Some(ip) = self.remote_ip {
            h.push_str(&format!(" ([{ip}])"));
        }
        h.push_str(&format!(
            "\r\n\tby {} with LMTP\r\n\tid {}\r\n\t(envelope-from <{}>)",
            self.hostname, self.id, self.sender
        ));
        if let Some(rcpt) = single {
            h.push_str(&format!("\r\n\tfor <{rcpt}>"));
        }
        h.push_str(&format!("; {}\r\n", rfc5322_utc(self.now)));
        h.into_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_as_dovecot_writes_them() {
        let one = ["bob+x@example.com".to_owned()];
        let trace = Trace {
            sender: "a@example.org",
            recipients: &one,
            helo: "mx.example.org",
            remote_ip: Some("127.0.0.1".parse().unwrap()),
            hostname: "mail.example.com",
            id: "abc",
            now: 0,
        };
        assert_eq!(
            String::from_utf8(trace.headers()).unwrap(),
            "Return-Path: <a@example.org>\r\n\
             Delivered-To: bob+x@example.com\r\n\
             Received: from mx.example.org ([127.0.0.1])\r\n\
             \tby mail.example.com with LMTP\r\n\
             \tid abc\r\n\
             \t(envelope-from <a@example.org>)\r\n\
             \tfor <bob+x@example.com>; Thu, 1 Jan 1970 00:00:00 +0000\r\n"
        );
        let two = ["b@x".to_owned(), "c@x".to_owned()];
        let trace = Trace {
            sender: "",
            recipients: &two,
            remote_ip: None,
            ..trace
        };
        assert_eq!(
            String::from_utf8(trace.headers()).unwrap(),
            "Return-Path: <>\r\n\
             Received: from mx.example.org\r\n\
             \tby mail.example.com with LMTP\r\n\
             \tid abc\r\n\
             \t(envelope-from <>); Thu, 1 Jan 1970 00:00:00 +0000\r\n"
        );
    }
}
