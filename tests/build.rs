//! Compiles every good file in `testdata/` with the `build.rs` front end, twice: default
//! options, and the message options prost users rely on. `src/lib.rs` includes both under
//! `#![deny(warnings)]`.

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The list of files itself: the builder announces only the files it reads.
    println!("cargo:rerun-if-changed=src/testdata.rs");
    let testdata = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../testdata");
    let out = PathBuf::from(std::env::var("OUT_DIR")?);
    let protos = rzero_testdata::GOOD.map(|file| testdata.join(file));
    protoc_gen_rzero::Builder::new()
        .out_dir(out.join("default"))
        .compile(&protos, &[&testdata])?;
    let options = protoc_gen_rzero::Options::from_parameter(rzero_testdata::OPTIONS_PARAMETER)?;
    protoc_gen_rzero::Builder::new()
        .options(options)
        .out_dir(out.join("options"))
        .compile(
            &rzero_testdata::OPTIONS_CASE.map(|file| testdata.join(file)),
            &[&testdata],
        )?;
    Ok(())
}

#[path = "src/testdata.rs"]
#[allow(unreachable_pub, dead_code)]
mod rzero_testdata;
