//! The route trie: (HTTP method, path template) → route value, matched by specificity.
//!
//! Like the template parser, this module is `std` only, so the generator can use it to
//! detect conflicting rules with exactly the logic the server applies.

use std::borrow::Cow;
use std::fmt;

use super::template::{PathTemplate, Segment, TemplateError};

/// Matches request paths against registered templates.
///
/// At each segment a literal beats `*`, which beats `**`, whatever the registration order;
/// the search backtracks, so `/a/b/c` reaches `/a/{x}/c` when `/a/b` leads nowhere.
/// See the [module docs](super) for decoding, verbs and trailing slashes.
#[derive(Debug)]
pub struct Router<T> {
    root: Node,
    routes: Vec<Route<T>>,
    /// Every verb some template declares, sorted: a `:suffix` of a request is only treated
    /// as a verb when it is one of these.
    verbs: Vec<Box<str>>,
    /// The largest number of template segments, to size the per-match scratch space once.
    max_depth: usize,
    multi_segment_decoding: MultiSegmentDecoding,
    strict_trailing_slash: bool,
}

/// How values of multi-segment variables (`{name=shelves/*}`, `{path=**}`) are decoded.
/// Single-segment variables are always fully decoded, as the spec says.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum MultiSegmentDecoding {
    /// Keep the RFC 6570 reserved characters ``! # $ & ' ( ) * + , / : ; = ? @ [ ]``
    /// and `%` itself percent-encoded, and decode the rest (Envoy's transcoder default, a
    /// superset of the spec's "keep `%2F`"). The value stays valid percent-encoded text.
    #[default]
    KeepReserved,
    /// Keep only `%2F` (and `%25`, so the value stays unambiguous) encoded: the spec's wording.
    KeepSlash,
    /// Decode everything (`google.api.Http.fully_decode_reserved_expansion = true`).
    DecodeAll,
}

/// The outcome of [`Router::find`].
#[derive(Debug)]
pub enum RouteMatch<'r, 'p, T> {
    /// A route matched the method and the path.
    Found(Found<'r, 'p, T>),
    /// Routes match the path, but none for this method: answer 405 with these methods
    /// (sorted, without duplicates) in `Allow`.
    MethodNotAllowed(Vec<&'r str>),
    /// No route matches the path.
    NotFound,
}

/// A successful match.
#[derive(Debug)]
pub struct Found<'r, 'p, T> {
    /// The value registered with the route.
    pub value: &'r T,
    /// The template that matched, e.g. for logs and metrics.
    pub template: &'r PathTemplate,
    /// The captured variables in template order: (field path, decoded value).
    pub params: Vec<(&'r str, Cow<'p, str>)>,
}

/// Why [`Router::insert`] refused a route.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RouteError {
    /// The template does not parse.
    Template(TemplateError),
    /// The method is neither an HTTP token (`GET`, `PURGE`) nor `*` (any method).
    Method(String),
    /// The same method and an equivalent template (variable names aside) are registered.
    Conflict {
        /// The method both routes use.
        method: String,
        /// The template being inserted, in canonical form.
        template: String,
        /// The template already registered, in canonical form.
        existing: String,
    },
}

impl fmt::Display for RouteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RouteError::Template(error) => error.fmt(f),
            RouteError::Method(method) => write!(f, "invalid HTTP method {method:?}"),
            RouteError::Conflict {
                method,
                template,
                existing,
            } => {
                write!(
                    f,
                    "route {method} {template} conflicts with {method} {existing}, which is already registered"
                )
            }
        }
    }
}

impl std::error::Error for RouteError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            RouteError::Template(error) => Some(error),
            _ => None,
        }
    }
}

impl From<TemplateError> for RouteError {
    fn from(error: TemplateError) -> Self {
        RouteError::Template(error)
    }
}

#[derive(Debug)]
struct Route<T> {
    template: PathTemplate,
    value: T,
}

#[derive(Debug, Default)]
struct Node {
    /// Sorted by text, searched by binary search: no hashing or allocation per lookup.
    literals: Vec<(Box<str>, Node)>,
    wildcard: Option<Box<Node>>,
    double_wildcard: Option<Box<Node>>,
    endpoints: Vec<Endpoint>,
}

#[derive(Debug)]
struct Endpoint {
    method: Box<str>,
    verb: Option<Box<str>>,
    route: usize,
}

