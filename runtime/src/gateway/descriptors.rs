//! Descriptors the gateway always has: `google.rpc.Status` and the standard error details
//! (`google/rpc/{status,error_details}.proto` with their `google/protobuf` imports), so that
//! error bodies render their `details` as JSON whatever descriptor set the service brought.

/// Encoded `FileDescriptorSet` of `google/rpc/status.proto` and `google/rpc/error_details.proto`
/// (plus imports), built from `protoc-gen-rzero/proto`. The test below checks it is current;
/// `RZERO_UPDATE_DESCRIPTORS=1 cargo test -p rzero google_rpc_descriptors` rewrites it.
pub(crate) const GOOGLE_RPC: &[u8] = include_bytes!("google_rpc.bin");

#[cfg(test)]
mod tests {
    use prost::Message as _;

    #[test]
    fn google_rpc_descriptors_are_current() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let proto = root.join("../protoc-gen-rzero/proto");
        let mut compiler = protox::Compiler::new([proto]).expect("include dir");
        compiler
            .include_imports(true)
            .include_source_info(false)
            .open_files(["google/rpc/status.proto", "google/rpc/error_details.proto"])
            .expect("google/rpc compiles");
        let bytes = compiler.file_descriptor_set().encode_to_vec();
        let path = root.join("src/gateway/google_rpc.bin");
        if std::env::var_os("RZERO_UPDATE_DESCRIPTORS").is_some() {
            std::fs::write(&path, &bytes).expect("write google_rpc.bin");
        }
        assert!(
            super::GOOGLE_RPC == bytes.as_slice(),
            "src/gateway/google_rpc.bin is stale; rerun with RZERO_UPDATE_DESCRIPTORS=1"
        );
    }
}
