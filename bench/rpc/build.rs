//! Generates the greeter (`testdata/greeter/v1/greeter.proto`) with rzero's `Builder`: the
//! prost messages both sides share, and rzero's server and client.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    protoc_gen_rzero::Builder::new().compile(
        &["../../testdata/greeter/v1/greeter.proto"],
        &["../../testdata"],
    )?;
    Ok(())
}
