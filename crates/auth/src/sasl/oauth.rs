//! The client messages of OAUTHBEARER (RFC 7628) and XOAUTH2 (Google's format), and the error
//! challenges the server answers a rejected token with.
//!
//! ```text
//! OAUTHBEARER (RFC 7628 section 3.1):
//!   client-resp = (gs2-header kvsep *kvpair kvsep) / kvsep
//!   gs2-header  = gs2-cbind-flag "," [ "a=" saslname ] ","    ; RFC 5801
//!   kvpair      = key "=" value kvsep, kvsep = %x01
//!   auth        = "Bearer" 1*SP b64token                       ; the `auth` pair, required
//! XOAUTH2:
//!   "user=" user %x01 "auth=Bearer " token %x01 %x01
//! ```

use std::fmt;

use zeroize::Zeroizing;

use super::{SaslError, gs2_header, identity};

const KVSEP: u8 = 0x01;

/// A bearer token from the client. `Debug` shows no token, and it is wiped when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct BearerToken(Zeroizing<String>);

impl BearerToken {
    pub fn new(token: impl Into<String>) -> BearerToken {
        BearerToken(Zeroizing::new(token.into()))
    }

    /// The token itself, to send to the introspection endpoint.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for BearerToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("BearerToken(<redacted>)")
    }
}

/// What a client's OAUTHBEARER or XOAUTH2 message carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenMessage {
    /// OAUTHBEARER's authzid (`a=`), XOAUTH2's `user=`: whom the client claims to be. `None`:
    /// whoever the token names.
    pub user: Option<String>,
    pub token: BearerToken,
}

/// Parses an OAUTHBEARER client response (RFC 7628 section 3.1). Channel binding (`p=`) is
/// refused: this server offers no `-PLUS` variant.
pub fn parse_oauthbearer(message: &[u8]) -> Result<TokenMessage, SaslError> {
    let text = std::str::from_utf8(message)
        .map_err(|_| SaslError::Malformed("OAUTHBEARER is not UTF-8"))?;
    let (gs2, rest) = text
        .split_once(KVSEP as char)
        .ok_or(SaslError::Malformed("OAUTHBEARER message without kvsep"))?;
    let mut header = gs2.splitn(3, ',');
    let (Some(flag), Some(authzid), Some("")) = (header.next(), header.next(), header.next())
    else {
        return Err(SaslError::Malformed(
            "OAUTHBEARER gs2-header is not 'n,a=user,'",
        ));
    };
    let user = gs2_header(flag, authzid)?;
    let pairs = key_values(rest)?;
    let auth = pairs
        .iter()
        .find(|(k, _)| *k == "auth")
        .ok_or(SaslError::Malformed("OAUTHBEARER message without auth="))?;
    Ok(TokenMessage {
        user,
        token: bearer(auth.1)?,
    })
}

/// Parses an XOAUTH2 initial response: `user=...^Aauth=Bearer ...^A^A`.
pub fn parse_xoauth2(message: &[u8]) -> Result<TokenMessage, SaslError> {
    let text =
        std::str::from_utf8(message).map_err(|_| SaslError::Malformed("XOAUTH2 is not UTF-8"))?;
    let pairs = key_values(text)?;
    let user = pairs
        .iter()
        .find(|(k, _)| *k == "user")
        .ok_or(SaslError::Malformed("XOAUTH2 message without user="))?;
    let auth = pairs
        .iter()
        .find(|(k, _)| *k == "auth")
        .ok_or(SaslError::Malformed("XOAUTH2 message without auth="))?;
    let user = identity(user.1.as_bytes(), "authzid")?;
    if user.is_empty() {
        return Err(SaslError::Malformed("empty XOAUTH2 user"));
    }
    Ok(TokenMessage {
        user: Some(user),
        token: bearer(auth.1)?,
    })
}

/// `*kvpair kvsep`: pairs each ended by `\x01`, then one more `\x01` and nothing after it.
fn key_values(text: &str) -> Result<Vec<(&str, &str)>, SaslError> {
    let body = text
        .strip_suffix("\x01\x01")
        .ok_or(SaslError::Malformed("message does not end with two kvsep"))?;
    let mut pairs = Vec::new();
    if body.is_empty() {
        return Ok(pairs);
    }
    for pair in body.split(KVSEP as char) {
        let (key, value) = pair
            .split_once('=')
            .ok_or(SaslError::Malformed("kvpair without '='"))?;
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphabetic()) {
            return Err(SaslError::Malformed("kvpair key is not letters"));
        }
        // value = *(VCHAR / SP / HTAB / CR / LF)
        if value
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\t' | '\r' | '\n'))
        {
            return Err(SaslError::Malformed("control character in a kvpair value"));
        }
        pairs.push((key, value));
    }
    Ok(pairs)
}

