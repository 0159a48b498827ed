//! Command line: protoc plugin mode, `generate`, `check`, `new` and `templates init`.

use std::io::{IsTerminal, Read, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};
use protoc_gen_rzero::scaffold::{Scaffold, init_templates};
use protoc_gen_rzero::{OpenApi, Options, check_files, execute, generate, write_files};

/// Generate prost messages, async gRPC servers and clients from .proto files.
///
/// Run with no arguments by protoc (`protoc --rzero_out=OUT x.proto`), or directly with a
/// subcommand to generate without protoc.
#[derive(Parser, Debug)]
#[command(name = "protoc-gen-rzero", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Generate code into a directory (for checked-in code). Needs no protoc.
    Generate(Generate),
    /// Exit non-zero, naming each file, if the code in a directory is not what `generate`
    /// would write now.
    Check(Generate),
    /// Create a service crate from a .proto file (or a sample one), or update one after the
    /// proto changed: scaffold-owned files are rewritten, files you own are never touched.
    New(New),
    /// Manage the templates `new` renders.
    #[command(subcommand)]
    Templates(TemplatesCommand),
}

#[derive(Args, Debug)]
struct New {
    /// Crate name (also the binary, `etc/NAME.yaml` and the default proto's package).
    name: String,
    /// The .proto file to serve (copied into the crate's `proto/`). Default: the crate's
    /// `proto/*.proto`, or a sample proto when there is none.
    #[arg(long, value_name = "FILE")]
    proto: Option<PathBuf>,
    /// Directory of the crate. Default: `./NAME`.
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    out: Option<PathBuf>,
    /// Templates to use where DIR has them (see `templates init`); built-in ones otherwise.
    #[arg(long, value_name = "DIR")]
    templates: Option<PathBuf>,
    /// Depend on the rzero crates of this checkout by path. Default: by path when the crate
    /// (or the current directory) is inside a checkout of rzero, by version otherwise.
    #[arg(long, value_name = "DIR")]
    rzero_path: Option<PathBuf>,
    /// Check the generated code in under `src/gen/` instead of generating it in `build.rs`.
    #[arg(long)]
    checked_in: bool,
}

#[derive(Subcommand, Debug)]
enum TemplatesCommand {
    /// Write the built-in templates into DIR to edit them; use them with `new --templates DIR`.
    Init {
        /// Where to write them.
        #[arg(default_value = "rzero-templates")]
        dir: PathBuf,
        /// Overwrite templates already in DIR.
        #[arg(long)]
        force: bool,
    },
}

#[derive(Args, Debug)]
struct Generate {
    /// .proto files to generate (imports are found through -I and generated too).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Include directory to look up files and imports in (repeatable).
    #[arg(short = 'I', long = "include", value_name = "DIR")]
    includes: Vec<PathBuf>,
    /// Output directory.
    #[arg(short = 'o', long = "out", value_name = "DIR")]
    out: PathBuf,
    /// Generation options, as in `--rzero_opt` (repeatable, comma-separated, `\,` for a comma
    /// inside a value): e.g. `--opt no_client,bytes=.`
    #[arg(long = "opt", value_name = "KEY[=VALUE]")]
    options: Vec<String>,
    /// Also write OpenAPI 3 documents of the HTTP rules: one per proto file with rules
    /// (`--openapi`), or one `openapi.json` (`--openapi=merged`). Same as `--opt openapi`.
    #[arg(
        long,
        value_enum,
        value_name = "MODE",
        num_args = 0..=1,
        require_equals = true,
        default_missing_value = "per-file"
    )]
    openapi: Option<OpenApiMode>,
}

/// `--openapi` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum OpenApiMode {
    /// One document per proto file.
    PerFile,
    /// One `openapi.json`.
    Merged,
}

pub(crate) fn main() -> ExitCode {
    if std::env::args_os().len() <= 1 {
        return plugin();
    }
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(code) => code,
        Err(message) => {
            eprintln!("protoc-gen-rzero: {message}");
            ExitCode::FAILURE
        }
    }
}

