//! Compiles the ConfigSync protos with `protox`, so building needs no system `protoc`.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let protos = ["gateway/config/v1/config_sync.proto"];
    let fds = protox::compile(protos, ["."])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Its Debug, written in src/lib.rs, leaves the private key out of every log line.
        .skip_debug(["gateway.config.v1.Certificate"])
        .compile_fds(fds)?;
    println!("cargo:rerun-if-changed=gateway");
    Ok(())
}
