//! Dovecot-style query templates turned into parameterised SQL.
//!
//! Dovecot writes its SQL queries with `%`-variables inside string literals
//! (`WHERE userid = '%u'`) and escapes the values it substitutes. Columba never puts a value
//! into the SQL text: every variable becomes a bound parameter, so no user name, however
//! hostile, can change what the query does. A literal that is only a variable (`'%u'`)
//! becomes the parameter itself; a literal with text around variables (`'%n@example.org'`)
//! becomes a concatenation of quoted text and parameters (`('' || ?1 || '@example.org')`,
//! which SQLite and PostgreSQL both understand). Variables outside literals are parameters too.
//!
//! Variables (Dovecot's names, short and long): `%u` / `%{user}` the user name, `%n` /
//! `%{username}` its part before `@`, `%d` / `%{domain}` its part after `@` (empty without
//! one), each optionally lower-cased with `L` (`%Lu`); `%%` is a percent sign.

/// Which part of the user name a variable stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    User,
    Local,
    Domain,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Variable {
    part: Part,
    lowercase: bool,
}

impl Variable {
    fn value(self, user: &str) -> String {
        let (local, domain) = user.split_once('@').unwrap_or((user, ""));
        let value = match self.part {
            Part::User => user,
            Part::Local => local,
            Part::Domain => domain,
        };
        if self.lowercase {
            value.to_lowercase()
        } else {
            value.to_owned()
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    /// SQL text, copied as it is.
    Sql(String),
    /// A bound parameter.
    Param(Variable),
    /// A string literal with variables in it: quoted text and parameters, concatenated.
    Concat(Vec<LiteralPiece>),
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum LiteralPiece {
    /// Text of the literal, `''` escapes kept.
    Text(String),
    Param(Variable),
}

/// A parsed query template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryTemplate {
    pieces: Vec<Piece>,
}

/// A template rendered for one database: the SQL text and the order of its parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreparedQuery {
    pub sql: String,
    variables: Vec<Variable>,
}

impl PreparedQuery {
    /// The parameter values for `user`, in the order the SQL numbers them.
    pub fn params(&self, user: &str) -> Vec<String> {
        self.variables.iter().map(|v| v.value(user)).collect()
    }
}

impl QueryTemplate {
    /// Parses `text`; refuses unknown variables, variables inside `"identifiers"` and an
    /// unterminated literal.
    pub fn parse(text: &str) -> Result<QueryTemplate, String> {
        let mut pieces = Vec::new();
        let mut sql = String::new();
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '%' => match variable(&mut chars)? {
                    None => sql.push('%'),
                    Some(v) => {
                        flush(&mut pieces, &mut sql);
                        pieces.push(Piece::Param(v));
                    }
                },
                '\'' => {
                    let literal = string_literal(&mut chars)?;
                    if literal.iter().all(|p| matches!(p, LiteralPiece::Text(_))) {
                        sql.push('\'');
                        for piece in literal {
                            if let LiteralPiece::Text(t) = piece {
                                sql.push_str(&t);
                            }
                        }
                        sql.push('\'');
                    } else {
                        flush(&mut pieces, &mut sql);
                        pieces.push(match literal.as_slice() {
                            [LiteralPiece::Param(v)] => Piece::Param(*v),
                            _ => Piece::Concat(literal),
                        });
                    }
                }
                '"' => {
                    sql.push('"');
                    loop {
                        match chars.next() {
                            None => return Err("unterminated \"identifier\"".to_owned()),
                            Some('%') => {
                                return Err(
                                    "a %-variable inside a \"quoted identifier\"".to_owned()
                                );
                            }
                            Some('"') => {
                                sql.push('"');
                                break;
                            }
                            Some(c) => sql.push(c),
                        }
                    }
                }
                '-' if chars.peek() == Some(&'-') => {
                    // A comment runs to the end of the line; quotes in it mean nothing.
                    sql.push('-');
                    for c in chars.by_ref() {
                        sql.push(c);
                        if c == '\n' {
                            break;
                        }
                    }
                }
                c => sql.push(c),
            }
        }
        flush(&mut pieces, &mut sql);
        Ok(QueryTemplate { pieces })
    }

    /// The SQL text with parameters written by `placeholder(n)` (numbered from 1): `?1` for
    /// SQLite, `$1::text` for PostgreSQL.
    pub fn render(&self, placeholder: impl Fn(usize) -> String) -> PreparedQuery {
        let mut sql = String::new();
        let mut variables = Vec::new();
        let mut param = |v: Variable, sql: &mut String| {
            variables.push(v);
            sql.push_str(&placeholder(variables.len()));
        };
        for piece in &self.pieces {
            match piece {
                Piece::Sql(text) => sql.push_str(text),
                Piece::Param(v) => param(*v, &mut sql),
                Piece::Concat(parts) => {
                    // Starting with '' makes the expression text even if the first part is a
                    // parameter of unknown type.
                    sql.push_str("(''");
                    for part in parts {
                        sql.push_str(" || ");
                        match part {
                            LiteralPiece::Text(t) => {
                                sql.push('\'');
                                sql.push_str(t);
                                sql.push('\'');
                            }
                            LiteralPiece::Param(v) => param(*v, &mut sql),
                        }
                    }
                    sql.push(')');
                }
            }
        }
        PreparedQuery { sql, variables }
    }
}