/// The method that [`Router::insert`] accepts to mean "any method" (`custom: {kind: "*"}`).
const ANY_METHOD: &str = "*";

/// Template depth up to which [`Router::find`] needs no heap allocation for its search.
const INLINE_DEPTH: usize = 16;

/// Marks "no segments left" in the search.
const END: usize = usize::MAX;

impl<T> Default for Router<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Router<T> {
    /// An empty router with the spec's decoding and a trailing `/` ignored.
    pub fn new() -> Self {
        Router {
            root: Node::default(),
            routes: Vec::new(),
            verbs: Vec::new(),
            max_depth: 0,
            multi_segment_decoding: MultiSegmentDecoding::default(),
            strict_trailing_slash: false,
        }
    }

    /// Sets how multi-segment variables are decoded. Default: [`MultiSegmentDecoding::KeepReserved`].
    #[must_use]
    pub fn multi_segment_decoding(mut self, decoding: MultiSegmentDecoding) -> Self {
        self.multi_segment_decoding = decoding;
        self
    }

    /// When `true`, `/v1/books/` no longer matches `/v1/books`. Default: `false`.
    #[must_use]
    pub fn strict_trailing_slash(mut self, strict: bool) -> Self {
        self.strict_trailing_slash = strict;
        self
    }

    /// Registers `value` for `method` (case-sensitive, `*` for any method) and `template`.
    ///
    /// Fails if the template does not parse or if the same method and verb are already
    /// registered for an equivalent template: same segments, variable names aside
    /// (`/v1/{id}` and `/v1/{name=*}` are equivalent).
    pub fn insert(&mut self, method: &str, template: &str, value: T) -> Result<(), RouteError> {
        let is_token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
        if method != ANY_METHOD && (method.is_empty() || !method.bytes().all(is_token)) {
            return Err(RouteError::Method(method.to_owned()));
        }
        let template = PathTemplate::parse(template)?;
        let mut node = &mut self.root;
        for segment in template.segments() {
            node = match segment {
                Segment::Literal(text) => {
                    let index = match node.literals.binary_search_by(|(t, _)| (**t).cmp(text)) {
                        Ok(index) => index,
                        Err(index) => {
                            node.literals
                                .insert(index, (text.as_str().into(), Node::default()));
                            index
                        }
                    };
                    &mut node.literals[index].1
                }
                Segment::Wildcard => node.wildcard.get_or_insert_with(Box::default),
                Segment::DoubleWildcard => node.double_wildcard.get_or_insert_with(Box::default),
            };
        }
        let verb = template.verb();
        if let Some(existing) = node
            .endpoints
            .iter()
            .find(|e| *e.method == *method && e.verb.as_deref() == verb)
        {
            return Err(RouteError::Conflict {
                method: method.to_owned(),
                template: template.to_string(),
                existing: self.routes[existing.route].template.to_string(),
            });
        }
        node.endpoints.push(Endpoint {
            method: method.into(),
            verb: verb.map(Into::into),
            route: self.routes.len(),
        });
        if let Some(verb) = verb
            && let Err(index) = self.verbs.binary_search_by(|v| (**v).cmp(verb))
        {
            self.verbs.insert(index, verb.into());
        }
        self.max_depth = self.max_depth.max(template.segments().len());
        self.routes.push(Route { template, value });
        Ok(())
    }

