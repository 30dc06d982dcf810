//! The buildpack binary: libcnb packages it as `bin/detect` and `bin/build`.

// The library uses the rest of the dependencies.
#![allow(unused_crate_dependencies)]

use preheat_buildpack::buildpack::PreheatBuildpack;

libcnb::buildpack_main!(PreheatBuildpack);
