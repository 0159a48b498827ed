//! The scaffold's templates: built in from the repository's `templates/service/`, or read
//! from a directory the user wrote with `protoc-gen-rzero templates init` (a file there wins,
//! a missing one falls back to the built-in copy, as goctl's loader does).

use std::path::{Path, PathBuf};

use minijinja::{AutoEscape, Environment, UndefinedBehavior};
use serde::Serialize;

use crate::error::{Error, Result};

/// Every template by file name, with its built-in text.
pub(crate) const BUILTIN: &[(&str, &str)] = &[
    (
        "Cargo.toml.j2",
        include_str!("../../../templates/service/Cargo.toml.j2"),
    ),
    (
        "build.rs.j2",
        include_str!("../../../templates/service/build.rs.j2"),
    ),
    (
        "pb.rs.j2",
        include_str!("../../../templates/service/pb.rs.j2"),
    ),
    (
        "lib.rs.j2",
        include_str!("../../../templates/service/lib.rs.j2"),
    ),
    (
        "svc.rs.j2",
        include_str!("../../../templates/service/svc.rs.j2"),
    ),
    (
        "server.rs.j2",
        include_str!("../../../templates/service/server.rs.j2"),
    ),
    (
        "logic_mod.rs.j2",
        include_str!("../../../templates/service/logic_mod.rs.j2"),
    ),
    (
        "logic.rs.j2",
        include_str!("../../../templates/service/logic.rs.j2"),
    ),
    (
        "main.rs.j2",
        include_str!("../../../templates/service/main.rs.j2"),
    ),
    (
        "etc.yaml.j2",
        include_str!("../../../templates/service/etc.yaml.j2"),
    ),
    (
        "client.rs.j2",
        include_str!("../../../templates/service/client.rs.j2"),
    ),
    (
        "test.rs.j2",
        include_str!("../../../templates/service/test.rs.j2"),
    ),
    (
        "Dockerfile.j2",
        include_str!("../../../templates/service/Dockerfile.j2"),
    ),
    (
        "k8s.yaml.j2",
        include_str!("../../../templates/service/k8s.yaml.j2"),
    ),
    (
        "proto.j2",
        include_str!("../../../templates/service/proto.j2"),
    ),
    (
        "gitignore.j2",
        include_str!("../../../templates/service/gitignore.j2"),
    ),
];

/// The loaded templates, and where each came from (for error messages).
pub(crate) struct Templates {
    env: Environment<'static>,
    origin: Vec<(&'static str, String)>,
}

impl std::fmt::Debug for Templates {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Templates")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl Templates {
    /// Loads every template, from `dir` where it has the file. A syntax error fails here,
    /// naming the file and line.
    pub(crate) fn load(dir: Option<&Path>) -> Result<Self> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_auto_escape_callback(|_| AutoEscape::None);
        env.set_syntax(
            minijinja::syntax::SyntaxConfig::builder()
                .trim_blocks(true)
                .lstrip_blocks(true)
                .keep_trailing_newline(true)
                .build()
                .map_err(|e| Error::Internal(format!("template syntax: {e}")))?,
        );
        let mut origin = Vec::new();
        for (name, builtin) in BUILTIN {
            let (source, from) = match dir.map(|d| d.join(name)).filter(|p| p.is_file()) {
                Some(path) => (
                    std::fs::read_to_string(&path).map_err(|e| Error::io(&path, e))?,
                    path.display().to_string(),
                ),
                None => ((*builtin).to_owned(), format!("<built-in>/{name}")),
            };
            origin.push((*name, from));
            env.add_template_owned(*name, source)
                .map_err(|e| template_error(&origin, &e))?;
        }
        Ok(Self { env, origin })
    }

    /// Renders template `name` with `context`.
    pub(crate) fn render(&self, name: &str, context: &impl Serialize) -> Result<String> {
        let template = self
            .env
            .get_template(name)
            .map_err(|e| template_error(&self.origin, &e))?;
        template
            .render(minijinja::value::Serde(context))
            .map_err(|e| template_error(&self.origin, &e))
    }

    /// Where template `name` was read from.
    pub(crate) fn origin(&self, name: &str) -> String {
        self.origin
            .iter()
            .find(|(n, _)| *n == name)
            .map_or_else(|| name.to_owned(), |(_, from)| from.clone())
    }
}

/// `file:line: message`, with the file the template was read from.
fn template_error(origin: &[(&'static str, String)], error: &minijinja::Error) -> Error {
    let file = error.name().map(|name| {
        origin
            .iter()
            .find(|(n, _)| *n == name)
            .map_or_else(|| name.to_owned(), |(_, from)| from.clone())
    });
    let location = match (file, error.line()) {
        (Some(file), Some(line)) => format!("{file}:{line}"),
        (Some(file), None) => file,
        (None, _) => String::new(),
    };
    let message = match error.detail() {
        Some(detail) => format!("{}: {detail}", error.kind()),
        None => error.kind().to_string(),
    };
    Error::Template { location, message }
}

/// Writes the built-in templates into `dir` for editing. Files already there are kept
/// unless `force`. Returns each file with whether it was written.
pub fn init_templates(dir: &Path, force: bool) -> Result<Vec<(PathBuf, bool)>> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut written = Vec::new();
    for (name, text) in BUILTIN {
        let path = dir.join(name);
        if path.exists() && !force {
            written.push((path, false));
            continue;
        }
        std::fs::write(&path, text).map_err(|e| Error::io(&path, e))?;
        written.push((path, true));
    }
    Ok(written)
}