fn flush(pieces: &mut Vec<Piece>, sql: &mut String) {
    if !sql.is_empty() {
        pieces.push(Piece::Sql(std::mem::take(sql)));
    }
}

/// The variable after a `%`; `None` for `%%`.
fn variable(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
) -> Result<Option<Variable>, String> {
    let mut lowercase = false;
    if chars.peek() == Some(&'L') {
        lowercase = true;
        chars.next();
    }
    let part = match chars.next() {
        Some('%') if !lowercase => return Ok(None),
        Some('u') => Part::User,
        Some('n') => Part::Local,
        Some('d') => Part::Domain,
        Some('{') => {
            let mut name = String::new();
            loop {
                match chars.next() {
                    Some('}') => break,
                    Some(c) if name.len() < 32 => name.push(c),
                    _ => return Err("unterminated %{variable}".to_owned()),
                }
            }
            match name.as_str() {
                "user" => Part::User,
                "username" => Part::Local,
                "domain" => Part::Domain,
                other => {
                    return Err(format!(
                        "unknown variable %{{{other}}} (use %{{user}}, %{{username}} or %{{domain}})"
                    ));
                }
            }
        }
        other => {
            return Err(format!(
                "unknown variable %{} (use %u, %n, %d, %Lu... or %%)",
                other.map(String::from).unwrap_or_default()
            ));
        }
    };
    Ok(Some(Variable { part, lowercase }))
}

/// The rest of a `'...'` literal after its opening quote.
fn string_literal(
    chars: &mut std::iter::Peekable<std::str::Chars<'_>>,
) -> Result<Vec<LiteralPiece>, String> {
    let mut pieces = Vec::new();
    let mut text = String::new();
    loop {
        match chars.next() {
            None => return Err("unterminated 'string literal'".to_owned()),
            Some('\'') if chars.peek() == Some(&'\'') => {
                chars.next();
                text.push_str("''");
            }
            Some('\'') => break,
            Some('%') => match variable(chars)? {
                None => text.push('%'),
                Some(v) => {
                    if !text.is_empty() {
                        pieces.push(LiteralPiece::Text(std::mem::take(&mut text)));
                    }
                    pieces.push(LiteralPiece::Param(v));
                }
            },
            Some(c) => text.push(c),
        }
    }
    if !text.is_empty() || pieces.is_empty() {
        pieces.push(LiteralPiece::Text(text));
    }
    Ok(pieces)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite(text: &str) -> PreparedQuery {
        QueryTemplate::parse(text)
            .unwrap()
            .render(|n| format!("?{n}"))
    }

    #[test]
    fn variables_become_parameters() {
        let q = sqlite("SELECT userid AS user, password FROM users WHERE userid = '%u'");
        assert_eq!(
            q.sql,
            "SELECT userid AS user, password FROM users WHERE userid = ?1"
        );
        assert_eq!(q.params("Bob@Example.org"), ["Bob@Example.org"]);

        let q =
            sqlite("SELECT x FROM u WHERE name = '%Ln' AND domain = %{domain} AND p LIKE '100%%'");
        assert_eq!(
            q.sql,
            "SELECT x FROM u WHERE name = ?1 AND domain = ?2 AND p LIKE '100%'"
        );
        assert_eq!(q.params("Bob@Example.org"), ["bob", "Example.org"]);

        let q = sqlite("SELECT 1 WHERE a = '%n@x.org' AND b = 'it''s %d'");
        assert_eq!(
            q.sql,
            "SELECT 1 WHERE a = ('' || ?1 || '@x.org') AND b = ('' || 'it''s ' || ?2)"
        );
        assert_eq!(q.params("carol"), ["carol", ""]);

        // Quotes in comments and empty literals.
        let q = sqlite("SELECT '' -- don't\nFROM t WHERE u = %u");
        assert_eq!(q.sql, "SELECT '' -- don't\nFROM t WHERE u = ?1");

        let pg = QueryTemplate::parse("WHERE u = '%u'")
            .unwrap()
            .render(|n| format!("${n}::text"));
        assert_eq!(pg.sql, "WHERE u = $1::text");
    }

    #[test]
    fn bad_templates_are_refused() {
        for bad in [
            "WHERE u = '%u",
            "WHERE u = %x",
            "WHERE u = %{nope}",
            "WHERE u = %{user",
            "WHERE \"%u\" = 1",
            "WHERE \"x = 1",
            "WHERE u = %",
            "WHERE u = %L%",
        ] {
            assert!(QueryTemplate::parse(bad).is_err(), "{bad:?}");
        }
    }
}
