//! `google.api.http` path templates: parser and syntax tree.
//!
//! This file uses `std` only and refers to nothing else in the crate: `protoc-gen-rzero` runs
//! the same parser at generate time to validate rules, and the router compiles parsed
//! templates into its trie.

use std::fmt;
use std::str::FromStr;

/// A parsed path template such as `/v1/{name=shelves/*}/books/*:publish`.
///
/// Segments are stored flat: a variable does not own segments, it refers to the range of
/// [`segments`](Self::segments) it captures (`{name}` is the single segment `*`).
///
/// [`Display`](fmt::Display) prints the canonical form, where every variable shows its pattern:
/// `/v1/{name}` prints as `/v1/{name=*}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathTemplate {
    segments: Vec<Segment>,
    variables: Vec<Variable>,
    verb: Option<String>,
}

/// One `/`-separated segment of a [`PathTemplate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Segment {
    /// Text that must equal the request segment, compared before percent-decoding.
    Literal(String),
    /// `*`: exactly one non-empty segment.
    Wildcard,
    /// `**`: zero or more segments; only literal segments may follow it.
    DoubleWildcard,
}

/// A `{field.path=pattern}` variable of a [`PathTemplate`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Variable {
    field_path: String,
    start: usize,
    end: usize,
    multi_segment: bool,
}

impl Variable {
    /// The dotted request field path, e.g. `book.name`.
    pub fn field_path(&self) -> &str {
        &self.field_path
    }

    /// The range of [`PathTemplate::segments`] this variable captures.
    pub fn segments(&self) -> std::ops::Range<usize> {
        self.start..self.end
    }

    /// Whether the variable may capture more than one segment (its pattern has several
    /// segments or a `**`). The spec decodes such values differently: reserved characters
    /// such as `%2F` stay encoded.
    pub fn is_multi_segment(&self) -> bool {
        self.multi_segment
    }
}

impl PathTemplate {
    /// Parses a template, rejecting every construct the grammar or the spec forbids.
    pub fn parse(template: &str) -> Result<Self, TemplateError> {
        Parser {
            text: template,
            bytes: template.as_bytes(),
            pos: 0,
            after_double_wildcard: false,
        }
        .template()
    }

    /// The flat list of segments, variables expanded to their patterns. Empty for `/`.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The variables, in template order.
    pub fn variables(&self) -> &[Variable] {
        &self.variables
    }

    /// The custom verb after the final `:`, if any (`cancel` in `/v1/{name}:cancel`).
    pub fn verb(&self) -> Option<&str> {
        self.verb.as_deref()
    }
}

impl FromStr for PathTemplate {
    type Err = TemplateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Segment::Literal(text) => f.write_str(text),
            Segment::Wildcard => f.write_str("*"),
            Segment::DoubleWildcard => f.write_str("**"),
        }
    }
}

impl fmt::Display for PathTemplate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.segments.is_empty() {
            f.write_str("/")?;
        }
        let mut variables = self.variables.iter().peekable();
        let mut index = 0;
        while index < self.segments.len() {
            f.write_str("/")?;
            match variables.next_if(|v| v.start == index) {
                Some(variable) => {
                    write!(f, "{{{}=", variable.field_path)?;
                    for (i, segment) in self.segments[variable.segments()].iter().enumerate() {
                        if i > 0 {
                            f.write_str("/")?;
                        }
                        write!(f, "{segment}")?;
                    }
                    f.write_str("}")?;
                    index = variable.end;
                }
                None => {
                    write!(f, "{}", self.segments[index])?;
                    index += 1;
                }
            }
        }
        if let Some(verb) = &self.verb {
            write!(f, ":{verb}")?;
        }
        Ok(())
    }
}

/// A syntax error in a path template: what is wrong and at which column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TemplateError {
    template: String,
    column: usize,
    message: String,
}

impl TemplateError {
    /// The 1-based column (in characters) the error points at.
    pub fn column(&self) -> usize {
        self.column
    }

    /// The template that failed to parse.
    pub fn template(&self) -> &str {
        &self.template
    }
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid path template {:?}: column {}: {}",
            self.template, self.column, self.message
        )
    }
}

impl std::error::Error for TemplateError {}

struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    /// `**` matches a variable number of segments, so the matcher needs everything after it
    /// to have a fixed length: once a `**` is seen, only literal segments may follow.
    after_double_wildcard: bool,
}

/// What the parser is reading, which decides what may follow a segment.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Context {
    TopLevel,
    /// Inside the pattern of a variable.
    Variable,
}

