//! The user a TLS client certificate names, for SASL EXTERNAL: the subject's common name, or
//! its e-mail address (an `rfc822Name` of the subjectAltName extension, else the subject's
//! `emailAddress` attribute), as Dovecot's `ssl_cert_username_field` chooses.
//!
//! The certificate has been verified by the TLS layer (rustls/webpki) before it gets here, so
//! this reads only the few DER structures it needs (RFC 5280 section 4.1) and refuses anything
//! else it meets on the way: a name it cannot read is no login.

/// Which field of the certificate holds the user name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertUserField {
    /// The subject's commonName (2.5.4.3). A subject with more than one is refused.
    CommonName,
    /// The subjectAltName's first rfc822Name, else the subject's emailAddress attribute.
    Email,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    #[error("certificate is not valid DER: {0}")]
    Malformed(&'static str),
    #[error("certificate subject has more than one common name")]
    AmbiguousName,
}

/// The user name `der` (an end-entity certificate) holds in `field`; `None` when it has none.
pub fn certificate_user(der: &[u8], field: CertUserField) -> Result<Option<String>, CertError> {
    let (certificate, _) = expect(der, SEQUENCE)?;
    let (tbs, _) = expect(certificate, SEQUENCE)?;
    let mut rest = tbs;
    // [0] EXPLICIT version, optional.
    if rest.first() == Some(&0xa0) {
        rest = tlv(rest)?.2;
    }
    let (_serial, r) = expect(rest, INTEGER)?;
    let (_signature, r) = expect(r, SEQUENCE)?;
    let (_issuer, r) = expect(r, SEQUENCE)?;
    let (_validity, r) = expect(r, SEQUENCE)?;
    let (subject, r) = expect(r, SEQUENCE)?;
    let (_spki, mut r) = expect(r, SEQUENCE)?;
    let mut extensions = None;
    while !r.is_empty() {
        let (tag, content, next) = tlv(r)?;
        if tag == 0xa3 {
            extensions = Some(expect(content, SEQUENCE)?.0);
        }
        r = next;
    }
    match field {
        CertUserField::CommonName => {
            let names = subject_attributes(subject, OID_COMMON_NAME)?;
            match names.as_slice() {
                [] => Ok(None),
                [name] => Ok(Some(name.clone())),
                _ => Err(CertError::AmbiguousName),
            }
        }
        CertUserField::Email => {
            if let Some(extensions) = extensions
                && let Some(email) = san_email(extensions)?
            {
                return Ok(Some(email));
            }
            Ok(subject_attributes(subject, OID_EMAIL_ADDRESS)?
                .into_iter()
                .next())
        }
    }
}

const SEQUENCE: u8 = 0x30;
const SET: u8 = 0x31;
const INTEGER: u8 = 0x02;
const OID: u8 = 0x06;
const OCTET_STRING: u8 = 0x04;
const BOOLEAN: u8 = 0x01;
/// GeneralName `rfc822Name [1] IMPLICIT IA5String` (RFC 5280 section 4.2.1.6).
const RFC822_NAME: u8 = 0x81;

/// 2.5.4.3
const OID_COMMON_NAME: &[u8] = &[0x55, 0x04, 0x03];
/// 1.2.840.113549.1.9.1 (PKCS #9 emailAddress)
const OID_EMAIL_ADDRESS: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x09, 0x01];
/// 2.5.29.17
const OID_SUBJECT_ALT_NAME: &[u8] = &[0x55, 0x1d, 0x11];

/// One DER tag-length-value: `(tag, content, rest)`. Only single-byte tags and definite
/// lengths (DER has no others for what is read here).
fn tlv(input: &[u8]) -> Result<(u8, &[u8], &[u8]), CertError> {
    let (&tag, rest) = input
        .split_first()
        .ok_or(CertError::Malformed("truncated tag"))?;
    if tag & 0x1f == 0x1f {
        return Err(CertError::Malformed("multi-byte tag"));
    }
    let (&first, rest) = rest
        .split_first()
        .ok_or(CertError::Malformed("truncated length"))?;
    let (length, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 || rest.len() < count {
            return Err(CertError::Malformed("bad length"));
        }
        let length = rest[..count]
            .iter()
            .fold(0usize, |n, &b| (n << 8) | usize::from(b));
        (length, &rest[count..])
    };
    if rest.len() < length {
        return Err(CertError::Malformed("content longer than its container"));
    }
    Ok((tag, &rest[..length], &rest[length..]))
}

