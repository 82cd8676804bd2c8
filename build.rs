//! Generates the CRI image service client (src/runtime_api/cri.rs) from proto/cri_images.proto.
//! protox parses the proto in Rust, so building needs no protoc.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    const PROTO: &str = "proto/cri_images.proto";
    println!("cargo:rerun-if-changed={PROTO}");
    let fds = protox::compile([PROTO], ["proto"])?;
    tonic_prost_build::configure()
        .build_server(false)
        .build_transport(false)
        .compile_fds(fds)?;
    Ok(())
}