    /// Finds the route for `method` and `path` (the request target without its `?query`,
    /// still percent-encoded).
    pub fn find<'r, 'p>(&'r self, method: &str, path: &'p str) -> RouteMatch<'r, 'p, T> {
        let Some(mut body) = path.strip_prefix('/') else {
            return RouteMatch::NotFound;
        };
        if !self.strict_trailing_slash && !body.is_empty() {
            body = body.strip_suffix('/').unwrap_or(body);
        }
        // A `:suffix` on the last segment is a verb only if some template declares it, and
        // even then the path without a verb is tried next, so that `/v1/{name}` still binds
        // `name = "a:cancel"` when no `:cancel` route matches (grpc-gateway#224).
        let last_segment_start = body.rfind('/').map_or(0, |slash| slash + 1);
        let verb_split = body[last_segment_start..].rfind(':').and_then(|colon| {
            let colon = last_segment_start + colon;
            let verb = &body[colon + 1..];
            self.verbs
                .binary_search_by(|v| (**v).cmp(verb))
                .is_ok()
                .then_some((colon, verb))
        });
        // Scratch space for the search: on the stack for templates of usual depth, so a match
        // allocates only the params it returns.
        let mut inline = [(0, 0); INLINE_DEPTH];
        let mut heap = Vec::new();
        let spans: &mut [(usize, usize)] = if self.max_depth <= INLINE_DEPTH {
            &mut inline[..self.max_depth]
        } else {
            heap.resize(self.max_depth, (0, 0));
            &mut heap
        };
        if let Some((colon, verb)) = verb_split
            && let Some(found) = self.find_endpoint(method, &body[..colon], Some(verb), spans)
        {
            return RouteMatch::Found(found);
        }
        if let Some(found) = self.find_endpoint(method, body, None, spans) {
            return RouteMatch::Found(found);
        }
        // Not found for this method: is the path there for another one?
        let mut allowed = Vec::new();
        if let Some((colon, verb)) = verb_split {
            self.collect_methods(&body[..colon], Some(verb), spans, &mut allowed);
        }
        self.collect_methods(body, None, spans, &mut allowed);
        if allowed.is_empty() {
            return RouteMatch::NotFound;
        }
        if allowed.contains(&"GET") {
            allowed.push("HEAD"); // GET routes answer HEAD too
        }
        allowed.sort_unstable();
        allowed.dedup();
        RouteMatch::MethodNotAllowed(allowed)
    }

    fn find_endpoint<'r, 'p>(
        &'r self,
        method: &str,
        body: &'p str,
        verb: Option<&str>,
        spans: &mut [(usize, usize)],
    ) -> Option<Found<'r, 'p, T>> {
        let mut route = None;
        search(
            &self.root,
            body,
            first_segment(body),
            0,
            spans,
            &mut |endpoints: &'r [Endpoint]| {
                let with_verb = |e: &&Endpoint| e.verb.as_deref() == verb;
                let exact = endpoints
                    .iter()
                    .filter(with_verb)
                    .find(|e| *e.method == *method);
                let any = || {
                    endpoints
                        .iter()
                        .filter(with_verb)
                        .find(|e| *e.method == *ANY_METHOD)
                };
                // HEAD is GET without the body (RFC 9110 §9.3.2): a GET route answers it
                // when the template has no route of its own for HEAD.
                let get = || {
                    (method == "HEAD")
                        .then(|| {
                            endpoints
                                .iter()
                                .filter(with_verb)
                                .find(|e| *e.method == *"GET")
                        })
                        .flatten()
                };
                route = exact.or_else(any).or_else(get).map(|e| e.route);
                route.is_some()
            },
        );
        let route = &self.routes[route?];
        let params = route
            .template
            .variables()
            .iter()
            .map(|variable| {
                // A `**` that matched nothing has an empty span; the value is the text from the
                // first to the last non-empty span (`{name=o/**}` on `/o` is `o`, not `o/`).
                let mut captured = spans[variable.segments()]
                    .iter()
                    .filter(|(start, end)| start < end);
                let raw = match captured.next() {
                    Some(&(start, first_end)) => {
                        &body[start..captured.next_back().map_or(first_end, |&(_, end)| end)]
                    }
                    None => "",
                };
                let value = if variable.is_multi_segment() {
                    percent_decode(raw, self.multi_segment_decoding)
                } else {
                    percent_decode(raw, MultiSegmentDecoding::DecodeAll)
                };
                (variable.field_path(), value)
            })
            .collect();
        Some(Found {
            value: &route.value,
            template: &route.template,
            params,
        })
    }

    fn collect_methods<'r>(
        &'r self,
        body: &str,
        verb: Option<&str>,
        spans: &mut [(usize, usize)],
        allowed: &mut Vec<&'r str>,
    ) {
        search(
            &self.root,
            body,
            first_segment(body),
            0,
            spans,
            &mut |endpoints: &'r [Endpoint]| {
                allowed.extend(
                    endpoints
                        .iter()
                        .filter(|e| e.verb.as_deref() == verb)
                        .map(|e| &*e.method),
                );
                false
            },
        );
    }
}

/// The start of the first segment of `body` (the path after its leading `/`), or [`END`] for
/// the root path, which has no segments.
fn first_segment(body: &str) -> usize {
    if body.is_empty() { END } else { 0 }
}