impl Parser<'_> {
    fn error(&self, at: usize, message: impl Into<String>) -> TemplateError {
        // Columns count characters; everything before a non-ASCII character is an error or
        // ASCII, but count properly anyway so the column is never misleading.
        let column = self.text.get(..at).map_or(at, |s| s.chars().count()) + 1;
        TemplateError {
            template: self.text.to_owned(),
            column,
            message: message.into(),
        }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn template(mut self) -> Result<PathTemplate, TemplateError> {
        if self.peek() != Some(b'/') {
            return Err(self.error(0, "a template must start with '/'"));
        }
        self.pos = 1;
        let mut template = PathTemplate {
            segments: Vec::new(),
            variables: Vec::new(),
            verb: None,
        };
        if self.pos == self.bytes.len() {
            return Ok(template); // the root template "/"
        }
        self.segments(&mut template, Context::TopLevel)?;
        if self.peek() == Some(b':') {
            template.verb = Some(self.verb()?);
        }
        match self.peek() {
            None => {}
            Some(b'}') => return Err(self.error(self.pos, "'}' without a matching '{'")),
            Some(_) => return Err(self.unexpected_char("in a segment")),
        }
        Ok(template)
    }

    /// `Segments = Segment { "/" Segment }`; stops before `:` (verb), `}` or the end.
    fn segments(
        &mut self,
        template: &mut PathTemplate,
        context: Context,
    ) -> Result<(), TemplateError> {
        loop {
            self.segment(template, context)?;
            if self.peek() != Some(b'/') {
                return Ok(());
            }
            self.pos += 1;
        }
    }

    fn segment(
        &mut self,
        template: &mut PathTemplate,
        context: Context,
    ) -> Result<(), TemplateError> {
        let start = self.pos;
        match self.peek() {
            None if context == Context::TopLevel && self.bytes.last() == Some(&b'/') => {
                Err(self.error(
                    start - 1,
                    "a trailing '/' is not allowed (requests with a trailing '/' match the template without it)",
                ))
            }
            None | Some(b'/') => Err(self.error(start, "empty segment")),
            Some(b':') if context == Context::TopLevel && !self.bytes[start..].contains(&b'/') => {
                Err(self.error(start, "expected a segment before the verb"))
            }
            Some(b'}') => Err(self.error(start, "empty segment")),
            Some(b'{') => match context {
                Context::TopLevel => self.variable(template),
                Context::Variable => Err(self.error(start, "variables cannot be nested")),
            },
            Some(b'*') => {
                let stars = self.bytes[start..].iter().take_while(|&&b| b == b'*').count();
                self.pos += stars;
                if stars > 2 || !self.at_segment_end() {
                    return Err(self.error(start, "'*' and '**' must be a whole segment"));
                }
                self.push_wildcard(template, start, stars == 2)
            }
            Some(_) => {
                let literal = self.literal(context)?;
                template.segments.push(Segment::Literal(literal));
                Ok(())
            }
        }
    }

    fn push_wildcard(
        &mut self,
        template: &mut PathTemplate,
        at: usize,
        double: bool,
    ) -> Result<(), TemplateError> {
        if self.after_double_wildcard {
            let message = if double {
                "'**' may appear only once"
            } else {
                "only literal segments may follow '**'"
            };
            return Err(self.error(at, message));
        }
        self.after_double_wildcard = double;
        template.segments.push(if double {
            Segment::DoubleWildcard
        } else {
            Segment::Wildcard
        });
        Ok(())
    }

    /// Skips a `%XX` escape; literals and verbs must not contain a bare `%`.
    fn percent_escape(&mut self) -> Result<(), TemplateError> {
        let hex = self.bytes.get(self.pos + 1..self.pos + 3);
        if !hex.is_some_and(|h| h.iter().all(u8::is_ascii_hexdigit)) {
            return Err(self.error(self.pos, "'%' must be followed by two hex digits"));
        }
        self.pos += 3;
        Ok(())
    }

    fn at_segment_end(&self) -> bool {
        matches!(self.peek(), None | Some(b'/' | b':' | b'}'))
    }

    /// A literal segment. Its characters are RFC 3986 `pchar`s (percent-encode the rest),
    /// except `*`, which only makes sense as a whole segment. A `:` in the last top-level
    /// segment starts the verb; anywhere else it is an ordinary character.
    fn literal(&mut self, context: Context) -> Result<String, TemplateError> {
        let start = self.pos;
        while let Some(byte) = self.peek() {
            match byte {
                b'/' | b'}' => break,
                b':' if context == Context::TopLevel && !self.bytes[self.pos..].contains(&b'/') => {
                    break;
                }
                b'%' => self.percent_escape()?,
                b'*' => return Err(self.error(self.pos, "'*' and '**' must be a whole segment")),
                b'{' => return Err(self.error(self.pos, "a variable must be a whole segment")),
                _ if is_pchar(byte) => self.pos += 1,
                _ => return Err(self.unexpected_char("in a literal (percent-encode it)")),
            }
        }
        Ok(self.text[start..self.pos].to_owned())
    }

    /// `Variable = "{" FieldPath [ "=" Segments ] "}"`, at the top level only.
    fn variable(&mut self, template: &mut PathTemplate) -> Result<(), TemplateError> {
        let open = self.pos;
        self.pos += 1;
        let field_path = self.field_path()?;
        if template
            .variables
            .iter()
            .any(|v| v.field_path == field_path)
        {
            return Err(self.error(
                open + 1,
                format!("the field path '{field_path}' is bound twice"),
            ));
        }
        let start = template.segments.len();
        match self.peek() {
            Some(b'=') => {
                self.pos += 1;
                self.segments(template, Context::Variable)?;
            }
            Some(b'}') => self.push_wildcard(template, open, false)?,
            None => {}
            Some(_) => return Err(self.unexpected_char("in a field path (expected '=' or '}')")),
        }
        match self.peek() {
            Some(b'}') => self.pos += 1,
            Some(b':') => {
                return Err(self.error(self.pos, "a verb cannot appear inside a variable"));
            }
            Some(_) => return Err(self.unexpected_char("in a variable pattern")),
            None => return Err(self.error(open, "'{' is never closed by '}'")),
        }
        if !self.at_segment_end() {
            return Err(self.error(self.pos, "a variable must be a whole segment"));
        }
        let end = template.segments.len();
        let multi_segment = end - start > 1 || template.segments[start] == Segment::DoubleWildcard;
        template.variables.push(Variable {
            field_path,
            start,
            end,
            multi_segment,
        });
        Ok(())
    }

    /// `FieldPath = IDENT { "." IDENT }` with proto identifiers `[A-Za-z_][A-Za-z0-9_]*`.
    fn field_path(&mut self) -> Result<String, TemplateError> {
        let start = self.pos;
        loop {
            let ident_start = self.pos;
            match self.peek() {
                Some(b'a'..=b'z' | b'A'..=b'Z' | b'_') => self.pos += 1,
                Some(b'{') => return Err(self.error(self.pos, "variables cannot be nested")),
                Some(b'.' | b'}' | b'=') | None => {
                    return Err(self.error(ident_start, "expected a field name"));
                }
                Some(_) => return Err(self.unexpected_char("at the start of a field name")),
            }
            while let Some(b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_') = self.peek() {
                self.pos += 1;
            }
            if self.peek() != Some(b'.') {
                return Ok(self.text[start..self.pos].to_owned());
            }
            self.pos += 1;
        }
    }

    /// `Verb = ":" LITERAL`, which must end the template.
    fn verb(&mut self) -> Result<String, TemplateError> {
        let colon = self.pos;
        self.pos += 1;
        let start = self.pos;
        while let Some(byte) = self.peek() {
            match byte {
                b':' => return Err(self.error(self.pos, "a verb cannot contain ':'")),
                b'/' => return Err(self.error(self.pos, "the verb must end the template")),
                b'%' => self.percent_escape()?,
                _ if is_pchar(byte) && byte != b'*' => self.pos += 1,
                _ => return Err(self.unexpected_char("in a verb (percent-encode it)")),
            }
        }
        if start == self.pos {
            return Err(self.error(colon, "empty verb after ':'"));
        }
        Ok(self.text[start..self.pos].to_owned())
    }

    fn unexpected_char(&self, place: &str) -> TemplateError {
        let c = self.text[self.pos..].chars().next().unwrap_or('?');
        self.error(self.pos, format!("character {c:?} is not allowed {place}"))
    }
}

