//! Fuzz harness `path_template`: `google.api.http` path templates through
//! `PathTemplate::parse` and the `Router`.
//!
//! Input: UTF-8 text, one item per line (at most `MAX_LINES` lines are read).
//! - Lines up to a line `--` are routes, `METHOD TEMPLATE` or just `TEMPLATE` (for `GET`).
//! - Lines after it are requests, `METHOD PATH` or just `PATH` (for `GET`).
//!
//! Checks: nothing panics; an error's column lies within the template; a parsed template's
//! canonical form (`Display`) parses back to the same template; a found route's captured
//! variables are those of the route's template. The routes go into two routers (default
//! settings, and strict trailing slash with full decoding) and every request is looked up in
//! both.
//!
//! Shared by `fuzz/fuzz_targets/path_template.rs` and `tests/tests/fuzz_regressions.rs`
//! (through `#[path]`). Uses only `rzero` and `std`.

use rzero::gateway::{MultiSegmentDecoding, PathTemplate, RouteMatch, Router};

/// Bounds the work per input, so the fuzzer spends its time on variety rather than volume.
const MAX_LINES: usize = 64;

fn method_and_rest(line: &str) -> (&str, &str) {
    if line.starts_with('/') {
        return ("GET", line);
    }
    line.split_once(' ').unwrap_or(("GET", line))
}

/// Runs the checks above on `data`; panics on a finding.
pub(crate) fn run(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.lines().take(MAX_LINES);
    let mut templates = Vec::new();
    let mut default_router = Router::new();
    let mut strict_router = Router::new()
        .strict_trailing_slash(true)
        .multi_segment_decoding(MultiSegmentDecoding::DecodeAll);
    for line in lines.by_ref() {
        if line == "--" {
            break;
        }
        let (method, template) = method_and_rest(line);
        check_template(template);
        let index = templates.len();
        let inserted = default_router.insert(method, template, index).is_ok();
        assert_eq!(
            inserted,
            strict_router.insert(method, template, index).is_ok(),
            "router settings changed whether {method} {template:?} is accepted"
        );
        templates.push(PathTemplate::parse(template).ok());
    }
    for line in lines {
        let (method, path) = method_and_rest(line);
        for router in [&default_router, &strict_router] {
            match router.find(method, path) {
                RouteMatch::Found(found) => {
                    let template = templates[*found.value]
                        .as_ref()
                        .expect("only parsed templates are routed");
                    let expected: Vec<&str> = template
                        .variables()
                        .iter()
                        .map(|v| v.field_path())
                        .collect();
                    let captured: Vec<&str> = found.params.iter().map(|(name, _)| *name).collect();
                    assert_eq!(
                        captured, expected,
                        "{method} {path:?} matched {template} with other variables"
                    );
                }
                RouteMatch::MethodNotAllowed(allowed) => {
                    assert!(
                        !allowed.is_empty(),
                        "405 for {path:?} without allowed methods"
                    );
                }
                RouteMatch::NotFound => {}
            }
        }
    }
}

fn check_template(template: &str) {
    match PathTemplate::parse(template) {
        Ok(parsed) => {
            let canonical = parsed.to_string();
            match PathTemplate::parse(&canonical) {
                Ok(again) => assert_eq!(
                    again, parsed,
                    "{template:?} and its canonical form {canonical:?} parse differently"
                ),
                Err(error) => {
                    panic!("{template:?} parses but its canonical form does not: {error}")
                }
            }
        }
        Err(error) => {
            let columns = template.chars().count() + 1;
            assert!(
                (1..=columns).contains(&error.column()),
                "column {} outside {template:?}: {error}",
                error.column()
            );
        }
    }
}