/// Depth-first search of the trie from `node`, with the next request segment starting at
/// byte `pos` of `body` and `depth` template segments matched so far. `spans[i]` records the
/// byte range of `body` that template segment `i` matched. Calls `visit` on the endpoints of
/// every node that matches the whole path, most specific first, until it returns `true`;
/// `spans` then describes that match.
///
/// The recursion depth is bounded by the number of segments of the longest template.
fn search<'r>(
    node: &'r Node,
    body: &str,
    pos: usize,
    depth: usize,
    spans: &mut [(usize, usize)],
    visit: &mut dyn FnMut(&'r [Endpoint]) -> bool,
) -> bool {
    if pos == END {
        if !node.endpoints.is_empty() && visit(&node.endpoints) {
            return true;
        }
        // `**` also matches zero segments at the end (`/**` matches `/`).
        return match &node.double_wildcard {
            Some(child) => {
                spans[depth] = (body.len(), body.len());
                search(child, body, END, depth + 1, spans, visit)
            }
            None => false,
        };
    }
    let (end, next) = segment_end(body, pos);
    if end == pos {
        return false; // empty segments (`/a//b`) never match
    }
    let segment = &body[pos..end];
    if let Ok(index) = node
        .literals
        .binary_search_by(|(text, _)| (**text).cmp(segment))
    {
        spans[depth] = (pos, end);
        if search(&node.literals[index].1, body, next, depth + 1, spans, visit) {
            return true;
        }
    }
    if let Some(child) = &node.wildcard {
        spans[depth] = (pos, end);
        if search(child, body, next, depth + 1, spans, visit) {
            return true;
        }
    }
    if let Some(child) = &node.double_wildcard {
        // Let `**` take as few segments as possible first, so the literal segments after it
        // (`/a/**/b`) are tried before `**` swallows them; it takes all of them last.
        spans[depth] = (pos, pos);
        if search(child, body, pos, depth + 1, spans, visit) {
            return true;
        }
        let mut taken_end = end;
        let mut rest = next;
        loop {
            spans[depth] = (pos, taken_end);
            if search(child, body, rest, depth + 1, spans, visit) {
                return true;
            }
            if rest == END {
                return false;
            }
            let (end, next) = segment_end(body, rest);
            if end == rest {
                return false; // `**` does not take empty segments either
            }
            (taken_end, rest) = (end, next);
        }
    }
    false
}

/// The end of the segment starting at `pos`, and the start of the next one ([`END`] if none).
fn segment_end(body: &str, pos: usize) -> (usize, usize) {
    match body[pos..].find('/') {
        Some(offset) => (pos + offset, pos + offset + 1),
        None => (body.len(), END),
    }
}

/// Percent-decodes `raw`, keeping the escapes `decoding` says to keep. Borrows when there is
/// nothing to decode. Malformed escapes (`%`, `%zz`) are kept as sent, and so is the whole
/// value if the decoded bytes are not UTF-8: a router cannot answer 400, and binding rejects
/// such text where the field type makes it wrong.
fn percent_decode(raw: &str, decoding: MultiSegmentDecoding) -> Cow<'_, str> {
    if !raw.contains('%') {
        return Cow::Borrowed(raw);
    }
    let keep = |byte: u8| match decoding {
        // `%25` stays too: otherwise `a%252Fb` (the text `a%2Fb`) and `a%2Fb` (`a/b`) would
        // decode alike, and the value would no longer be percent-encoded text.
        MultiSegmentDecoding::KeepReserved => b"%!#$&'()*+,/:;=?@[]".contains(&byte),
        MultiSegmentDecoding::KeepSlash => byte == b'/' || byte == b'%',
        MultiSegmentDecoding::DecodeAll => false,
    };
    let bytes = raw.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten();
        match escape.and_then(|hex| Some(hex_value(hex[0])? << 4 | hex_value(hex[1])?)) {
            Some(byte) if !keep(byte) => {
                decoded.push(byte);
                i += 3;
            }
            _ => {
                decoded.push(bytes[i]);
                i += 1;
            }
        }
    }
    match String::from_utf8(decoded) {
        Ok(text) => Cow::Owned(text),
        Err(_) => Cow::Borrowed(raw),
    }
}