/// The content of a TLV that must have `tag`, and what follows it.
fn expect(input: &[u8], tag: u8) -> Result<(&[u8], &[u8]), CertError> {
    let (found, content, rest) = tlv(input)?;
    if found != tag {
        return Err(CertError::Malformed("unexpected tag"));
    }
    Ok((content, rest))
}

/// Every value of attribute `oid` in a Name (SEQUENCE OF SET OF AttributeTypeAndValue).
fn subject_attributes(name: &[u8], oid: &[u8]) -> Result<Vec<String>, CertError> {
    let mut values = Vec::new();
    let mut rdns = name;
    while !rdns.is_empty() {
        let (mut set, next) = expect(rdns, SET)?;
        while !set.is_empty() {
            let (pair, more) = expect(set, SEQUENCE)?;
            let (kind, value) = expect(pair, OID)?;
            if kind == oid {
                let (tag, text, _) = tlv(value)?;
                values.push(directory_string(tag, text)?);
            }
            set = more;
        }
        rdns = next;
    }
    Ok(values)
}

/// The first rfc822Name of the subjectAltName extension, if there is one.
fn san_email(mut extensions: &[u8]) -> Result<Option<String>, CertError> {
    while !extensions.is_empty() {
        let (extension, next) = expect(extensions, SEQUENCE)?;
        let (oid, mut rest) = expect(extension, OID)?;
        if rest.first() == Some(&BOOLEAN) {
            rest = tlv(rest)?.2;
        }
        let (value, _) = expect(rest, OCTET_STRING)?;
        if oid == OID_SUBJECT_ALT_NAME {
            let (mut names, _) = expect(value, SEQUENCE)?;
            while !names.is_empty() {
                let (tag, content, more) = tlv(names)?;
                if tag == RFC822_NAME {
                    return directory_string(0x16, content).map(Some);
                }
                names = more;
            }
        }
        extensions = next;
    }
    Ok(None)
}

/// UTF8String, PrintableString or IA5String as text; other string types are refused.
fn directory_string(tag: u8, bytes: &[u8]) -> Result<String, CertError> {
    let text = match tag {
        0x0c => std::str::from_utf8(bytes).map_err(|_| CertError::Malformed("bad UTF8String"))?,
        0x13 | 0x16 if bytes.is_ascii() => {
            std::str::from_utf8(bytes).map_err(|_| CertError::Malformed("bad string"))?
        }
        _ => return Err(CertError::Malformed("unsupported string type in a name")),
    };
    if text.chars().any(char::is_control) {
        return Err(CertError::Malformed("control character in a name"));
    }
    Ok(text.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_and_truncation() {
        assert_eq!(
            tlv(&[0x04, 0x01, 0xaa, 0xbb]).unwrap(),
            (0x04, &[0xaa][..], &[0xbb][..])
        );
        let long: Vec<u8> = [0x04, 0x81, 0x80].into_iter().chain([7; 0x80]).collect();
        assert_eq!(tlv(&long).unwrap().1.len(), 0x80);
        for bad in [
            &[][..],
            &[0x04],
            &[0x04, 0x02, 0x00],
            &[0x04, 0x80],
            &[0x04, 0x85, 1, 1, 1, 1, 1],
            &[0x1f, 0x01, 0x00],
        ] {
            assert!(tlv(bad).is_err(), "{bad:?}");
        }
        assert!(certificate_user(b"\x30\x03\x02\x01\x00", CertUserField::CommonName).is_err());
        assert!(certificate_user(b"", CertUserField::Email).is_err());
    }
}