/// protoc mode: request on stdin, response on stdout.
fn plugin() -> ExitCode {
    let mut stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprintln!(
            "protoc-gen-rzero: this is a protoc plugin (protoc --rzero_out=DIR file.proto); \
             run `protoc-gen-rzero --help` for the generate/check commands"
        );
        return ExitCode::FAILURE;
    }
    let mut request = Vec::new();
    if let Err(e) = stdin.read_to_end(&mut request) {
        eprintln!("protoc-gen-rzero: cannot read stdin: {e}");
        return ExitCode::FAILURE;
    }
    match execute(&request) {
        Ok(response) => match std::io::stdout().write_all(&response) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("protoc-gen-rzero: cannot write stdout: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("protoc-gen-rzero: stdin is not a protoc request: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> Result<ExitCode, String> {
    let (args, check) = match command {
        Command::Generate(args) => (args, false),
        Command::Check(args) => (args, true),
        Command::New(args) => return scaffold(args),
        Command::Templates(TemplatesCommand::Init { dir, force }) => {
            let written = init_templates(&dir, force).map_err(|e| e.to_string())?;
            for (path, was_written) in written {
                let action = if was_written { "written" } else { "kept" };
                println!("{action:<12} {}", path.display());
            }
            println!(
                "edit them, then: protoc-gen-rzero new NAME --templates {}",
                dir.display()
            );
            return Ok(ExitCode::SUCCESS);
        }
    };
    let mut options = Options::default();
    for option in &args.options {
        options.apply_parameter(option).map_err(|e| e.to_string())?;
    }
    if let Some(mode) = args.openapi {
        options.openapi = Some(match mode {
            OpenApiMode::PerFile => OpenApi::PerFile,
            OpenApiMode::Merged => OpenApi::Merged,
        });
    }
    let includes = if args.includes.is_empty() {
        vec![PathBuf::from(".")]
    } else {
        args.includes
    };
    let files = generate(&args.files, &includes, &options).map_err(|e| e.to_string())?;
    if !check {
        write_files(&args.out, &files).map_err(|e| e.to_string())?;
        return Ok(ExitCode::SUCCESS);
    }
    let drift = check_files(&args.out, &files).map_err(|e| e.to_string())?;
    if drift.is_empty() {
        return Ok(ExitCode::SUCCESS);
    }
    for item in &drift {
        eprintln!("{}: {item}", args.out.display());
    }
    eprintln!(
        "protoc-gen-rzero: {} generated file(s) out of date; run `protoc-gen-rzero generate` with the same arguments",
        drift.len()
    );
    Ok(ExitCode::FAILURE)
}

fn scaffold(args: New) -> Result<ExitCode, String> {
    let mut scaffold = Scaffold::new(&args.name);
    if let Some(dir) = &args.out {
        scaffold = scaffold.dir(dir);
    }
    if let Some(proto) = &args.proto {
        scaffold = scaffold.proto(proto);
    }
    if let Some(dir) = &args.templates {
        scaffold = scaffold.templates(dir);
    }
    if let Some(repo) = &args.rzero_path {
        scaffold = scaffold.rzero_path(repo);
    }
    if args.checked_in {
        scaffold = scaffold.checked_in(true);
    }
    let report = scaffold.run().map_err(|e| e.to_string())?;
    for (path, action) in &report.files {
        println!("{action:<12} {path}");
    }
    println!(
        "{}: cd {} && cargo run   (then: cargo run --example client)",
        args.name,
        report.dir.display()
    );
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn openapi_of(args: &[&str]) -> Result<Option<OpenApiMode>, clap::Error> {
        let mut argv = vec!["protoc-gen-rzero", "generate", "-o", "out"];
        argv.extend_from_slice(args);
        match Cli::try_parse_from(argv)?.command {
            Command::Generate(generate) => {
                assert_eq!(generate.files, [PathBuf::from("x.proto")], "{args:?}");
                Ok(generate.openapi)
            }
            other => panic!("parsed as {other:?}"),
        }
    }

    #[test]
    fn openapi_flag_takes_an_optional_mode() {
        assert_eq!(openapi_of(&["x.proto"]).unwrap(), None);
        // The file after a bare `--openapi` is still a file, not the mode.
        assert_eq!(
            openapi_of(&["--openapi", "x.proto"]).unwrap(),
            Some(OpenApiMode::PerFile)
        );
        assert_eq!(
            openapi_of(&["--openapi=merged", "x.proto"]).unwrap(),
            Some(OpenApiMode::Merged)
        );
        assert_eq!(
            openapi_of(&["x.proto", "--openapi=per-file"]).unwrap(),
            Some(OpenApiMode::PerFile)
        );
        let bad = openapi_of(&["--openapi=yaml", "x.proto"])
            .unwrap_err()
            .to_string();
        assert!(bad.contains("yaml") && bad.contains("merged"), "{bad}");
    }
}