/// RFC 3986 `pchar`, without `%` (handled separately) and without `/`.
fn is_pchar(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&byte)
}

/// Whether a message type is one of the well-known types whose JSON form is a single string
/// or number (Timestamp, Duration, FieldMask, the wrappers), which the spec lets a path
/// variable or a query value set. The one list, shared by rule checks at generate time and
/// at startup and by binding at run time.
#[allow(dead_code)] // unused without the `gateway` feature (the generator compiles this file too)
pub(crate) fn scalar_like_message(full_name: &str) -> bool {
    matches!(
        full_name,
        "google.protobuf.Timestamp"
            | "google.protobuf.Duration"
            | "google.protobuf.FieldMask"
            | "google.protobuf.DoubleValue"
            | "google.protobuf.FloatValue"
            | "google.protobuf.Int64Value"
            | "google.protobuf.UInt64Value"
            | "google.protobuf.Int32Value"
            | "google.protobuf.UInt32Value"
            | "google.protobuf.BoolValue"
            | "google.protobuf.StringValue"
            | "google.protobuf.BytesValue"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Templates that parse, with their canonical form, variables (field path, segment range)
    /// and verb.
    #[test]
    fn parses_valid_templates() {
        type Case = (
            &'static str,
            &'static str,
            &'static [(&'static str, usize, usize, bool)],
            Option<&'static str>,
        );
        let cases: &[Case] = &[
            ("/", "/", &[], None),
            ("/v1/books", "/v1/books", &[], None),
            ("/v1/*", "/v1/*", &[], None),
            ("/v1/**", "/v1/**", &[], None),
            ("/v1/{name}", "/v1/{name=*}", &[("name", 1, 2, false)], None),
            (
                "/v1/{name=*}",
                "/v1/{name=*}",
                &[("name", 1, 2, false)],
                None,
            ),
            (
                "/v1/{name=**}",
                "/v1/{name=**}",
                &[("name", 1, 2, true)],
                None,
            ),
            (
                "/v1/{name=shelves/*}/books/*",
                "/v1/{name=shelves/*}/books/*",
                &[("name", 1, 3, true)],
                None,
            ),
            (
                "/v1/{parent=projects/*/locations/*}/{book.id}",
                "/v1/{parent=projects/*/locations/*}/{book.id=*}",
                &[("parent", 1, 5, true), ("book.id", 5, 6, false)],
                None,
            ),
            (
                "/v1/{a.b_c.D9}",
                "/v1/{a.b_c.D9=*}",
                &[("a.b_c.D9", 1, 2, false)],
                None,
            ),
            (
                "/v1/{name}:cancel",
                "/v1/{name=*}:cancel",
                &[("name", 1, 2, false)],
                Some("cancel"),
            ),
            (
                "/v1/{name=**}:cancel",
                "/v1/{name=**}:cancel",
                &[("name", 1, 2, true)],
                Some("cancel"),
            ),
            (
                "/v1/books:batchGet",
                "/v1/books:batchGet",
                &[],
                Some("batchGet"),
            ),
            ("/v1/*:verb", "/v1/*:verb", &[], Some("verb")),
            ("/v1/{x=lit}", "/v1/{x=lit}", &[("x", 1, 2, false)], None),
            // Only literal segments after `**`: their number is fixed, so matching stays simple.
            ("/a/**/b/c", "/a/**/b/c", &[], None),
            (
                "/v1/{name=files/**}/content",
                "/v1/{name=files/**}/content",
                &[("name", 1, 3, true)],
                None,
            ),
            ("/**/tail", "/**/tail", &[], None),
            // `:` is ordinary in earlier segments and inside variables (grpc-gateway's table).
            (
                "/v1/a=b&c=d;e=f:g/endpoint.rdf",
                "/v1/a=b&c=d;e=f:g/endpoint.rdf",
                &[],
                None,
            ),
            (
                "/v1/{name=segment/wi:th}",
                "/v1/{name=segment/wi:th}",
                &[("name", 1, 3, true)],
                None,
            ),
            ("/:a/b", "/:a/b", &[], None),
            (
                "/v1/%2Fx/~a-b_c.d!$&'()+,;=@",
                "/v1/%2Fx/~a-b_c.d!$&'()+,;=@",
                &[],
                None,
            ),
            ("/v1/x:v%20b", "/v1/x:v%20b", &[], Some("v%20b")),
        ];
        for &(text, canonical, variables, verb) in cases {
            let template = PathTemplate::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(template.to_string(), canonical, "{text}");
            let got: Vec<_> = template
                .variables()
                .iter()
                .map(|v| {
                    (
                        v.field_path(),
                        v.segments().start,
                        v.segments().end,
                        v.is_multi_segment(),
                    )
                })
                .collect();
            assert_eq!(got, variables, "{text}");
            assert_eq!(template.verb(), verb, "{text}");
            // The canonical form parses back to the same template.
            assert_eq!(
                PathTemplate::parse(canonical).as_ref(),
                Ok(&template),
                "{text}"
            );
        }
    }

    #[test]
    fn segments_are_flat() {
        let template: PathTemplate = "/v1/{name=shelves/*}/books/**".parse().unwrap();
        let lit = |s: &str| Segment::Literal(s.to_owned());
        assert_eq!(
            template.segments(),
            [
                lit("v1"),
                lit("shelves"),
                Segment::Wildcard,
                lit("books"),
                Segment::DoubleWildcard
            ]
        );
    }

    /// Every syntax error, with its column and message.
    #[test]
    fn rejects_invalid_templates() {
        let cases: &[(&str, usize, &str)] = &[
            ("", 1, "a template must start with '/'"),
            ("v1/books", 1, "a template must start with '/'"),
            ("//", 2, "empty segment"),
            ("/a//b", 4, "empty segment"),
            ("/a/", 3, "a trailing '/' is not allowed"),
            ("/{x}/", 5, "a trailing '/' is not allowed"),
            (
                "/a?b",
                3,
                "character '?' is not allowed in a literal (percent-encode it)",
            ),
            ("/a#", 3, "character '#' is not allowed in a literal"),
            ("/a b", 3, "character ' ' is not allowed in a literal"),
            ("/é", 2, "character 'é' is not allowed in a literal"),
            ("/%", 2, "'%' must be followed by two hex digits"),
            ("/a%2z", 3, "'%' must be followed by two hex digits"),
            ("/a*", 3, "'*' and '**' must be a whole segment"),
            ("/***", 2, "'*' and '**' must be a whole segment"),
            ("/*a", 2, "'*' and '**' must be a whole segment"),
            ("/a/**/*", 7, "only literal segments may follow '**'"),
            ("/a/**/**", 7, "'**' may appear only once"),
            (
                "/a/{x=**}/b/{y}",
                13,
                "only literal segments may follow '**'",
            ),
            ("/{x=**}/{y=**}", 12, "'**' may appear only once"),
            ("/{}", 3, "expected a field name"),
            ("/{x.}", 5, "expected a field name"),
            ("/{.x}", 3, "expected a field name"),
            ("/{a..b}", 5, "expected a field name"),
            (
                "/{field-name}",
                8,
                "character '-' is not allowed in a field path (expected '=' or '}')",
            ),
            (
                "/{9x}",
                3,
                "character '9' is not allowed at the start of a field name",
            ),
            ("/{x", 2, "'{' is never closed by '}'"),
            ("/{x=a", 2, "'{' is never closed by '}'"),
            ("/{x=}", 5, "empty segment"),
            ("/{x=a/}", 7, "empty segment"),
            ("/{x={y}}", 5, "variables cannot be nested"),
            ("/{x=a/{y}}", 7, "variables cannot be nested"),
            ("/{{x}}", 3, "variables cannot be nested"),
            ("/a{x}", 3, "a variable must be a whole segment"),
            ("/{x}a", 5, "a variable must be a whole segment"),
            ("/{a}/{a}", 7, "the field path 'a' is bound twice"),
            ("/{x=*:v}", 6, "a verb cannot appear inside a variable"),
            ("/a}", 3, "'}' without a matching '{'"),
            ("/a:", 3, "empty verb after ':'"),
            ("/{x}:", 5, "empty verb after ':'"),
            ("/:verb", 2, "expected a segment before the verb"),
            ("/v1/{name}:bla:baa", 15, "a verb cannot contain ':'"),
            ("/v1/x:a:b", 8, "a verb cannot contain ':'"),
            ("/v1/{x}:v/b", 10, "the verb must end the template"),
            ("/v1/{x}:v*", 10, "character '*' is not allowed in a verb"),
            ("/v1/{x}:v}", 10, "character '}' is not allowed in a verb"),
        ];
        for &(text, column, message) in cases {
            let error = PathTemplate::parse(text).expect_err(text);
            assert_eq!(
                (error.column(), error.template()),
                (column, text),
                "{text}: {error}"
            );
            let display = error.to_string();
            let expected_start =
                format!("invalid path template {text:?}: column {column}: {message}");
            assert!(
                display.starts_with(&expected_start),
                "{text}:\n  got  {display}\n  want {expected_start}"
            );
        }
    }
}
