//! The exec.d program that starts each web process's boot warm-up.

// The library uses the rest of the dependencies.
#![allow(unused_crate_dependencies)]

fn main() -> std::process::ExitCode {
    preheat_buildpack::warmup::execd::main()
}
