//! The runtime's path-template grammar and route trie, compiled into the generator as well.
//!
//! Both files live in `runtime/src/gateway/` and are `std`-only by contract (their module docs
//! say so), so the generator validates templates and detects conflicting rules with exactly
//! the code that matches requests at run time, without depending on the runtime crate and
//! its transport stack. Debt: `cargo package` cannot follow a path outside the crate; before
//! publishing, these two files move into a small crate both sides depend on.

#[allow(dead_code, unreachable_pub, missing_docs, clippy::all)]
#[path = "../../../runtime/src/gateway/template.rs"]
pub(crate) mod template;

#[allow(dead_code, unreachable_pub, missing_docs, clippy::all)]
#[path = "../../../runtime/src/gateway/router.rs"]
pub(crate) mod router;