/// `auth-value = "Bearer" 1*SP b64token` (RFC 6750 section 2.1; the scheme name is
/// case-insensitive).
fn bearer(value: &str) -> Result<BearerToken, SaslError> {
    let malformed = SaslError::Malformed("auth is not 'Bearer <token>'");
    let (scheme, token) = value.split_once(' ').ok_or(malformed.clone())?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(malformed);
    }
    let token = token.trim_start_matches(' ');
    // b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
    let body = token.trim_end_matches('=');
    if body.is_empty()
        || !body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~+/".contains(&b))
    {
        return Err(malformed);
    }
    Ok(BearerToken::new(token))
}

/// The JSON status challenge of a rejected token: RFC 7628 section 3.2.2 for OAUTHBEARER
/// (`invalid_token`), Google's `"401"` for XOAUTH2. `scope` is the scope the client should
/// ask for, when one is configured.
pub fn error_challenge(xoauth2: bool, scope: Option<&str>) -> Vec<u8> {
    let status = if xoauth2 { "401" } else { "invalid_token" };
    let mut json = format!("{{\"status\":\"{status}\",\"schemes\":\"bearer\"");
    if let Some(scope) = scope {
        json.push_str(",\"scope\":\"");
        for c in scope.chars() {
            match c {
                '"' => json.push_str("\\\""),
                '\\' => json.push_str("\\\\"),
                c if c.is_control() => {}
                c => json.push(c),
            }
        }
        json.push('"');
    }
    json.push('}');
    json.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_7628_examples() {
        // Section 4.1 (host and port pairs are allowed and ignored).
        let m = parse_oauthbearer(
            b"n,a=user@example.com,\x01host=server.example.com\x01port=143\x01\
              auth=Bearer vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg==\x01\x01",
        )
        .unwrap();
        assert_eq!(m.user.as_deref(), Some("user@example.com"));
        assert_eq!(
            m.token.expose(),
            "vF9dft4qmTc2Nvb3RlckBhbHRhdmlzdGEuY29tCg=="
        );
        // No authzid, lower-case scheme, escapes in the authzid.
        let m = parse_oauthbearer(b"n,,\x01auth=bearer abc\x01\x01").unwrap();
        assert_eq!((m.user, m.token.expose()), (None, "abc"));
        let m = parse_oauthbearer(b"y,a=a=2Cb=3D,\x01auth=Bearer x\x01\x01").unwrap();
        assert_eq!(m.user.as_deref(), Some("a,b="));
        assert!(!format!("{m:?}").contains("x\""));
    }

    #[test]
    fn malformed_oauthbearer() {
        for bad in [
            &b""[..],
            b"\x01",
            b"n,a=user,\x01auth=Bearer abc\x01",
            b"n,a=user\x01auth=Bearer abc\x01\x01",
            b"p=tls-unique,,\x01auth=Bearer abc\x01\x01",
            b"x,,\x01auth=Bearer abc\x01\x01",
            b"n,b=user,\x01auth=Bearer abc\x01\x01",
            b"n,a=,\x01auth=Bearer abc\x01\x01",
            b"n,a=us=er,\x01auth=Bearer abc\x01\x01",
            b"n,,\x01host=x\x01\x01",
            b"n,,\x01auth=Basic abc\x01\x01",
            b"n,,\x01auth=Bearer \x01\x01",
            b"n,,\x01auth=Bearer a b\x01\x01",
            b"n,,\x01auth=Bearer a\x00b\x01\x01",
            b"n,,\x01au th=Bearer ab\x01\x01",
            b"n,,\x01auth\x01\x01",
            b"n,,\x01auth=Bearer ab\x01\x01trailing",
            b"n,,\x01auth=Bearer \xff\x01\x01",
        ] {
            assert!(parse_oauthbearer(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn xoauth2() {
        let m = parse_xoauth2(b"user=someuser@example.com\x01auth=Bearer ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg\x01\x01").unwrap();
        assert_eq!(m.user.as_deref(), Some("someuser@example.com"));
        assert_eq!(
            m.token.expose(),
            "ya29.vF9dft4qmTc2Nvb3RlckBhdHRhdmlzdGEuY29tCg"
        );
        for bad in [
            &b"auth=Bearer abc\x01\x01"[..],
            b"user=\x01auth=Bearer abc\x01\x01",
            b"user=bob\x01\x01",
            b"user=bob\x01auth=Bearer abc\x01",
            b"user=bob\x01auth=abc\x01\x01",
        ] {
            assert!(parse_xoauth2(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn error_challenges() {
        assert_eq!(
            error_challenge(false, None),
            br#"{"status":"invalid_token","schemes":"bearer"}"#
        );
        assert_eq!(
            error_challenge(true, Some("mail \"x\"")),
            br#"{"status":"401","schemes":"bearer","scope":"mail \"x\""}"#
        );
    }
}
