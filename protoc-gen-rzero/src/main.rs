//! The `protoc-gen-rzero` binary: a protoc plugin when protoc runs it (no arguments, a request
//! on stdin), a CLI otherwise (`generate`, `check`).

mod cli;

fn main() -> std::process::ExitCode {
    cli::main()
}
