//! The release tool that the buildpack installs on `PATH`.

// The library uses the rest of the dependencies.
#![allow(unused_crate_dependencies)]

fn main() -> std::process::ExitCode {
    preheat_buildpack::cli::main()
}