fn hex_value(digit: u8) -> Option<u8> {
    (digit as char).to_digit(16).map(|v| v as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a test expects from [`Router::find`]: the matched route's name and its params,
    /// the allowed methods, or nothing.
    #[derive(Debug, PartialEq)]
    enum Expect {
        Route(String, Vec<(String, String)>),
        NotAllowed(Vec<String>),
        NotFound,
    }
    use Expect::NotFound;

    fn found(route: &str, params: &[(&str, &str)]) -> Expect {
        let params = params
            .iter()
            .map(|&(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Expect::Route(route.to_owned(), params)
    }

    fn not_allowed(methods: &[&str]) -> Expect {
        Expect::NotAllowed(methods.iter().map(|m| m.to_string()).collect())
    }

    fn outcome<T: ToString>(router: &Router<T>, method: &str, path: &str) -> Expect {
        match router.find(method, path) {
            RouteMatch::Found(found) => Expect::Route(
                found.value.to_string(),
                found
                    .params
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
            ),
            RouteMatch::MethodNotAllowed(methods) => not_allowed(&methods),
            RouteMatch::NotFound => NotFound,
        }
    }

    fn router(routes: &[(&str, &str)]) -> Router<String> {
        let mut router = Router::new();
        for &(method, template) in routes {
            let name = format!("{method} {template}");
            router
                .insert(method, template, name)
                .unwrap_or_else(|e| panic!("{e}"));
        }
        router
    }

    /// Runs `cases` against `routes` registered in the given order and in reverse, so that
    /// every expectation also proves order independence.
    fn check(routes: &[(&str, &str)], cases: &[(&str, &str, Expect)]) {
        let reversed: Vec<_> = routes.iter().rev().copied().collect();
        for routes in [routes, &reversed] {
            let router = router(routes);
            for (method, path, expected) in cases {
                assert_eq!(
                    &outcome(&router, method, path),
                    expected,
                    "{method} {path} with {routes:?}"
                );
            }
        }
    }

    #[test]
    fn literal_beats_wildcard_beats_double_wildcard() {
        let routes = [
            ("GET", "/api/user/me"),
            ("GET", "/api/user/{id}"),
            ("GET", "/api/user/{id}/posts"),
            ("GET", "/api/{rest=**}"),
            ("GET", "/v3/files"),
            ("GET", "/v3/files/{path=**}"),
            ("GET", "/a/**/b"),
            ("GET", "/a/**"),
            ("GET", "/a/x/{y}"),
        ];
        check(
            &routes,
            &[
                ("GET", "/api/user/me", found("GET /api/user/me", &[])),
                (
                    "GET",
                    "/api/user/42",
                    found("GET /api/user/{id}", &[("id", "42")]),
                ),
                (
                    "GET",
                    "/api/user/me/posts",
                    found("GET /api/user/{id}/posts", &[("id", "me")]),
                ),
                (
                    "GET",
                    "/api/user/42/likes",
                    found("GET /api/{rest=**}", &[("rest", "user/42/likes")]),
                ),
                ("GET", "/api", found("GET /api/{rest=**}", &[("rest", "")])),
                // grpc-gateway#5771: `/v3/files/{path=**}` must not swallow `/v3/files`.
                ("GET", "/v3/files", found("GET /v3/files", &[])),
                (
                    "GET",
                    "/v3/files/a/b.txt",
                    found("GET /v3/files/{path=**}", &[("path", "a/b.txt")]),
                ),
                // Continuations of `**` before `**` alone; backtracking out of `/a/x/{y}`.
                ("GET", "/a/x/y/b", found("GET /a/**/b", &[])),
                ("GET", "/a/b", found("GET /a/**/b", &[])),
                ("GET", "/a/x/y", found("GET /a/x/{y}", &[("y", "y")])),
                ("GET", "/a/x/y/c", found("GET /a/**", &[])),
                ("GET", "/a", found("GET /a/**", &[])),
            ],
        );
    }

    #[test]
    fn backtracks_from_literal_to_wildcard() {
        let routes = [("GET", "/a/b"), ("GET", "/a/{x}/c"), ("POST", "/a/b/c")];
        check(
            &routes,
            &[
                ("GET", "/a/b/c", found("GET /a/{x}/c", &[("x", "b")])),
                ("POST", "/a/b/c", found("POST /a/b/c", &[])),
                ("DELETE", "/a/b/c", not_allowed(&["GET", "HEAD", "POST"])),
                ("GET", "/a/b/d", NotFound),
            ],
        );
    }

    #[test]
    fn binds_variables_and_nested_field_paths() {
        let routes = [
            ("GET", "/v1/{name=shelves/*/books/*}"),
            ("GET", "/v1/shelves/{shelf}/books/{book.id}/pages/{page=**}"),
            ("GET", "/v1/{name=o/**}"),
            ("GET", "/v1/{name=files/**}/content"),
            ("GET", "/v2/**/tail"),
            ("GET", "/**"),
        ];
        check(
            &routes,
            &[
                (
                    "GET",
                    "/v1/shelves/s1/books/b2",
                    found(
                        "GET /v1/{name=shelves/*/books/*}",
                        &[("name", "shelves/s1/books/b2")],
                    ),
                ),
                (
                    "GET",
                    "/v1/shelves/s1/books/b2/pages/3/4",
                    found(
                        "GET /v1/shelves/{shelf}/books/{book.id}/pages/{page=**}",
                        &[("shelf", "s1"), ("book.id", "b2"), ("page", "3/4")],
                    ),
                ),
                // `**` matching nothing adds no `/` (grpc-gateway binds "o/").
                (
                    "GET",
                    "/v1/o",
                    found("GET /v1/{name=o/**}", &[("name", "o")]),
                ),
                (
                    "GET",
                    "/v1/o/p/q",
                    found("GET /v1/{name=o/**}", &[("name", "o/p/q")]),
                ),
                (
                    "GET",
                    "/v1/files/a/b/content",
                    found("GET /v1/{name=files/**}/content", &[("name", "files/a/b")]),
                ),
                (
                    "GET",
                    "/v1/files/content",
                    found("GET /v1/{name=files/**}/content", &[("name", "files")]),
                ),
                ("GET", "/v2/tail", found("GET /v2/**/tail", &[])),
                ("GET", "/v2/x/y/tail", found("GET /v2/**/tail", &[])),
                ("GET", "/", found("GET /**", &[])),
                ("GET", "/anything/else", found("GET /**", &[])),
            ],
        );
    }

    #[test]
    fn decodes_single_segment_fully_and_multi_segment_except_reserved() {
        const RESERVED: &str = "%21%23%24%26%27%28%29%2A%2B%2C%2F%3A%3B%3D%3F%40%5B%5D";
        // Envoy's vector, plus `%25` (kept by the partial modes) and an unreserved `%41`.
        let path = format!("/a/{RESERVED}/{RESERVED}/%25%41/c");
        let expectations = [
            (
                MultiSegmentDecoding::KeepReserved,
                format!("{RESERVED}/%25A"),
            ),
            (
                MultiSegmentDecoding::KeepSlash,
                "!#$&'()*+,%2F:;=?@[]/%25A".to_owned(),
            ),
            (
                MultiSegmentDecoding::DecodeAll,
                "!#$&'()*+,/:;=?@[]/%A".to_owned(),
            ),
        ];
        for (decoding, y) in expectations {
            let mut router = Router::new().multi_segment_decoding(decoding);
            router.insert("GET", "/a/{x=*}/{y=**}/c", "r").unwrap();
            let expected = found("r", &[("x", "!#$&'()*+,/:;=?@[]"), ("y", &y)]);
            assert_eq!(outcome(&router, "GET", &path), expected, "{decoding:?}");
        }
        let cases = [
            // `%2F` never splits a segment, and a single-segment value decodes it.
            (
                "/v1/books/a%2Fb",
                found("GET /v1/books/{id}", &[("id", "a/b")]),
            ),
            (
                "/v1/books/a%2fb",
                found("GET /v1/books/{id}", &[("id", "a/b")]),
            ),
            (
                "/v1/books/caf%C3%A9%20au%20lait",
                found("GET /v1/books/{id}", &[("id", "café au lait")]),
            ),
            // `+` is not a space in a path; malformed escapes and non-UTF-8 results pass as sent.
            (
                "/v1/books/a+b",
                found("GET /v1/books/{id}", &[("id", "a+b")]),
            ),
            (
                "/v1/books/100%",
                found("GET /v1/books/{id}", &[("id", "100%")]),
            ),
            (
                "/v1/books/%zz%4",
                found("GET /v1/books/{id}", &[("id", "%zz%4")]),
            ),
            (
                "/v1/books/%FF%41",
                found("GET /v1/books/{id}", &[("id", "%FF%41")]),
            ),
            // Multi-segment: `%2F` stays encoded, unreserved escapes decode.
            (
                "/v1/files/a%2Fb/c%41",
                found("GET /v1/files/{path=**}", &[("path", "a%2Fb/cA")]),
            ),
            // `%25` stays encoded too, so `%252F` (text "%2F") differs from `%2F` ("/").
            (
                "/v1/files/a%252Fb/%25",
                found("GET /v1/files/{path=**}", &[("path", "a%252Fb/%25")]),
            ),
            (
                "/v1/books/a%252Fb",
                found("GET /v1/books/{id}", &[("id", "a%2Fb")]),
            ),
            // Literals compare with the encoded text.
            ("/v1/%62ooks/x", NotFound),
        ];
        let routes = [("GET", "/v1/books/{id}"), ("GET", "/v1/files/{path=**}")];
        check(
            &routes,
            &cases.map(|(path, expected)| ("GET", path, expected)),
        );
    }

    #[test]
    fn verbs_and_colons_in_values() {
        let routes = [
            ("GET", "/v1/{name}"),
            ("POST", "/v1/{name}:cancel"),
            ("POST", "/v1/{name=ops/**}:wait"),
            ("GET", "/v2/items:batchGet"),
            ("GET", "/v3/{id}"),
        ];
        check(
            &routes,
            &[
                (
                    "POST",
                    "/v1/op1:cancel",
                    found("POST /v1/{name}:cancel", &[("name", "op1")]),
                ),
                (
                    "POST",
                    "/v1/ops/a/b:wait",
                    found("POST /v1/{name=ops/**}:wait", &[("name", "ops/a/b")]),
                ),
                (
                    "GET",
                    "/v2/items:batchGet",
                    found("GET /v2/items:batchGet", &[]),
                ),
                // A colon in a value binds when no verb route fits (grpc-gateway#224).
                (
                    "GET",
                    "/v1/a:b",
                    found("GET /v1/{name}", &[("name", "a:b")]),
                ),
                (
                    "GET",
                    "/v1/a:cancel",
                    found("GET /v1/{name}", &[("name", "a:cancel")]),
                ),
                (
                    "GET",
                    "/v3/x:cancel",
                    found("GET /v3/{id}", &[("id", "x:cancel")]),
                ),
                (
                    "GET",
                    "/v1/a:b:cancel",
                    found("GET /v1/{name}", &[("name", "a:b:cancel")]),
                ),
                (
                    "POST",
                    "/v1/a:b:cancel",
                    found("POST /v1/{name}:cancel", &[("name", "a:b")]),
                ),
                (
                    "GET",
                    "/v1/:cancel",
                    found("GET /v1/{name}", &[("name", ":cancel")]),
                ),
                (
                    "GET",
                    "/v1/a%3Acancel",
                    found("GET /v1/{name}", &[("name", "a:cancel")]),
                ),
                // The verb is part of the route: wrong method → 405, unknown verb → no verb.
                (
                    "DELETE",
                    "/v1/op1:cancel",
                    not_allowed(&["GET", "HEAD", "POST"]),
                ),
                ("POST", "/v1/op1", not_allowed(&["GET", "HEAD"])),
                ("POST", "/v1/op1:other", not_allowed(&["GET", "HEAD"])),
                ("GET", "/v2/items", NotFound),
                ("GET", "/v2/items:other", NotFound),
            ],
        );
    }

    #[test]
    fn trailing_slash_and_empty_segments() {
        let routes = [
            ("GET", "/v1/foo"),
            ("GET", "/v1/{id}/bar"),
            ("GET", "/v2/{id}"),
            ("GET", "/"),
        ];
        check(
            &routes,
            &[
                ("GET", "/v1/foo/", found("GET /v1/foo", &[])),
                (
                    "GET",
                    "/v1/x/bar/",
                    found("GET /v1/{id}/bar", &[("id", "x")]),
                ),
                ("GET", "/v1/foo//", NotFound),
                ("GET", "/v1//bar", NotFound),
                ("GET", "/v2/", NotFound),
                ("GET", "/v2//", NotFound),
                ("GET", "//v1/foo", NotFound),
                ("GET", "/", found("GET /", &[])),
                ("GET", "//", found("GET /", &[])),
                ("GET", "", NotFound),
                ("GET", "v1/foo", NotFound),
            ],
        );
        let mut strict = Router::new().strict_trailing_slash(true);
        strict.insert("GET", "/v1/foo", "r").unwrap();
        assert_eq!(outcome(&strict, "GET", "/v1/foo"), found("r", &[]));
        assert_eq!(outcome(&strict, "GET", "/v1/foo/"), NotFound);
    }

    #[test]
    fn methods_not_allowed_and_any_method() {
        let routes = [
            ("GET", "/v1/books/{id}"),
            ("DELETE", "/v1/books/{id}"),
            ("PATCH", "/v1/books/{book.id}"),
            ("POST", "/v1/books"),
            ("*", "/v1/any"),
            ("GET", "/v1/any"),
            ("PURGE", "/v1/cache/**"),
        ];
        check(
            &routes,
            &[
                (
                    "PATCH",
                    "/v1/books/7",
                    found("PATCH /v1/books/{book.id}", &[("book.id", "7")]),
                ),
                (
                    "PUT",
                    "/v1/books/7",
                    not_allowed(&["DELETE", "GET", "HEAD", "PATCH"]),
                ),
                ("GET", "/v1/books", not_allowed(&["POST"])),
                ("GET", "/v1/books/7/x", NotFound),
                (
                    "get",
                    "/v1/books/7",
                    not_allowed(&["DELETE", "GET", "HEAD", "PATCH"]),
                ),
                ("GET", "/v1/any", found("GET /v1/any", &[])),
                ("OPTIONS", "/v1/any", found("* /v1/any", &[])),
                // HEAD: a GET route answers it; a `*` route at the same template first.
                (
                    "HEAD",
                    "/v1/books/7",
                    found("GET /v1/books/{id}", &[("id", "7")]),
                ),
                ("HEAD", "/v1/any", found("* /v1/any", &[])),
                ("HEAD", "/v1/books", not_allowed(&["POST"])),
                ("PURGE", "/v1/cache/a/b", found("PURGE /v1/cache/**", &[])),
            ],
        );
    }

    #[test]
    fn deep_templates_match_beyond_the_inline_scratch() {
        let depth = INLINE_DEPTH + 3;
        let template: String =
            (0..depth).map(|i| format!("/s{i}")).collect::<String>() + "/{last=**}";
        let path: String = (0..depth).map(|i| format!("/s{i}")).collect::<String>() + "/a/b";
        let mut router = Router::new();
        router.insert("GET", &template, "deep").unwrap();
        assert_eq!(
            outcome(&router, "GET", &path),
            found("deep", &[("last", "a/b")])
        );
    }

    #[test]
    fn rejects_conflicts_and_bad_input() {
        let mut router = Router::new();
        router.insert("GET", "/v1/{name=*}", ()).unwrap();
        router.insert("GET", "/v1/{name}:cancel", ()).unwrap();
        router.insert("POST", "/v1/{name}", ()).unwrap();
        router.insert("GET", "/v1/{name=**}", ()).unwrap();
        let cases = [
            (
                "GET",
                "/v1/{id}",
                "route GET /v1/{id=*} conflicts with GET /v1/{name=*}, which is already registered",
            ),
            (
                "GET",
                "/v1/*",
                "route GET /v1/* conflicts with GET /v1/{name=*}, which is already registered",
            ),
            (
                "GET",
                "/v1/{x}:cancel",
                "route GET /v1/{x=*}:cancel conflicts with GET /v1/{name=*}:cancel, which is already registered",
            ),
            (
                "GET",
                "/v1/**",
                "route GET /v1/** conflicts with GET /v1/{name=**}, which is already registered",
            ),
            (
                "GET",
                "/v1/{a",
                "invalid path template \"/v1/{a\": column 5: '{' is never closed by '}'",
            ),
            ("", "/v1", "invalid HTTP method \"\""),
            ("GE T", "/v1", "invalid HTTP method \"GE T\""),
        ];
        for (method, template, message) in cases {
            let error = router.insert(method, template, ()).expect_err(template);
            assert_eq!(error.to_string(), message);
        }
        // Failed inserts change nothing.
        assert!(matches!(router.find("GET", "/v1/x"), RouteMatch::Found(_)));
        assert!(
            matches!(router.find("PUT", "/v1/x"), RouteMatch::MethodNotAllowed(m) if m == ["GET", "HEAD", "POST"])
        );
    }
}
